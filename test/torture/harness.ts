/**
 * Crash-torture trials: a real `lsinit` (replicate, or init mode as PID 1 of a PID namespace)
 * follows the torture app (app.mjs) while one fault strikes at a moment chosen by the seed.
 * Every random choice comes from the seed, so `--seed S` replays the same schedule (process
 * timing cannot be replayed, only the schedule).
 *
 * Checks (each failure names the check and the seed):
 *  - every restore passes integrity_check and equals the oracle's state after its meta.last_id
 *    (a committed prefix: contiguous ids from 1, full rows, counters, schema-change tables);
 *  - last_id was committed by the app (never a transaction it did not commit);
 *  - a restore taken at the fault holds every transaction committed at least
 *    (sync interval + lagSlackMs) before it, and every one before a graceful stop;
 *  - a point-in-time restore (-timestamp between two commits, or -index) is a valid prefix
 *    that holds nothing committed after the timestamp;
 *  - after the final graceful stop, the latest restore equals the source row for row.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, cpSync, existsSync, openSync, readSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import Database from 'better-sqlite3';
import { SCHEMA, oracle, rng, type State } from './plan.mjs';
import { drawStoreParams, isStoreFault, proxyFor, strike, STORE_FAULTS } from './store-faults.js';
import type { FaultProxy } from '../servers/fault-proxy.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(HERE, '../..');
// LSINIT_BIN runs the trials against another build (e.g. a candidate fix in a scratch tree, or
// the private copy from privateBuild()). Read at each use, so it can be set after import.
const bin = () => process.env['LSINIT_BIN'] ?? join(ROOT, 'bin/lsinit.js');

/**
 * Copy the current build (dist/, bin/) to a temp dir and point LSINIT_BIN at it, so a rebuild of
 * the shared tree during a long run (others run `npm run build`) cannot break trials half-way.
 * Returns a cleanup function. No-op when LSINIT_BIN is already set.
 */
export function privateBuild(): () => void {
  if (process.env['LSINIT_BIN']) return () => {};
  const dir = mkdtempSync(join(tmpdir(), 'lsinit-torture-build-'));
  cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
  cpSync(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  process.env['LSINIT_BIN'] = join(dir, 'bin', 'lsinit.js');
  return () => {
    delete process.env['LSINIT_BIN'];
    rmSync(dir, { recursive: true, force: true });
  };
}
const APP = join(HERE, 'app.mjs');

export const FAULTS = [
  'kill9-lsinit',
  'kill9-app',
  'sigterm-lsinit',
  'sigterm-container',
  'app-truncate',
  'app-restart',
  'vacuum',
  'long-read',
  'replica-unavailable',
  'wal-remove',
  'wal-truncate',
  'shadow-truncate',
  'shadow-remove',
  // Store-side faults (store-faults.ts): drawn only with an S3 replica (--s3).
  ...STORE_FAULTS,
] as const;
export type FaultKind = (typeof FAULTS)[number];

export interface TrialOptions {
  seed: number;
  /** Fault kinds to draw from (default: all). */
  kinds?: readonly FaultKind[];
  /** Extra slack beyond the sync interval for "committed before the fault" (spec: 1.5 s). */
  lagSlackMs?: number;
  /** Keep the temp dir (always kept on failure unless false). */
  keep?: boolean;
  log?: (line: string) => void;
  /** Also replicate to S3 (moto): a bucket that exists; credentials come from the environment. */
  s3?: { endpoint: string; bucket: string };
}

export interface Failure {
  check: string;
  detail: string;
}

export interface TrialResult {
  seed: number;
  kind: FaultKind;
  params: Record<string, unknown>;
  failures: Failure[];
  committed: number;
  ms: number;
  dir: string;
  /** Lag measured at the fault: newest commit time on the replica vs the fault time. */
  notes: string[];
}

interface Commit {
  id: number;
  t: number;
}

class Proc {
  out = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.out += d.toString()));
    this.exited = new Promise((res) => child.on('exit', (code, signal) => res({ code, signal })));
  }
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  get pid(): number {
    return this.child.pid!;
  }
  async stop(signal: NodeJS.Signals, timeoutMs: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }> {
    if (this.alive) this.child.kill(signal);
    const t = await Promise.race([this.exited, sleep(timeoutMs, undefined, { ref: false }).then(() => undefined)]);
    if (t) return { ...t, timedOut: false };
    this.child.kill('SIGKILL');
    return { ...(await this.exited), timedOut: true };
  }
}

