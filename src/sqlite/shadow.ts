/**
 * The shadow WAL: Litestream's local copy of each WAL "lifetime" (index) holding only whole
 * committed transactions, verified frame by frame (reference §2.3–2.4, copyToShadowWAL).
 * Synchronous I/O on purpose: a copy then runs to completion without another task of this
 * process (a replica upload) seeing a half-appended transaction, and memory stays at one chunk
 * whatever the transaction size.
 */
import { endianness } from 'node:os';
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { FRAME_HEADER_SIZE, WAL_HEADER_SIZE, parseFrameHeader, parseWALHeader, verifyFrame, type Checksum, type WALHeader } from '../format/wal.js';

const CHUNK_FRAMES = 256;

/**
 * One copy buffer for the whole thread, grown to the largest page size seen: copies are
 * synchronous and never overlap, and a fresh 1 MiB buffer per chunk (80 of them per second under a
 * saturating writer) left the RSS tens of MB above the live data until V8 got round to freeing them.
 */
let copyBuf = Buffer.alloc(0);
function copyBuffer(len: number): Buffer {
  if (copyBuf.length < len) copyBuf = Buffer.allocUnsafe(len);
  return copyBuf;
}

export function readExact(fd: number, len: number, pos: number): Buffer | undefined {
  const b = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const r = readSync(fd, b, got, len - got, pos + got);
    if (r === 0) return undefined;
    got += r;
  }
  return b;
}

export function writeExact(fd: number, b: Buffer, pos: number): void {
  let off = 0;
  while (off < b.length) off += writeSync(fd, b, off, b.length - off, pos + off);
}

