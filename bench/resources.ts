/**
 * Bounded resources (not a test): lsinit's peak RSS while it replicates
 *  1. one 200 MB transaction, and
 *  2. a 2 GB database (first snapshot + restore),
 * against an idle `lsinit replicate` of an empty database as the baseline, same run.
 * Usage: npm run build && node --import tsx bench/resources.ts [--tx-mb 200] [--db-gb 2]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { BIN, fileReplicaConfig, freshDB as freshDBIn, opt, startLsinit } from './lib.js';

const TX_MB = opt('tx-mb', 200);
const DB_GB = opt('db-gb', 2);
const dir = mkdtempSync(join(tmpdir(), 'lsinit-res-'));

const hwm = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;

const freshDB = (name: string) => freshDBIn(dir, name, 'CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)');

const replicate = (db: string, replica: string) => startLsinit(fileReplicaConfig(dir, db, replica));

async function waitCaughtUp(out: () => string, n: number) {
  const count = () => (out().match(/wal segment written/g) ?? []).length;
  const deadline = Date.now() + 600_000;
  while (count() < n && Date.now() < deadline) await sleep(200);
}

async function main() {
  const rows: [string, string][] = [];
  // Baseline: idle replication of an empty database.
  {
    const { child } = await replicate(freshDB('idle.db'), join(dir, 'r-idle'));
    await sleep(3000);
    rows.push(['baseline: idle lsinit replicate, peak RSS (MB)', (hwm(child.pid!) / 1e6).toFixed(0)]);
    child.kill('SIGTERM');
    await child;
  }
  // One huge transaction.
  {
    const db = freshDB('tx.db');
    const { child, out } = await replicate(db, join(dir, 'r-tx'));
    const d = new Database(db);
    d.pragma('busy_timeout = 10000');
    const ins = d.prepare('INSERT INTO blobs (b) VALUES (randomblob(?))');
    d.transaction(() => { for (let i = 0; i < (TX_MB * 1e6) / 100_000; i++) ins.run(100_000); })();
    d.close();
    await waitCaughtUp(out, 2);
    await sleep(2000);
    rows.push([`one ${TX_MB} MB transaction (WAL ${(statSync(`${db}-wal`).size / 1e6).toFixed(0)} MB), peak RSS (MB)`, (hwm(child.pid!) / 1e6).toFixed(0)]);
    child.kill('SIGTERM');
    await child;
  }
  // A large database: first snapshot, then restore.
  {
    const db = freshDB('big.db');
    const d = new Database(db);
    d.pragma('wal_autocheckpoint = 1000');
    const ins = d.prepare('INSERT INTO blobs (b) VALUES (randomblob(?))');
    const tx = d.transaction((n: number) => { for (let i = 0; i < n; i++) ins.run(64_000); });
    for (let mb = 0; mb < DB_GB * 1000; mb += 64) tx(1000);
    d.pragma('wal_checkpoint(TRUNCATE)');
    d.close();
    const replica = join(dir, 'r-big');
    const t0 = performance.now();
    const { child, out } = await replicate(db, replica);
    rows.push([`first snapshot of a ${(statSync(db).size / 1e9).toFixed(2)} GB database: seconds`, ((performance.now() - t0) / 1000).toFixed(1)]);
    await sleep(2000);
    rows.push(['  lsinit peak RSS during it (MB)', (hwm(child.pid!) / 1e6).toFixed(0)]);
    child.kill('SIGTERM');
    await child;
    void out;
    const restored = join(dir, 'restored.db');
    const t1 = performance.now();
    const r = execa(process.execPath, [BIN, 'restore', '-no-integrity-check', '-o', restored, `file://${replica}`]);
    let peak = 0;
    const timer = setInterval(() => { try { peak = Math.max(peak, hwm(r.pid!)); } catch { /* exited */ } }, 100);
    await r;
    clearInterval(timer);
    rows.push([`restore of it: MB/s`, (statSync(restored).size / 1e6 / ((performance.now() - t1) / 1000)).toFixed(0)]);
    rows.push(['  restore peak RSS (MB, sampled)', (peak / 1e6).toFixed(0)]);
  }
  const w = Math.max(...rows.map((x) => x[0].length));
  console.log(`\nlsinit resource benchmark — ${new Date().toISOString()}, node ${process.version}\n`);
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
  rmSync(dir, { recursive: true, force: true });
  void execFileSync;
}

await main();
