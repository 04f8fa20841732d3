/**
 * Execute a restore plan: snapshot → temp file beside the target, WAL indexes downloaded in
 * parallel (each to its own temp file) and applied strictly in index order, integrity check,
 * fsync, rename into place. Never overwrites an existing file; on any error every temp file
 * is removed and the target is left absent.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { LsinitError, isNotFound } from '../errors.js';
import { decodeFrames } from '../format/lz4.js';
import { hex8, walSegmentName } from '../format/paths.js';
import { nullLogger, type Logger } from '../log/logger.js';
import type { ReplicaClient, WALSegmentInfo } from '../replica/client.js';
import { withRetry } from '../replica/retry.js';
import { applyWALFile, dbPageSize } from './apply.js';
import type { RestorePlan } from './target.js';

export interface ExecuteOptions {
  output: string;
  parallelism?: number;
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
  const gen = plan.generation;
  try {
    log.info('restoring snapshot', { generation: gen, index: hex8(plan.snapshot.index), indexes: plan.indexes.length });
    await withRetry(async () => {
      const fh = await fsp.open(tmp, 'w');
      try {
        const name = `generations/${gen}/snapshots/${hex8(plan.snapshot.index)}.snapshot.lz4`;
        const src = counted(await client.snapshotReader(gen, plan.snapshot.index), (n) => {
          progress.downloaded += n;
          report();
        });
        for await (const chunk of decodeFrames(src, name)) await fh.write(chunk);
        await fh.sync();
      } finally {
        await fh.close();
      }
    });
    const dbFd = openSync(tmp, 'r+');
    let frames = 0;
    try {
      const hdr = Buffer.alloc(100);
      const got = readSync(dbFd, hdr, 0, 100, 0);
      if (got < 100 || hdr.subarray(0, 16).toString('latin1') !== 'SQLite format 3\u0000') {
        throw new LsinitError('LSINIT_ERR_FORMAT', `generations/${gen}/snapshots/${hex8(plan.snapshot.index)}.snapshot.lz4 is not an SQLite database`);
      }
      const pageSize = dbPageSize(hdr);
      // Parallel download, ordered apply: keep at most `parallelism` indexes in flight ahead of the applier.
      const parallelism = Math.max(1, opts.parallelism ?? 8);
      const pending = new Map<number, Promise<string>>();
      const start = (k: number) => {
        const item = plan.indexes[k];
        if (!item || pending.has(k)) return;
        const file = `${tmp}-${hex8(item.index)}.wal`;
        tmpFiles.add(file);
        const p = downloadIndex(client, gen, item.index, item.segments, file, (n) => {
          progress.downloaded += n;
          report();
        });
        p.catch(() => {}); // observed when awaited in order below
        pending.set(k, p);
      };
      for (let k = 0; k < plan.indexes.length; k++) {
        for (let j = k; j < Math.min(plan.indexes.length, k + parallelism); j++) start(j);
        const file = await pending.get(k)!;
        pending.delete(k);
        const item = plan.indexes[k]!;
        const r = applyWALFile(dbFd, file, pageSize, `generation ${gen} WAL index ${hex8(item.index)}`);
        frames += r.frames;
        await fsp.rm(file, { force: true });
        progress.applied++;
        report();
      }
      fsyncSync(dbFd);
      closeSync(dbFd);
      if (opts.integrityCheck ?? true) integrityCheck(tmp);
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
    } catch (err) {
      try {
        closeSync(dbFd);
      } catch {
        /* already closed */
      }
      throw err;
    }
  } finally {
    await Promise.all([...tmpFiles].map((f) => fsp.rm(f, { force: true }).catch(() => {})));
  }
}

/** Decompress one index's segments, in offset order, into `file`; verify they are contiguous. */
async function downloadIndex(client: ReplicaClient, gen: string, index: number, segments: WALSegmentInfo[], file: string, onBytes: (n: number) => void): Promise<string> {
  const fh = await fsp.open(file, 'w');
  try {
    let written = 0;
    for (const seg of segments) {
      const name = `generations/${gen}/wal/${walSegmentName(seg.index, seg.offset)}`;
      if (seg.offset !== written) {
        throw new LsinitError('LSINIT_ERR_FORMAT', `${name}: segment starts at offset ${seg.offset} but the previous segments end at ${written} (a segment is missing or misnamed)`, { fields: { name } });
      }
      // Stream straight into the index file (memory stays at one LZ4 block whatever the
      // segment size); a retry starts the segment over from where it began.
      const start = written;
      written = await withRetry(async () => {
        await fh.truncate(start);
        let pos = start;
        let src;
        try {
          src = await client.walSegmentReader({ generation: gen, index, offset: seg.offset });
        } catch (err) {
          if (isNotFound(err)) throw new LsinitError('LSINIT_ERR_NOT_FOUND', `${name} disappeared during the restore (retention on another host?)`, { cause: err });
          throw err;
        }
        for await (const c of decodeFrames(counted(src, onBytes), name)) {
          await fh.write(c, 0, c.length, pos);
          pos += c.length;
        }
        return pos;
      });
    }
  } finally {
    await fh.close();
  }
  return file;
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
  const db = new Database(path, { fileMustExist: true });
  try {
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
