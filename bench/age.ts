/**
 * The cost of age encryption (`age:`), each figure against the same work unencrypted in the same
 * run, conditions alternated round by round; with the reference Litestream 0.3.13 beside lsinit
 * when $LITESTREAM_BIN names it (the run says when it has not).
 *   snapshot  `replicate -config` on an existing database until its first snapshot is on the file
 *             replica (process start included, as a user waits for it), plain vs age
 *   ship      then one transaction of a quarter of the database's size: from its commit to the
 *             replicator's log saying its WAL bytes are on the replica, plain vs age
 *   restore   `restore -config` of that replica (snapshot + that transaction's WAL, integrity
 *             check included for lsinit), plain vs age
 *   segments  in process, lsinit's own path: a WAL segment LZ4-framed, (encrypted,) written to a
 *             file replica, then read back and decoded; per segment, for 1-page and 16-page segments
 *   stall     in process: the longest event-loop stall while a snapshot streams to a file replica
 *             (the replication loop: the worker's in init mode, the main one in `replicate`)
 * Usage: npm run build && node --import tsx bench/age.ts [--db-mb 256] [--rounds 3] [--segments 300] [--quick]
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, createReadStream, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { parseAge } from '../src/config/age.js';
import { decodeFrames, encodeFrame, encodeFrameStream } from '../src/format/lz4.js';
import { AgeClient } from '../src/replica/age.js';
import type { ReplicaClient } from '../src/replica/client.js';
import { FileReplicaClient } from '../src/replica/clients/file.js';
import { dirBytes, litestreamBin, median, opt, waitFor } from './lib.js';
import { background, lsinitTool, litestreamTool, measure, replicaReady, type Tool } from './tools.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const DB_MB = opt('db-mb', quick ? 64 : 256);
const ROUNDS = opt('rounds', quick ? 1 : 3);
const SEGMENTS = opt('segments', quick ? 100 : 300);
const BIG_MB = Math.max(1, Math.round(DB_MB / 4));
const ls = litestreamBin();
const tools: Tool[] = [lsinitTool, ...(ls ? [litestreamTool(ls)] : [])];
const dir = mkdtempSync(join(tmpdir(), 'lsinit-bench-age-'));
const MB = 1 << 20;

const identity = await generateX25519Identity();
const recipient = await identityToRecipient(identity);
const AGE_YAML = `        age:\n          identities: [${identity}]\n          recipients: [${recipient}]\n`;
const keys = parseAge({ identities: [identity], recipients: [recipient] }, 'bench.age', [])!;

/** A WAL-mode database of about `mb` MB whose pages LZ4 compresses about 2:1, like text rows. */
function makeDB(path: string, mb: number): void {
  const d = new Database(path);
  d.pragma('journal_mode = wal');
  d.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  const ins = d.prepare('INSERT INTO t (v) VALUES (?)');
  const rows = Math.ceil((mb * MB) / 685);
  d.transaction(() => {
    for (let i = 0; i < rows; i++) ins.run(`${randomBytes(210).toString('base64')}|${'lorem ipsum dolor sit amet '.repeat(12)}|${i}`);
  })();
  d.pragma('wal_checkpoint(TRUNCATE)');
  d.close();
}

function config(db: string, replica: string, age: boolean): string {
  const p = join(dir, `cfg-${Math.random().toString(36).slice(2)}.yml`);
  writeFileSync(p, `dbs:\n  - path: ${db}\n    replicas:\n      - type: file\n        path: ${replica}\n        sync-interval: 100ms\n${age ? AGE_YAML : ''}`);
  return p;
}

/** One transaction of about `mb` MB of new rows, from a separate connection; returns its WAL bytes. */
function writeBig(db: string, mb: number): number {
  const d = new Database(db);
  d.pragma('busy_timeout = 10000');
  d.pragma('wal_autocheckpoint = 0');
  const ins = d.prepare('INSERT INTO t (v) VALUES (?)');
  const before = statSync(`${db}-wal`).size;
  d.transaction(() => {
    for (let i = 0; i < (mb * MB) / 685; i++) ins.run(`${randomBytes(210).toString('base64')}|${'consectetur adipiscing '.repeat(14)}|${i}`);
  })();
  const grown = statSync(`${db}-wal`).size - before;
  d.close();
  return grown;
}

