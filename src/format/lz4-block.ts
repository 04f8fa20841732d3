/**
 * LZ4 blocks, under the frames of lz4.ts: the system's liblz4 (lz4-native.ts, through koffi)
 * where it loads, else lz4-napi (lz4_flex). lz4-napi is loaded on first use only, so a process
 * with liblz4 never maps it: its addon costs the replication worker ~4.5 MB of RSS and 3–7 ms of
 * start-up, while koffi's addon loads in ~1.4 ms (util/koffi.ts) and liblz4 in a fraction of that.
 *
 * Compressing with liblz4 writes each block straight behind its frame size field, in a buffer
 * with room for LZ4_COMPRESSBOUND: one allocation per block, no copy. Buffers past glibc's
 * (fixed) mmap threshold are mapped, so the room a block does not use is never touched, never
 * resident. The two codecs write different (equally valid) blocks; the framing around them is
 * the same.
 */
import { createRequire } from 'node:module';
import { LsinitError } from '../errors.js';
import type { ByteSource } from './bytereader.js';
import { nativeLZ4, type NativeLZ4 } from './lz4-native.js';

export function formatError(msg: string, fields: Record<string, unknown> = {}): LsinitError {
  return new LsinitError('LSINIT_ERR_FORMAT', `lz4: ${msg}`, { fields });
}

type Napi = typeof import('lz4-napi');
let napi: Napi | undefined;

function lz4napi(): Napi {
  if (!napi) {
    try {
      napi = createRequire(import.meta.url)('lz4-napi') as Napi;
    } catch (err) {
      throw new Error(`lz4: neither the system's liblz4.so.1 nor the lz4-napi package could be loaded (${(err as Error).message}); install liblz4 (e.g. the liblz4-1 or lz4-libs package)`, { cause: err });
    }
  }
  return napi;
}

/** The frame's size field plus LZ4_COMPRESSBOUND(n) (lz4.h): what a block of n bytes may need. */
function blockRoom(n: number): number {
  return 4 + n + Math.floor(n / 255) + 16;
}

/** Size field and block of `raw` at `out[at..]` (room: blockRoom); returns where it ends. */
function writeBlock(native: NativeLZ4, raw: Buffer, out: Buffer, at: number): number {
  const n = native.compress(raw, out.subarray(at + 4));
  if (n <= 0 || n >= raw.length) {
    out.writeUInt32LE((raw.length | 0x80000000) >>> 0, at); // stored block
    raw.copy(out, at + 4);
    return at + 4 + raw.length;
  }
  out.writeUInt32LE(n, at);
  return at + 4 + n;
}

/**
 * lz4_flex's output buffer holds the block behind its own 4-byte size prefix, which becomes the
 * size field: no second buffer. A block that does not shrink is stored raw, copied into that
 * same buffer, which is then larger than the input.
 */
function compressNapi(raw: Buffer): Buffer {
  const out = lz4napi().compressSync(raw);
  if (out.length - 4 >= raw.length) {
    out.writeUInt32LE((raw.length | 0x80000000) >>> 0, 0);
    raw.copy(out, 4);
    return out.subarray(0, 4 + raw.length);
  }
  out.writeUInt32LE(out.length - 4, 0);
  return out;
}

/** `raw` as one frame block, size field first, in a new buffer (a block that does not shrink is stored). */
export function compressBlock(raw: Buffer): Buffer {
  const native = nativeLZ4();
  if (!native) return compressNapi(raw);
  const out = Buffer.allocUnsafe(blockRoom(raw.length));
  return out.subarray(0, writeBlock(native, raw, out, 0));
}

/** `head`, the blocks of `src` cut every `blockSize` bytes, then `tail`: one buffer, written in place with liblz4. */
export function joinBlocks(head: Buffer, src: Buffer, blockSize: number, tail: Buffer): Buffer {
  const native = nativeLZ4();
  const pieces: Buffer[] = [];
  for (let off = 0; off < src.length; off += blockSize) pieces.push(src.subarray(off, off + blockSize));
  if (!native) return Buffer.concat([head, ...pieces.map(compressNapi), tail]);
  const out = Buffer.allocUnsafe(head.length + pieces.reduce((n, p) => n + blockRoom(p.length), 0) + tail.length);
  let at = head.copy(out);
  for (const p of pieces) at = writeBlock(native, p, out, at);
  at += tail.copy(out, at);
  return out.subarray(0, at);
}

/**
 * The largest output a compressed block of `len` bytes can decode to: LZ4's best case is a match
 * extended by one 255 per input byte, so a fresh buffer need not be a whole block for a small one.
 */
function decodedBound(len: number, max: number): number {
  return Math.min(max, len * 255);
}

