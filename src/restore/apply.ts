/**
 * Apply one WAL index (its segments' decompressed bytes, header first) to a database file: what
 * `PRAGMA wal_checkpoint(TRUNCATE)` does when Litestream restores (reference §4.2 step 8), done
 * directly so every frame is verified and a bad one is an error naming the object, never
 * silently dropped as SQLite's WAL recovery would. Pages are written in frame order (the last
 * write of a page wins) and the file is truncated to the last commit's page count, which gives
 * the same bytes as SQLite's checkpoint (checked against the Litestream vectors).
 *
 * Streaming: bytes are pushed in chunks of any size as they are decompressed, so memory stays at
 * one frame (carried across chunks) whatever the index's size, and the WAL never goes to a
 * temporary file. Runs of consecutive pages (a transaction's new pages usually are) are written
 * with one writev of views into the pushed chunk, so no page is copied in JavaScript; they go
 * through a PageSink (a restore queues them on the thread pool, see writer.ts).
 * `mark()`/`rewind()` let a caller retry a segment from its start.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { LsinitError } from '../errors.js';
import { FRAME_HEADER_SIZE, WAL_HEADER_SIZE, parseFrameHeader, parseWALHeader, verifyFrameAt, type Checksum, type WALHeader } from '../format/wal.js';
import { syncSink, type PageSink } from './writer.js';

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

const RUN_BYTES = 4 << 20;
/** Linux's limit on the buffers of one writev. */
const IOV_MAX = 1024;

interface State {
  header: WALHeader | undefined;
  sum: Checksum;
  frames: number;
  lastCommit: number;
  lastCommitFrame: number;
  maxPage: number;
}

/** A saved position to `rewind()` to (a segment's start, for a retry). */
export interface Mark {
  readonly state: Readonly<State>;
  /** Bytes of an incomplete header or frame carried to the next chunk. */
  readonly partial: Buffer;
}

export class WALApplier {
  private s: State;
  /** Pages in the file before this index: no frame may address a page beyond it plus the frames seen. */
  private readonly filePages: number;
  private readonly frameSize: number;
  private carry: Buffer;
  private carried = 0;
  /** Pending run of consecutive pages: views into the pushed chunk, written with one writev. */
  private run: Buffer[] = [];
  private runFirst = 0;

  private readonly sink: PageSink;

  /**
   * @param dbFd  open read-write descriptor of the database being restored
   * @param label e.g. `generation 0123…/index 00000002` for error messages
   * @param opts  `sink`: where pages and the final truncation go (default: written at once to
   *              dbFd); `filePages`: the database's size in pages before this index (default: the
   *              file's, which queued writes may not have reached yet)
   */
  constructor(dbFd: number, private readonly pageSize: number, private readonly label: string, opts: { sink?: PageSink; filePages?: number } = {}) {
    this.frameSize = FRAME_HEADER_SIZE + pageSize;
    this.sink = opts.sink ?? syncSink(dbFd);
    this.filePages = opts.filePages ?? Math.floor(fstatSync(dbFd).size / pageSize);
    this.carry = Buffer.allocUnsafe(this.frameSize);
    this.s = { header: undefined, sum: [0, 0], frames: 0, lastCommit: 0, lastCommitFrame: -1, maxPage: this.filePages };
  }

  /** Verify and apply the next bytes of the WAL. */
  push(chunk: Buffer): void {
    let off = 0;
    if (this.carried > 0 || this.s.header === undefined) {
      const want = this.s.header === undefined ? WAL_HEADER_SIZE : this.frameSize;
      const take = Math.min(want - this.carried, chunk.length);
      chunk.copy(this.carry, this.carried, 0, take);
      this.carried += take;
      off = take;
      if (this.carried < want) return;
      this.carried = 0;
      if (this.s.header === undefined) this.startHeader(this.carry.subarray(0, WAL_HEADER_SIZE));
      else {
        this.frame(this.carry, 0);
        // Its page may be written after this returns (a queued sink): the next carry is another buffer.
        this.carry = Buffer.allocUnsafe(this.frameSize);
      }
    }
    for (; off + this.frameSize <= chunk.length; off += this.frameSize) this.frame(chunk, off);
    // The run holds views into `chunk` and `carry`: written before either is reused.
    this.flush();
    if (off < chunk.length) {
      chunk.copy(this.carry, 0, off);
      this.carried = chunk.length - off;
    }
  }

  /** The position after everything pushed so far (pending page writes are flushed first). */
  mark(): Mark {
    this.flush();
    return { state: { ...this.s }, partial: Buffer.from(this.carry.subarray(0, this.carried)) };
  }

  /** Forget everything pushed since `m`; pages already written are rewritten by the retry. */
  rewind(m: Mark): void {
    this.run = [];
    this.s = { ...m.state };
    m.partial.copy(this.carry, 0);
    this.carried = m.partial.length;
  }

