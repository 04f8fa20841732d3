/**
 * PENDING: rename to cli-wiring.test.ts once src/cli/replicate.ts and src/init/command.ts start
 * the metrics server (see the metrics hand-off). Runs the built CLI with `addr:` set.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { spawnLsinit } from '../helpers/cli.js';
import { createDB, sleep, workdir } from '../helpers/replicate.js';
import { parseProm, until } from './helpers.js';

function config(dir: string, addr: string): { cfg: string; db: string } {
  const db = join(dir, 'app.db');
  createDB(db);
  const cfg = join(dir, 'lsinit.yml');
  writeFileSync(cfg, `addr: "${addr}"
dbs:
  - path: ${db}
    monitor-interval: 100ms
    replicas:
      - type: file
        name: backup
        path: ${join(dir, 'replica')}
        sync-interval: 100ms
`);
  return { cfg, db };
}

/** Spawn, collect output, and wait for the "serving metrics" line; returns the metrics base URL. */
async function spawnServing(args: string[]) {
  const child = spawnLsinit(args, { all: true, buffer: true, timeout: 60_000 });
  let out = '';
  child.all!.on('data', (d: Buffer) => (out += d.toString()));
  const m = await until(() => /msg="serving metrics" url=(http:\/\/\S+)\/metrics/.exec(out) ?? (child.exitCode !== null ? 'exited' : undefined), 15_000, 'serving metrics');
  if (m === 'exited') throw new Error(`lsinit exited early: ${out}`);
  return { child, base: m[1]!, output: () => out };
}

describe('lsinit serves metrics when addr is set', () => {
  let cleanup = () => {};
  afterEach(() => cleanup());

  it('replicate: /metrics and /healthz from the CLI, counters move, SIGTERM exits 0', async () => {
    const w = workdir('cliwire');
    cleanup = w.cleanup;
    const { cfg, db } = config(w.dir, '127.0.0.1:0');
    const { child, base, output } = await spawnServing(['replicate', '-config', cfg]);
    const rep = { db, name: 'backup' };
    const s0 = parseProm(await (await fetch(`${base}/metrics`)).text());
    assert.ok(s0.get('litestream_db_size', { db })! > 0);
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    const conn = new Database(db);
    conn.prepare('INSERT INTO log (conn, payload) VALUES (0, ?)').run('x'.repeat(5000));
    conn.close();
    await until(async () => parseProm(await (await fetch(`${base}/metrics`)).text()).get('litestream_replica_wal_bytes', rep)! > s0.get('litestream_replica_wal_bytes', rep)!, 5000, 'a segment shipped');
    child.kill('SIGTERM');
    assert.equal((await child).exitCode, 0, output());
  });

  it('replicate: a port in use is logged and replication goes on (Litestream 0.3 behaviour)', async () => {
    const w = workdir('cliwire-busy');
    const blocker = createServer();
    await new Promise<void>((res) => blocker.listen(0, '127.0.0.1', res));
    cleanup = () => {
      blocker.close();
      w.cleanup();
    };
    const port = (blocker.address() as { port: number }).port;
    const { cfg } = config(w.dir, `127.0.0.1:${port}`);
    const child = spawnLsinit(['replicate', '-config', cfg], { all: true, buffer: true, timeout: 60_000 });
    let out = '';
    child.all!.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => out.includes('msg=replicating') || child.exitCode !== null, 15_000, 'replicating');
    assert.match(out, /cannot start metrics server.*EADDRINUSE/);
    child.kill('SIGTERM');
    assert.equal((await child).exitCode, 0, out);
  });

  it('init mode: metrics while the app runs, with the child gauges', async () => {
    const w = workdir('cliwire-init');
    cleanup = w.cleanup;
    const { cfg } = config(w.dir, '127.0.0.1:0');
    const { child, base, output } = await spawnServing(['-config', cfg, '--', process.execPath, '-e', 'setTimeout(() => process.exit(3), 2000)']);
    await until(() => output().includes('app started'), 10_000, 'app started');
    const s = parseProm(await (await fetch(`${base}/metrics`)).text());
    assert.equal(s.get('lsinit_child_restarts_total'), 0);
    const h = (await (await fetch(`${base}/healthz`)).json()) as { child?: unknown };
    assert.deepEqual(h.child, { restarts: 0, last_exit_code: null });
    const r = await child;
    assert.equal(r.exitCode, 3, output());
    await sleep(0);
  });
});
