/**
 * Where the pages of one follower transaction come from: the frames of a batch of WAL segments
 * (spooled to a temp file, the last frame of each page wins) or a whole database image (a new
 * generation's snapshot, restored beside the follower). Both are read on demand, so a large
 * transaction costs disk, not memory.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { LsinitError } from '../errors.js';

export interface PageSource {
  pageSize: number;
  /** Database size in pages after the transaction. */
  pages: number;
  /** Page numbers that may differ from the follower's, ascending. */
  candidates(): Iterable<number>;
  /** New content of page `pgno` (one of the candidates). */
  read(pgno: number): Buffer;
}

export function readExactly(fd: number, len: number, pos: number, what: string): Buffer {
  const b = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const r = readSync(fd, b, got, len - got, pos + got);
    if (r === 0) throw new LsinitError('LSINIT_ERR_FORMAT', `${what}: short read at byte ${pos + got}`);
    got += r;
  }
  return b;
}

/** Pages at known offsets of an open file (the spooled frames of a WAL batch). */
export class FramePages implements PageSource {
  constructor(
    readonly pageSize: number,
    readonly pages: number,
    private readonly fd: number,
    /** pgno → byte offset of the page data (after the frame header) in `fd`. */
    private readonly offsets: Map<number, number>,
  ) {}

  candidates(): Iterable<number> {
    return [...this.offsets.keys()].filter((p) => p <= this.pages).sort((a, b) => a - b);
  }

  read(pgno: number): Buffer {
    const off = this.offsets.get(pgno);
    if (off === undefined) throw new Error(`page ${pgno} is not in this batch`);
    return readExactly(this.fd, this.pageSize, off, 'spooled WAL frames');
  }
}

/** Every page of a database file (a restored snapshot). Owns the descriptor: call close(). */
export class ImagePages implements PageSource {
  readonly pages: number;
  private readonly fd: number;

  constructor(
    private readonly path: string,
    readonly pageSize: number,
  ) {
    this.fd = openSync(path, 'r');
    this.pages = Math.floor(fstatSync(this.fd).size / pageSize);
  }

  *candidates(): Iterable<number> {
    for (let p = 1; p <= this.pages; p++) yield p;
  }

  read(pgno: number): Buffer {
    return readExactly(this.fd, this.pageSize, (pgno - 1) * this.pageSize, this.path);
  }

  close(): void {
    closeSync(this.fd);
  }
}