  /** Check the index ended on a commit and truncate the database to that commit's size. */
  finish(): ApplyResult {
    this.flush();
    if (this.s.header === undefined) throw corrupt(`${this.label}: WAL is ${this.carried} bytes, shorter than its 32-byte header`);
    if (this.carried > 0) throw corrupt(`${this.label}: WAL length ${WAL_HEADER_SIZE + this.s.frames * this.frameSize + this.carried} is not the header plus whole ${this.frameSize}-byte frames (truncated segment?)`);
    const n = this.s.frames;
    if (n > 0) {
      if (this.s.lastCommitFrame !== n - 1) throw corrupt(`${this.label}: WAL does not end on a commit frame (last commit at frame ${this.s.lastCommitFrame} of ${n})`);
      // SQLite truncates the database to the last commit's size after a complete checkpoint.
      this.sink.truncate(this.s.lastCommit * this.pageSize);
    }
    return { frames: n, pages: this.s.lastCommit };
  }

  private startHeader(hb: Buffer): void {
    const h = parseWALHeader(hb, this.label);
    if (h.pageSize !== this.pageSize) throw corrupt(`${this.label}: WAL page size ${h.pageSize} differs from the snapshot's ${this.pageSize}`);
    this.s.header = h;
    this.s.sum = [h.checksum1, h.checksum2];
  }

  /** The frame at byte `off` of `buf`. */
  private frame(buf: Buffer, off: number): void {
    const s = this.s;
    const h = s.header!;
    const i = s.frames;
    const next = verifyFrameAt(h, s.sum, buf, off, this.pageSize);
    if (!next) {
      const fh = parseFrameHeader(buf.subarray(off, off + FRAME_HEADER_SIZE));
      // A frame of another WAL (salt) or a damaged one: frames are checked as they stream in, before
      // a segment's length is known, so a missing or misnamed segment shows up here too.
      const why = fh.salt1 !== h.salt1 || fh.salt2 !== h.salt2 ? 'salt mismatch (a frame of another WAL)' : 'checksum mismatch';
      throw new LsinitError('LSINIT_ERR_CHECKSUM', `${this.label}: frame ${i} (byte offset ${WAL_HEADER_SIZE + i * this.frameSize}): ${why}; the replica object is corrupt, or a segment is missing or misnamed`, { fields: { label: this.label, frame: i } });
    }
    s.sum = next;
    const fh = { pgno: buf.readUInt32BE(off), commit: buf.readUInt32BE(off + 4) };
    if (fh.pgno === 0) throw corrupt(`${this.label}: frame ${i} has page number 0`);
    // New pages are appended one frame each, so no frame can address a page beyond the file
    // plus the frames seen so far (else a corrupt pgno would write terabytes away).
    if (fh.pgno > this.filePages + i + 1) {
      throw corrupt(`${this.label}: frame ${i} writes page ${fh.pgno}, beyond the ${this.filePages}-page database and this WAL's ${i + 1} frames`);
    }
    this.page(fh.pgno, buf.subarray(off + FRAME_HEADER_SIZE, off + this.frameSize));
    if (fh.pgno > s.maxPage) s.maxPage = fh.pgno;
    if (fh.commit > s.maxPage) {
      throw corrupt(`${this.label}: frame ${i} commits a database of ${fh.commit} pages, but only ${s.maxPage} exist or were written`);
    }
    if (fh.commit !== 0) {
      s.lastCommit = fh.commit;
      s.lastCommitFrame = i;
    }
    s.frames++;
  }

  /** Queue a page write, coalescing runs of consecutive pages into one writev (no copy). */
  private page(pgno: number, data: Buffer): void {
    const cap = Math.max(1, Math.min(IOV_MAX, Math.floor(RUN_BYTES / this.pageSize)));
    const n = this.run.length;
    if (n > 0 && (pgno !== this.runFirst + n || n === cap)) this.flush();
    if (this.run.length === 0) this.runFirst = pgno;
    this.run.push(data);
  }

  private flush(): void {
    if (this.run.length === 0) return;
    this.sink.writev(this.run, (this.runFirst - 1) * this.pageSize);
    this.run = [];
  }
}

/**
 * @param dbFd   open read-write descriptor of the database being restored
 * @param walPath file holding the WAL bytes of one index, header first
 * @param label  e.g. `generation 0123…/index 00000002` for error messages
 */
export function applyWALFile(dbFd: number, walPath: string, pageSize: number, label: string): ApplyResult {
  const fd = openSync(walPath, 'r');
  try {
    const a = new WALApplier(dbFd, pageSize, label);
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let pos = 0; ; ) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) break;
      a.push(buf.subarray(0, n));
      pos += n;
    }
    return a.finish();
  } finally {
    closeSync(fd);
  }
}

function corrupt(msg: string): LsinitError {
  return new LsinitError('LSINIT_ERR_FORMAT', msg);
}
