/**
 * Helpers shared by the benchmarks in bench/: arguments, a fresh WAL database, a file-replica config,
 * lsinit as a child, peak RSS, percentiles, polling, and the reference Litestream binary.
 */
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { execa } from 'execa';

export const BIN = resolve(import.meta.dirname, '../bin/lsinit.js');

/** `--name value` from the command line as a number, or `d`. */
export function opt(name: string, d: number, args = process.argv.slice(2)): number {
  return args.includes(`--${name}`) ? Number(args[args.indexOf(`--${name}`) + 1]) : d;
}

/** A new WAL-mode database `dir/name` with one table (the benchmarks' `t (id, v)` by default). */
export function freshDB(dir: string, name: string, schema = 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)'): string {
  const p = join(dir, name);
  const d = new Database(p);
  d.pragma('journal_mode = wal');
  d.exec(schema);
  d.close();
  return p;
}

/** A config file replicating `db` to a file replica; `dbExtra` is inserted as db-level YAML lines. */
export function fileReplicaConfig(dir: string, db: string, replica: string, sync = '1s', dbExtra = ''): string {
  const p = join(dir, `cfg-${Math.random()}.yml`);
  writeFileSync(p, `dbs:\n  - path: ${db}\n${dbExtra}    replicas:\n      - path: ${replica}\n        sync-interval: ${sync}\n`);
  return p;
}

export interface Running {
  child: PromiseLike<unknown> & { pid?: number | undefined; kill: (signal?: NodeJS.Signals) => boolean };
  out: () => string;
}

/** `lsinit replicate -config cfg`, resolved once it logs that it replicates. */
export async function startLsinit(cfg: string, nodeArgs: string[] = [], timeoutMs = 60_000): Promise<Running> {
  const child = execa(process.execPath, [...nodeArgs, BIN, 'replicate', '-config', cfg], { reject: false, all: true });
  let out = '';
  child.all.on('data', (d: Buffer) => (out += d));
  const end = Date.now() + timeoutMs;
  while (!out.includes('msg=replicating')) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`lsinit did not start:\n${out}`);
    await sleep(20);
  }
  return { child, out: () => out }; // not the subprocess itself: it is a thenable and `await` would wait for its exit
}

/** Peak resident set size (VmHWM) of a process, in bytes. */
export function peakRSS(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Median and p-th percentile (nearest rank) of a list of numbers. */
export const median = (xs: number[]): number => pct(xs, 50);
export function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

/** Total size in bytes of the files under `dir` (0 when it does not exist). */
export function dirBytes(dir: string): number {
  let n = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) n += dirBytes(p);
    else {
      try {
        n += statSync(p).size;
      } catch { /* removed meanwhile (a temp file renamed) */ }
    }
  }
  return n;
}

/** Poll `cond` every `everyMs` until it holds; throws `what` after `timeoutMs`. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 120_000, everyMs = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/**
 * The reference Litestream 0.3.13 binary: $LITESTREAM_BIN only (nothing beside the checkout is read,
 * so a clone runs the same with nothing next to it); undefined when unset or missing.
 */
export function litestreamBin(): string | undefined {
  const env = process.env['LITESTREAM_BIN'];
  return env && existsSync(env) ? env : undefined;
}
