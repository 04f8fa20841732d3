/**
 * LZ4 block codecs on a realistic WAL: the system's liblz4 (through koffi, what lsinit uses where
 * it loads) against lz4-napi (lz4_flex, the fallback where liblz4 is missing), same process, same
 * input, interleaved rounds. The WAL is SQLite's own: an app table of text rows (names, e-mails,
 * JSON) with two indexes, inserted and updated in small transactions, checkpoints off.
 *
 * Then the garbage each leaves: in a fresh process per codec (the mmap threshold fixed, as lsinit
 * does; no GC pacing), 64 compressions of one 4 MiB block of that WAL and 500 frames of 200 KB,
 * none kept, and the growth of peak RSS (VmHWM).
 *
 * Usage: node --import tsx bench/lz4-codecs.ts [--mb 48] [--rounds 5]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { compressBlock, decompressBlock } from '../src/format/lz4-block.js';
import { setNativeLZ4 } from '../src/format/lz4-native.js';
import { FRAME_BLOCK_SIZE, decodeAll, encodeFrame } from '../src/format/lz4.js';
import { fixMmapThreshold } from '../src/util/memory.js';
import { opt } from './lib.js';

const MB = 1 << 20;
const wantMB = opt('mb', 48);
const rounds = opt('rounds', 5);

/** A WAL of about `mb` MB written by SQLite for an ordinary app table. */
function realisticWAL(dir: string, mb: number): Buffer {
  const path = join(dir, 'app.db');
  const db = new Database(path);
  db.pragma('journal_mode = wal');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, created_at TEXT, prefs TEXT); CREATE INDEX users_email ON users (email); CREATE INDEX users_created ON users (created_at)');
  const insert = db.prepare('INSERT INTO users (name, email, created_at, prefs) VALUES (?, ?, ?, ?)');
  const update = db.prepare('UPDATE users SET prefs = ? WHERE id = ?');
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet', 'kilo', 'lima'];
  let seed = 1;
  const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
  const word = () => words[rnd(words.length)]!;
  let id = 0;
  const tx = db.transaction(() => {
    for (let i = 0; i < 50; i++) {
      id++;
      const name = `${word()} ${word()}-${rnd(100000)}`;
      insert.run(name, `${name.replace(/\W/g, '.')}@example.${word()}.org`, new Date(1.7e12 + id * 37_000).toISOString(), JSON.stringify({ theme: word(), lang: word(), n: rnd(1e6), tags: [word(), word(), word()] }));
      if (id > 100) update.run(JSON.stringify({ theme: word(), seen: rnd(1e9) }), 1 + rnd(id));
    }
  });
  while (!existsSync(`${path}-wal`) || statSync(`${path}-wal`).size < mb * MB) tx();
  const wal = readFileSync(`${path}-wal`);
  db.close();
  return wal;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

const status = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;

/** `--garbage <codec> <file>`: this process compresses and drops, then prints its peak RSS growth (MB). */
async function garbage(native: boolean, sample: Buffer): Promise<void> {
  fixMmapThreshold();
  setNativeLZ4(native);
  const small = sample.subarray(0, 200_000);
  await encodeFrame(small);
  compressBlock(sample);
  const base = status('VmRSS');
  for (let i = 0; i < 64; i++) compressBlock(sample);
  const blocks = status('VmHWM') - base;
  for (let i = 0; i < 500; i++) await encodeFrame(small);
  console.log(JSON.stringify({ blocks, frames: status('VmHWM') - base }));
}

const args = process.argv.slice(2);
if (args[0] === '--garbage') {
  await garbage(args[1] === 'liblz4', readFileSync(args[2]!));
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'lsinit-lz4-codecs-'));
try {
  const wal = realisticWAL(dir, wantMB);
  const blocks: Buffer[] = [];
  for (let off = 0; off < wal.length; off += FRAME_BLOCK_SIZE) blocks.push(wal.subarray(off, off + FRAME_BLOCK_SIZE));
  const codecs = [['liblz4', true], ['lz4-napi', false]] as const;
  const results = new Map<string, { comp: number[]; frame: number[]; dec: number[]; size: number }>();
  for (const [name, native] of codecs) {
    // Warm-up: loads the library and touches the code paths.
    setNativeLZ4(native);
    await decodeAll(await encodeFrame(blocks[0]!));
    results.set(name, { comp: [], frame: [], dec: [], size: 0 });
  }
  for (let r = 0; r < rounds; r++) {
    for (const [name, native] of r % 2 ? [...codecs].reverse() : codecs) {
      setNativeLZ4(native);
      const res = results.get(name)!;
      let t = performance.now();
      const compressed = blocks.map((b) => compressBlock(b));
      res.comp.push(wal.length / MB / ((performance.now() - t) / 1000));
      res.size = compressed.reduce((n, c) => n + c.length, 0);
      t = performance.now();
      for (const c of compressed) {
        const sz = c.readUInt32LE(0);
        if (sz & 0x80000000) continue;
        decompressBlock(c.subarray(4), FRAME_BLOCK_SIZE, undefined, 'bench');
      }
      res.dec.push(wal.length / MB / ((performance.now() - t) / 1000));
      t = performance.now();
      await encodeFrame(wal);
      res.frame.push(wal.length / MB / ((performance.now() - t) / 1000));
    }
  }
  setNativeLZ4(true);
  console.log(`LZ4 codecs on a ${(wal.length / MB).toFixed(1)} MB SQLite WAL (text rows, two indexes), ${blocks.length} blocks of 4 MiB; median of ${rounds} interleaved rounds; node ${process.version}`);
  console.log('| codec | compress blocks | whole frame (encodeFrame: + xxh32) | decode blocks | compressed size |');
  console.log('|---|---|---|---|---|');
  for (const [name] of codecs) {
    const r = results.get(name)!;
    console.log(`| ${name} | ${median(r.comp).toFixed(0)} MB/s | ${median(r.frame).toFixed(0)} MB/s | ${median(r.dec).toFixed(0)} MB/s | ${(r.size / MB).toFixed(2)} MB (${((100 * r.size) / wal.length).toFixed(1)} %) |`);
  }
  const lib = results.get('liblz4')!;
  const napi = results.get('lz4-napi')!;
  console.log(`same-run ratios liblz4/lz4-napi: compress ${(median(lib.comp) / median(napi.comp)).toFixed(2)}, frame ${(median(lib.frame) / median(napi.frame)).toFixed(2)}, decode ${(median(lib.dec) / median(napi.dec)).toFixed(2)}, size ${(lib.size / napi.size).toFixed(3)}`);
  const sampleFile = join(dir, 'block');
  writeFileSync(sampleFile, blocks[Math.min(1, blocks.length - 1)]!);
  console.log('\nGarbage left (fresh process each, nothing kept, no GC pacing): peak RSS growth');
  console.log('| codec | 64 × compressBlock(4 MiB) | then 500 × encodeFrame(200 KB) |');
  console.log('|---|---|---|');
  for (const [name] of codecs) {
    const out = execFileSync(process.execPath, [...process.execArgv, import.meta.filename, '--garbage', name, sampleFile]).toString();
    const g = JSON.parse(out.trim().split('\n').pop()!) as { blocks: number; frames: number };
    console.log(`| ${name} | +${g.blocks.toFixed(0)} MB | +${g.frames.toFixed(0)} MB in all |`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
