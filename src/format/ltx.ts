/**
 * Litestream 0.5's LTX files (superfly/ltx, format version 3, as ltx v0.5.2 writes them for
 * Litestream 0.5.16): a 100-byte header, page frames, a page index, a 16-byte trailer; integers
 * big-endian. Pure functions over bytes; the streaming decoder is in `ltx-decode.ts`.
 *
 *   header  LTX1 | flags u32 | pageSize u32 | commit u32 | minTXID u64 | maxTXID u64 |
 *           timestamp u64 (ms) | preApplyChecksum u64 | walOffset u64 | walSize u64 |
 *           walSalt1 u32 | walSalt2 u32 | nodeID u64 | 20 reserved
 *   page    pgno u32 | flags u16 | [size u32 when flags & 1] | LZ4 block, or an LZ4 frame when not
 *   end     6 zero bytes, then the page index (uvarint pgno, offset, size…; 0; u64 length)
 *   trailer postApplyChecksum u64 | fileChecksum u64 (CRC-64/ISO | 1<<63)
 */
import { LsinitError } from '../errors.js';

export const LTX_HEADER_SIZE = 100;
export const LTX_PAGE_HEADER_SIZE = 6;
export const LTX_TRAILER_SIZE = 16;
/** Header flag: no database (pre/post-apply) checksums; the only valid flag (ltx.go HeaderFlagMask). */
export const LTX_FLAG_NO_CHECKSUM = 0x2;
/** Page flag: a u32 compressed size and an LZ4 block follow (v0.5.2's encoder always sets it). */
export const LTX_PAGE_FLAG_SIZE = 0x1;
/** Checksums carry their top bit set so that a valid one is never zero (ltx.go ChecksumFlag). */
export const LTX_CHECKSUM_FLAG = 1n << 63n;
/** Snapshots live at this level; 0 holds one file per sync, 1–8 compactions (Litestream 0.5). */
export const LTX_SNAPSHOT_LEVEL = 9;

export interface LTXHeader {
  flags: number;
  pageSize: number;
  /** Database size in pages after applying the file. */
  commit: number;
  minTXID: bigint;
  maxTXID: bigint;
  /** Milliseconds since the Unix epoch. */
  timestamp: number;
  preApplyChecksum: bigint;
  walOffset: bigint;
  walSize: bigint;
  walSalt1: number;
  walSalt2: number;
  nodeID: bigint;
}

export interface LTXTrailer {
  postApplyChecksum: bigint;
  fileChecksum: bigint;
}

