/**
 * Init mode with every database present starts the app before the replication worker is up
 * (src/replicate/early-start.ts): the main thread takes the leases of `file` replicas and a read
 * transaction on each database, and lets go of it once the worker holds its own. What that must
 * keep: everything the app commits before the worker arrives reaches the replica (the read
 * transaction stops the app's own checkpoints from restarting the WAL under us, so the generation
 * continues), and a lease held by another instance still keeps the app from starting.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { killChildAtEnd } from '../helpers/cli.js';
import { fileReplicated, ROOT, tmp } from './helpers.js';

const BIN = join(ROOT, 'bin/lsinit.js');

function run(args: string[], env: NodeJS.ProcessEnv = {}): { done: Promise<{ code: number | null; output: string }>; kill: (sig: NodeJS.Signals) => void; output: () => string } {
  const child = killChildAtEnd(spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NODE_PATH: join(ROOT, 'node_modules'), ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  // A run that hangs must fail its test, not keep the test file alive.
  const limit = setTimeout(() => child.kill('SIGKILL'), 60_000);
  child.on('exit', () => clearTimeout(limit));
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  return { done: new Promise((r) => child.on('exit', (c) => r({ code: c, output }))), kill: (sig) => child.kill(sig), output: () => output };
}

function setup(t: { after: (fn: () => void) => void }): { dir: string; db: string; cfg: string; replica: string } {
  const dir = tmp(t);
  return { dir, ...fileReplicated(dir) };
}

// 3,000 one-row transactions at SQLite's defaults (wal_autocheckpoint 1000): the app checkpoints
// twice or more while it writes, from its first write on.
const WRITE = "const D = require('better-sqlite3'); const d = new D(process.env.DB); const s = d.prepare('INSERT INTO t (v) VALUES (?)'); for (let i = 0; i < 3000; i++) s.run('r' + i); d.close();";

test('the app starts before the worker opens the database; what it commits meanwhile, through its own checkpoints, is replicated and the generation continues', { timeout: 120_000 }, async (t) => {
  const { dir, db, cfg, replica } = setup(t);
  const first = await run(['-config', cfg, '--', process.execPath, '-e', WRITE], { DB: db }).done;
  assert.equal(first.code, 0, first.output);
  const gen = /msg="sync: new generation".* generation=([0-9a-f]{16})/.exec(first.output)?.[1];
  assert.ok(gen, first.output);
  const second = await run(['-config', cfg, '--', process.execPath, '-e', WRITE], { DB: db }).done;
  assert.equal(second.code, 0, second.output);
  // The worker logs its first look at the database only once asked to start, which is after the
  // app was started here (before this change, the app waited for it).
  const started = second.output.indexOf('msg="app started"');
  const opened = second.output.indexOf('msg="continuing generation"');
  assert.ok(started >= 0 && opened > started, second.output);
  // The app's checkpoints could not restart the WAL before the worker copied it.
  assert.match(second.output, new RegExp(`msg="continuing generation".* generation=${gen}`));
  assert.doesNotMatch(second.output, /new generation/);
  const restored = join(dir, 'restored.db');
  const r = await run(['restore', '-o', restored, `file://${replica}`]).done;
  assert.equal(r.code, 0, r.output);
  const rd = new Database(restored, { readonly: true });
  const rows = rd.prepare('SELECT v FROM t ORDER BY id').all() as { v: string }[];
  assert.equal(rows.length, 6000);
  assert.deepEqual([rows[0], rows[2999], rows[3000], rows[5999]], [{ v: 'r0' }, { v: 'r2999' }, { v: 'r0' }, { v: 'r2999' }]);
  assert.equal(rd.pragma('integrity_check', { simple: true }), 'ok');
  rd.close();
});

test('a lease held by another instance keeps the app from starting, and the database is not opened for replication', { timeout: 120_000 }, async (t) => {
  const { dir, db, cfg } = setup(t);
  // The app outlives nothing by long: killed with lsinit, or gone after 30 s if lsinit was killed first.
  const holder = run(['-config', cfg, '--', process.execPath, '-e', 'setTimeout(() => {}, 30_000)']);
  t.after(() => holder.kill('SIGTERM'));
  for (let i = 0; i < 400 && !holder.output().includes('msg="sync: new generation"'); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(holder.output(), /msg="sync: new generation"/);
  const marker = join(dir, 'second-app-ran');
  const second = await run(['-config', cfg, '--', process.execPath, '-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x')`]).done;
  assert.equal(second.code, 1, second.output);
  assert.match(second.output, /LSINIT_ERR_LEASE|in use by another lsinit/);
  assert.equal(existsSync(marker), false, 'the second app must not run');
  assert.doesNotMatch(second.output, /msg="(sync: new generation|continuing generation)"/);
  holder.kill('SIGTERM');
  assert.equal((await holder.done).code, 143);
});

// Given the lease as read by a shell the moment the app started ($LEASE_AT_START), reads it again
// once the worker has synced (a generation on the replica), then waits for the first renewal;
// prints the three.
const WATCH_LEASE = `
const fs = require('fs'); const path = require('path');
const lease = path.join(process.env.REPLICA, 'lsinit-lease.json');
const a = process.env.LEASE_AT_START;
const until = Date.now() + 20000;
const wait = (ok) => { while (!ok() && Date.now() < until) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10); };
wait(() => fs.existsSync(path.join(process.env.REPLICA, 'generations')));
const b = fs.readFileSync(lease, 'utf8');
wait(() => fs.readFileSync(lease, 'utf8') !== b);
console.log(JSON.stringify({ a, b, c: fs.readFileSync(lease, 'utf8') }));
`;

test('the worker keeps the lease the main thread wrote as it is (no second write before it can sync) and renews it on time from that write', { timeout: 120_000 }, async (t) => {
  const { db, replica, cfg } = setup(t);
  // ttl 9 s: renewals every 3 s, counted from the main thread's write.
  writeFileSync(cfg, `dbs:\n  - path: ${db}\n    replicas:\n      - type: file\n        path: ${replica}\n        lease: {ttl: 9s}\n`);
  const lease = join(replica, 'lsinit-lease.json');
  const app = `LEASE_AT_START="$(cat '${lease}')" exec '${process.execPath}' -e "$WATCH"`;
  const r = await run(['-config', cfg, '--', 'sh', '-c', app], { REPLICA: replica, WATCH: WATCH_LEASE }).done;
  assert.equal(r.code, 0, r.output);
  const seen = JSON.parse(/^\{"a".*$/m.exec(r.output)?.[0] ?? 'null') as { a: string; b: string; c: string } | null;
  assert.ok(seen, r.output);
  const [a, b, c] = [seen.a, seen.b, seen.c].map((x) => JSON.parse(x) as { holder: { id: string; pid: number }; expiresAt: string });
  // The app started with the lease held; the worker synced without writing it again.
  assert.deepEqual(b, a);
  // Then the worker renewed it under the same holder, before it expired.
  assert.equal(c!.holder.id, a!.holder.id);
  assert.ok(Date.parse(c!.expiresAt) > Date.parse(a!.expiresAt), `${seen.a} → ${seen.c}`);
  assert.match(r.output, /msg="replica lease released"/);
  assert.equal(existsSync(lease), false);
});
