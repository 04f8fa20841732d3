/**
 * SQLite WAL byte format (https://sqlite.org/fileformat2.html#walformat), pure functions.
 * Header: magic, version 3007000, page size, checkpoint seq, salt-1, salt-2, checksum-1, checksum-2
 * (big-endian fields). Frame header: page number, db size after commit (0 = not a commit),
 * salt-1, salt-2, checksum-1, checksum-2. Checksums are cumulative over the header's first
 * 24 bytes, then each frame's first 8 header bytes and its page.
 */
import { LsinitError } from '../errors.js';

export const WAL_HEADER_SIZE = 32;
export const FRAME_HEADER_SIZE = 24;
const MAGIC_LE = 0x377f0682; // checksums computed on little-endian words
const MAGIC_BE = 0x377f0683; // checksums computed on big-endian words

export interface WALHeader {
  bigEndian: boolean;
  version: number;
  pageSize: number;
  checkpointSeq: number;
  salt1: number;
  salt2: number;
  checksum1: number;
  checksum2: number;
}

export type Checksum = [number, number];

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export function parseWALHeader(b: Uint8Array, name = 'WAL'): WALHeader {
  if (b.length < WAL_HEADER_SIZE) throw walError(`${name}: header is ${b.length} bytes, want 32`);
  const v = new DataView(b.buffer, b.byteOffset, WAL_HEADER_SIZE);
  const magic = v.getUint32(0);
  if (magic !== MAGIC_LE && magic !== MAGIC_BE) throw walError(`${name}: bad WAL magic 0x${magic.toString(16)}`);
  const h: WALHeader = {
    bigEndian: magic === MAGIC_BE,
    version: v.getUint32(4),
    pageSize: v.getUint32(8),
    checkpointSeq: v.getUint32(12),
    salt1: v.getUint32(16),
    salt2: v.getUint32(20),
    checksum1: v.getUint32(24),
    checksum2: v.getUint32(28),
  };
  if (h.pageSize === 1) h.pageSize = 65536; // SQLite stores 64 KiB as 1
  if (h.pageSize < 512 || h.pageSize > 65536 || (h.pageSize & (h.pageSize - 1)) !== 0) {
    throw walError(`${name}: invalid page size ${h.pageSize}`);
  }
  const [c1, c2] = walChecksum(h.bigEndian, [0, 0], b.subarray(0, 24));
  if (c1 !== h.checksum1 || c2 !== h.checksum2) throw new LsinitError('LSINIT_ERR_CHECKSUM', `${name}: WAL header checksum mismatch`, { fields: { name } });
  return h;
}

/** SQLite's WAL checksum: for each pair of 32-bit words (a, b): s0 += a + s1; s1 += b + s0. */
export function walChecksum(bigEndian: boolean, seed: Checksum, data: Uint8Array): Checksum {
  if (data.length % 8 !== 0) throw new Error('walChecksum: length must be a multiple of 8');
  if (!bigEndian && LITTLE_ENDIAN_HOST && data.byteOffset % 4 === 0) {
    // Fast path (the common case on x86/ARM): native-order words through a typed array view.
    const w = new Int32Array(data.buffer, data.byteOffset, data.byteLength >> 2);
    return sumWords(seed, w, 0, w.length);
  }
  let s0 = seed[0];
  let s1 = seed[1];
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const le = !bigEndian;
  for (let i = 0; i < data.length; i += 8) {
    s0 = (s0 + v.getUint32(i, le) + s1) >>> 0;
    s1 = (s1 + v.getUint32(i + 4, le) + s0) >>> 0;
  }
  return [s0, s1];
}

/**
 * The loop in int32 arithmetic (`| 0` wraps like the uint32 sum, same bits): V8 keeps the sums in
 * registers, where `>>> 0` makes values above 2^31 that it boxes, 3-4× slower on a restore's pages.
 */
