/**
 * The database as it stands at one position of a shadow WAL index: the database file with that
 * index's frames up to the position laid over it (the newest frame of each page wins), cut to the
 * last commit's page count. These are the bytes SQLite's checkpoint of those frames would leave in
 * the file, and the bytes a restore to that position writes (restore/apply.ts).
 *
 * Why not the file alone: while lsinit holds its read transaction, any connection's checkpoint
 * (the app's autocheckpoint, its last close) may still back-fill frames up to lsinit's read mark
 * into the file, also while a snapshot reads it, so a plain copy can be old in its first part and
 * new in the rest. Every page such a checkpoint can write is in the shadow index up to the
 * position (the position is taken after a copy of the WAL that followed the read lock), so
 * the overlay hides them all; every other page of the file does not change while the read
 * transaction lasts (a read mark of 0, reading the file only, keeps checkpoints out altogether).
 * A replay of this index from offset 0 up to any offset at or after the position gives the same
 * pages again, so the snapshot stays a valid start for Litestream's restore.
 *
 * Memory: the frame index (4 bytes per database page, built at the first read) and one run of
 * pages (1 MiB).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import { LsinitError } from '../errors.js';
import { FRAME_HEADER_SIZE, WAL_HEADER_SIZE, parseWALHeader } from '../format/wal.js';
import { readExact } from './shadow.js';

const RUN_BYTES = 1 << 20;
const SCAN_FRAMES = 256;

export interface Image {
  /** Bytes the stream yields: the page count at the position times the page size. */
  size: number;
  stream: Readable;
}

/**
 * Stream the database at `walLen` bytes of the shadow index `shadowPath`. `dbFd` is the database's
 * long-lived descriptor (not closed here); `onClose` runs once when the stream ends or is destroyed.
 */
export function imageAt(dbFd: number, shadowPath: string, walLen: number, onClose: () => void = () => {}): Image {
  const fd = openSync(shadowPath, 'r');
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    closeSync(fd);
    onClose();
  };
  let pageSize: number;
  let frameSize: number;
  let frames: number;
  let pages: number;
  try {
    pageSize = parseWALHeader(readAt(fd, WAL_HEADER_SIZE, 0, shadowPath), shadowPath).pageSize;
    frameSize = FRAME_HEADER_SIZE + pageSize;
    frames = (walLen - WAL_HEADER_SIZE) / frameSize;
    if (!Number.isInteger(frames) || frames < 0) throw new LsinitError('LSINIT_ERR_DB', `${shadowPath}: position ${walLen} is not the end of a frame`);
    if (frames > 0) {
      // The shadow holds whole transactions only: the frame before the position is a commit,
      // and its commit field is the database's size in pages.
      pages = readAt(fd, FRAME_HEADER_SIZE, walLen - frameSize, shadowPath).readUInt32BE(4);
      if (pages === 0) throw new LsinitError('LSINIT_ERR_DB', `${shadowPath}: position ${walLen} is not at a commit`);
    } else {
      pages = Math.floor(fstatSync(dbFd).size / pageSize);
    }
  } catch (err) {
    close();
    throw err;
  }
  let latest: Uint32Array | undefined;
  let next = 1;
  const stream = new Readable({
    highWaterMark: RUN_BYTES,
    read() {
      try {
        if (next > pages) {
          this.push(null);
          return;
        }
        latest ??= frameIndex(fd, frames, frameSize, pages);
        const n = Math.min(Math.max(1, Math.floor(RUN_BYTES / pageSize)), pages - next + 1);
        const b = Buffer.allocUnsafe(n * pageSize);
        // Past the file's end (it grew only in the WAL, or a checkpoint truncated it): zeros, as SQLite reads them.
        b.fill(0, readFully(dbFd, b, 0, b.length, (next - 1) * pageSize));
        for (let i = 0; i < n; i++) {
          const k = latest[next + i]!;
          if (k === 0) continue;
          if (readFully(fd, b, i * pageSize, pageSize, WAL_HEADER_SIZE + (k - 1) * frameSize + FRAME_HEADER_SIZE) !== pageSize) {
            throw new LsinitError('LSINIT_ERR_DB', `${shadowPath}: short read of frame ${k - 1}`);
          }
        }
        next += n;
        this.push(b);
      } catch (err) {
        this.destroy(err as Error);
      }
    },
    destroy(err, cb) {
      close();
      cb(err);
    },
  });
  return { size: pages * pageSize, stream };
}

/** For each page number up to `pages`, 1 + the number of its newest frame, or 0 when no frame holds it. */
function frameIndex(fd: number, frames: number, frameSize: number, pages: number): Uint32Array {
  const latest = new Uint32Array(pages + 1);
  const buf = Buffer.allocUnsafe(SCAN_FRAMES * frameSize);
  for (let k = 0; k < frames; k += SCAN_FRAMES) {
    const n = Math.min(SCAN_FRAMES, frames - k);
    if (readFully(fd, buf, 0, n * frameSize, WAL_HEADER_SIZE + k * frameSize) !== n * frameSize) {
      throw new LsinitError('LSINIT_ERR_DB', `short read of the shadow WAL at frame ${k}`);
    }
    for (let i = 0; i < n; i++) {
      const pgno = buf.readUInt32BE(i * frameSize);
      // A page past the final size belongs to a part of the database a later commit cut off.
      if (pgno >= 1 && pgno <= pages) latest[pgno] = k + i + 1;
    }
  }
  return latest;
}

function readFully(fd: number, b: Buffer, off: number, len: number, pos: number): number {
  let got = 0;
  while (got < len) {
    const r = readSync(fd, b, off + got, len - got, pos + got);
    if (r === 0) break;
    got += r;
  }
  return got;
}

function readAt(fd: number, len: number, pos: number, path: string): Buffer {
  const b = readExact(fd, len, pos);
  if (!b) throw new LsinitError('LSINIT_ERR_DB', `${path}: short read at byte ${pos}`);
  return b;
}