/** One block decoded into a new buffer; `dict` is the output just before it (linked blocks). */
export function decompressBlock(block: Buffer, maxSize: number, dict: Buffer | undefined, name: string): Buffer {
  const native = nativeLZ4();
  if (native) return decodeNative(native, block, maxSize, dict, name);
  const framed = Buffer.allocUnsafe(4 + block.length);
  block.copy(framed, 4);
  return decodeNapi(framed, maxSize, dict, name);
}

function decodeNative(native: NativeLZ4, block: Buffer, max: number, dict: Buffer | undefined, name: string): Buffer {
  const out = Buffer.allocUnsafe(decodedBound(block.length, max));
  const n = native.decompress(block, out, dict);
  if (n < 0) throw corrupt(block, max, n, name);
  return out.subarray(0, n);
}

function corrupt(block: Buffer, max: number, n: number, name: string): LsinitError {
  return formatError(`${name}: corrupt compressed block (malformed at byte ${-n - 1} of ${block.length}, or larger than the frame's ${max}-byte blocks)`, { name });
}

/** lz4-napi's uncompress wants lz4_flex's size-prepended format, in `framed`'s first 4 bytes; the size is an upper bound. */
function decodeNapi(framed: Buffer, maxSize: number, dict: Buffer | undefined, name: string): Buffer {
  framed.writeUInt32LE(maxSize, 0);
  try {
    const { uncompressSync } = lz4napi();
    return dict && dict.length > 0 ? uncompressSync(framed, dict) : uncompressSync(framed);
  } catch (err) {
    throw formatError(`${name}: corrupt compressed block (${(err as Error).message})`, { name });
  }
}

/** Where a frame's compressed blocks are read to and decoded into (lz4.ts decodeFrame). */
export interface BlockDecoder {
  /** The next `len` bytes of `r`: one compressed block of a frame whose blocks hold at most `max`. */
  read(r: ByteSource, len: number, max: number): Promise<Buffer | undefined>;
  /** A block from read() decoded (or, stored, taken as it is); `dict` as for decompressBlock. */
  decode(block: Buffer, stored: boolean, max: number, dict: Buffer | undefined, name: string): Buffer;
}

/** Each block in a new buffer, by liblz4 where it loads, else by lz4-napi. */
export function freshDecoder(): BlockDecoder {
  const native = nativeLZ4();
  return native ? new FreshNative(native) : NAPI_DECODER;
}

class FreshNative implements BlockDecoder {
  constructor(private readonly native: NativeLZ4) {}

  read(r: ByteSource, len: number): Promise<Buffer | undefined> {
    return r.readPrefixed(len, 0); // a copy of its own: a stored block is handed out as it is
  }

  decode(block: Buffer, stored: boolean, max: number, dict: Buffer | undefined, name: string): Buffer {
    return stored ? block : decodeNative(this.native, block, max, dict, name);
  }
}

const NAPI_DECODER: BlockDecoder = {
  // Read behind 4 bytes of room for lz4_flex's size prefix: one copy instead of two.
  read: async (r, len) => (await r.readPrefixed(len, 4))?.subarray(4),
  decode: (block, stored, max, dict, name) => (stored ? block : decodeNapi(Buffer.from(block.buffer, block.byteOffset - 4, block.length + 4), max, dict, name)),
};

/**
 * Output buffers decoded blocks go to, two used in turn (the block a consumer may still be
 * writing out, and the next being decoded), plus one for a compressed block that arrives in
 * pieces. Allocated once, at the largest block size seen. liblz4 only.
 */
export class DecodeBuffers implements BlockDecoder {
  private readonly outs: Buffer[] = [];
  private turn = 0;
  private scratch: Buffer | undefined;

  constructor(private readonly native: NativeLZ4) {}

  /** Where a compressed block of at most `max` bytes may be assembled (valid until the next call). */
  input(max: number): Buffer {
    if (!this.scratch || this.scratch.length < max) this.scratch = Buffer.allocUnsafe(max);
    return this.scratch;
  }

  read(r: ByteSource, len: number, max: number): Promise<Buffer | undefined> {
    return r.read(len, this.input(max));
  }

  /** `block` decoded (or copied, when stored) into the next buffer of the ring. */
  decode(block: Buffer, stored: boolean, max: number, dict: Buffer | undefined, name: string): Buffer {
    this.turn ^= 1;
    let out = this.outs[this.turn];
    if (!out || out.length < max) this.outs[this.turn] = out = Buffer.allocUnsafe(max);
    if (stored) {
      block.copy(out);
      return out.subarray(0, block.length);
    }
    const n = this.native.decompress(block, out.subarray(0, max), dict);
    if (n < 0) throw corrupt(block, max, n, name);
    return out.subarray(0, n);
  }
}

/** Buffers to decode a whole restore into, or undefined where liblz4 is missing (lz4-napi allocates). */
export function decodeBuffers(): DecodeBuffers | undefined {
  const native = nativeLZ4();
  return native ? new DecodeBuffers(native) : undefined;
}
