/**
 * LZ4 frame format (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md), streaming.
 *
 * Written by hand on top of a block codec (lz4-block.ts: the system's liblz4, or lz4-napi where
 * it is missing) because no registry package offers a streaming frame codec with bounded memory
 * that reads every legal frame: lz4-napi's frame API is whole-buffer only, and the pure-JS
 * packages are slow or unmaintained. Here is only the framing: headers, block sizes,
 * linked-block dictionaries, xxh32 checksums, skippable and legacy frames.
 *
 * We write what Litestream's pierrec/lz4 writes: FLG 0x64 (independent blocks, content
 * checksum), BD 0x70 (4 MiB blocks), so objects start with 04 22 4D 18 64 70 B9.
 */
import { LsinitError } from '../errors.js';
import { ByteReader, type ByteSource } from './bytereader.js';
import { type BlockDecoder, type DecodeBuffers, compressBlock, decompressBlock, formatError, freshDecoder, joinBlocks } from './lz4-block.js';
import { xxh32, xxh32Stream, xxhReady } from './xxh32.js';

export { DecodeBuffers, decodeBuffers } from './lz4-block.js';

const MAGIC = 0x184d2204;
const LEGACY_MAGIC = 0x184c2102;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE_MAGIC = 0x184d2a50;
/** "age-" read little-endian: the start of an age file (`age-encryption.org/v1`). */
const AGE_MAGIC = 0x2d656761;
const LEGACY_BLOCK = 8 << 20;
const WRITE_BLOCK = 4 << 20;
/** The size of the blocks we write: a source read in chunks of this size is compressed without joining. */
export const FRAME_BLOCK_SIZE = WRITE_BLOCK;
const HEADER = Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x64, 0x70, 0xb9]);
const BLOCK_SIZES: Record<number, number> = { 4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20 };

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** One whole frame for a small buffer (WAL segments). */
export async function encodeFrame(data: Uint8Array): Promise<Buffer> {
  await xxhReady();
  const src = asBuffer(data);
  const tail = Buffer.allocUnsafe(8);
  tail.writeUInt32LE(0, 0);
  tail.writeUInt32LE(xxh32(src), 4);
  return joinBlocks(HEADER, src, WRITE_BLOCK, tail);
}

/**
 * Streaming encoder: memory stays at one 4 MiB block whatever the input size (snapshots). A chunk
 * of FRAME_BLOCK_SIZE bytes (or the last chunk) is hashed and compressed into a new buffer before
 * the next is asked for, so a source may read every such chunk into the same buffer.
 */
export async function* encodeFrameStream(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  await xxhReady();
  const hash = xxh32Stream();
  yield HEADER;
  let pending: Buffer[] = [];
  let pendingLen = 0;
  const flush = function* (final: boolean): Generator<Buffer> {
    while (pendingLen >= WRITE_BLOCK || (final && pendingLen > 0)) {
      const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      const take = Math.min(WRITE_BLOCK, all.length);
      yield compressBlock(all.subarray(0, take));
      const rest = all.subarray(take);
      pending = rest.length ? [rest] : [];
      pendingLen = rest.length;
    }
  };
  for await (const chunk of source) {
    const b = asBuffer(chunk);
    hash.update(b);
    pending.push(b);
    pendingLen += b.length;
    yield* flush(false);
  }
  yield* flush(true);
  const tail = Buffer.allocUnsafe(8);
  tail.writeUInt32LE(0, 0);
  tail.writeUInt32LE(hash.digest(), 4);
  yield tail;
}

export interface DecodeOptions {
  /**
   * Decode into these buffers (see decodeBuffers) instead of a new buffer per block: a yielded
   * block stays valid while the next one is decoded (by any decodeFrames sharing them), and is
   * overwritten by the one after. For consumers that write each block out before asking for the
   * one after next (restore).
   */
  into?: DecodeBuffers | undefined;
}

/**
 * Streaming decoder for any legal LZ4 stream: one or more concatenated frames, skippable frames,
 * legacy frames, linked or independent blocks, with or without block/content checksums and
 * content size. Every checksum present is verified. `name` labels errors (the object key).
 */
export async function* decodeFrames(source: AsyncIterable<Uint8Array> | ByteSource, name = 'object', opts: DecodeOptions = {}): AsyncGenerator<Buffer> {
  await xxhReady();
  const r = Symbol.asyncIterator in source ? new ByteReader(source) : source;
  const blocks = opts.into ?? freshDecoder();
  let frames = 0;
  try {
    while (!(await r.eof())) {
      const m = await r.read(4);
      if (!m) throw formatError(`${name}: truncated frame magic`, { name });
      const magic = m.readUInt32LE(0);
      if (magic === MAGIC) {
        yield* decodeFrame(r, name, blocks);
      } else if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
        const sz = await r.read(4);
        if (!sz || !(await r.read(sz.readUInt32LE(0)))) throw formatError(`${name}: truncated skippable frame`, { name });
      } else if (magic === LEGACY_MAGIC) {
        yield* decodeLegacy(r, name);
      } else if (magic === AGE_MAGIC && r.consumed === 4) {
        // Litestream 0.3.10+ age(LZ4(...)): read without identities (e.g. restore from a URL).
        throw new LsinitError('LSINIT_ERR_DECRYPT', `${name}: object is age-encrypted; give the replica's age.identities (restore with -config; a replica URL cannot carry keys)`, { fields: { name } });
      } else {
        throw formatError(`${name}: bad magic number 0x${magic.toString(16).padStart(8, '0')} at byte ${r.consumed - 4} (not an LZ4 frame; encrypted or corrupt?)`, { name });
      }
      frames++;
    }
    if (frames === 0) throw formatError(`${name}: empty object`, { name });
  } finally {
    await r.close();
  }
}

