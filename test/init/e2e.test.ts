/**
 * The real pieces: `lsinit -config CFG -- node sqlite-app.mjs` through bin/lsinit.js (dist/, built by
 * `npm test`) as PID 1, with a file replica whose sync-interval (10 s) is far longer than the run, so
 * only the final sync can have shipped the app's last write. Restored with `lsinit restore`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { killChildAtEnd } from '../helpers/cli.js';
import { FIXTURES, ROOT, tmp, waitFor } from './helpers.js';

const BIN = join(ROOT, 'bin/lsinit.js');
const APP = join(FIXTURES, 'sqlite-app.mjs');

/** `create`: make the database (schema only) before lsinit starts, as on any boot after the first. */
function setup(dir: string, replica = join(dir, 'replica'), create = true) {
  const db = join(dir, 'app.db');
  if (create) {
    const d = new Database(db);
    d.pragma('journal_mode = wal');
    d.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, note TEXT)');
    d.close();
  }
  const cfg = join(dir, 'lsinit.yml');
  writeFileSync(cfg, `dbs:
  - path: ${db}
    monitor-interval: 100ms
    replicas:
      - type: file
        path: ${replica}
        sync-interval: 10s
`);
  return { db, cfg, replica, out: join(dir, 'out') };
}

/**
 * `unshare --pid … node bin/lsinit.js ARGS`; resolves with the exit code and output. A run still going
 * when the file's tests end (a failed wait) is killed then, with lsinit and its app.
 */
function pid1(args: string[], env: NodeJS.ProcessEnv, onStart?: (innerPid: () => number | undefined) => void) {
  const child = killChildAtEnd(spawn('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  onStart?.(() => {
    const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim();
    return kids === '' ? undefined : Number(kids.split(' ')[0]);
  });
  return new Promise<{ code: number | null; output: string }>((r) => child.on('exit', (code) => r({ code, output })));
}

function run(args: string[]) {
  const child = killChildAtEnd(spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  return new Promise<{ code: number | null; output: string }>((r) => child.on('exit', (code) => r({ code, output })));
}

function notes(path: string): string[] {
  const d = new Database(path, { readonly: true });
  try {
    return d.prepare('SELECT note FROM t ORDER BY id').pluck().all() as string[];
  } finally {
    d.close();
  }
}

/** Restores the replica to a new file and returns its notes; `context` is lsinit's output, for failures. */
async function restored(dir: string, cfg: string, db: string, context = ''): Promise<string[]> {
  const o = join(dir, `restored-${Date.now()}.db`);
  const r = await run(['restore', '-o', o, '-config', cfg, db]);
  assert.equal(r.code, 0, `${r.output}\n--- lsinit run ---\n${context}`);
  return notes(o);
}

const rows = (n: number) => Array.from({ length: n }, (_, i) => `row-${i + 1}`);
const startReport = (out: string) => JSON.parse(readFileSync(`${out}.start`, 'utf8')) as { existed: boolean; rows: string[] };

test('as PID 1, first boot (the app creates the DB): its last write before it exits is on the replica after lsinit exits', async (t) => {
  const dir = tmp(t);
  const { db, cfg, out } = setup(dir, join(dir, 'replica'), false);
  const r = await pid1(['-config', cfg, '--', process.execPath, APP, db, 'exit', '50'], { OUT: out });
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /final sync complete/);
  assert.deepEqual(await restored(dir, cfg, db, r.output), [...rows(50), 'last']);
});

test('as PID 1: SIGTERM → the app commits in its handler and exits 1 → that commit is replicated, exit 1', async (t) => {
  const dir = tmp(t);
  const { db, cfg, out } = setup(dir);
  let inner: () => number | undefined = () => undefined;
  const done = pid1(['-config', cfg, '--', process.execPath, APP, db, 'term', '20'], { OUT: out }, (f) => (inner = f));
  await waitFor(() => existsSync(`${out}.ready`), 10_000, 'app ready');
  process.kill(await waitFor(inner, 5000, 'lsinit pid'), 'SIGTERM');
  const r = await done;
  assert.equal(r.code, 1, r.output);
  assert.deepEqual(await restored(dir, cfg, db, r.output), [...rows(20), 'goodbye']);
});