function bad(name: string, what: string): LsinitError {
  return new LsinitError('LSINIT_ERR_FORMAT', `${name}: ${what} (not an LTX file, or a corrupt one)`, { fields: { name } });
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Parse and validate a header as ltx's Header.Validate does. */
export function parseLTXHeader(b: Uint8Array, name: string): LTXHeader {
  if (b.length < LTX_HEADER_SIZE) throw bad(name, `header is ${b.length} bytes, want ${LTX_HEADER_SIZE}`);
  if (b[0] !== 0x4c || b[1] !== 0x54 || b[2] !== 0x58 || b[3] !== 0x31) throw bad(name, 'bad magic (want "LTX1")');
  const v = view(b);
  const h: LTXHeader = {
    flags: v.getUint32(4),
    pageSize: v.getUint32(8),
    commit: v.getUint32(12),
    minTXID: v.getBigUint64(16),
    maxTXID: v.getBigUint64(24),
    timestamp: Number(v.getBigInt64(32)),
    preApplyChecksum: v.getBigUint64(40),
    walOffset: v.getBigInt64(48),
    walSize: v.getBigInt64(56),
    walSalt1: v.getUint32(64),
    walSalt2: v.getUint32(68),
    nodeID: v.getBigUint64(72),
  };
  if ((h.flags & ~LTX_FLAG_NO_CHECKSUM) !== 0) throw bad(name, `invalid header flags 0x${h.flags.toString(16).padStart(8, '0')}`);
  if (!isValidPageSize(h.pageSize)) throw bad(name, `invalid page size ${h.pageSize}`);
  if (h.minTXID === 0n || h.maxTXID === 0n) throw bad(name, 'minimum and maximum transaction ids are required');
  if (h.minTXID > h.maxTXID) throw bad(name, `transaction ids out of order (${formatTXID(h.minTXID)} > ${formatTXID(h.maxTXID)})`);
  if (h.walOffset < 0n || h.walSize < 0n) throw bad(name, 'negative WAL offset or size');
  if (h.preApplyChecksum !== 0n && (isSnapshot(h) || noChecksum(h))) throw bad(name, 'pre-apply checksum set on a snapshot or a file without checksums');
  if (h.preApplyChecksum === 0n && !isSnapshot(h) && !noChecksum(h)) throw bad(name, 'pre-apply checksum missing');
  return h;
}

/** A file whose range starts at TXID 1 holds every page of the database (ltx Header.IsSnapshot). */
export function isSnapshot(h: LTXHeader): boolean {
  return h.minTXID === 1n;
}

export function noChecksum(h: LTXHeader): boolean {
  return (h.flags & LTX_FLAG_NO_CHECKSUM) !== 0;
}

export function isValidPageSize(n: number): boolean {
  return n >= 512 && n <= 65536 && (n & (n - 1)) === 0;
}

/** The page holding SQLite's pending byte (offset 0x40000000): never stored, restored as zeros. */
export function lockPgno(pageSize: number): number {
  return Math.floor(0x40000000 / pageSize) + 1;
}

export function parseLTXPageHeader(b: Uint8Array): { pgno: number; flags: number } {
  const v = view(b);
  return { pgno: v.getUint32(0), flags: v.getUint16(4) };
}

export function parseLTXTrailer(b: Uint8Array, h: LTXHeader, name: string): LTXTrailer {
  const v = view(b);
  const t = { postApplyChecksum: v.getBigUint64(0), fileChecksum: v.getBigUint64(8) };
  if (noChecksum(h) ? t.postApplyChecksum !== 0n : (t.postApplyChecksum & LTX_CHECKSUM_FLAG) === 0n) {
    throw bad(name, 'invalid post-apply checksum in the trailer');
  }
  if ((t.fileChecksum & LTX_CHECKSUM_FLAG) === 0n) throw bad(name, 'file checksum missing from the trailer');
  return t;
}

const FILENAME_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.ltx$/;

/** `<minTXID %016x>-<maxTXID %016x>.ltx`, as ltx.ParseFilename accepts it (lowercase hex). */
export function parseLTXFilename(name: string): { minTXID: bigint; maxTXID: bigint } | undefined {
  const m = FILENAME_RE.exec(name);
  if (!m) return undefined;
  return { minTXID: BigInt(`0x${m[1]}`), maxTXID: BigInt(`0x${m[2]}`) };
}

export function formatTXID(t: bigint): string {
  return t.toString(16).padStart(16, '0');
}

export function ltxFilename(minTXID: bigint, maxTXID: bigint): string {
  return `${formatTXID(minTXID)}-${formatTXID(maxTXID)}.ltx`;
}

/** Key of an LTX file relative to the replica root: `ltx/<level>/<min>-<max>.ltx`. */
export function ltxKey(level: number, minTXID: bigint, maxTXID: bigint): string {
  return `ltx/${level}/${ltxFilename(minTXID, maxTXID)}`;
}

/** `ltx/<level>/<name>` back into its parts, or undefined for any other key. */
export function parseLTXKey(key: string): { level: number; minTXID: bigint; maxTXID: bigint } | undefined {
  const m = /^ltx\/([0-9])\/([^/]+)$/.exec(key);
  if (!m) return undefined;
  const r = parseLTXFilename(m[2]!);
  return r ? { level: Number(m[1]), ...r } : undefined;
}

/** A TXID as Litestream 0.5's `-txid` flag takes it: exactly 16 hex digits (ltx.ParseTXID). */
export function parseTXIDFlag(s: string): bigint | undefined {
  return /^[0-9a-fA-F]{16}$/.test(s) ? BigInt(`0x${s}`) : undefined;
}

/** ltx.IsContiguous: a file may overlap what came before, but must start no later than the next TXID. */
export function isContiguous(prevMax: bigint, minTXID: bigint, maxTXID: bigint): boolean {
  return minTXID <= prevMax + 1n && maxTXID > prevMax;
}