/** Sum of `sz=` of "wal segment written" log lines (both programs log the uncompressed size). */
const shipped = (out: string) => [...out.matchAll(/wal segment written.*?\bsz=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);

interface Sample { snapshotMs: number; shipMs: number; restoreMs: number; replicaBytes: number }

/** One round for one tool and mode on a fresh copy of the database. */
async function round(t: Tool, age: boolean, src: string, k: number): Promise<Sample> {
  const tag = `${t.name}-${age ? 'age' : 'plain'}-${k}`;
  const db = join(dir, `${tag}.db`);
  copyFileSync(src, db);
  const replica = join(dir, `${tag}-replica`);
  const cfg = config(db, replica, age);
  const t0 = performance.now();
  const bg = background([...t.cmd, 'replicate', '-config', cfg]);
  await replicaReady(bg, replica);
  const snapshotMs = performance.now() - t0;
  const mark = shipped(bg.out());
  const t1 = performance.now();
  const walBytes = writeBig(db, BIG_MB);
  await waitFor(() => shipped(bg.out()) - mark >= walBytes * 0.95, `${t.name} to ship the ${BIG_MB} MB transaction`, 300_000, 10);
  const shipMs = performance.now() - t1;
  await bg.stop();
  const replicaBytes = dirBytes(replica);
  const out = join(dir, `${tag}-restored.db`);
  const r = await measure([...t.cmd, 'restore', '-config', cfg, '-o', out, db]);
  if (r.code !== 0) throw new Error(`${t.name} restore (${age ? 'age' : 'plain'}) failed: ${r.stderr}${r.stdout}`);
  for (const p of [db, `${db}-wal`, `${db}-shm`, out]) rmSync(p, { force: true });
  rmSync(replica, { recursive: true, force: true });
  return { snapshotMs, shipMs, restoreMs: r.ms, replicaBytes };
}

/** Per-segment ms to write (LZ4 + age + file write) and to read back (read + decrypt + decode). */
async function segments(pages: number, age: boolean): Promise<{ write: number; read: number }> {
  const root = join(dir, `seg-${pages}-${age}-${Math.random().toString(36).slice(2)}`);
  const plain = new FileReplicaClient({ path: root });
  const c: ReplicaClient = age ? new AgeClient(plain, keys) : plain;
  const body = Buffer.alloc(pages * 4120, 0x5a);
  for (let i = 0; i < body.length; i += 97) body[i] = i & 0xff;
  const gen = '0123456789abcdef';
  await c.writeWALSegment({ generation: gen, index: 0, offset: 0 }, await encodeFrame(body)); // warm-up (loads the library)
  let t0 = performance.now();
  for (let i = 1; i <= SEGMENTS; i++) await c.writeWALSegment({ generation: gen, index: 0, offset: i * body.length }, await encodeFrame(body));
  const write = (performance.now() - t0) / SEGMENTS;
  t0 = performance.now();
  for (let i = 1; i <= SEGMENTS; i++) {
    let n = 0;
    for await (const ch of decodeFrames(await c.walSegmentReader({ generation: gen, index: 0, offset: i * body.length }))) n += ch.length;
    if (n !== body.length) throw new Error('short read');
  }
  const read = (performance.now() - t0) / SEGMENTS;
  rmSync(root, { recursive: true, force: true });
  return { write, read };
}

/** Stream the database file as a snapshot to a file replica in this process: ms and the longest loop stall. */
async function inProcessSnapshot(db: string, age: boolean): Promise<{ ms: number; stallMs: number }> {
  const root = join(dir, `snap-${age}-${Math.random().toString(36).slice(2)}`);
  const plain = new FileReplicaClient({ path: root });
  const c: ReplicaClient = age ? new AgeClient(plain, keys) : plain;
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  const t0 = performance.now();
  await c.writeSnapshot('0123456789abcdef', 0, Readable.from(encodeFrameStream(createReadStream(db, { highWaterMark: MB }))));
  const ms = performance.now() - t0;
  h.disable();
  rmSync(root, { recursive: true, force: true });
  return { ms, stallMs: h.max / 1e6 };
}

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const head = [
  `age encryption cost — ${new Date().toISOString()}, node ${process.version}${quick ? ' (quick)' : ''}, database ${DB_MB} MB, ${ROUNDS} round(s), medians`,
  ls ? `Litestream: ${ls}` : 'Litestream: NOT FOUND (set LITESTREAM_BIN=/path/to/litestream-0.3.13): its rows are skipped',
  `load average at start: ${load()}`,
];
process.stderr.write(`${head.join('\n')}\n`);
const rows: string[][] = [['figure', 'plain', 'age', 'age / plain']];
const fmt = (x: number, unit: string, digits = 0) => `${x.toFixed(digits)} ${unit}`;
const ratio = (a: number, p: number) => `${(a / p).toFixed(2)}×`;
try {
  const src = join(dir, 'source.db');
  makeDB(src, DB_MB);
  const mb = statSync(src).size / MB;
  for (const t of tools) {
    const s: Record<'plain' | 'age', Sample[]> = { plain: [], age: [] };
    for (let k = 0; k < ROUNDS; k++) {
      for (const age of k % 2 === 0 ? [false, true] : [true, false]) {
        process.stderr.write(`-- ${t.name} ${age ? 'age' : 'plain'} round ${k + 1}\n`);
        s[age ? 'age' : 'plain'].push(await round(t, age, src, k));
      }
    }
    const m = (mode: 'plain' | 'age', f: keyof Sample) => median(s[mode].map((x) => x[f]));
    rows.push(
      [`${t.name}: start → first snapshot on the replica (${mb.toFixed(0)} MB db)`, fmt(m('plain', 'snapshotMs'), 'ms'), fmt(m('age', 'snapshotMs'), 'ms'), ratio(m('age', 'snapshotMs'), m('plain', 'snapshotMs'))],
      [`${t.name}: snapshot throughput incl. start`, fmt(mb / (m('plain', 'snapshotMs') / 1000), 'MB/s', 1), fmt(mb / (m('age', 'snapshotMs') / 1000), 'MB/s', 1), ''],
      [`${t.name}: commit → shipped, one ${BIG_MB} MB transaction`, fmt(m('plain', 'shipMs'), 'ms'), fmt(m('age', 'shipMs'), 'ms'), ratio(m('age', 'shipMs'), m('plain', 'shipMs'))],
      [`${t.name}: restore (snapshot + that transaction)`, fmt(m('plain', 'restoreMs'), 'ms'), fmt(m('age', 'restoreMs'), 'ms'), ratio(m('age', 'restoreMs'), m('plain', 'restoreMs'))],
      [`${t.name}: replica size`, fmt(m('plain', 'replicaBytes') / MB, 'MB', 1), fmt(m('age', 'replicaBytes') / MB, 'MB', 1), ratio(m('age', 'replicaBytes'), m('plain', 'replicaBytes'))],
    );
  }
  for (const pages of [1, 16]) {
    const p: { write: number; read: number }[] = [];
    const a: { write: number; read: number }[] = [];
    for (let k = 0; k < ROUNDS; k++) {
      p.push(await segments(pages, false));
      a.push(await segments(pages, true));
    }
    const w = [median(p.map((x) => x.write)), median(a.map((x) => x.write))] as const;
    const r = [median(p.map((x) => x.read)), median(a.map((x) => x.read))] as const;
    rows.push(
      [`lsinit in process: write one ${pages}-page WAL segment`, fmt(w[0], 'ms', 2), fmt(w[1], 'ms', 2), ratio(w[1], w[0])],
      [`lsinit in process: read + decode one ${pages}-page WAL segment`, fmt(r[0], 'ms', 2), fmt(r[1], 'ms', 2), ratio(r[1], r[0])],
    );
  }
  const snaps = { plain: [] as { ms: number; stallMs: number }[], age: [] as { ms: number; stallMs: number }[] };
  for (let k = 0; k < ROUNDS; k++) {
    snaps.plain.push(await inProcessSnapshot(src, false));
    snaps.age.push(await inProcessSnapshot(src, true));
  }
  const sm = (mode: 'plain' | 'age') => median(snaps[mode].map((x) => x.ms));
  const st = (mode: 'plain' | 'age') => median(snaps[mode].map((x) => x.stallMs));
  rows.push(
    ['lsinit in process: snapshot stream LZ4 (+ age) → file replica', fmt(mb / (sm('plain') / 1000), 'MB/s', 1), fmt(mb / (sm('age') / 1000), 'MB/s', 1), ratio(sm('age'), sm('plain')) + ' time'],
    ['lsinit in process: longest event-loop stall during it', fmt(st('plain'), 'ms', 1), fmt(st('age'), 'ms', 1), ''],
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log([...head, `load average at end: ${load()}`, '', line(rows[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n'));
