/**
 * Restore a Litestream 0.5 (LTX) replica: the plan's files are streamed one after the other into
 * a temp file beside the target, each page written at its offset (a later file's page replaces an
 * earlier one), then the file is cut to the last file's commit size. That gives the bytes of
 * Litestream's own restore (ltx.Compactor merging the same files, then DecodeDatabaseTo), without
 * holding every input open at once. Every file's CRC-64 is verified before the result is used;
 * integrity check, fsync and rename as the 0.3 path does.
 */
import { closeSync, fsyncSync, ftruncateSync, openSync, statSync, writeSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { dirname } from 'node:path';
import { LsinitError, isNotFound } from '../errors.js';
import { LTXDecoder } from '../format/ltx-decode.js';
import { formatTXID, isContiguous, lockPgno } from '../format/ltx.js';
import { nullLogger } from '../log/logger.js';
import type { ReplicaClient } from '../replica/client.js';
import { withRetry } from '../replica/retry.js';
import type { LTXFileInfo } from './ltx-plan.js';
import { counted, fsyncDir, integrityCheck, outputExists, removeSidecars, tempBeside, type ExecuteOptions, type RestoreResult } from './restore.js';

/**
 * Which pages hold data: every page up to `prefix`, plus the few above it (pages that survive a
 * shrink and regrow). A bitmap would cost a bit per page of a terabyte database; this costs only
 * the exceptions.
 */
class Coverage {
  prefix = 0;
  private readonly above = new Set<number>();
  constructor(private readonly lock: number) {}

  add(pgno: number): void {
    if (pgno <= this.prefix) return;
    if (pgno !== this.prefix + 1) {
      this.above.add(pgno);
      return;
    }
    this.prefix = pgno;
    for (;;) {
      const next = this.prefix + 1;
      if (next === this.lock) this.prefix = next;
      else if (this.above.delete(next)) this.prefix = next;
      else return;
    }
  }
}

/** Coalesce consecutive pages into one write of up to 1 MiB. */
class PageWriter {
  private buf: Buffer;
  private len = 0;
  private start = 0;
  private next = 0;
  constructor(private readonly fd: number, private readonly pageSize: number) {
    this.buf = Buffer.allocUnsafe(Math.max(pageSize, 1 << 20));
  }

  write(pgno: number, data: Buffer): void {
    if (this.len > 0 && (pgno !== this.next || this.len + this.pageSize > this.buf.length)) this.flush();
    if (this.len === 0) this.start = pgno;
    data.copy(this.buf, this.len);
    this.len += this.pageSize;
    this.next = pgno + 1;
  }

  flush(): void {
    let off = 0;
    const pos = (this.start - 1) * this.pageSize;
    while (off < this.len) off += writeSync(this.fd, this.buf, off, this.len - off, pos + off);
    this.len = 0;
  }
}

export interface LTXRestoreResult extends RestoreResult {
  /** TXID the database was restored to. */
  txid: string;
}

export async function executeLTXRestore(client: ReplicaClient, plan: LTXFileInfo[], opts: ExecuteOptions): Promise<LTXRestoreResult> {
  const log = opts.log ?? nullLogger;
  const output = opts.output;
  if (await outputExists(output)) {
    throw new LsinitError('LSINIT_ERR_EXISTS', `cannot restore, output path already exists: ${output} (move it away, or pass -if-db-not-exists to skip)`, { fields: { path: output } });
  }
  await fsp.mkdir(dirname(output), { recursive: true });
  const tmp = tempBeside(output);
  const total = plan.reduce((a, f) => a + f.size, 0);
  const progress = { downloaded: 0, total, applied: 0, indexes: plan.length };
  const last = plan[plan.length - 1]!;
  log.info('restoring LTX replica', { files: plan.length, snapshot: plan[0]!.key, txid: formatTXID(last.maxTXID) });
  let fd = openSync(tmp, 'wx');
  try {
    let pageSize = 0;
    let commit = 0;
    let prevMax = 0n;
    let pages = 0;
    let coverage: Coverage | undefined;
    for (const f of plan) {
      await withRetry(async () => {
        let src;
        try {
          src = await client.objectReader(f.key);
        } catch (err) {
          if (isNotFound(err)) throw new LsinitError('LSINIT_ERR_NOT_FOUND', `${f.key} disappeared during the restore (compaction or retention on the source?)`, { cause: err, fields: { key: f.key } });
          throw err;
        }
        const start = progress.downloaded;
        const dec = new LTXDecoder(counted(src, (n) => {
          progress.downloaded += n;
          opts.onProgress?.({ ...progress });
        }), f.key);
        try {
          const h = await dec.readHeader();
          if (h.minTXID !== f.minTXID || h.maxTXID !== f.maxTXID) {
            throw new LsinitError('LSINIT_ERR_FORMAT', `${f.key}: header holds TXIDs ${formatTXID(h.minTXID)}-${formatTXID(h.maxTXID)}, not those of its name`, { fields: { key: f.key } });
          }
          if (pageSize === 0) {
            pageSize = h.pageSize;
            coverage = new Coverage(lockPgno(pageSize));
          } else if (h.pageSize !== pageSize) {
            throw new LsinitError('LSINIT_ERR_FORMAT', `${f.key}: page size ${h.pageSize} differs from the snapshot's ${pageSize}`, { fields: { key: f.key } });
          } else if (!isContiguous(prevMax, h.minTXID, h.maxTXID)) {
            throw new LsinitError('LSINIT_ERR_FORMAT', `${f.key}: TXIDs ${formatTXID(h.minTXID)}-${formatTXID(h.maxTXID)} do not continue ${formatTXID(prevMax)}`, { fields: { key: f.key } });
          }
          const w = new PageWriter(fd, pageSize);
          for await (const p of dec.pages()) {
            w.write(p.pgno, p.data);
            coverage!.add(p.pgno);
            pages++;
          }
          w.flush();
          commit = h.commit;
          prevMax = h.maxTXID;
        } catch (err) {
          progress.downloaded = start;
          throw err;
        } finally {
          await dec.close();
          src.destroy();
        }
      });
      progress.applied++;
      opts.onProgress?.({ ...progress });
    }
    // Pages past the final commit size are dropped, as the compactor drops them.
    ftruncateSync(fd, commit * pageSize);
    const lock = lockPgno(pageSize);
    if (lock <= commit) writeSync(fd, Buffer.alloc(pageSize), 0, pageSize, (lock - 1) * pageSize);
    if (coverage!.prefix < commit) {
      throw new LsinitError('LSINIT_ERR_FORMAT', `the LTX files up to ${last.key} hold no page ${coverage!.prefix + 1} of the ${commit}-page database (a file is missing or corrupt)`, { fields: { key: last.key, pgno: coverage!.prefix + 1 } });
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = -1;
    if (opts.integrityCheck ?? true) integrityCheck(tmp);
    await removeSidecars(tmp);
    const size = statSync(tmp).size;
    if (await outputExists(output)) {
      throw new LsinitError('LSINIT_ERR_EXISTS', `cannot restore, output path appeared during the restore: ${output}`, { fields: { path: output } });
    }
    await fsp.rename(tmp, output);
    await fsyncDir(dirname(output));
    log.info('restore complete', { output, txid: formatTXID(last.maxTXID), size, files: plan.length });
    return { output, size, pageSize, walIndexes: plan.length, frames: pages, txid: formatTXID(last.maxTXID) };
  } finally {
    if (fd >= 0) closeSync(fd);
    await Promise.all([tmp, `${tmp}-wal`, `${tmp}-shm`, `${tmp}-journal`].map((p) => fsp.rm(p, { force: true }).catch(() => {})));
  }
}
