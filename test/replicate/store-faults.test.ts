/**
 * Store-side faults against a real `lsinit replicate`: moto behind the fault-injecting proxy
 * (test/servers/fault-proxy.ts) for 5xx storms, lost responses and hung requests; a file replica
 * made unusable; the process paused with SIGSTOP. Every outage here outlasts nothing but itself:
 * replication must resume by itself, and the final restore must equal the source row for row.
 */
import assert from 'node:assert/strict';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { lsinit } from '../helpers/cli.js';
import { createDB, dump, fileConfig, integrity, snapshotCopy, startReplicate, workdir, writer } from '../helpers/replicate.js';
import { startFaultProxy, type FaultProxy } from '../servers/fault-proxy.js';
import { freePort, MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY, startMoto, type MotoServer } from '../servers/moto.js';

const BUCKET = 'faults';
const ENV = { AWS_ACCESS_KEY_ID: MOTO_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: MOTO_SECRET_ACCESS_KEY };
const isLease = (r: { path: string }) => r.path.endsWith('/lsinit-lease.json');

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Restore a file replica and compare it with the source, row for row. */
async function assertFileEquals(dir: string, replica: string, db: string): Promise<void> {
  const out = join(dir, 'restored.db');
  assert.equal((await lsinit(['restore', '-o', out, `file://${replica}`])).exitCode, 0);
  assert.equal(integrity(out), 'ok');
  assert.deepEqual(dump(out), dump(snapshotCopy(db, join(dir, 'src.db'))));
}

/** SIGTERM, exit 0 with no lease lost. */
async function stopCleanly(a: Awaited<ReturnType<typeof startReplicate>>): Promise<void> {
  a.child.kill('SIGTERM');
  assert.equal((await a.child).exitCode, 0, a.output());
  assert.doesNotMatch(a.output(), /replica lease lost/);
}

async function healthz(port: number): Promise<{ code: number; body: { replicas: { status: string; reason?: string }[] } }> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  return { code: res.status, body: (await res.json()) as { replicas: { status: string; reason?: string }[] } };
}

