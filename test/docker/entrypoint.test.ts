/**
 * The image's entrypoint without the image: `lsinit -config CFG -- node examples/quickstart/app.mjs`
 * as PID 1 of a fresh PID namespace (`unshare --pid --fork --mount-proc`, which is what a container
 * runtime gives it), stopped the way `docker stop` stops it (SIGTERM to PID 1). Then the demo flow:
 * the database file is deleted and the same command starts the app on the restored rows.
 * Also runs examples/docker/demo-local.sh, the script the example's README tells people to run.
 * Needs Linux and root (unshare); built dist/ (`npm test` builds first).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { BIN, lsinit, ROOT } from '../helpers/cli.js';

const APP = join(ROOT, 'examples/quickstart/app.mjs');
const canUnshare = process.platform === 'linux' && process.getuid?.() === 0 && spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0;
const skip = canUnshare ? false : 'needs Linux, root and unshare(1)';

const dirs: string[] = [];
const namespaces = new Set<ChildProcess>();
const scripts = new Set<ChildProcess>();
after(() => {
  for (const c of namespaces) if (c.exitCode === null && c.signalCode === null) killNamespace(c);
  for (const c of scripts) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'lsinit-docker-'));
  dirs.push(d);
  return d;
}

/** PID 1 of the namespace: unshare's only child (unshare itself ignores SIGTERM). */
function innerPid(c: ChildProcess): number | undefined {
  try {
    const kids = readFileSync(`/proc/${c.pid}/task/${c.pid}/children`, 'utf8').trim();
    return kids === '' ? undefined : Number(kids.split(' ')[0]);
  } catch {
    return undefined;
  }
}

function killNamespace(c: ChildProcess): void {
  const pid = innerPid(c);
  // SIGKILL to PID 1 takes the whole namespace down with it.
  if (pid !== undefined) process.kill(pid, 'SIGKILL');
  c.kill('SIGKILL');
}

interface Container {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  /** Wait until the output matches `re`; returns the match. */
  waitFor: (re: RegExp, ms?: number) => Promise<RegExpExecArray>;
  /** `docker stop`: SIGTERM to PID 1, then the exit code. */
  stop: () => Promise<number | null>;
}

/** What the image runs: `lsinit -config CFG -- node app.mjs`, as PID 1. */
function run(cfg: string, db: string): Container {
  const child = spawn('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, BIN, '-config', cfg, '--', process.execPath, APP], {
    cwd: ROOT,
    env: { ...process.env, APP_DB: db },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  namespaces.add(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const waitFor = async (re: RegExp, ms = 30_000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = re.exec(out);
      if (m) return m;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`no ${re} in the output (exit ${child.exitCode}):\n${out}`);
      await sleep(50);
    }
  };
  const stop = async () => {
    let pid: number | undefined;
    for (let i = 0; i < 100 && pid === undefined; i++) {
      pid = innerPid(child);
      if (pid === undefined) await sleep(20);
    }
    assert.ok(pid !== undefined, 'found PID 1 of the namespace');
    process.kill(pid, 'SIGTERM');
    return exited;
  };
  return { child, output: () => out, exited, waitFor, stop };
}

type Row = { id: number; at: string; note: string | null };

function rows(path: string): Row[] {
  const d = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return d.prepare('SELECT id, at, note FROM visits ORDER BY id').all() as Row[];
  } finally {
    d.close();
  }
}

function integrity(path: string): string {
  const d = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return String(d.pragma('integrity_check', { simple: true }));
  } finally {
    d.close();
  }
}

function setup() {
  const dir = tmp();
  mkdirSync(join(dir, 'data'));
  const db = join(dir, 'data/app.db');
  const replica = join(dir, 'replica');
  const cfg = join(dir, 'lsinit.yml');
  // A file replica, as in examples/docker/litestream.yml. The 10 s sync interval is longer than the
  // run, so rows written after the first sync reach the replica only through the final sync.
  writeFileSync(
    cfg,
    `dbs:
  - path: ${db}
    replicas:
      - name: backup
        type: file
        path: ${replica}
        sync-interval: 10s
`,
  );
  return { dir, db, cfg, out: join(dir, 'restored.db') };
}

test('the entrypoint as PID 1: SIGTERM → the app writes its last row → exit 0; restore gives the same rows; deleting the database and starting again restores them', { skip, timeout: 120_000 }, async () => {
  const { db, cfg, out } = setup();

  // First boot: no backup yet, an empty database.
  const c1 = run(cfg, db);
  await c1.waitFor(/^app: 0 visits in .* at start/m);
  await c1.waitFor(/^app: 3 visits$/m);
  assert.equal(await c1.stop(), 0, c1.output());
  const last = /^app: SIGTERM: last write done, (\d+) visits; exiting$/m.exec(c1.output());
  assert.ok(last, `the app saw SIGTERM and wrote its last row:\n${c1.output()}`);
  assert.match(c1.output(), /msg="final sync done"/);

  const written = rows(db);
  assert.equal(written.length, Number(last[1]));
  assert.equal(written.at(-1)?.note, 'goodbye (SIGTERM)');

  // `lsinit restore -o OUT -config CFG DBPATH` gives exactly the rows the app wrote, the SIGTERM
  // row included (only the final sync can have shipped it).
  const r = await lsinit(['restore', '-o', out, '-config', cfg, db]);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.deepEqual(rows(out), written);
  assert.equal(integrity(out), 'ok');

  // The demo flow: the database file is lost; the same command restores it before the app starts.
  for (const suffix of ['', '-wal', '-shm']) rmSync(db + suffix, { force: true });
  const c2 = run(cfg, db);
  const first = await c2.waitFor(/^app: (\d+) visits in .* at start/m);
  assert.equal(Number(first[1]), written.length, `the app started with the restored rows:\n${c2.output()}`);
  assert.match(c2.output(), /msg="database restored"/);
  // The restore finished before the app's first line.
  assert.ok(c2.output().indexOf('msg="database restored"') < c2.output().indexOf('app: '), c2.output());
  assert.equal(await c2.stop(), 0, c2.output());
  const after2 = rows(db);
  assert.deepEqual(after2.slice(0, written.length), written, 'the restored rows are the rows written, content included');
  assert.equal(after2.at(-1)?.note, 'goodbye (SIGTERM)');
  assert.equal(integrity(db), 'ok');
});

test('examples/docker/demo-local.sh passes', { skip, timeout: 120_000 }, async () => {
  const work = tmp();
  const child = spawn('bash', [join(ROOT, 'examples/docker/demo-local.sh')], {
    env: { ...process.env, WRITE_SECONDS: '2', WORK: work },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  scripts.add(child);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  assert.equal(code, 0, out);
  const m = /^demo-local: PASS: the app wrote (\d+) rows; after the database was deleted it started with (\d+)$/m.exec(out);
  assert.ok(m, out);
  assert.equal(m[1], m[2]);
  assert.ok(Number(m[1]) >= 2, out);
});
