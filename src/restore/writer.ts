/**
 * Where a restore's bytes go: the database file, written on the thread pool while the main thread
 * reads, verifies and decodes what comes next (the second core). Writes and truncations take
 * effect in the order queued, so the last write of a page wins as in a checkpoint, and a
 * truncation lands between the same writes as when done at once: writes that do not overlap run
 * together, a write that overlaps an earlier one waits for it, a truncation waits for all before.
 *
 * Queued buffers are views into decoded blocks that get reused (lz4-block.ts DecodeBuffers): after
 * queueing one block's writes, the caller awaits `turn()`, which returns once the previous
 * block's writes are done, so its buffer may take the block after next.
 */
import { ftruncate, ftruncateSync, writev, writevSync } from 'node:fs';
import { promisify } from 'node:util';

/** What WALApplier writes pages through. */
export interface PageSink {
  /** Write `bufs` back to back at byte `pos`. */
  writev(bufs: Buffer[], pos: number): void;
  truncate(size: number): void;
}

/** Writes at once, on this thread (tools and tests that apply a WAL file). */
export function syncSink(fd: number): PageSink {
  return {
    writev: (bufs, pos) => writevAll(bufs, pos, (b, p) => writevSync(fd, b, p)),
    truncate: (size) => ftruncateSync(fd, size),
  };
}

const writevAsync = promisify(writev);
const ftruncateAsync = promisify(ftruncate);

interface Batch {
  writes: { bufs: Buffer[]; pos: number }[];
  /** Byte ranges [start, end) of its writes: a batch's writes never overlap, so they run at once. */
  ranges: [number, number][];
  started: boolean;
}

export class SerialWriter implements PageSink {
  /** The last queued operation; never rejects (a failure is kept in `error`). */
  private tail: Promise<void> = Promise.resolve();
  private failed = false;
  private error: unknown;
  private previous: Promise<void> = Promise.resolve();
  /** Writes queued since the last turn(), truncation or overlap: issued together, in parallel. */
  private open: Batch | undefined;

  constructor(private readonly fd: number) {}

  writev(bufs: Buffer[], pos: number): void {
    const end = pos + bufs.reduce((a, b) => a + b.length, 0);
    let b = this.open;
    // A write overlapping one of the batch waits for the whole batch (the later bytes must win).
    if (!b || b.started || b.ranges.some(([s, e]) => pos < e && s < end)) b = this.batch();
    b.writes.push({ bufs, pos });
    b.ranges.push([pos, end]);
  }

  truncate(size: number): void {
    this.open = undefined;
    this.queue(() => ftruncateAsync(this.fd, size));
  }

  /** After queueing one block's writes: resolves once the block before it is written (or throws the first write error). */
  async turn(): Promise<void> {
    this.open = undefined;
    const prev = this.previous;
    this.previous = this.drained();
    this.previous.catch(() => {}); // observed by the next turn() or drained()
    await prev;
  }

  /** Resolves once everything queued so far is written; rejects with the first error. */
  async drained(): Promise<void> {
    await this.tail;
    if (this.failed) throw this.error;
  }

  /** Waits for what is in flight, whatever its outcome (before closing or removing the file). */
  async settled(): Promise<void> {
    await this.tail;
  }

  /**
   * A new batch, queued after everything before it. Its writes are issued all at once when it
   * starts (one hop through this thread per batch, not per write: this thread is often busy
   * decoding the next block meanwhile).
   */
  private batch(): Batch {
    const b: Batch = { writes: [], ranges: [], started: false };
    this.open = b;
    this.queue(async () => {
      b.started = true;
      const results = await Promise.allSettled(b.writes.map((w) => this.writeAll(w.bufs, w.pos)));
      const bad = results.find((r) => r.status === 'rejected');
      if (bad) throw bad.reason;
    });
    return b;
  }

  private async writeAll(bufs: Buffer[], pos: number): Promise<void> {
    let rest = bufs;
    while (rest.length > 0) {
      const n = (await writevAsync(this.fd, rest, pos)).bytesWritten;
      pos += n;
      rest = advance(rest, n);
    }
  }

  private queue(op: () => Promise<unknown>): void {
    this.tail = this.tail.then(async () => {
      if (this.failed) return;
      try {
        await op();
      } catch (err) {
        this.failed = true;
        this.error = err;
      }
    });
  }
}

/** writev until every byte is written (a short write continues where it stopped). */
function writevAll(bufs: Buffer[], pos: number, write: (b: Buffer[], p: number) => number): void {
  let rest = bufs;
  while (rest.length > 0) {
    const n = write(rest, pos);
    pos += n;
    rest = advance(rest, n);
  }
}

/** `bufs` without its first `n` bytes. */
function advance(bufs: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < bufs.length && n >= bufs[i]!.length) n -= bufs[i++]!.length;
  const rest = bufs.slice(i);
  if (n > 0) rest[0] = rest[0]!.subarray(n);
  return rest;
}
