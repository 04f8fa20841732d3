/** Shared helpers for the init tests: launching lsinit (optionally as PID 1) and fake controllers. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, rmSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import type { Logger } from '../../src/log/logger.js';
import type { ControllerLike, SyncFailure } from '../../src/replicate/types.js';
import type { SignalSource } from '../../src/init/signal-hub.js';
import { killChildAtEnd } from '../helpers/cli.js';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURES = join(ROOT, 'test/fixtures');
export const ENTRY = join(FIXTURES, 'init-entry.ts');

export function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'lsinit-init-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** `dir`/app.db in WAL mode with a table t (id, v), and `dir`/lsinit.yml replicating it to `dir`/replica. */
export function fileReplicated(dir: string): { db: string; cfg: string; replica: string } {
  const db = join(dir, 'app.db');
  const d = new Database(db);
  d.pragma('journal_mode = wal');
  d.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  d.close();
  const replica = join(dir, 'replica');
  const cfg = join(dir, 'lsinit.yml');
  writeFileSync(cfg, `dbs:\n  - path: ${db}\n    replicas:\n      - type: file\n        path: ${replica}\n`);
  return { db, cfg, replica };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function waitFor<T>(fn: () => T | undefined | false, ms = 5000, what = 'condition'): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export interface Launched {
  child: ChildProcess;
  /** The pid of lsinit itself, as seen from this (host) namespace. */
  lsinitPid: () => Promise<number>;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

export interface LaunchOptions {
  pid1?: boolean;
  env?: NodeJS.ProcessEnv;
  controller?: Record<string, unknown>;
  noReap?: boolean;
}

function childOf(ppid: number): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === ppid) return Number(d);
    } catch {
      /* gone */
    }
  }
  return undefined;
}

/** Runs test/fixtures/init-entry.ts with `args`; under `unshare --pid` lsinit is PID 1 of its namespace. */
export function launch(args: readonly string[], opts: LaunchOptions = {}): Launched {
  const node = [process.execPath, '--import', 'tsx', ENTRY, ...args];
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  if (opts.controller !== undefined) env.LSINIT_TEST_CONTROLLER = JSON.stringify(opts.controller);
  if (opts.noReap === true) env.LSINIT_TEST_NO_REAP = '1';
  // Killed with its app (or its whole namespace) if still running when the test file's tests end.
  const child = killChildAtEnd(opts.pid1 === true
    ? spawn('unshare', ['--pid', '--fork', '--mount-proc', ...node], { env, stdio: ['ignore', 'inherit', 'pipe'], cwd: ROOT })
    : spawn(node[0] as string, node.slice(1), { env, stdio: ['ignore', 'inherit', 'pipe'], cwd: ROOT }));
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((r) =>
    child.on('exit', (code, signal) => r({ code, signal, at: Date.now() })),
  );
  const lsinitPid = async () => {
    // unshare forks: the inner node is unshare's child (the unshare process itself ignores TERM/INT).
    if (opts.pid1 !== true) return child.pid as number;
    return waitFor(() => childOf(child.pid as number), 5000, 'lsinit pid');
  };
  return { child, lsinitPid, stderr: () => err, exited };
}

export function readLines(path: string): string[] {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter((l) => l !== '') : [];
}

export interface Event {
  type: string;
  t: number;
  deadline?: number;
  fast?: boolean;
}

export function readEvents(path: string): Event[] {
  return readLines(path).map((l) => JSON.parse(l) as Event);
}

/** Signals injected by the test instead of the process's own. */
export class FakeSignals implements SignalSource {
  handler: ((sig: NodeJS.Signals) => void) | undefined;
  subscribe(h: (sig: NodeJS.Signals) => void): void {
    this.handler = h;
  }
  send(sig: NodeJS.Signals): void {
    this.handler?.(sig);
  }
  dispose(): void {
    this.handler = undefined;
  }
}

export interface FakeControllerOptions {
  restoreError?: Error;
  startError?: Error;
  closeDelayMs?: number;
  failures?: SyncFailure[];
}

/** An in-process fake ControllerLike that records calls with their time. */
export class FakeController implements ControllerLike {
  readonly calls: { type: string; t: number; deadline?: number; fast?: boolean }[] = [];
  private endSlow: (() => void) | undefined;
  constructor(private readonly o: FakeControllerOptions = {}) {}
  describe() {
    return [{ db: '/data/app.db', replicas: ['s3://bucket/app (redacted)'] }];
  }
  async restoreMissing() {
    this.calls.push({ type: 'restore', t: Date.now() });
    if (this.o.restoreError) throw this.o.restoreError;
  }
  async start() {
    this.calls.push({ type: 'start', t: Date.now() });
    if (this.o.startError) throw this.o.startError;
  }
  async close({ deadline, fast }: { deadline: number; fast?: boolean }) {
    this.calls.push({ type: 'close', t: Date.now(), deadline, fast: fast === true });
    if (fast === true) this.endSlow?.();
    else if (this.o.closeDelayMs) {
      await new Promise<void>((r) => {
        this.endSlow = r;
        setTimeout(r, this.o.closeDelayMs).unref();
      });
    }
    this.calls.push({ type: 'closed', t: Date.now(), fast: fast === true });
    return { failures: this.o.failures ?? [] };
  }
}

/** A logger that keeps lines for assertions. */
export function memoryLogger(): Logger & { lines: { level: string; msg: string; fields: Record<string, unknown> }[] } {
  const lines: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
  const make = (bound: Record<string, unknown>): Logger => ({
    debug: (msg, f) => void lines.push({ level: 'debug', msg, fields: { ...bound, ...f } }),
    info: (msg, f) => void lines.push({ level: 'info', msg, fields: { ...bound, ...f } }),
    warn: (msg, f) => void lines.push({ level: 'warn', msg, fields: { ...bound, ...f } }),
    error: (msg, f) => void lines.push({ level: 'error', msg, fields: { ...bound, ...f } }),
    child: (f) => make({ ...bound, ...f }),
  });
  return Object.assign(make({}), { lines });
}
