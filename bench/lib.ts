/** Helpers shared by the benchmarks in bench/: arguments, a fresh WAL database, a file-replica config, lsinit as a child, peak RSS. */
import { readFileSync, writeFileSync } from 'node:fs';
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
