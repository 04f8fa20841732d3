/** Helpers for end-to-end replication tests: a temp dir, a config, `lsinit replicate` as a child. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import type { DBConfig } from '../../src/config/types.js';
import { spawnLsinit } from './cli.js';

export const WRITER = resolve(dirname(fileURLToPath(import.meta.url)), '../apps/writer.mjs');

export function workdir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `lsinit-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function fileConfig(dir: string, opts: { db?: string; replica?: string; sync?: string; extra?: string; replicaExtra?: string } = {}): { cfg: string; db: string; replica: string } {
  const db = opts.db ?? join(dir, 'app.db');
  const replica = opts.replica ?? join(dir, 'replica');
  const cfg = join(dir, 'lsinit.yml');
  writeFileSync(cfg, `dbs:
  - path: ${db}
    monitor-interval: 100ms
${opts.extra ?? ''}    replicas:
      - type: file
        path: ${replica}
        sync-interval: ${opts.sync ?? '100ms'}
${opts.replicaExtra ?? ''}`);
  return { cfg, db, replica };
}

export async function writer(db: string, args: string[] = []) {
  const r = await execa(process.execPath, [WRITER, db, ...args], { reject: false });
  if (r.exitCode !== 0) throw new Error(`writer failed: ${r.stderr}`);
  return String(r.stdout).split('\n').filter((l) => l.startsWith('committed ')).map((l) => Number(l.slice(10)));
}

/** Start `lsinit replicate -config cfg` and wait until it logs that it is replicating. */
export async function startReplicate(cfg: string, flags: string[] = [], opts: { env?: Record<string, string> } = {}) {
  const child = spawnLsinit(['replicate', ...flags, '-config', cfg], { all: true, buffer: true, ...(opts.env ? { env: opts.env } : {}) });
  let out = '';
  child.all!.on('data', (d: Buffer) => (out += d.toString()));
  // Generous: the machine is small and shared; a slow start is not what these tests measure.
  const deadline = Date.now() + 60_000;
  while (!out.includes('msg=replicating') && Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`replicate exited early: ${out}`);
    await sleep(25);
  }
  if (!out.includes('msg=replicating')) {
    child.kill('SIGKILL');
    throw new Error(`replicate did not start within 60 s: ${out}`);
  }
  return { child, output: () => out };
}

export function createDB(path: string, pageSize = 4096): void {
  const d = new Database(path);
  d.pragma(`page_size = ${pageSize}`);
  d.pragma('journal_mode = wal');
  d.exec('CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, conn INTEGER, payload TEXT, data BLOB); CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER);');
  d.close();
}

/** Rows of every user table, for row-by-row comparison. */
export function dump(path: string): Record<string, unknown[]> {
  const d = new Database(path, { readonly: true });
  try {
    const out: Record<string, unknown[]> = {};
    for (const { name } of d.prepare("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE '_litestream%' ORDER BY name").all() as { name: string }[]) {
      out[name] = d.prepare(`SELECT * FROM "${name}" ORDER BY 1`).raw().all();
    }
    return out;
  } finally {
    d.close();
  }
}

export function integrity(path: string): string {
  const d = new Database(path, { readonly: true });
  try {
    return (d.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check).join('\n');
  } finally {
    d.close();
  }
}

export function logIds(path: string): number[] {
  const d = new Database(path, { readonly: true });
  try {
    return (d.prepare('SELECT id FROM log ORDER BY id').raw().all() as [number][]).map((r) => r[0]);
  } finally {
    d.close();
  }
}

/** Copy of a live database (plus its WAL) that can be inspected without touching the original. */
export function snapshotCopy(src: string, dest: string): string {
  const d = new Database(src, { readonly: true });
  try {
    d.exec(`VACUUM INTO '${dest.replace(/'/g, "''")}'`);
  } finally {
    d.close();
  }
  return dest;
}

export { sleep };

/**
 * A database in `dir` (app.db, WAL mode, `schema`) and the config of an in-process DB for it that
 * checkpoints only when a test calls DB.checkpoint().
 */
export function checkpointOnDemand(dir: string, opts: { pageSize: number; schema: string }): { path: string; cfg: DBConfig } {
  const path = join(dir, 'app.db');
  const setup = new Database(path);
  setup.pragma(`page_size = ${opts.pageSize}`);
  setup.pragma('journal_mode = wal');
  setup.exec(opts.schema);
  setup.close();
  const cfg: DBConfig = {
    path,
    metaPath: join(dir, '.app.db-litestream'),
    monitorIntervalMs: 100,
    checkpointIntervalMs: 0,
    minCheckpointPageCount: 1_000_000,
    maxCheckpointPageCount: 0,
    checkpointBusyTimeoutMs: 100,
    replicas: [],
    keyPath: 'dbs[0]',
  };
  return { path, cfg };
}