/**
 * Exactly one LZ4 frame from `r`, magic first, leaving `r` just after the frame's last byte
 * (LTX files store each page as a frame followed by more data).
 */
export async function* decodeOneFrame(r: ByteSource, name: string): AsyncGenerator<Buffer> {
  await xxhReady();
  const m = await r.read(4);
  if (!m) throw formatError(`${name}: truncated frame magic`, { name });
  if (m.readUInt32LE(0) !== MAGIC) throw formatError(`${name}: bad magic number 0x${m.readUInt32LE(0).toString(16).padStart(8, '0')} at byte ${r.consumed - 4} (want an LZ4 frame)`, { name });
  yield* decodeFrame(r, name, freshDecoder());
}

async function* decodeFrame(r: ByteSource, name: string, blocks: BlockDecoder): AsyncGenerator<Buffer> {
  const desc = await r.read(2);
  if (!desc) throw formatError(`${name}: truncated frame header`, { name });
  const flg = desc[0]!;
  const bd = desc[1]!;
  if (flg >> 6 !== 1) throw formatError(`${name}: unsupported frame version ${flg >> 6}`, { name });
  if (flg & 0x02 || bd & 0x8f) throw formatError(`${name}: reserved bits set in frame descriptor`, { name });
  const independent = (flg & 0x20) !== 0;
  const blockChecksum = (flg & 0x10) !== 0;
  const hasContentSize = (flg & 0x08) !== 0;
  const contentChecksum = (flg & 0x04) !== 0;
  const hasDictID = (flg & 0x01) !== 0;
  const maxBlock = BLOCK_SIZES[(bd >> 4) & 0x7];
  if (!maxBlock) throw formatError(`${name}: invalid block maximum size code ${(bd >> 4) & 7}`, { name });
  const extra = await r.read((hasContentSize ? 8 : 0) + (hasDictID ? 4 : 0) + 1);
  if (!extra) throw formatError(`${name}: truncated frame header`, { name });
  const headerBytes = Buffer.concat([desc, extra.subarray(0, extra.length - 1)]);
  const hc = (xxh32(headerBytes) >>> 8) & 0xff;
  if (hc !== extra[extra.length - 1]) throw formatError(`${name}: frame header checksum mismatch`, { name });
  if (hasDictID) throw formatError(`${name}: frames needing an external dictionary are not supported`, { name });
  const contentSize = hasContentSize ? extra.readBigUInt64LE(0) : undefined;
  const hash = contentChecksum ? xxh32Stream() : undefined;
  let dict: Buffer | undefined;
  let total = 0n;
  for (;;) {
    const szb = await r.read(4);
    if (!szb) throw formatError(`${name}: truncated (no end mark)`, { name });
    const sz = szb.readUInt32LE(0);
    if (sz === 0) break;
    const stored = (sz & 0x80000000) !== 0;
    const len = sz & 0x7fffffff;
    if (len > maxBlock) throw formatError(`${name}: block of ${len} bytes exceeds the frame's maximum ${maxBlock}`, { name });
    const block = await blocks.read(r, len, maxBlock);
    if (!block) throw formatError(`${name}: truncated block`, { name });
    if (blockChecksum) {
      const c = await r.read(4);
      if (!c) throw formatError(`${name}: truncated block checksum`, { name });
      if (c.readUInt32LE(0) !== xxh32(block)) throw formatError(`${name}: block checksum mismatch`, { name });
    }
    const prev = independent ? undefined : dict;
    const out = blocks.decode(block, stored, maxBlock, prev, name);
    if (!independent) {
      // Linked blocks may reference the previous 64 KiB of output.
      dict = dict && out.length < 65536 ? Buffer.concat([dict, out]).subarray(-65536) : out.subarray(-65536);
    }
    hash?.update(out);
    total += BigInt(out.length);
    yield out;
  }
  if (hash) {
    const c = await r.read(4);
    if (!c) throw formatError(`${name}: truncated content checksum`, { name });
    if (c.readUInt32LE(0) !== hash.digest()) throw new LsinitError('LSINIT_ERR_CHECKSUM', `lz4: ${name}: content checksum mismatch (object corrupt)`, { fields: { name } });
  }
  if (contentSize !== undefined && contentSize !== total) {
    throw formatError(`${name}: content size ${total} differs from the header's ${contentSize}`, { name });
  }
}

async function* decodeLegacy(r: ByteSource, name: string): AsyncGenerator<Buffer> {
  // Legacy frames: 4-byte compressed sizes, 8 MiB blocks, no end mark; they end at EOF or a magic.
  while (!(await r.eof())) {
    const szb = await r.read(4);
    if (!szb) throw formatError(`${name}: truncated legacy block size`, { name });
    const sz = szb.readUInt32LE(0);
    if (sz === MAGIC || sz === LEGACY_MAGIC || (sz & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) {
      throw formatError(`${name}: a frame after a legacy frame is not supported`, { name });
    }
    const block = await r.read(sz);
    if (!block) throw formatError(`${name}: truncated legacy block`, { name });
    yield decompressBlock(block, LEGACY_BLOCK, undefined, name);
  }
}

/** Decode a whole object in memory (small WAL segments). */
export async function decodeAll(data: Uint8Array, name?: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of decodeFrames(once(data), name)) parts.push(p);
  return Buffer.concat(parts);
}

async function* once(data: Uint8Array): AsyncGenerator<Uint8Array> {
  yield data;
}
