/**
 * LTX vectors (test/fixtures/litestream-0.5.16-ltx) and a small LTX re-encoder for tests: it
 * rewrites a file's pages as LZ4 frames (what writers before ltx's block format produced) with a
 * correct file checksum, so the frame path is tested on real pages.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Crc64 } from '../../src/format/crc64.js';
import { LTXDecoder } from '../../src/format/ltx-decode.js';
import { LTX_CHECKSUM_FLAG, LTX_HEADER_SIZE } from '../../src/format/ltx.js';
import { encodeFrame } from '../../src/format/lz4.js';

export const LTX_VECTORS = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/litestream-0.5.16-ltx');
export const LTX_SCENARIOS = ['basic', 'compaction', 'pagesize8k'] as const;

export interface LTXCase {
  args: string[];
  sha256?: string;
  refused?: boolean;
  litestream_error?: string;
}

export function loadLTXCases(scenario: string): LTXCase[] {
  return (JSON.parse(readFileSync(resolve(LTX_VECTORS, scenario, 'expected.json'), 'utf8')) as { cases: LTXCase[] }).cases;
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function uvarint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** The same file with every page stored as an LZ4 frame (page flags 0), checksum recomputed. */
export async function rewriteAsFrames(file: Uint8Array, name = 'ltx'): Promise<Buffer> {
  const dec = new LTXDecoder(Readable.from([file]), name);
  await dec.readHeader();
  const header = Buffer.from(file.subarray(0, LTX_HEADER_SIZE));
  const hash = new Crc64().update(header);
  const parts: Buffer[] = [header];
  const index: Buffer[] = [];
  let offset = LTX_HEADER_SIZE;
  for await (const p of dec.pages()) {
    const ph = Buffer.alloc(6);
    ph.writeUInt32BE(p.pgno, 0);
    const frame = await encodeFrame(p.data);
    hash.update(ph).update(p.data);
    parts.push(ph, frame);
    index.push(uvarint(p.pgno), uvarint(offset), uvarint(6 + frame.length));
    offset += 6 + frame.length;
  }
  const end = Buffer.alloc(6);
  index.push(uvarint(0));
  const idx = Buffer.concat(index);
  const idxSize = Buffer.alloc(8);
  idxSize.writeBigUInt64BE(BigInt(idx.length));
  const post = Buffer.alloc(8); // flags 0x2: no post-apply checksum
  hash.update(end).update(idx).update(idxSize).update(post);
  const sum = Buffer.alloc(8);
  sum.writeBigUInt64BE(hash.digest() | LTX_CHECKSUM_FLAG);
  return Buffer.concat([...parts, end, idx, idxSize, post, sum]);
}