function sumWords(seed: Checksum, w: Int32Array, from: number, to: number): Checksum {
  let s0 = seed[0] | 0;
  let s1 = seed[1] | 0;
  for (let i = from; i < to; i += 2) {
    s0 = (s0 + w[i]! + s1) | 0;
    s1 = (s1 + w[i + 1]! + s0) | 0;
  }
  return [s0 >>> 0, s1 >>> 0];
}

export interface FrameHeader {
  pgno: number;
  /** Database size in pages after this commit; 0 when the frame is not a commit. */
  commit: number;
  salt1: number;
  salt2: number;
  checksum1: number;
  checksum2: number;
}

export function parseFrameHeader(b: Uint8Array): FrameHeader {
  const v = new DataView(b.buffer, b.byteOffset, FRAME_HEADER_SIZE);
  return {
    pgno: v.getUint32(0),
    commit: v.getUint32(4),
    salt1: v.getUint32(8),
    salt2: v.getUint32(12),
    checksum1: v.getUint32(16),
    checksum2: v.getUint32(20),
  };
}

/**
 * Validate one frame against the header's salts and the running checksum.
 * Returns the new running checksum, or undefined if the frame is not valid (end of the
 * valid WAL: stale frames of an older salt, or a torn write).
 */
export function verifyFrame(h: WALHeader, seed: Checksum, frame: Uint8Array): Checksum | undefined {
  const fh = parseFrameHeader(frame);
  if (fh.salt1 !== h.salt1 || fh.salt2 !== h.salt2) return undefined;
  let c = walChecksum(h.bigEndian, seed, frame.subarray(0, 8));
  c = walChecksum(h.bigEndian, c, frame.subarray(FRAME_HEADER_SIZE));
  if (c[0] !== fh.checksum1 || c[1] !== fh.checksum2) return undefined;
  return c;
}

/**
 * verifyFrame for the frame at byte `off` of `buf` (its page `pageSize` bytes), without a view or
 * copy per frame: restore's hot path, tens of thousands of frames. Same result as
 * verifyFrame(h, seed, buf.subarray(off, off + 24 + pageSize)).
 */
export function verifyFrameAt(h: WALHeader, seed: Checksum, buf: Buffer, off: number, pageSize: number): Checksum | undefined {
  if (buf.readUInt32BE(off + 8) !== h.salt1 || buf.readUInt32BE(off + 12) !== h.salt2) return undefined;
  const at = buf.byteOffset + off;
  let c: Checksum;
  if (!h.bigEndian && LITTLE_ENDIAN_HOST && at % 4 === 0) {
    const w = wordsOf(buf.buffer);
    const first = at >> 2;
    c = sumWords(seed, w, first, first + 2);
    c = sumWords(c, w, first + 6, first + 6 + (pageSize >> 2));
  } else {
    c = walChecksum(h.bigEndian, seed, buf.subarray(off, off + 8));
    c = walChecksum(h.bigEndian, c, buf.subarray(off + FRAME_HEADER_SIZE, off + FRAME_HEADER_SIZE + pageSize));
  }
  if (c[0] !== buf.readUInt32BE(off + 16) || c[1] !== buf.readUInt32BE(off + 20)) return undefined;
  return c;
}

let viewed: ArrayBufferLike | undefined;
let view: Int32Array<ArrayBufferLike> = new Int32Array(0);

/** One word view per underlying buffer (a restore passes the same decode buffers again and again). */
function wordsOf(ab: ArrayBufferLike): Int32Array {
  if (ab !== viewed) {
    view = new Int32Array(ab, 0, ab.byteLength >> 2);
    viewed = ab;
  }
  return view;
}

/** Litestream's frameAlign: the largest offset <= off that ends on a whole frame. */
export function frameAlign(off: number, pageSize: number): number {
  if (off < WAL_HEADER_SIZE) return 0;
  const fs = FRAME_HEADER_SIZE + pageSize;
  return WAL_HEADER_SIZE + Math.floor((off - WAL_HEADER_SIZE) / fs) * fs;
}

function walError(msg: string): LsinitError {
  return new LsinitError('LSINIT_ERR_FORMAT', msg);
}
