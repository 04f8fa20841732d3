/**
 * Apply one WAL index (the concatenated, decompressed segments) to a database file: what
 * `PRAGMA wal_checkpoint(TRUNCATE)` does when Litestream restores (reference §4.2 step 8), done
 * directly so every frame is verified and a bad one is an error naming the object, never
 * silently dropped as SQLite's WAL recovery would. Pages are written in frame order (the last
 * write of a page wins) and the file is truncated to the last commit's page count, which gives
 * the same bytes as SQLite's checkpoint (checked against the Litestream vectors).
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { LsinitError } from '../errors.js';
import { FRAME_HEADER_SIZE, WAL_HEADER_SIZE, parseFrameHeader, parseWALHeader, verifyFrame, type Checksum } from '../format/wal.js';

/** Page size from a database header (offset 16, big-endian; 1 means 65536). */
export function dbPageSize(header: Uint8Array): number {
  const v = (header[16]! << 8) | header[17]!;
  return v === 1 ? 65536 : v;
}

export interface ApplyResult {
  frames: number;
  /** Database size in pages after the last commit. */
  pages: number;
}

/**
 * @param dbFd   open read-write descriptor of the database being restored
 * @param walPath file holding the WAL bytes of one index, header first
 * @param label  e.g. `generation 0123…/index 00000002` for error messages
 */
export function applyWALFile(dbFd: number, walPath: string, pageSize: number, label: string): ApplyResult {
  const fd = openSync(walPath, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size < WAL_HEADER_SIZE) throw corrupt(`${label}: WAL is ${size} bytes, shorter than its 32-byte header`);
    const hb = Buffer.alloc(WAL_HEADER_SIZE);
    readSync(fd, hb, 0, WAL_HEADER_SIZE, 0);
    const h = parseWALHeader(hb, label);
    if (h.pageSize !== pageSize) {
      throw corrupt(`${label}: WAL page size ${h.pageSize} differs from the snapshot's ${pageSize}`);
    }
    const frameSize = FRAME_HEADER_SIZE + pageSize;
    if ((size - WAL_HEADER_SIZE) % frameSize !== 0) {
      throw corrupt(`${label}: WAL length ${size} is not the header plus whole ${frameSize}-byte frames (truncated segment?)`);
    }
    const n = (size - WAL_HEADER_SIZE) / frameSize;
    const batch = Math.max(1, Math.floor((4 << 20) / frameSize));
    const buf = Buffer.allocUnsafe(batch * frameSize);
    let sum: Checksum = [h.checksum1, h.checksum2];
    let lastCommit = 0;
    let lastCommitFrame = -1;
    // A commit can only grow the database to pages that exist or that this WAL writes; a frame
    // claiming more (crafted or corrupt, with a valid checksum) must not become a huge sparse file.
    const filePages = Math.floor(fstatSync(dbFd).size / pageSize);
    let maxPage = filePages;
    for (let i = 0; i < n; i += batch) {
      const count = Math.min(batch, n - i);
      const len = count * frameSize;
      let got = 0;
      while (got < len) {
        const r = readSync(fd, buf, got, len - got, WAL_HEADER_SIZE + i * frameSize + got);
        if (r === 0) throw corrupt(`${label}: short read`);
        got += r;
      }
      for (let k = 0; k < count; k++) {
        const frame = buf.subarray(k * frameSize, (k + 1) * frameSize);
        const next = verifyFrame(h, sum, frame);
        if (!next) {
          const fh = parseFrameHeader(frame);
          const why = fh.salt1 !== h.salt1 || fh.salt2 !== h.salt2 ? 'salt mismatch' : 'checksum mismatch';
          throw new LsinitError('LSINIT_ERR_CHECKSUM', `${label}: frame ${i + k} (byte offset ${WAL_HEADER_SIZE + (i + k) * frameSize}): ${why}; the replica object is corrupt`, { fields: { label, frame: i + k } });
        }
        sum = next;
        const fh = parseFrameHeader(frame);
        if (fh.pgno === 0) throw corrupt(`${label}: frame ${i + k} has page number 0`);
        // New pages are appended one frame each, so no frame can address a page beyond the file
        // plus the frames seen so far (else a corrupt pgno would write terabytes away).
        if (fh.pgno > filePages + i + k + 1) {
          throw corrupt(`${label}: frame ${i + k} writes page ${fh.pgno}, beyond the ${filePages}-page database and this WAL's ${i + k + 1} frames`);
        }
        writeAll(dbFd, frame.subarray(FRAME_HEADER_SIZE), (fh.pgno - 1) * pageSize);
        if (fh.pgno > maxPage) maxPage = fh.pgno;
        if (fh.commit > maxPage) {
          throw corrupt(`${label}: frame ${i + k} commits a database of ${fh.commit} pages, but only ${maxPage} exist or were written`);
        }
        if (fh.commit !== 0) {
          lastCommit = fh.commit;
          lastCommitFrame = i + k;
        }
      }
    }
    if (n > 0) {
      if (lastCommitFrame !== n - 1) throw corrupt(`${label}: WAL does not end on a commit frame (last commit at frame ${lastCommitFrame} of ${n})`);
      // SQLite truncates the database to the last commit's size after a complete checkpoint.
      ftruncateSync(dbFd, lastCommit * pageSize);
    }
    return { frames: n, pages: lastCommit };
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, data: Buffer, pos: number): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off, pos + off);
}

function corrupt(msg: string): LsinitError {
  return new LsinitError('LSINIT_ERR_FORMAT', msg);
}
