/**
 * The follower's position, persisted beside the database as `.<file>-follow.json` and replaced
 * atomically (temp file, fsync, rename, fsync of the directory) so a restart resumes instead of
 * downloading everything again.
 *
 * The position alone cannot say whether a crash hit before or after a transaction's commit
 * point (the journal's deletion), so before each transaction the state records both the current
 * identity and the one the transaction will leave (`next`). On restart, after SQLite has rolled
 * back any hot journal, page 1 (whose change counter the follower bumps on every transaction)
 * matches exactly one of them; matching neither means the file is not the follower's.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { LsinitError } from '../errors.js';
import type { Pos } from '../replica/client.js';
import { fsyncDir, type FileIdentity } from './apply.js';

/** Where the tail of the replica stands: the next byte of WAL index `pos.index` to apply. */
export interface Cursor {
  pos: Pos;
  /** Hex of the 32-byte WAL header of `pos.index`; absent before its first segment. */
  walHeader?: string;
  /** Running WAL checksum after the last applied frame. */
  checksum?: [number, number];
}

export interface FollowState {
  version: 1;
  /** Display form of the replica (credentials redacted) the copy follows. */
  replica: string;
  cursor: Cursor;
  file: FileIdentity;
  next?: { cursor: Cursor; file: FileIdentity };
  /** After a transaction: the state before it, in case a power loss brings its journal back. */
  previous?: { cursor: Cursor; file: FileIdentity };
}

export function statePath(db: string): string {
  return join(dirname(db), `.${basename(db)}-follow.json`);
}

/** undefined when there is no state file. */
export function readState(db: string): FollowState | undefined {
  const p = statePath(db);
  let text: string;
  try {
    text = readFileSync(p, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let s: FollowState;
  try {
    s = JSON.parse(text) as FollowState;
  } catch (err) {
    throw new LsinitError('LSINIT_ERR_DB', `${p}: follower state is not valid JSON (${(err as Error).message}); move the database and this file away to restore afresh`, { fields: { path: p } });
  }
  if (s.version !== 1 || typeof s.cursor?.pos?.generation !== 'string' || typeof s.file?.counter !== 'number') {
    throw new LsinitError('LSINIT_ERR_DB', `${p}: not a follower state file of this lsinit version; move the database and this file away to restore afresh`, { fields: { path: p } });
  }
  return s;
}

/**
 * `syncDir` false leaves the rename's durability to the next fsync of the directory: the state
 * with `next` is written just before the transaction's journal is created in the same directory,
 * and that journal's directory fsync makes both durable, in order.
 */
export function writeState(db: string, s: FollowState, syncDir = true): void {
  const p = statePath(db);
  const tmp = `${p}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    const b = Buffer.from(`${JSON.stringify(s)}\n`);
    let off = 0;
    while (off < b.length) off += writeSync(fd, b, off, b.length - off, off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, p);
  if (syncDir) fsyncDir(dirname(p));
}

export function removeState(db: string): void {
  rmSync(statePath(db), { force: true });
}

/** Which recorded state the file is in, or undefined when it is in neither. */
export function resolveState(s: FollowState, id: FileIdentity): { cursor: Cursor; file: FileIdentity } | undefined {
  const same = (a: FileIdentity) => a.counter === id.counter && a.digest === id.digest;
  if (same(s.file)) return { cursor: s.cursor, file: s.file };
  if (s.next && same(s.next.file)) return s.next;
  if (s.previous && same(s.previous.file)) return s.previous;
  return undefined;
}