describe('store faults (lsinit replicate)', () => {
  let moto: MotoServer;
  let proxy: FaultProxy;
  before(async () => {
    Object.assign(process.env, ENV);
    moto = await startMoto();
    await moto.createBucket(BUCKET);
    proxy = await startFaultProxy(moto.port);
  });
  after(async () => {
    await proxy?.close();
    await moto?.stop();
  });

  function s3Config(dir: string, extra = ''): { cfg: string; db: string; prefix: string } {
    const db = join(dir, 'app.db');
    const cfg = join(dir, 'lsinit.yml');
    const prefix = `p-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
    writeFileSync(cfg, `${extra}dbs:
  - path: ${db}
    monitor-interval: 100ms
    replicas:
      - name: s3
        type: s3
        bucket: ${BUCKET}
        path: ${prefix}
        endpoint: ${proxy.endpoint}
        region: us-east-1
        sync-interval: 100ms
        lease: { ttl: 3s }
`);
    return { cfg, db, prefix };
  }

  /** Restore through moto directly (not the proxy) and compare with the source. */
  async function assertS3Equals(dir: string, prefix: string, db: string): Promise<void> {
    const out = join(dir, `restored-${Math.random().toString(36).slice(2, 6)}.db`);
    const cfg = join(dir, 'restore.yml');
    writeFileSync(cfg, `dbs:\n  - path: ${db}\n    replicas:\n      - type: s3\n        bucket: ${BUCKET}\n        path: ${prefix}\n        endpoint: ${moto.endpoint}\n        region: us-east-1\n`);
    const res = await lsinit(['restore', '-config', cfg, '-o', out, db], { env: ENV });
    assert.equal(res.exitCode, 0, res.stderr + res.stdout);
    assert.equal(integrity(out), 'ok');
    assert.deepEqual(dump(out), dump(snapshotCopy(db, join(dir, `src-${Math.random().toString(36).slice(2, 6)}.db`))));
  }

  it('a 5xx storm longer than the lease ttl pauses shipping (/healthz says why), then everything written meanwhile is shipped', async () => {
    const w = workdir('fault-5xx');
    try {
      const port = await freePort();
      const { cfg, db, prefix } = s3Config(w.dir, `addr: 127.0.0.1:${port}\n`);
      createDB(db);
      const a = await startReplicate(cfg);
      await writer(db, ['--tx', '20']);
      const stormAt = Date.now();
      const stop = proxy.inject({ fault: { kind: 'status', status: 503 } });
      try {
        await until('the lease to be unconfirmed', () => a.output().includes('replica lease not confirmed'));
        await writer(db, ['--tx', '30', '--start', '21']);
        const h = await healthz(port);
        assert.equal(h.code, 503);
        assert.match(h.body.replicas[0]!.reason ?? '', /not confirmed/);
        // Past the ttl: the stored lease has expired by now.
        await sleep(Math.max(0, stormAt + 4500 - Date.now()));
      } finally {
        stop();
      }
      await until('the lease to be confirmed again', () => a.output().includes('replica lease confirmed again'));
      await until('/healthz ok', async () => (await healthz(port)).code === 200);
      assert.doesNotMatch(a.output(), /replica lease lost/);
      await writer(db, ['--tx', '10', '--start', '51']);
      await stopCleanly(a);
      await assertS3Equals(w.dir, prefix, db);
    } finally {
      proxy.clear();
      w.cleanup();
    }
  });

  it('a renewal whose response is lost (the retry meets its own write: 412) keeps the lease', async () => {
    const w = workdir('fault-lost-renewal');
    try {
      const { cfg, db, prefix } = s3Config(w.dir);
      createDB(db);
      const a = await startReplicate(cfg);
      await writer(db, ['--tx', '10']);
      const renewals = () => proxy.requests.filter((r) => r.method === 'PUT' && isLease(r) && r.fault === 'drop').length;
      proxy.inject({ fault: { kind: 'drop' }, match: (r) => r.method === 'PUT' && isLease(r), times: 1 });
      await until('a dropped renewal response', () => renewals() === 1);
      // Two more renewals (every ttl / 3 = 1 s) after the lost one.
      const puts = proxy.requests.filter((r) => r.method === 'PUT' && isLease(r)).length;
      await until('later renewals', () => proxy.requests.filter((r) => r.method === 'PUT' && isLease(r)).length >= puts + 2);
      assert.doesNotMatch(a.output(), /lease lost|not confirmed/, a.output());
      await writer(db, ['--tx', '10', '--start', '11']);
      await stopCleanly(a);
      await assertS3Equals(w.dir, prefix, db);
    } finally {
      proxy.clear();
      w.cleanup();
    }
  });

  it('a WAL upload hung during the final sync is aborted and retried within the shutdown budget', async () => {
    const w = workdir('fault-hung-final');
    try {
      const { cfg, db, prefix } = s3Config(w.dir);
      createDB(db);
      const a = await startReplicate(cfg);
      await writer(db, ['--tx', '10']);
      const hung = () => proxy.requests.filter((r) => r.fault === 'hang').length;
      const stop = proxy.inject({ fault: { kind: 'hang' }, match: (r) => r.method === 'PUT' && r.path.includes('/wal/'), times: 1 });
      await writer(db, ['--tx', '10', '--start', '11']);
      await until('a hung WAL upload', () => hung() === 1);
      stop(); // the hung request stays hung; new ones pass
      const t0 = Date.now();
      a.child.kill('SIGTERM');
      const r = await a.child;
      const took = Date.now() - t0;
      assert.equal(r.exitCode, 0, a.output());
      assert.ok(took < 9000, `shutdown took ${took} ms (budget 9 s)`);
      await assertS3Equals(w.dir, prefix, db);
    } finally {
      proxy.clear();
      w.cleanup();
    }
  });

  it('SIGSTOP longer than the lease ttl: after SIGCONT the lease is read back and taken again, nothing is lost', async () => {
    const w = workdir('fault-sigstop');
    try {
      const { cfg, db, replica } = fileConfig(w.dir, { replicaExtra: '        lease: { ttl: 3s }\n' });
      createDB(db);
      const a = await startReplicate(cfg);
      await writer(db, ['--tx', '10']);
      a.child.kill('SIGSTOP');
      await writer(db, ['--tx', '20', '--start', '11']);
      await sleep(4000);
      a.child.kill('SIGCONT');
      await until('the lease to be confirmed again', () => a.output().includes('replica lease confirmed again'));
      assert.doesNotMatch(a.output(), /replica lease lost/);
      await writer(db, ['--tx', '10', '--start', '31']);
      await stopCleanly(a);
      await assertFileEquals(w.dir, replica, db);
    } finally {
      w.cleanup();
    }
  });

  it('a file replica unusable for longer than the lease ttl (a file in place of its directory) catches up once it is back', async () => {
    const w = workdir('fault-file-away');
    try {
      const { cfg, db, replica } = fileConfig(w.dir, { replicaExtra: '        lease: { ttl: 3s }\n' });
      createDB(db);
      const a = await startReplicate(cfg);
      await writer(db, ['--tx', '10']);
      renameSync(replica, `${replica}.away`);
      writeFileSync(replica, 'not a directory');
      await until('the lease to be unconfirmed', () => a.output().includes('replica lease not confirmed'));
      await writer(db, ['--tx', '20', '--start', '11']);
      await sleep(3500);
      rmSync(replica);
      renameSync(`${replica}.away`, replica);
      await until('the lease to be confirmed again', () => a.output().includes('replica lease confirmed again'));
      await writer(db, ['--tx', '5', '--start', '31']);
      await stopCleanly(a);
      await assertFileEquals(w.dir, replica, db);
    } finally {
      w.cleanup();
    }
  });
});