function node(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  return new Proc(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }));
}

/** Run to completion (no kill unless it exceeds timeoutMs). */
async function runToEnd(args: string[], timeoutMs = 120_000): Promise<{ code: number | null; out: string }> {
  const p = node(args);
  const t = await Promise.race([p.exited, sleep(timeoutMs, undefined, { ref: false }).then(() => undefined)]);
  if (!t) {
    p.child.kill('SIGKILL');
    await p.exited;
    return { code: null, out: `${p.out}\n(timed out after ${timeoutMs} ms)` };
  }
  return { code: t.code, out: p.out };
}

export function readCommits(logPath: string): { commits: Commit[]; actions: { kind: string; start: number; end: number; result: string }[] } {
  const commits: Commit[] = [];
  const actions: { kind: string; start: number; end: number; result: string }[] = [];
  if (!existsSync(logPath)) return { commits, actions };
  for (const line of readFileSync(logPath, 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[0] === 'c' && f.length === 3) commits.push({ id: Number(f[1]), t: Number(f[2]) });
    else if (f[0] === 'a' && f.length >= 4 && f[1] !== 'longread-end') actions.push({ kind: f[1]!, start: Number(f[2]), end: Number(f[3]), result: f.slice(4).join(' ') });
  }
  return { commits, actions };
}

