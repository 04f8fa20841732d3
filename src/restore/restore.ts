/**
 * Execute a restore plan: snapshot → temp file beside the target, then each WAL index streamed,
 * decompressed, verified and applied in index order (small ones fetched ahead in parallel, see
 * fetch.ts), fsyncs in the background as the file grows and one at the end (the integrity check
 * runs meanwhile), rename into place. Never overwrites an existing file; on any error the temp
 * file is removed and the target is left absent.
 */
import { randomBytes } from 'node:crypto';
import { readSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { LsinitError } from '../errors.js';
import type { ByteSource } from '../format/bytereader.js';
import { decodeBuffers, decodeFrames, type DecodeOptions } from '../format/lz4.js';
import { hex8, walSegmentName } from '../format/paths.js';
import { nullLogger, type Logger } from '../log/logger.js';
import type { ReplicaClient } from '../replica/client.js';
import { withRetry } from '../replica/retry.js';
import { openDatabase } from '../sqlite/driver.js';
import { gcPacer } from '../util/memory.js';
import { WALApplier, dbPageSize } from './apply.js';
import { Prefetcher, openSegment, type IndexItem } from './fetch.js';
import { SerialWriter } from './writer.js';
import type { RestorePlan } from './target.js';

export interface ExecuteOptions {
  output: string;
  parallelism?: number;
  /** Compressed bytes of small WAL indexes fetched ahead, at most (default 8 MiB; 0: stream every index in its turn). */
  prefetchBytes?: number;
  /** Run PRAGMA integrity_check on the result before renaming it into place (default true). */
  integrityCheck?: boolean;
  log?: Logger;
  onProgress?: (p: RestoreProgress) => void;
}

export interface RestoreProgress {
  /** Stored bytes downloaded so far / in total. */
  downloaded: number;
  total: number;
  /** WAL indexes applied / in total. */
  applied: number;
  indexes: number;
}

export interface RestoreResult {
  output: string;
  size: number;
  pageSize: number;
  walIndexes: number;
  frames: number;
}

export async function outputExists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** A fresh temp name beside `output` (same directory, so the final rename is atomic). */
export function tempBeside(output: string): string {
  return join(dirname(output), `.${basename(output)}.lsinit-restore-${randomBytes(4).toString('hex')}`);
}

export async function executeRestore(client: ReplicaClient, plan: RestorePlan, opts: ExecuteOptions): Promise<RestoreResult> {
  const log = opts.log ?? nullLogger;
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  const output = opts.output;
  if (await outputExists(output)) {
    throw new LsinitError('LSINIT_ERR_EXISTS', `cannot restore, output path already exists: ${output} (move it away, or pass -if-db-not-exists to skip)`, { fields: { path: output } });
  }
  const dir = dirname(output);
  await fsp.mkdir(dir, { recursive: true });
  const tmp = tempBeside(output);
  const tmpFiles = new Set<string>([tmp, `${tmp}-wal`, `${tmp}-shm`, `${tmp}-journal`]);
  const total = plan.snapshot.size + plan.indexes.reduce((a, x) => a + x.segments.reduce((b, s) => b + s.size, 0), 0);
  const progress: RestoreProgress = { downloaded: 0, total, applied: 0, indexes: plan.indexes.length };
  const report = () => opts.onProgress?.({ ...progress });
  // Garbage is collected every few MiB (see util/memory.ts). With lz4-napi it is every decoded
  // block; with liblz4 blocks are decoded into reused buffers and only the stored bytes read are.
  const into = decodeBuffers();
  const reuse = into !== undefined;
  /** Every decoded block is written out (or copied) before the one after next is decoded. */
  const dec: DecodeOptions = { into };
  const collect = gcPacer(reuse ? GC_EVERY_STORED : GC_EVERY);
  const decoded = reuse ? () => {} : collect;
  const onBytes = (n: number) => {
    progress.downloaded += n;
    if (reuse) collect(n);
    report();
  };
  /** Bytes read into the decoder's own buffers: progress, but no garbage to collect. */
  const onRead = (n: number) => {
    progress.downloaded += n;
    report();
  };
  const gen = plan.generation;
  const fh = await fsp.open(tmp, 'w+');
  const writer = new SerialWriter(fh.fd);
  const flush = new WriteBack(fh, WRITE_BACK_EVERY);
  try {
    log.info('restoring snapshot', { generation: gen, index: hex8(plan.snapshot.index), indexes: plan.indexes.length });
    const snapName = `generations/${gen}/snapshots/${hex8(plan.snapshot.index)}.snapshot.lz4`;
    let snapBytes = 0;
    await withRetry(async () => {
      await writer.settled(); // a failed attempt's writes are done before starting over
      writer.truncate(0);
      // Each block is written on the thread pool while the next is read, checked and decoded.
      let pos = 0;
      for await (const chunk of decodeFrames(await snapshotInput(client, gen, plan.snapshot.index, onBytes, onRead), snapName, dec)) {
        writer.writev([chunk], pos);
        pos += chunk.length;
        decoded(chunk.length);
        await writer.turn();
      }
      await writer.drained();
      snapBytes = pos;
    });
    log.debug('snapshot written', { ms: ms() });
    flush.wrote(Infinity); // the snapshot goes to disk while the WAL is applied
    const hdr = Buffer.alloc(100);
    const got = readSync(fh.fd, hdr, 0, 100, 0);
    if (got < 100 || hdr.subarray(0, 16).toString('latin1') !== 'SQLite format 3\u0000') {
      throw new LsinitError('LSINIT_ERR_FORMAT', `${snapName} is not an SQLite database`);
    }
    const pageSize = dbPageSize(hdr);
    const ahead = new Prefetcher(client, gen, plan.indexes, { parallelism: Math.max(1, opts.parallelism ?? 8), budget: opts.prefetchBytes ?? PREFETCH_BUDGET, onBytes });
    const ctx: ApplyContext = { client, gen, onBytes, decoded, dec, writer };
    let frames = 0;
    // Pages and truncations are queued (writer), so each index is told the size the file will have.
    let pages = Math.floor(snapBytes / pageSize);
    for (let k = 0; k < plan.indexes.length; k++) {
      ahead.ahead(k);
      const item = plan.indexes[k]!;
      const applier = new WALApplier(fh.fd, pageSize, `generation ${gen} WAL index ${hex8(item.index)}`, { sink: writer, filePages: pages });
      await applyIndex(ctx, item, applier, await ahead.take(k), k === plan.indexes.length - 1 ? plan.endOffset : undefined);
      const applied = applier.finish();
      if (applied.frames > 0) pages = applied.pages;
      frames += applied.frames;
      flush.wrote(applied.frames * pageSize);
      progress.applied++;
      report();
    }
    await writer.drained();
    log.debug('WAL applied', { ms: ms(), frames });
    // The final fsync runs on the thread pool while the integrity check reads the file through
    // SQLite on this thread: the bytes are final, and both must pass before the rename.
    const synced = flush.final();
    synced.catch(() => {}); // awaited below
    if (opts.integrityCheck ?? true) {
      integrityCheck(tmp);
      log.debug('integrity checked', { ms: ms() });
    }
    await synced;
    await fh.close();
    log.debug('synced', { ms: ms() });
    await removeSidecars(tmp);
    const st = await fsp.stat(tmp);
    if (await outputExists(output)) {
      throw new LsinitError('LSINIT_ERR_EXISTS', `cannot restore, output path appeared during the restore: ${output}`, { fields: { path: output } });
    }
    await fsp.rename(tmp, output);
    tmpFiles.delete(tmp);
    await fsyncDir(dir);
    log.info('restore complete', { output, generation: gen, size: st.size, wal_indexes: plan.indexes.length });
    return { output, size: st.size, pageSize, walIndexes: plan.indexes.length, frames };
  } finally {
    await writer.settled();
    await flush.settled();
    await fh.close().catch(() => {});
    await Promise.all([...tmpFiles].map((f) => fsp.rm(f, { force: true }).catch(() => {})));
  }
}

/**
 * Starts fsyncs in the background as the restored file grows (one at a time), so the one that
 * matters, at the end, finds little left to write back. Nothing is renamed into place before
 * final() resolves; an error of any of them fails the restore there.
 */
class WriteBack {
  private last: Promise<void> = Promise.resolve();
  private busy = false;
  private since = 0;

  constructor(private readonly fh: fsp.FileHandle, private readonly every: number) {}

  wrote(bytes: number): void {
    this.since += bytes;
    if (this.busy || this.since < this.every) return;
    this.since = 0;
    this.busy = true;
    const prev = this.last;
    this.last = this.fh.datasync().then(() => prev, (err: unknown) => prev.then(() => Promise.reject(err)));
    this.last.catch(() => {}).finally(() => (this.busy = false));
  }

  /** After the last write: the fsync that makes the whole file durable. */
  async final(): Promise<void> {
    await this.last;
    await this.fh.sync();
  }

  /** Wait for whatever is in flight, ignoring its outcome (before closing the file on an error). */
  async settled(): Promise<void> {
    await this.last.catch(() => {});
  }
}

/** Bytes written between two background fsyncs. */
const WRITE_BACK_EVERY = 32 << 20;
/** Compressed bytes fetched ahead are bounded by this (indexes larger are streamed in their turn). */
const PREFETCH_BUDGET = 8 << 20;
/** Decompressed bytes between two garbage collections during a restore. */
const GC_EVERY = 16 << 20;
/** Stored bytes read between two collections when decoded blocks are no garbage. */
const GC_EVERY_STORED = 8 << 20;

interface ApplyContext {
  client: ReplicaClient;
  gen: string;
  onBytes: (n: number) => void;
  decoded: (n: number) => void;
  dec: DecodeOptions;
  writer: SerialWriter;
}

/**
 * Decompress one index's segments, in offset order, straight into the applier; verify they are
 * contiguous. A segment not fetched ahead is streamed (memory stays at one LZ4 block whatever its
 * size); a retry rewinds the applier to the segment's start. With `limit` (a position inside the
 * index, RestorePlan.endOffset) only the bytes before it are applied; the rest of its segment is
 * still read, so its checksums are still verified.
 */
async function applyIndex(c: ApplyContext, item: IndexItem, applier: WALApplier, fetched: Buffer[] | undefined, limit?: number): Promise<void> {
  let written = 0;
  for (const [j, seg] of item.segments.entries()) {
    const name = `generations/${c.gen}/wal/${walSegmentName(seg.index, seg.offset)}`;
    if (seg.offset !== written) {
      throw new LsinitError('LSINIT_ERR_FORMAT', `${name}: segment starts at offset ${seg.offset} but the previous segments end at ${written} (a segment is missing or misnamed)`, { fields: { name } });
    }
    const buf = fetched?.[j];
    if (buf) {
      written += await feed(c, decodeFrames(once(buf), name, c.dec), applier, name, (limit ?? Infinity) - seg.offset);
      continue;
    }
    const mark = applier.mark();
    written += await withRetry(async () => {
      try {
        return await feed(c, decodeFrames(counted(await openSegment(c.client, c.gen, item.index, seg), c.onBytes), name, c.dec), applier, name, (limit ?? Infinity) - seg.offset);
      } catch (err) {
        // The retry decodes into the buffers the queued writes read from: let them finish first.
        await c.writer.settled();
        applier.rewind(mark);
        throw err;
      }
    });
  }
  if (limit !== undefined && written < limit) {
    throw new LsinitError('LSINIT_ERR_NOT_FOUND', `generation ${c.gen} WAL index ${hex8(item.index)}: the replica holds ${written} bytes, not the ${limit} asked for`, { fields: { generation: c.gen, index: item.index } });
  }
}

/** Push a segment's decompressed bytes into the applier; its refusals name the segment. */
async function feed(c: ApplyContext, src: AsyncIterable<Buffer>, applier: WALApplier, name: string, cap: number): Promise<number> {
  let n = 0;
  for await (const chunk of src) {
    try {
      if (n + chunk.length <= cap) applier.push(chunk);
      else if (n < cap) applier.push(chunk.subarray(0, cap - n));
    } catch (err) {
      if (err instanceof LsinitError) throw new LsinitError(err.code, `${name}: ${err.message}`, { fields: { ...err.fields, name }, cause: err });
      throw err;
    }
    n += chunk.length;
    c.decoded(chunk.length);
    await c.writer.turn();
  }
  return n;
}

/** A snapshot the client reads into the decoder's buffers (a file), else its stored stream. */
async function snapshotInput(client: ReplicaClient, gen: string, index: number, onBytes: (n: number) => void, onRead: (n: number) => void): Promise<AsyncIterable<Buffer> | ByteSource> {
  return (await client.snapshotSource?.(gen, index, onRead)) ?? counted(await client.snapshotReader(gen, index), onBytes);
}

async function* once(b: Buffer): AsyncGenerator<Buffer> {
  yield b;
}

/**
 * Count bytes as they are consumed. (Not a 'data' listener: that switches the stream to flowing
 * mode, and chunks emitted before the decoder attaches its iterator would be lost.)
 */
export async function* counted(src: AsyncIterable<Buffer>, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const c of src) {
    onBytes(c.length);
    yield c;
  }
}

export function integrityCheck(path: string): void {
  // SQLite is loaded here only (openDatabase): `restore -no-integrity-check` never pays for better-sqlite3.
  const db = openDatabase(path, { fileMustExist: true });
  try {
    // The file was just written, so its pages are in the OS page cache: a small SQLite cache
    // stays in the CPU's caches and checks a 171 MB database ~30 % faster than the 2 MB default.
    db.pragma('cache_size = -256');
    const rows = db.pragma('integrity_check') as { integrity_check: string }[];
    const result = rows.map((r) => r.integrity_check).join('\n');
    if (result !== 'ok') {
      throw new LsinitError('LSINIT_ERR_INTEGRITY', `restored database fails PRAGMA integrity_check: ${result.slice(0, 500)}`);
    }
  } finally {
    db.close();
  }
}

export async function removeSidecars(p: string): Promise<void> {
  for (const s of ['-wal', '-shm', '-journal']) await fsp.rm(`${p}${s}`, { force: true });
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
