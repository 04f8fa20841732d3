/**
 * PID 1 never waits: lsinit as init forwards a signal to the app at once while its replication
 * copies a large transaction (the copy, checksums and upload run in a worker thread). The app writes
 * and commits 150 MiB in one transaction (in a worker thread of its own, so it can take signals
 * meanwhile), and the test pings it with SIGUSR2 through lsinit, one signal at a time, from the start
 * of the transaction until the shadow WAL has caught up; the app records when each arrives.
 * The bound (100 ms for all but one signal) is one CI can keep; bench/compare.ts reports the real p99 (a few ms).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { killTree } from '../helpers/cli.js';
import { FIXTURES, ROOT, sleep, tmp, waitFor } from './helpers.js';

const MB = 150;
const BOUND_MS = 100;

/** Bytes in the current generation's shadow WAL files (what lsinit has copied so far). */
function shadowBytes(meta: string): number {
  const gens = join(meta, 'generations');
  if (!existsSync(gens)) return 0;
  let n = 0;
  for (const g of readdirSync(gens)) {
    const dir = join(gens, g, 'wal');
    for (const f of existsSync(dir) ? readdirSync(dir) : []) {
      try {
        n += statSync(join(dir, f)).size;
      } catch { /* cleaned up meanwhile */ }
    }
  }
  return n;
}

test('as init, signals reach the app within 100 ms while lsinit copies a 150 MiB transaction', { timeout: 180_000 }, async (t) => {
  const dir = tmp(t);
  const db = join(dir, 'app.db');
  const d = new Database(db);
  d.pragma('journal_mode = wal');
  d.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, note TEXT, data BLOB)');
  d.close();
  const cfg = join(dir, 'lsinit.yml');
  writeFileSync(cfg, `dbs:\n  - path: ${db}\n    replicas:\n      - type: file\n        path: ${join(dir, 'replica')}\n        sync-interval: 100ms\n`);
  const out = join(dir, 'signals');
  writeFileSync(out, '');
  const child = spawn(process.execPath, [join(ROOT, 'bin/lsinit.js'), '-config', cfg, '--', process.execPath, join(FIXTURES, 'big-tx-app.mjs')], {
    env: { ...process.env, DB: db, OUT: out, MB: String(MB) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  t.after(() => killTree(child));

  // Signals go out from the moment the app starts its transaction (lsinit re-reads the growing
  // WAL) until lsinit's shadow WAL has caught up with the committed WAL, and for 3 s at least.
  await waitFor(() => existsSync(`${out}.writing`), 60_000, 'the app to start its transaction');
  const received = () => readFileSync(out, 'utf8').trim().split('\n').filter(Boolean).map((l) => Number(l.split(' ')[1]));
  const caughtUp = () => existsSync(`${out}.committed`) && shadowBytes(join(dir, '.app.db-litestream')) >= statSync(`${db}-wal`).size * 0.9;
  const latencies: number[] = [];
  let duringCopy = 0;
  const start = Date.now();
  while (Date.now() - start < 3000 || (!caughtUp() && Date.now() - start < 120_000)) {
    const copying = !caughtUp();
    const sent = Date.now();
    child.kill('SIGUSR2');
    const n = latencies.length + 1;
    await waitFor(() => received().length >= n, 10_000, `SIGUSR2 #${n} to reach the app`);
    latencies.push(received()[n - 1]! - sent);
    if (copying) duringCopy++;
    await sleep(20);
  }
  assert.ok(caughtUp(), 'lsinit copied the transaction to its shadow WAL');
  const sent = Date.now();
  child.kill('SIGTERM');
  assert.equal(await exited, 0, output);
  latencies.push(received().at(-1)! - sent);
  // Every signal but one within the bound, and none past 3× it: on a 2-core machine under load the
  // scheduler alone can hold one delivery back; a stall of the main thread behind the copy would
  // delay many (2.3 s before the worker).
  const sorted = [...latencies].sort((a, b) => a - b);
  assert.ok(sorted.at(-2)! <= BOUND_MS && sorted.at(-1)! <= 3 * BOUND_MS, `signal latencies (ms): ${latencies.join(' ')}`);
  assert.ok(duringCopy >= 3, `only ${duringCopy} signal(s) were sent while the shadow WAL was behind (the copy was too quick to test against)`);
  // And the transaction was replicated by the final sync.
  const restored = join(dir, 'restored.db');
  const r = spawn(process.execPath, [join(ROOT, 'bin/lsinit.js'), 'restore', '-o', restored, `file://${join(dir, 'replica')}`], { stdio: 'inherit' });
  assert.equal(await new Promise((res) => r.on('exit', res)), 0);
  const rd = new Database(restored, { readonly: true });
  assert.deepEqual(rd.prepare('SELECT count(*) AS n, sum(length(data)) AS bytes FROM t').get(), { n: MB, bytes: MB << 20 });
  rd.close();
});
