import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import type { Health } from '../../src/metrics/server.js';
import { rig, until, type Rig } from './helpers.js';

async function health(r: Rig): Promise<{ code: number; body: Health }> {
  const res = await fetch(r.url('/healthz'));
  assert.equal(res.headers.get('content-type'), 'application/json');
  return { code: res.status, body: (await res.json()) as Health };
}

const PASSWORD = 'Hunter2-s3cr3t-pw';
const SECRET_KEY = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY';

describe('/healthz', () => {
  let r: Rig | undefined;
  afterEach(async () => {
    await r?.stop();
    r = undefined;
  });

  it('is 200 while the replica keeps up, 503 naming the replica and its error once its directory becomes a regular file, 200 again after repair', async () => {
    r = await rig('healthz', `      - type: file
        name: backup
        path: {dir}/replica
        sync-interval: 100ms
`);
    const replicaDir = join(r.dir, 'replica');
    r.write(10);
    let h = await health(r);
    assert.equal(h.code, 200, JSON.stringify(h.body));
    assert.equal(h.body.status, 'ok');
    assert.deepEqual(h.body.replicas.map((x) => [x.name, x.type, x.status]), [['backup', 'file', 'ok']]);
    assert.equal(h.body.replicas[0]!.allowed_lag_seconds, 1, '3 × 100 ms is under the 1 s floor');

    // A regular file where the replica directory was: every write (mkdir -p) fails for real.
    renameSync(replicaDir, `${replicaDir}.moved`);
    writeFileSync(replicaDir, 'not a directory');
    r.write(10);
    const bad = await until(async () => {
      const x = await health(r!);
      return x.code === 503 ? x : undefined;
    }, 5000, '/healthz to turn 503');
    assert.equal(bad.body.status, 'behind');
    const rep = bad.body.replicas[0]!;
    assert.equal(rep.name, 'backup');
    assert.equal(rep.status, 'behind');
    assert.ok(rep.lag_seconds > 1, `lag ${rep.lag_seconds}`);
    assert.match(rep.reason ?? '', /ENOTDIR|EEXIST|not a directory|file already exists/i, rep.reason);
    const s = await r.scrape();
    assert.equal(s.get('lsinit_replica_up', { db: r.db, name: 'backup' }), 0);
    assert.ok(s.get('lsinit_replica_lag_seconds', { db: r.db, name: 'backup' })! > 1);

    rmSync(replicaDir);
    renameSync(`${replicaDir}.moved`, replicaDir);
    r.write(1);
    h = await until(async () => {
      const x = await health(r!);
      return x.code === 200 && x.body.replicas[0]!.lag_seconds === 0 ? x : undefined;
    }, 5000, '/healthz back to 200 with the replica caught up');
    assert.equal(h.body.status, 'ok');
    assert.equal((await r.scrape()).get('lsinit_replica_up', { db: r.db, name: 'backup' }), 1);
  });

  it('never shows a replica password or secret key in /metrics or /healthz, while saying why the replica is behind', async () => {
    r = await rig('secrets', `      - type: file
        name: local
        path: {dir}/replica
        sync-interval: 100ms
      - name: offsite
        url: sftp://backup:${PASSWORD}@127.0.0.1:1/srv/backups/app
        sync-interval: 100ms
      - name: s3
        type: s3
        bucket: bkt
        path: app
        endpoint: http://127.0.0.1:1
        access-key-id: AKIAEXAMPLEID
        secret-access-key: ${SECRET_KEY}
        sync-interval: 100ms
`);
    // The parsed config does carry them (so this test would catch a leak).
    const cfgs = r.controller.entries[0]!.cfg.replicas;
    assert.ok(cfgs.some((c) => (c.settings as { password?: string }).password === PASSWORD));
    r.write(5);
    const bad = await until(async () => {
      const x = await health(r!);
      return x.code === 503 && x.body.replicas.filter((y) => y.status === 'behind').length === 2 ? x : undefined;
    }, 10_000, 'both remote replicas reported behind');
    const byName = new Map(bad.body.replicas.map((x) => [x.name, x]));
    assert.equal(byName.get('local')!.status, 'ok');
    assert.equal(byName.get('offsite')!.type, 'sftp');
    assert.match(byName.get('offsite')!.reason ?? '', /ECONNREFUSED|connect|refused/i);
    assert.match(byName.get('s3')!.reason ?? '', /.+/);

    const texts = [JSON.stringify(bad.body), await (await fetch(r.url('/healthz'))).text(), (await r.scrape()).text];
    for (const t of texts) {
      assert.ok(!t.includes(PASSWORD), 'password leaked');
      assert.ok(!t.includes(encodeURIComponent(PASSWORD)), 'encoded password leaked');
      assert.ok(!t.includes(SECRET_KEY), 'secret key leaked');
    }
    const s = await r.scrape();
    assert.equal(s.get('lsinit_replica_up', { db: r.db, name: 'offsite' }), 0);
    assert.equal(s.get('lsinit_replica_up', { db: r.db, name: 'local' }), 1);
    // Labels name replicas, never URLs.
    assert.ok(!s.samples.some((x) => Object.values(x.labels).some((v) => v.includes('sftp://') || v.includes('127.0.0.1:1'))));
  });

  it('is 503 naming the database while its shadow WAL sync fails on every tick (directory gone), 200 after it comes back', async () => {
    r = await rig('dbfail', `      - type: file
        name: backup
        path: {dir}/replica
        sync-interval: 100ms
`);
    r.write(5);
    await until(async () => (await health(r!)).code === 200, 3000, 'healthy start');
    // The volume is replaced by a file: every monitor tick now fails, while the replica still holds
    // everything the (stopped) shadow WAL has, so only the database check can notice.
    renameSync(r.dir, `${r.dir}.gone`);
    writeFileSync(r.dir, 'not a directory'); // nothing can recreate it behind our back
    let bad: { code: number; body: Health } | undefined;
    try {
      bad = await until(async () => {
        const x = await health(r!);
        return x.code === 503 ? x : undefined;
      }, 5000, '/healthz to turn 503');
    } finally {
      rmSync(r.dir);
      renameSync(`${r.dir}.gone`, r.dir);
    }
    assert.deepEqual(bad.body.dbs.map((d) => [d.db, d.status]), [[r.db, 'failing']]);
    // Its path no longer leads to the file lsinit and the app have open.
    assert.match(bad.body.dbs[0]!.reason ?? '', /database file deleted/);
    assert.equal(bad.body.replicas[0]!.status, 'ok', 'the replica itself is not behind the shadow');
    await until(async () => (await health(r!)).code === 200, 5000, '/healthz back to 200');
    // Back-to-back probes keep the verdict.
    for (let i = 0; i < 5; i++) assert.equal((await health(r)).code, 200);
  });

  it('is 503 with "database file deleted" as soon as the database files are deleted under a running lsinit', async () => {
    r = await rig('dbdeleted', `      - type: file
        name: backup
        path: {dir}/replica
        sync-interval: 100ms
`);
    r.write(5);
    await until(async () => (await health(r!)).code === 200, 3000, 'healthy start');
    for (const f of [r.db, `${r.db}-wal`, `${r.db}-shm`]) rmSync(f, { force: true });
    // The app's open connection keeps committing, into files no longer on disk.
    r.write(5);
    const h = await health(r);
    assert.equal(h.code, 503, JSON.stringify(h.body));
    assert.deepEqual(h.body.dbs.map((d) => [d.db, d.status]), [[r.db, 'failing']]);
    assert.match(h.body.dbs[0]!.reason ?? '', /database file deleted/);
  });

  it('is 503 once every shadow WAL sync failed for a while (the WAL deleted under the app), naming the error', async () => {
    r = await rig('waldeleted', `      - type: file
        name: backup
        path: {dir}/replica
        sync-interval: 100ms
`);
    r.write(5);
    await until(async () => (await health(r!)).code === 200, 3000, 'healthy start');
    rmSync(`${r.db}-wal`);
    rmSync(`${r.db}-shm`);
    r.write(5);
    const bad = await until(async () => {
      const x = await health(r!);
      return x.code === 503 ? x : undefined;
    }, 5000, '/healthz to turn 503');
    assert.equal(bad.body.dbs[0]!.status, 'failing');
    assert.match(bad.body.dbs[0]!.reason ?? '', /all shadow WAL syncs in the last \d+\.\ds failed: .*WAL/);
    assert.ok((await r.scrape()).get('litestream_sync_error_count', { db: r.db })! > 0);
  });

  it('reports the init child when given', async () => {
    let exit: number | undefined;
    r = await rig('child', `      - type: file
        path: {dir}/replica
`, { init: { restarts: () => 2, lastExitCode: () => exit } });
    let s = await r.scrape();
    assert.equal(s.types.get('lsinit_child_restarts_total'), 'counter');
    assert.equal(s.get('lsinit_child_restarts_total'), 2);
    assert.equal(s.get('lsinit_child_last_exit_code'), 0);
    exit = 143;
    s = await r.scrape();
    assert.equal(s.get('lsinit_child_last_exit_code'), 143);
    const h = await health(r);
    assert.deepEqual(h.body.child, { restarts: 2, last_exit_code: 143 });
  });
});
