/**
 * Restoring a Litestream 0.5 (LTX) replica, and one validation-interval round, on a database of
 * --db-mb MB (default 200), with the disk's own speed for the same bytes (cp + fsync) measured in
 * the same run as the baseline.
 *
 * The LTX replica is written here in Litestream 0.5.16's layout and encoding (a level-9 snapshot,
 * then --l0 level-0 files each rewriting --pages pages; LZ4 block pages, flags 0x2, CRC-64 file
 * checksum): no Litestream 0.5 binary is needed. The validation round runs in process on a file
 * replica of the same database (restore to a position + CRC-64 of both sides).
 * Usage: node --import tsx bench/ltx.ts [--db-mb 200] [--l0 50] [--pages 200]
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { compressSync } from 'lz4-napi';
import { parseConfig } from '../src/config/file.js';
import { Crc64 } from '../src/format/crc64.js';
import { LTX_CHECKSUM_FLAG, ltxKey } from '../src/format/ltx.js';
import { nullLogger } from '../src/log/logger.js';
import { createClient } from '../src/replica/create.js';
import { Replica } from '../src/replica/replica.js';
import { Validator } from '../src/replicate/validate.js';
import { DB } from '../src/sqlite/db.js';
import { BIN, opt, peakRSS } from './lib.js';

const dbMB = opt('db-mb', 200);
const l0 = opt('l0', 50);
const perFile = opt('pages', 200);

function uvarint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** One LTX file as Litestream 0.5.16 writes it (ltx v0.5.2 encoder), streamed to `path`. */
function writeLTX(path: string, h: { min: bigint; max: bigint; commit: number; pageSize: number; ts: number }, pages: Iterable<[number, Buffer]>): void {
  const fd = openSync(path, 'w');
  const crc = new Crc64();
  let off = 0;
  const put = (b: Buffer, hashed: Buffer = b) => {
    writeSync(fd, b, 0, b.length, off);
    off += b.length;
    crc.update(hashed);
  };
  const hdr = Buffer.alloc(100);
  hdr.write('LTX1', 0, 'latin1');
  hdr.writeUInt32BE(0x2, 4);
  hdr.writeUInt32BE(h.pageSize, 8);
  hdr.writeUInt32BE(h.commit, 12);
  hdr.writeBigUInt64BE(h.min, 16);
  hdr.writeBigUInt64BE(h.max, 24);
  hdr.writeBigUInt64BE(BigInt(h.ts), 32);
  put(hdr);
  const index: Buffer[] = [];
  for (const [pgno, data] of pages) {
    const block = compressSync(data).subarray(4); // lz4_flex's size prefix off: a raw LZ4 block
    const ph = Buffer.alloc(10);
    ph.writeUInt32BE(pgno, 0);
    ph.writeUInt16BE(1, 4);
    ph.writeUInt32BE(block.length, 6);
    index.push(uvarint(pgno), uvarint(off), uvarint(10 + block.length));
    put(ph);
    writeSync(fd, block, 0, block.length, off);
    off += block.length;
    crc.update(data); // the checksum covers the decompressed page
  }
  put(Buffer.alloc(6));
  index.push(uvarint(0));
  const idx = Buffer.concat(index);
  const size = Buffer.alloc(8);
  size.writeBigUInt64BE(BigInt(idx.length));
  put(idx);
  put(size);
  put(Buffer.alloc(8));
  const sum = Buffer.alloc(8);
  sum.writeBigUInt64BE(crc.digest() | LTX_CHECKSUM_FLAG);
  writeSync(fd, sum, 0, 8, off);
  closeSync(fd);
}

function* filePages(path: string, pageSize: number, pick?: (pgno: number) => boolean): Generator<[number, Buffer]> {
  const fd = openSync(path, 'r');
  const n = statSync(path).size / pageSize;
  try {
    for (let pgno = 1; pgno <= n; pgno++) {
      if (pick && !pick(pgno)) continue;
      const b = Buffer.alloc(pageSize);
      readSync(fd, b, 0, pageSize, (pgno - 1) * pageSize);
      yield [pgno, b];
    }
  } finally {
    closeSync(fd);
  }
}

/** Peak RSS (VmHWM) of a child, sampled until it exits. */
async function runPeak(args: string[]): Promise<{ ms: number; rss: number }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  let rss = 0;
  const timer = setInterval(() => {
    try {
      rss = Math.max(rss, peakRSS(child.pid!));
    } catch { /* exited */ }
  }, 50);
  const code = await new Promise<number>((res) => child.on('exit', (c) => res(c ?? 1)));
  clearInterval(timer);
  if (code !== 0) throw new Error(`restore failed: ${err}`);
  return { ms: performance.now() - t0, rss };
}

