import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { sleep } from '../helpers/replicate.js';
import { rig, until, type Rig } from './helpers.js';

const FILE_REPLICA = `      - type: file
        name: backup
        path: {dir}/replica
        sync-interval: 400ms
`;

describe('/metrics on a replicating database (file replica)', () => {
  let r: Rig;
  after(() => r?.stop());

  it('exports Litestream 0.3 metrics whose counters move with the right labels, and lag returns to 0 after a sync', async () => {
    r = await rig('metrics', FILE_REPLICA);
    const db = { db: r.db };
    const rep = { db: r.db, name: 'backup' };
    const put = { replica_type: 'file', operation: 'PUT' };
    const s0 = await r.scrape();

    // Types and label sets exactly as Litestream 0.3 declares them.
    for (const [name, type] of Object.entries({
      litestream_db_size: 'gauge', litestream_wal_size: 'gauge', litestream_total_wal_bytes: 'counter',
      litestream_shadow_wal_index: 'gauge', litestream_shadow_wal_size: 'gauge', litestream_sync_count: 'counter',
      litestream_sync_error_count: 'counter', litestream_sync_seconds: 'counter', litestream_checkpoint_count: 'counter',
      litestream_checkpoint_error_count: 'counter', litestream_checkpoint_seconds: 'counter', litestream_replica_wal_index: 'gauge',
      litestream_replica_wal_offset: 'gauge', litestream_replica_wal_bytes: 'counter', litestream_replica_validation_total: 'counter',
      litestream_replica_operation_total: 'counter', litestream_replica_operation_bytes: 'counter', lsinit_replica_lag_seconds: 'gauge',
      lsinit_replica_last_sync_timestamp_seconds: 'gauge', lsinit_replica_up: 'gauge',
    })) assert.equal(s0.types.get(name), type, name);
    assert.equal(s0.get('litestream_replica_validation_total', { ...rep, status: 'ok' }), 0);
    assert.equal(s0.get('litestream_replica_validation_total', { ...rep, status: 'error' }), 0);
    assert.ok(s0.get('litestream_db_size', db)! > 0);
    assert.equal(s0.get('litestream_shadow_wal_index', db), 0);
    assert.ok(s0.get('litestream_shadow_wal_size', db)! >= 32, 'at least a WAL header in the shadow');
    assert.equal(s0.get('lsinit_replica_up', rep), 1);
    assert.equal(s0.get('lsinit_child_restarts_total'), undefined, 'no init metrics without init');
    // Node process metrics from collectDefaultMetrics.
    assert.ok(s0.get('process_cpu_user_seconds_total') !== undefined);
    assert.ok(s0.samples.some((s) => s.name.startsWith('nodejs_')));
    // No label carries anything but the db path, the replica name and Litestream's enums.
    for (const s of s0.samples.filter((x) => x.name.startsWith('litestream_') || x.name.startsWith('lsinit_'))) {
      assert.ok(Object.keys(s.labels).every((k) => ['db', 'name', 'mode', 'status', 'replica_type', 'operation'].includes(k)), JSON.stringify(s));
    }

    // Two commits in a row: the first is shipped at once, the second waits for the 400 ms sync
    // interval, so a scrape in between sees lag > 0.
    r.write(20);
    await until(async () => (await r.scrape()).get('litestream_replica_wal_bytes', rep)! > s0.get('litestream_replica_wal_bytes', rep)!, 5000, 'first segment');
    r.write(20);
    let maxLag = 0;
    const caught = await until(async () => {
      const s = await r.scrape();
      const lag = s.get('lsinit_replica_lag_seconds', rep)!;
      maxLag = Math.max(maxLag, lag);
      return maxLag > 0 && lag === 0 ? s : undefined;
    }, 5000, 'lag > 0 then back to 0');
    assert.ok(maxLag > 0 && maxLag < 2, `lag seen ${maxLag}`);

    assert.ok(caught.get('litestream_sync_count', db)! > s0.get('litestream_sync_count', db)!);
    assert.ok(caught.get('litestream_sync_seconds', db)! > 0);
    assert.ok(caught.get('litestream_total_wal_bytes', db)! > s0.get('litestream_total_wal_bytes', db)!);
    assert.ok(caught.get('litestream_replica_wal_bytes', rep)! > 0);
    assert.ok(caught.get('litestream_replica_operation_total', put)! >= (s0.get('litestream_replica_operation_total', put) ?? 0) + 2);
    assert.ok(caught.get('litestream_replica_operation_bytes', put)! > (s0.get('litestream_replica_operation_bytes', put) ?? 0));
    // The replica's position equals the shadow's once caught up.
    const dpos = r.controller.entries[0]!.db.pos()!;
    assert.equal(caught.get('litestream_replica_wal_index', rep), dpos.index);
    assert.equal(caught.get('litestream_replica_wal_offset', rep), dpos.offset);
    assert.equal(caught.get('litestream_shadow_wal_index', db), dpos.index);
    const lastSync = caught.get('lsinit_replica_last_sync_timestamp_seconds', rep)!;
    assert.ok(Math.abs(Date.now() / 1000 - lastSync) < 5, `last sync ${lastSync}`);
    assert.equal(caught.get('lsinit_replica_up', rep), 1);
  });

  it('counts checkpoints by db and mode', async () => {
    // A forced checkpoint from the controller's own DB (the path Litestream's metric covers).
    const entry = r.controller.entries[0]!;
    const before = (await r.scrape()).get('litestream_checkpoint_count', { db: r.db, mode: 'PASSIVE' }) ?? 0;
    entry.db.checkpoint();
    const s = await r.scrape();
    assert.equal(s.get('litestream_checkpoint_count', { db: r.db, mode: 'PASSIVE' }), before + 1);
    assert.equal(s.get('litestream_checkpoint_error_count', { db: r.db, mode: 'PASSIVE' }) ?? 0, 0);
    assert.ok(s.get('litestream_checkpoint_seconds', { db: r.db, mode: 'PASSIVE' })! >= 0);
  });

  it('serves only /metrics and /healthz: 404 elsewhere (no /debug/pprof), 405 for other methods, HEAD allowed', async () => {
    for (const p of ['/', '/debug/pprof/', '/debug/pprof/heap', '/metrics/x', '/healthzz']) {
      const res = await fetch(r.url(p));
      assert.equal(res.status, 404, p);
      await res.arrayBuffer();
    }
    const post = await fetch(r.url('/metrics'), { method: 'POST', body: 'x' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
    await post.arrayBuffer();
    const head = await fetch(r.url('/metrics'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.match(head.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const q = await fetch(r.url('/metrics?name[]=x'));
    assert.equal(q.status, 200);
    await q.arrayBuffer();
  });

  it('close() returns while a client holds a keep-alive connection', async () => {
    const res = await fetch(r.url('/healthz'));
    await res.arrayBuffer();
    const t0 = Date.now();
    await r.server.close();
    assert.ok(Date.now() - t0 < 1000);
    await assert.rejects(fetch(r.url('/metrics')));
    await sleep(0);
  });
});