export function fileSize(path: string): number {
  try {
    const fd = openSync(path, 'r');
    try {
      return fstatSync(fd).size;
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return -1;
    throw err;
  }
}

export function readWALHeaderFile(path: string): Buffer | undefined {
  if (!existsSync(path)) return undefined;
  const fd = openSync(path, 'r');
  try {
    return readExact(fd, WAL_HEADER_SIZE, 0);
  } finally {
    closeSync(fd);
  }
}

/**
 * State of a shadow file after verification: the header, the running checksum after the last
 * committed frame, and the committed size. A torn tail (crash mid-copy) is cut off.
 */
export interface ShadowState {
  header: WALHeader;
  headerBytes: Buffer;
  checksum: Checksum;
  size: number;
  /** Bytes of the last frame (header + page) or undefined when the file holds only the header. */
  lastFrame: Buffer | undefined;
  /** Appended to since the last fsync. */
  dirty?: boolean;
}

/** fsync a shadow file before its bytes go to a replica or it stops being the current index. */
export function syncShadowFile(st: ShadowState, path: string): void {
  if (!st.dirty) return;
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  st.dirty = false;
}

/** Scan a shadow file, truncating anything after the last valid commit frame. */
export function openShadow(path: string): ShadowState | undefined {
  if (!existsSync(path)) return undefined;
  const fd = openSync(path, 'r+');
  try {
    const size = fstatSync(fd).size;
    const hb = size >= WAL_HEADER_SIZE ? readExact(fd, WAL_HEADER_SIZE, 0) : undefined;
    if (!hb) return undefined;
    let header: WALHeader;
    try {
      header = parseWALHeader(hb, path);
    } catch {
      return undefined;
    }
    const fs = FRAME_HEADER_SIZE + header.pageSize;
    let sum: Checksum = [header.checksum1, header.checksum2];
    let committed = WAL_HEADER_SIZE;
    let committedSum = sum;
    let lastFrame: Buffer | undefined;
    let lastCommitFrame: Buffer | undefined;
    for (let off = WAL_HEADER_SIZE; off + fs <= size; off += fs) {
      const f = readExact(fd, fs, off)!;
      const next = verifyFrame(header, sum, f);
      if (!next) break;
      sum = next;
      lastFrame = f;
      if (parseFrameHeader(f).commit !== 0) {
        committed = off + fs;
        committedSum = sum;
        lastCommitFrame = lastFrame;
      }
    }
    if (committed !== size) {
      ftruncateSync(fd, committed);
      fsyncSync(fd);
    }
    return { header, headerBytes: hb, checksum: committedSum, size: committed, lastFrame: lastCommitFrame };
  } finally {
    closeSync(fd);
  }
}

/** Start a shadow file from the real WAL's header, then copy its committed frames. */
export function initShadow(shadowPath: string, walPath: string): ShadowState | undefined {
  const hb = readWALHeaderFile(walPath);
  if (!hb) return undefined;
  const header = parseWALHeader(hb, walPath);
  const fd = openSync(shadowPath, 'w');
  try {
    writeExact(fd, hb, 0);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  const st: ShadowState = { header, headerBytes: hb, checksum: [header.checksum1, header.checksum2], size: WAL_HEADER_SIZE, lastFrame: undefined };
  copyToShadow(st, shadowPath, walPath);
  return st;
}

/**
 * Append the real WAL's new committed frames (same salts, valid checksum chain) to the shadow.
 * Returns the number of bytes appended. Stops at the first invalid frame, EOF or partial frame,
 * and only keeps whole transactions (up to the last commit frame).
 */
export function copyToShadow(st: ShadowState, shadowPath: string, walPath: string): number {
  let wfd: number;
  try {
    wfd = openSync(walPath, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const sfd = openSync(shadowPath, 'r+');
  try {
    const fs = FRAME_HEADER_SIZE + st.header.pageSize;
    const walSize = fstatSync(wfd).size;
    let readOff = st.size;
    let writeOff = st.size;
    let sum = st.checksum;
    let committedEnd = st.size;
    let committedSum = sum;
    let lastCommitFrame = st.lastFrame;
    const buf = copyBuffer(CHUNK_FRAMES * fs);
    outer: while (readOff + fs <= walSize) {
      const n = Math.min(CHUNK_FRAMES, Math.floor((walSize - readOff) / fs));
      let got = 0;
      while (got < n * fs) {
        const r = readSync(wfd, buf, got, n * fs - got, readOff + got);
        if (r === 0) break;
        got += r;
      }
      const frames = Math.floor(got / fs);
      if (frames === 0) break;
      let valid = 0;
      let commitInChunk = -1;
      let broken = false;
      for (let k = 0; k < frames; k++) {
        const f = buf.subarray(k * fs, (k + 1) * fs);
        const next = verifyFrame(st.header, sum, f);
        if (!next) {
          broken = true;
          break;
        }
        sum = next;
        valid++;
        if (f.readUInt32BE(4) !== 0) {
          committedEnd = writeOff + valid * fs;
          committedSum = sum;
          commitInChunk = k;
        }
      }
      // Copy the last commit frame once per chunk, not once per transaction.
      if (commitInChunk >= 0) lastCommitFrame = Buffer.from(buf.subarray(commitInChunk * fs, (commitInChunk + 1) * fs));
      if (broken) {
        if (valid) writeExact(sfd, buf.subarray(0, valid * fs), writeOff);
        writeOff += valid * fs;
        break outer;
      }
      writeExact(sfd, buf.subarray(0, valid * fs), writeOff);
      writeOff += valid * fs;
      readOff += valid * fs;
      if (frames < n) break;
    }
    if (writeOff !== committedEnd) ftruncateSync(sfd, committedEnd);
    const added = committedEnd - st.size;
    // No fsync here: the real WAL still holds these frames until we checkpoint, and a torn tail
    // is cut off by openShadow(). The shadow is fsynced before its bytes are shipped
    // (syncShadowFile), so the replica never holds frames the local shadow could lose.
    if (added > 0) st.dirty = true;
    st.size = committedEnd;
    st.checksum = committedSum;
    st.lastFrame = lastCommitFrame;
    return added;
  } finally {
    closeSync(sfd);
    closeSync(wfd);
  }
}

const WAL_INDEX_HEADER_SIZE = 48;
const LITTLE_ENDIAN = endianness() === 'LE';

/**
 * The WAL-index header at the start of -shm (wal.c WalIndexHdr): SQLite keeps two copies and a
 * writer updates the second, then the first; copies that differ are a torn read (undefined, the
 * caller looks again). Integers are in native byte order; the salts are the WAL header's bytes
 * 16..24 copied as they are. undefined also before the index is initialised.
 */
export function readWALIndexHeader(fd: number): { mxFrame: number; salt: Buffer } | undefined {
  const b = Buffer.allocUnsafe(2 * WAL_INDEX_HEADER_SIZE);
  let got: number;
  try {
    got = readSync(fd, b, 0, b.length, 0);
  } catch {
    return undefined;
  }
  if (got < b.length) return undefined;
  const h1 = b.subarray(0, WAL_INDEX_HEADER_SIZE);
  if (!h1.equals(b.subarray(WAL_INDEX_HEADER_SIZE)) || h1[12] === 0) return undefined; // torn, or isInit == 0
  return { mxFrame: LITTLE_ENDIAN ? h1.readUInt32LE(16) : h1.readUInt32BE(16), salt: Buffer.from(h1.subarray(32, 40)) };
}