const dir = mkdtempSync(join(tmpdir(), 'lsinit-bench-ltx-'));
try {
  // A database of about dbMB MB, then a few updates for the level-0 files.
  const src = join(dir, 'src.db');
  const d = new Database(src);
  d.pragma('journal_mode = wal');
  d.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)');
  const ins = d.prepare('INSERT INTO t (v) VALUES (randomblob(1000) || zeroblob(1000))');
  for (let done = 0; done < dbMB * 1e6; done += 2000 * 1000) d.transaction(() => { for (let i = 0; i < 1000; i++) ins.run(); })();
  d.pragma('wal_checkpoint(TRUNCATE)');
  d.close();
  const pageSize = 4096;
  const size = statSync(src).size;
  const commit = size / pageSize;
  const replica = join(dir, 'ltx-replica');
  mkdirSync(join(replica, 'ltx', '9'), { recursive: true });
  mkdirSync(join(replica, 'ltx', '0'), { recursive: true });
  const ts = Date.now();
  writeLTX(join(replica, ltxKey(9, 1n, 1n)), { min: 1n, max: 1n, commit, pageSize, ts }, filePages(src, pageSize));
  // Level-0 files rewrite pages in place (the same bytes: the restored file stays src.db).
  for (let k = 0; k < l0; k++) {
    const txid = BigInt(k + 2);
    const start = 2 + ((k * perFile) % Math.max(1, commit - perFile - 2));
    writeLTX(join(replica, ltxKey(0, txid, txid)), { min: txid, max: txid, commit, pageSize, ts: ts + k + 1 }, filePages(src, pageSize, (p) => p >= start && p < start + perFile));
  }

  const rows: [string, string][] = [];
  const copyT = performance.now();
  execFileSync('sh', ['-c', `cp ${src} ${join(dir, 'copy.db')} && sync ${join(dir, 'copy.db')}`]);
  const copyMBs = size / 1e6 / ((performance.now() - copyT) / 1000);
  rows.push(['baseline: cp + fsync of the same database file: MB/s', copyMBs.toFixed(0)]);
  const out = join(dir, 'restored.db');
  const r1 = await runPeak([BIN, 'restore', '-no-integrity-check', '-o', out, `file://${replica}`]);
  const same = execFileSync('cmp', [src, out]).length === 0;
  rows.push([`LTX restore, ${(size / 1e6).toFixed(0)} MB snapshot + ${l0} level-0 files (no integrity check): MB/s`, `${(size / 1e6 / (r1.ms / 1000)).toFixed(0)} (${((size / 1e6 / (r1.ms / 1000)) / copyMBs).toFixed(2)}× cp; bytes ${same ? 'identical' : 'DIFFER'})`]);
  rows.push(['  peak RSS of that restore: MB', (r1.rss / 1e6).toFixed(0)]);
  rmSync(out);
  const r2 = await runPeak([BIN, 'restore', '-o', out, `file://${replica}`]);
  rows.push(['same with PRAGMA integrity_check (default): MB/s', (size / 1e6 / (r2.ms / 1000)).toFixed(0)]);

  // One validation round on a file replica of the same database.
  const vdb = join(dir, 'val.db');
  execFileSync('cp', [src, vdb]);
  const text = `dbs:\n  - path: ${vdb}\n    replicas:\n      - type: file\n        path: ${join(dir, 'replica03')}\n`;
  writeFileSync(join(dir, 'v.yml'), text);
  const cfg = parseConfig(Buffer.from(text), { file: join(dir, 'v.yml'), expandEnv: false, env: {}, cwd: dir }).dbs[0]!;
  const db = new DB(cfg, nullLogger);
  const rep = new Replica(db.source, cfg.replicas[0]!, createClient(cfg.replicas[0]!), nullLogger);
  const sync = async () => {
    db.sync();
    await rep.sync();
  };
  await sync();
  const app = new Database(vdb);
  app.prepare('UPDATE t SET v = randomblob(2000) WHERE id % 50 = 0').run();
  app.close();
  await sync();
  const v = new Validator({ db, replica: rep, log: nullLogger, syncReplica: sync });
  const vt = performance.now();
  const res = await v.run();
  rows.push([`one validation round (restore to the position + CRC-64 of both sides), ${(size / 1e6).toFixed(0)} MB: s`, `${((performance.now() - vt) / 1000).toFixed(1)} (${res.status})`]);
  v.close();
  db.closeConnections();

  const w = Math.max(...rows.map((r) => r[0].length));
  console.log(`LTX restore and validation, ${(size / 1e6).toFixed(0)} MB database, node ${process.version}\n`);
  for (const [k, val] of rows) console.log(`${k.padEnd(w)}  ${val}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