/** State of a database in the oracle's shape (undefined values when a table is missing). */
export function dumpState(path: string): State {
  const d = new Database(path, { readonly: true });
  try {
    const meta = d.prepare("SELECT v FROM meta WHERE k = 'last_id'").get() as { v: number } | undefined;
    const log = d.prepare('SELECT id, conn, payload, data FROM log ORDER BY id').raw().all() as State['log'];
    for (const r of log) if (r[3] === null) r[3] = Buffer.alloc(0);
    const counters = d.prepare('SELECT name, value FROM counters ORDER BY name').raw().all() as State['counters'];
    const tables: State['tables'] = {};
    const names = (d.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 's\\_%' ESCAPE '\\' ORDER BY name").raw().all() as [string][]).map((r) => r[0]);
    for (const n of names.sort()) tables[n] = d.prepare(`SELECT a, b FROM "${n}" ORDER BY a`).raw().all() as [number, string][];
    return { lastId: meta?.v ?? 0, log, counters, tables };
  } finally {
    d.close();
  }
}

function integrity(path: string): string {
  const d = new Database(path, { readonly: true });
  try {
    return (d.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('; ');
  } finally {
    d.close();
  }
}

/** Where two states first differ, in a few words (for the failure report). */
function stateDiff(got: State, want: State): string {
  if (got.lastId !== want.lastId) return `last_id ${got.lastId} != ${want.lastId}`;
  if (!isDeepStrictEqual(got.counters, want.counters)) return `counters ${JSON.stringify(got.counters)} != ${JSON.stringify(want.counters)}`;
  if (!isDeepStrictEqual(Object.keys(got.tables), Object.keys(want.tables))) return `schema tables ${Object.keys(got.tables).join(',')} != ${Object.keys(want.tables).join(',')}`;
  const gm = new Map(got.log.map((r) => [r[0], r]));
  const wm = new Map(want.log.map((r) => [r[0], r]));
  const missing = want.log.filter((r) => !gm.has(r[0])).map((r) => r[0]);
  const extra = got.log.filter((r) => !wm.has(r[0])).map((r) => r[0]);
  const changed = want.log.filter((r) => gm.has(r[0]) && !isDeepStrictEqual(gm.get(r[0]), r)).map((r) => r[0]);
  return `log rows: missing ${missing.slice(0, 10).join(',')}${missing.length > 10 ? '…' : ''} (${missing.length}), extra ${extra.slice(0, 10).join(',')} (${extra.length}), different ${changed.slice(0, 10).join(',')} (${changed.length})`;
}

export async function runTrial(opts: TrialOptions): Promise<TrialResult> {
  const t0 = Date.now();
  const seed = opts.seed >>> 0;
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const between = (a: number, b: number) => Math.round(a + r() * (b - a));
  const kinds = opts.kinds && opts.kinds.length ? opts.kinds : opts.s3 ? FAULTS : FAULTS.filter((k) => !isStoreFault(k));
  const kind = pick(kinds);
  const appSeed = Math.floor(r() * 2 ** 31);
  const params = {
    syncMs: between(100, 1000),
    minCheckpoint: r() < 0.5 ? between(20, 100) : between(100, 1000),
    pageSize: r() < 0.25 ? 1024 : 4096,
    conns: between(1, 4),
    appDelayMs: between(0, 8),
    faultAfterMs: between(1000, 3500),
    afterFaultMs: between(800, 2000),
    downMs: between(200, 1500),
    hard: r() < 0.5, // kill -9 (else SIGTERM) where a fault stops lsinit first
    pit: r() < 0.5 ? 'timestamp' : 'index',
    pitFrac: r(),
    holdMs: between(1500, 4000),
    cut: r(),
    // Snapshots in the middle of an index (PIT hazard of reference §4.3) in half the trials.
    snapshotMs: r() < 0.5 ? 0 : between(700, 3000),
    store: drawStoreParams(between),
  };
  // The write-locked restart at max-checkpoint-page-count: 2–5 × the minimum (most trials reach it).
  // From the seed, not the generator, so every other parameter of a seed stays what it was.
  const maxCheckpoint = params.minCheckpoint * (2 + (seed % 4));
  const lagSlack = opts.lagSlackMs ?? 1500;
  const say = opts.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), `lsinit-torture-${seed}-`));
  const db = join(dir, 'app.db');
  const replica = join(dir, 'replica');
  const cfg = join(dir, 'lsinit.yml');
  const logPath = join(dir, 'commits.log');
  const failures: Failure[] = [];
  const notes: string[] = [];
  const fail = (check: string, detail: string) => {
    failures.push({ check, detail });
    say(`  FAIL ${check}: ${detail}`);
  };
  // Store faults: the S3 replica goes through a fault proxy, with a lease ttl the outages outlast.
  let proxy: FaultProxy | undefined;
  if (isStoreFault(kind)) {
    if (!opts.s3) throw new Error(`fault ${kind} needs an S3 replica (--s3)`);
    proxy = await proxyFor(opts.s3.endpoint);
  }
  writeFileSync(cfg, `dbs:
  - path: ${db}
    monitor-interval: 100ms
    min-checkpoint-page-count: ${params.minCheckpoint}
    max-checkpoint-page-count: ${maxCheckpoint}
    replicas:
      - type: file
        path: ${replica}
        sync-interval: ${params.syncMs}ms
${params.snapshotMs ? `        snapshot-interval: ${params.snapshotMs}ms\n` : ''}${opts.s3 ? `      - name: s3
        type: s3
        bucket: ${opts.s3.bucket}
        path: trial-${seed}-${process.pid}-${Date.now()}
        endpoint: ${proxy?.endpoint ?? opts.s3.endpoint}
        region: us-east-1
        sync-interval: ${params.syncMs}ms
${proxy ? '        lease: { ttl: 3s }\n' : ''}` : ''}`);
  {
    const d = new Database(db);
    d.pragma(`page_size = ${params.pageSize}`);
    d.pragma('journal_mode = wal');
    d.exec(SCHEMA);
    d.close();
  }
  const appArgs = (extra: string[] = []) => [APP, '--db', db, '--log', logPath, '--seed', String(appSeed), '--conns', String(params.conns), '--delay', String(params.appDelayMs), ...extra];
  const oracleCache = new Map<number, State>();
  const expected = (k: number) => {
    let s = oracleCache.get(k);
    if (!s) oracleCache.set(k, (s = oracle(appSeed, k)));
    return s;
  };
  const lsOutputs: string[] = [];
  let restoreN = 0;
  // Set when the trial itself destroys committed data in the source (a WAL cut mid-file): ids
  // the app logged may then be gone from the source and committed again later.
  let sourceDamaged = false;

  /** Restore and check the prefix property; returns last_id, or undefined when it failed. */
  const checkRestore = async (label: string, from: string, flags: string[] = []): Promise<number | undefined> => {
    const out = join(dir, `restore-${++restoreN}-${label}.db`);
    const res = await runToEnd([bin(), 'restore', ...flags, '-o', out, `file://${from}`]);
    if (res.code !== 0) {
      fail(`${label}: restore`, `exit ${res.code}: ${res.out.trim().split('\n').slice(-3).join(' | ')}`);
      return undefined;
    }
    const ic = integrity(out);
    if (ic !== 'ok') fail(`${label}: integrity_check`, ic.slice(0, 300));
    let st: State;
    try {
      st = dumpState(out);
    } catch (err) {
      fail(`${label}: read`, (err as Error).message);
      return undefined;
    }
    const want = expected(st.lastId);
    if (!isDeepStrictEqual(st, want)) fail(`${label}: committed prefix`, `restored state is not the oracle's state after ${st.lastId} transactions: ${stateDiff(st, want)}`);
    return st.lastId;
  };

  let ls: Proc | undefined;
  let app: Proc | undefined;
  let container: Proc | undefined;
  const startLsinit = async () => {
    const p = node([bin(), 'replicate', '-config', cfg]);
    for (let i = 0; i < 600 && !p.out.includes('msg=replicating'); i++) {
      if (!p.alive) break;
      await sleep(25);
    }
    if (!p.out.includes('msg=replicating')) fail('lsinit start', `replicate did not start: ${p.out.slice(-500)}`);
    ls = p;
  };
  const stopLsinit = async (signal: NodeJS.Signals) => {
    if (!ls) return;
    const p = ls;
    ls = undefined;
    const res = await p.stop(signal, 60_000);
    lsOutputs.push(p.out);
    if (signal === 'SIGTERM' && (res.code !== 0 || res.timedOut)) fail('lsinit graceful stop', `exit ${res.code} signal ${res.signal}${res.timedOut ? ' (timed out)' : ''}: ${p.out.slice(-600)}`);
  };
  const startApp = async (extra: string[] = []) => {
    const before = readCommits(logPath).commits.length;
    const p = node(appArgs(extra));
    app = p;
    for (let i = 0; i < 400 && p.alive && readCommits(logPath).commits.length === before; i++) await sleep(25);
  };
  const stopApp = async (signal: NodeJS.Signals) => {
    if (!app) return;
    const p = app;
    app = undefined;
    const res = await p.stop(signal, 30_000);
    if (signal === 'SIGTERM' && res.code !== 0) fail('app', `the app failed (exit ${res.code} ${res.signal ?? ''}): ${p.out.slice(-600)}`);
  };
  /** Everything committed at least (sync + slack) before `at` must be in the restore (or all before `at` if graceful). */
  const requireBefore = (label: string, lastId: number | undefined, at: number, graceful: boolean) => {
    if (lastId === undefined) return;
    const { commits } = readCommits(logPath);
    const bound = graceful ? at : at - params.syncMs - lagSlack;
    const need = commits.filter((c) => c.t <= bound).reduce((m, c) => Math.max(m, c.id), 0);
    const newestOnReplica = commits.find((c) => c.id === lastId)?.t;
    notes.push(`${label}: replica at ${lastId}, lag ${newestOnReplica ? at - newestOnReplica : '?'} ms`);
    if (lastId < need) fail(`${label}: durability`, `restore holds transactions 1..${lastId} but ${need} was committed ${graceful ? 'before the graceful stop' : `${at - (commits.find((c) => c.id === need)?.t ?? at)} ms before the fault (sync ${params.syncMs} ms + ${lagSlack} ms)`}`);
  };
  const latestShadow = (): string | undefined => {
    const gens = join(dir, '.app.db-litestream', 'generations');
    if (!existsSync(gens)) return undefined;
    const files: string[] = [];
    for (const g of readdirSync(gens)) {
      const w = join(gens, g, 'wal');
      if (existsSync(w)) for (const f of readdirSync(w)) if (f.endsWith('.wal')) files.push(join(w, f));
    }
    return files.sort().pop();
  };

  say(`trial seed=${seed} fault=${kind} ${JSON.stringify({ ...params, maxCheckpoint })} dir=${dir}`);
  try {
    if (kind === 'sigterm-container') {
      // lsinit as PID 1 of a new PID namespace; the app is its child. SIGTERM to lsinit is
      // what `docker stop` does: lsinit forwards it, the app commits its last transaction
      // and exits, lsinit ships it and exits 0.
      container = new Proc(spawn('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, bin(), '-config', cfg, '--', process.execPath, ...appArgs()], { stdio: ['ignore', 'pipe', 'pipe'] }));
      for (let i = 0; i < 600 && container.alive && readCommits(logPath).commits.length === 0; i++) await sleep(25);
      await sleep(params.faultAfterMs);
      const inner = await innerPid(container.pid);
      if (inner === undefined) fail('container', `no lsinit process inside the namespace: ${container.out.slice(-500)}`);
      const at = Date.now();
      if (inner !== undefined) process.kill(inner, 'SIGTERM');
      const res = await container.stop('SIGCONT', 60_000);
      lsOutputs.push(container.out);
      if (res.code !== 0 || res.timedOut) fail('container stop', `exit ${res.code} signal ${res.signal}${res.timedOut ? ' (timed out)' : ''}: ${container.out.slice(-800)}`);
      const last = await checkRestore('after-sigterm', replica);
      requireBefore('after-sigterm', last, at, true);
    } else {
      await startLsinit();
      const action = ({ 'app-truncate': 'truncate', 'app-restart': 'restart', vacuum: 'vacuum', 'long-read': 'longread' } as Record<string, string>)[kind];
      await startApp(action ? ['--action', action, '--action-after', String(params.faultAfterMs), '--action-hold', String(params.holdMs)] : []);
      if (action) {
        let a: ReturnType<typeof readCommits>['actions'][number] | undefined;
        for (let i = 0; i < 1200 && !(a = readCommits(logPath).actions[0]); i++) await sleep(25);
        if (!a) fail('app action', `the app never ran ${action}: ${app?.out.slice(-500)}`);
        else {
          notes.push(`${action}: ${a.end - a.start} ms, result ${a.result}`);
          const last = await checkRestore(`at-${kind}`, replica);
          requireBefore(`at-${kind}`, last, a.start, false);
        }
        await sleep(params.afterFaultMs + (kind === 'long-read' ? params.holdMs : 0));
      } else {
        await sleep(params.faultAfterMs);
        const at = Date.now();
        switch (kind) {
          case 'kill9-lsinit':
          case 'sigterm-lsinit': {
            const graceful = kind === 'sigterm-lsinit';
            await stopLsinit(graceful ? 'SIGTERM' : 'SIGKILL');
            const last = await checkRestore(`after-${kind}`, replica);
            requireBefore(`after-${kind}`, last, at, graceful);
            await sleep(params.downMs);
            await startLsinit();
            break;
          }
          case 'kill9-app': {
            await stopApp('SIGKILL');
            const last = await checkRestore('after-kill9-app', replica);
            requireBefore('after-kill9-app', last, at, false);
            await sleep(params.downMs);
            await startApp();
            break;
          }
          case 'replica-unavailable': {
            // The replica directory disappears and a plain file takes its place (every write
            // fails with ENOTDIR), then it comes back.
            const away = `${replica}.away`;
            renameSync(replica, away);
            writeFileSync(replica, 'unavailable');
            const last = await checkRestore('at-replica-unavailable', away);
            requireBefore('at-replica-unavailable', last, at, false);
            await sleep(params.holdMs);
            rmSync(replica);
            renameSync(away, replica);
            break;
          }
          case 'store-slow':
          case 'store-5xx':
          case 'store-lost-response':
          case 'store-down':
            await strike(kind, proxy!, params.store, (n) => notes.push(n));
            break;
          case 'wal-remove':
          case 'wal-truncate':
          case 'shadow-truncate':
          case 'shadow-remove': {
            const graceful = !params.hard;
            await stopLsinit(graceful ? 'SIGTERM' : 'SIGKILL');
            const last = await checkRestore(`after-stop-${kind}`, replica);
            requireBefore(`after-stop-${kind}`, last, at, graceful);
            if (kind === 'wal-remove') {
              // The app stops cleanly with lsinit down: SQLite checkpoints and deletes the WAL
              // on the last close; make sure it is gone (and the -shm with it).
              await stopApp('SIGTERM');
              const d = new Database(db);
              d.pragma('wal_checkpoint(TRUNCATE)');
              d.close();
              rmSync(`${db}-wal`, { force: true });
              rmSync(`${db}-shm`, { force: true });
              notes.push('WAL removed after a clean app stop');
              await startApp();
            } else if (kind === 'wal-truncate') {
              // The app dies with lsinit down and its WAL is cut: at 0 (nothing lost: the
              // frames were checkpointed first) or at an arbitrary byte (a torn WAL: SQLite
              // recovers to the last whole commit before the cut; the source loses the rest).
              await stopApp('SIGKILL');
              const size = existsSync(`${db}-wal`) ? statSync(`${db}-wal`).size : 0;
              if (params.cut < 0.3) {
                const d = new Database(db);
                d.pragma('wal_checkpoint(TRUNCATE)');
                d.close();
                // Closing the last connection usually deletes the WAL already; else cut it to 0.
                if (existsSync(`${db}-wal`)) truncateSync(`${db}-wal`, 0);
                notes.push('WAL checkpointed and truncated to 0');
              } else {
                // Never below the frames a checkpoint already copied into the database file:
                // recovery would replay older page versions over newer ones there, a mix no
                // crash produces that corrupts the source itself (seed 970025: integrity_check
                // failed on app.db, and lsinit faithfully shipped it).
                const to = Math.max(Math.floor(32 + (size - 32) * (params.cut - 0.3) / 0.7), backfilledEnd(db));
                if (size > 32) truncateSync(`${db}-wal`, Math.min(size, to));
                sourceDamaged = size > 32;
                notes.push(`WAL of ${size} bytes cut at ${to} (source loses its tail)`);
              }
              await startApp();
            } else {
              const sh = latestShadow();
              if (!sh) notes.push('no shadow WAL to damage');
              else if (kind === 'shadow-remove') {
                if (params.cut < 0.3) {
                  rmSync(join(dir, '.app.db-litestream'), { recursive: true, force: true });
                  notes.push('meta dir removed');
                } else {
                  rmSync(sh);
                  notes.push(`removed ${sh.slice(dir.length)}`);
                }
              } else {
                const size = statSync(sh).size;
                const to = Math.floor(size * params.cut);
                truncateSync(sh, to);
                notes.push(`${sh.slice(dir.length)}: ${size} → ${to} bytes`);
              }
            }
            await sleep(params.downMs);
            await startLsinit();
            break;
          }
        }
        await sleep(params.afterFaultMs);
      }
      // Graceful end: the app first (it commits its last transaction), then lsinit.
      await stopApp('SIGTERM');
      const { commits } = readCommits(logPath);
      const appEnd = Date.now();
      await stopLsinit('SIGTERM');
      if (proxy && lsOutputs.some((o) => o.includes('replica lease lost'))) fail('store fault: lease', 'a store outage made lsinit declare the replica lease lost (replication would stop for good)');
      const last = await checkRestore('final', replica);
      // After a WAL cut the source is the truth ("final equals source" below), not the app's log.
      if (!sourceDamaged) requireBefore('final', last, appEnd, true);
      void commits;
    }

    // Latest restore vs the source, row for row.
    const source = dumpState(db);
    const { commits } = readCommits(logPath);
    const maxCommitted = Math.max(source.lastId, ...commits.map((c) => c.id));
    const srcWant = expected(source.lastId);
    if (!isDeepStrictEqual(source, srcWant)) fail('source', `the source itself differs from the oracle: ${stateDiff(source, srcWant)}`);
    const latest = join(dir, `restore-${restoreN}-${kind === 'sigterm-container' ? 'after-sigterm' : 'final'}.db`);
    if (existsSync(latest)) {
      const got = dumpState(latest);
      if (!isDeepStrictEqual(got, source)) fail('final equals source', stateDiff(got, source));
      if (got.lastId > maxCommitted) fail('no uncommitted data', `restore has last_id ${got.lastId}, the app committed up to ${maxCommitted}`);
    }

    // The S3 replica, restored through the config, must hold the same latest state.
    if (opts.s3) {
      const out = join(dir, 'restore-s3-final.db');
      const res = await runToEnd([bin(), 'restore', '-config', cfg, '-replica', 's3', '-o', out, db]);
      if (res.code !== 0) fail('s3 final: restore', `exit ${res.code}: ${res.out.trim().split('\n').slice(-3).join(' | ')}`);
      else {
        const ic = integrity(out);
        if (ic !== 'ok') fail('s3 final: integrity_check', ic.slice(0, 300));
        const got = dumpState(out);
        if (!isDeepStrictEqual(got, source)) fail('s3 final equals source', stateDiff(got, source));
        notes.push(`s3 final: last_id ${got.lastId}`);
      }
    }

    // Points in time: one timestamp between two commits, one -index (the first drawn first).
    for (const pit of params.pit === 'timestamp' ? ['timestamp', 'index'] : ['index', 'timestamp']) {
    if (pit === 'timestamp' && commits.length >= 2) {
      const i = Math.floor(params.pitFrac * (commits.length - 1));
      const a = commits[i]!;
      const b = commits[i + 1]!;
      const ts = a.t + Math.max(0, Math.floor((b.t - a.t) / 2));
      const last = await checkRestoreTolerant('pit-timestamp', ['-timestamp', new Date(ts).toISOString()]);
      if (last !== undefined) {
        const committedAt = commits.filter((c) => c.id === last).map((c) => c.t);
        // Objects are written after the commits they hold, so nothing after ts can be in it
        // (1 s slack: the app logs its commit a moment after SQLite commits it).
        if (committedAt.length && Math.min(...committedAt) > ts + 1000) fail('pit-timestamp: future data', `restore to ${new Date(ts).toISOString()} holds transaction ${last}, committed at ${new Date(Math.min(...committedAt)).toISOString()}`);
        notes.push(`pit -timestamp ${new Date(ts).toISOString()} → last_id ${last} (commit ${a.id} at ts)`);
      }
    } else {
      const gens = existsSync(join(replica, 'generations')) ? readdirSync(join(replica, 'generations')).sort() : [];
      if (gens.length) {
        const g = gens[Math.floor(params.pitFrac * gens.length)]!;
        const walDir = join(replica, 'generations', g, 'wal');
        const idx = [...new Set((existsSync(walDir) ? readdirSync(walDir) : []).map((f) => f.slice(0, 8)))].sort();
        if (idx.length) {
          const ix = idx[Math.floor(params.pitFrac * idx.length)]!;
          const last = await checkRestoreTolerant('pit-index', ['-generation', g, '-index', ix]);
          notes.push(`pit -generation ${g} -index ${ix} → last_id ${last}`);
        }
      }
    }
    }

    async function checkRestoreTolerant(label: string, flags: string[]): Promise<number | undefined> {
      // "no matching backups" is a legitimate answer for a timestamp before the first snapshot.
      const out = join(dir, `restore-${++restoreN}-${label}.db`);
      const res = await runToEnd([bin(), 'restore', ...flags, '-o', out, `file://${replica}`]);
      if (res.code !== 0) {
        if (/no matching backups|no snapshot/i.test(res.out)) {
          notes.push(`${label}: ${res.out.trim().split('\n').pop()}`);
          return undefined;
        }
        fail(`${label}: restore`, `exit ${res.code}: ${res.out.trim().split('\n').slice(-3).join(' | ')}`);
        return undefined;
      }
      restoreN--;
      rmSync(out, { force: true });
      return checkRestore(label, replica, flags);
    }
  } catch (err) {
    fail('harness', (err as Error).stack ?? String(err));
  } finally {
    if (app) await app.stop('SIGKILL', 10_000);
    if (ls) {
      await ls.stop('SIGKILL', 10_000);
      lsOutputs.push(ls.out);
    }
    if (container?.alive) await container.stop('SIGKILL', 10_000);
    await proxy?.close();
  }
  const committed = readCommits(logPath).commits.length;
  {
    // Longest pause between two consecutive commits of one app run (lsinit's write locks and
    // checkpoints show up here; #724 was a multi-second stall), excluding the app's own actions.
    const lines = existsSync(logPath) ? readFileSync(logPath, 'utf8').split('\n') : [];
    let prev: number | undefined;
    let stall = 0;
    for (const l of lines) {
      const f = l.split(' ');
      if (f[0] === 'c') {
        const t = Number(f[2]);
        if (prev !== undefined) stall = Math.max(stall, t - prev);
        prev = t;
      } else prev = undefined; // app (re)start, action, end
    }
    notes.push(`longest pause between commits: ${stall} ms`);
  }
  if (failures.length) writeFileSync(join(dir, 'lsinit-output.log'), lsOutputs.join('\n----- restart -----\n'));
  if (!failures.length && !opts.keep) rmSync(dir, { recursive: true, force: true });
  return { seed, kind, params, failures, committed, ms: Date.now() - t0, dir, notes };
}

async function innerPid(outer: number): Promise<number | undefined> {
  for (let i = 0; i < 100; i++) {
    try {
      const children = readFileSync(`/proc/${outer}/task/${outer}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      if (children[0]) return children[0];
    } catch {
      /* not there yet */
    }
    await sleep(20);
  }
  return undefined;
}

/** Seeds whose first draw picks each fault kind (for a CI set that covers every kind once). */
export function seedFor(kind: FaultKind, start = 1): number {
  for (let s = start; ; s++) {
    const r = rng(s);
    if (FAULTS[Math.floor(r() * FAULTS.length)] === kind) return s;
  }
}

/**
 * The byte offset in `db`-wal up to which a checkpoint has copied frames into the database file
 * (WalCkptInfo in the -shm, right after the two 48-byte index headers: nBackfill at 96,
 * nBackfillAttempted at 128; frame size from the WAL header). 32 when nothing is back-filled or either file is missing.
 */
function backfilledEnd(db: string): number {
  try {
    const shm = readFileSync(`${db}-shm`);
    const hdr = Buffer.alloc(32);
    const fd = openSync(`${db}-wal`, 'r');
    try {
      if (readSync(fd, hdr, 0, 32, 0) < 32 || shm.length < 100) return 32;
    } finally {
      closeSync(fd);
    }
    // nBackfill, or nBackfillAttempted when a checkpoint was killed while copying (it may have
    // written pages past nBackfill). Native order: little-endian on the machines we run.
    const frames = Math.max(shm.readUInt32LE(96), shm.readUInt32LE(128));
    return 32 + frames * (24 + hdr.readUInt32BE(8));
  } catch {
    return 32;
  }
}