test('restore-if-missing: restored before the app starts; an existing DB is untouched; an empty replica starts fresh; an unreadable one stops', async (t) => {
  const dir = tmp(t);
  const { db, cfg, out } = setup(dir);
  // A backup to restore from.
  assert.equal((await pid1(['-config', cfg, '--', process.execPath, APP, db, 'exit', '5'], { OUT: out })).code, 0);

  // DB missing (a fresh container): restored before the app starts.
  for (const f of [db, `${db}-wal`, `${db}-shm`, join(dir, '.app.db-litestream')]) rmSync(f, { recursive: true, force: true });
  let r = await pid1(['-config', cfg, '--', process.execPath, APP, db, 'report'], { OUT: out });
  assert.equal(r.code, 0, r.output);
  assert.deepEqual(startReport(out), { existed: true, rows: [...rows(5), 'last'] });

  // DB present (with a local-only row the replica lacks): never overwritten.
  const d = new Database(db);
  d.prepare("INSERT INTO t (note) VALUES ('local-only')").run();
  d.close();
  r = await pid1(['-config', cfg, '--', process.execPath, APP, db, 'report'], { OUT: out });
  assert.equal(r.code, 0, r.output);
  assert.deepEqual(startReport(out).rows, [...rows(5), 'last', 'local-only']);

  // Replica empty: the app starts with no database.
  mkdirSync(join(dir, 'empty-case'));
  const empty = setup(join(dir, 'empty-case'), join(dir, 'empty-replica'), false);
  r = await pid1(['-config', empty.cfg, '--', process.execPath, APP, empty.db, 'report'], { OUT: empty.out });
  assert.equal(r.code, 0, r.output);
  assert.deepEqual(startReport(empty.out), { existed: false, rows: [] });

  // Replica unreadable (its path is a file): the app is not started, non-zero exit.
  const badDir = join(dir, 'bad-case');
  mkdirSync(badDir);
  writeFileSync(join(dir, 'bad-replica'), 'not a directory');
  const bad = setup(badDir, join(dir, 'bad-replica'), false);
  r = await pid1(['-config', bad.cfg, '--', process.execPath, APP, bad.db, 'report'], { OUT: bad.out });
  assert.equal(r.code, 1, r.output);
  assert.equal(existsSync(`${bad.out}.start`), false, 'the app was not started');
  assert.match(r.output, /restore failed; not starting the app/);
});

test('as PID 1: a background writer the app left behind gets SIGTERM before the final sync, and its last commit is replicated', async (t) => {
  const dir = tmp(t);
  const { db, cfg, out } = setup(dir);
  const script = `${JSON.stringify(process.execPath)} ${JSON.stringify(APP)} ${JSON.stringify(db)} term 5 & while [ ! -f "$OUT.ready" ]; do sleep 0.01; done; exit 0`;
  const r = await pid1(['-config', cfg, '--', 'sh', '-c', script], { OUT: out });
  assert.equal(r.code, 0, r.output);
  assert.match(r.output, /terminating processes the app left behind/);
  assert.deepEqual(await restored(dir, cfg, db, r.output), [...rows(5), 'goodbye']);
});

test('`lsinit replicate -exec CMD` runs the same supervisor: final sync and the app\'s exit code', async (t) => {
  const dir = tmp(t);
  const { db, cfg, out } = setup(dir);
  const exec = `${process.execPath} ${APP} ${db} exit 7`;
  const r = await pid1(['replicate', '-config', cfg, '-exec', exec], { OUT: out });
  assert.equal(r.code, 0, r.output);
  assert.deepEqual(await restored(dir, cfg, db, r.output), [...rows(7), 'last']);
  const failing = await pid1(['replicate', '-config', cfg, '-exec', `sh -c 'exit 3'`], { OUT: out });
  assert.equal(failing.code, 3, failing.output);
});

test('as PID 1: a final sync that fails makes the exit code non-zero (70 when the app exited 0) and names the replica', async (t) => {
  const dir = tmp(t);
  const { db, cfg, out, replica } = setup(dir);
  let inner: () => number | undefined = () => undefined;
  const done = pid1(['-config', cfg, '--', process.execPath, APP, db, 'term', '5'], { OUT: out, TERM_EXIT: '0' }, (f) => (inner = f));
  await waitFor(() => existsSync(`${out}.ready`), 10_000, 'app ready');
  // The replica becomes unwritable: its directory is replaced by a file.
  rmSync(replica, { recursive: true, force: true });
  writeFileSync(replica, 'not a directory');
  process.kill(await waitFor(inner, 5000, 'lsinit pid'), 'SIGTERM');
  const r = await done;
  assert.equal(r.code, 70, r.output);
  assert.match(r.output, /level=ERROR msg="final sync failed" db=\S+app\.db replica=/);
});
