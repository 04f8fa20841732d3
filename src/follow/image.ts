/**
 * A complete copy of a replica's generation built beside the follower: the snapshot restored
 * with the ordinary restore (verified, integrity-checked), then every WAL segment after it
 * applied straight into the file (no one else has it open). Used for the first restore (renamed
 * into place) and to move to a new generation or past a gap (applied to the live copy as one
 * transaction).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { LsinitError } from '../errors.js';
import { hex8 } from '../format/paths.js';
import type { Logger } from '../log/logger.js';
import type { ReplicaClient } from '../replica/client.js';
import { dbPageSize } from '../restore/apply.js';
import { executeRestore } from '../restore/restore.js';
import type { RestorePlan } from '../restore/target.js';
import { writePagesDirect } from './apply.js';
import { readExactly } from './pages.js';
import type { Cursor } from './state.js';
import { listAfter, spoolBatch } from './tail.js';

export interface Image {
  path: string;
  pageSize: number;
  cursor: Cursor;
  /** Newest object time applied (ns). */
  createdAt: bigint;
  remove(): Promise<void>;
}

export function tempBeside(path: string, what: string): string {
  return join(dirname(path), `.${basename(path)}.lsinit-${what}-${randomBytes(4).toString('hex')}`);
}

export async function buildImage(client: ReplicaClient, plan: RestorePlan, target: string, log: Logger): Promise<Image> {
  const path = tempBeside(target, 'follow');
  const remove = async () => {
    for (const s of ['', '-wal', '-shm', '-journal']) await fsp.rm(`${path}${s}`, { force: true });
  };
  try {
    await executeRestore(client, { ...plan, indexes: [] }, { output: path, log });
    const fd = openSync(path, 'r+');
    let cursor: Cursor = { pos: { generation: plan.generation, index: plan.snapshot.index, offset: 0 } };
    let createdAt = plan.snapshot.createdAt;
    let pageSize: number;
    try {
      pageSize = dbPageSize(readExactly(fd, 100, 0, path));
      for (;;) {
        const next = await listAfter(client, cursor);
        if (next.gap) throw new LsinitError('LSINIT_ERR_NOT_FOUND', `generation ${plan.generation}: the WAL segment at index ${hex8(cursor.pos.index)} offset ${cursor.pos.offset} is missing (retention removed it while restoring?)`);
        const batch = await spoolBatch(client, cursor, next.segments, `${path}.spool`, pageSize);
        if (!batch) break;
        try {
          writePagesDirect(fd, batch.pages);
        } finally {
          await batch.dispose();
        }
        cursor = batch.cursor;
        if (batch.createdAt > createdAt) createdAt = batch.createdAt;
      }
    } finally {
      closeSync(fd);
    }
    log.info('follower image built', { generation: plan.generation, index: hex8(cursor.pos.index), offset: cursor.pos.offset });
    return { path, pageSize, cursor, createdAt, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}
