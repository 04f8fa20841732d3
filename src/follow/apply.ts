/**
 * Applying a transaction to a database that other processes are reading — the follower's core.
 *
 * Choice: the follower stays in rollback-journal mode and every transaction is applied the way
 * SQLite's own pager commits one (https://www.sqlite.org/atomiccommit.html), so that SQLite's
 * locks keep readers out of half-written states and SQLite's hot-journal rollback undoes a crash:
 *
 *  1. `BEGIN EXCLUSIVE` on a real SQLite connection (better-sqlite3) takes PENDING then EXCLUSIVE
 *     on the database file (POSIX advisory locks, the unix VFS protocol every SQLite — the
 *     `sqlite3` CLI, Python's sqlite3 — uses). New readers wait in their busy handler; readers in
 *     a read transaction keep their SHARED lock and finish undisturbed, because EXCLUSIVE is only
 *     granted once the last SHARED lock is gone. The wait is bounded by our busy_timeout: on
 *     SQLITE_BUSY we return 'busy' (PENDING is released) and the caller retries later, so a long
 *     reader delays the follower but never breaks, and waiting readers are released well within
 *     a normal busy_timeout.
 *  2. Holding EXCLUSIVE, we write `<db>-journal` ourselves in SQLite's documented format
 *     (journal.ts) with the ORIGINAL content of every page we will change or truncate, fsync it,
 *     then write the record count and fsync again (the pager's order: records durable before the
 *     count that makes them count), and fsync the directory so the journal's name is durable.
 *  3. We overwrite the pages through our own descriptor and fsync the database. POSIX locks
 *     belong to the process, so writing through a second descriptor while our connection holds
 *     EXCLUSIVE is covered by that lock for every other process. That descriptor is opened once
 *     and closed only after the connection: closing ANY descriptor of a file drops all of the
 *     process's POSIX locks on it (the trap SQLite's unix VFS works around; see sqlite/connections.ts).
 *  4. Deleting the journal is the commit point (as in SQLite's DELETE journal mode); `COMMIT`
 *     releases the lock.
 *
 * Crash anywhere (kill -9): before step 3 the database is untouched; from step 3 until the
 * journal is gone, the journal is "hot" (it exists, is non-empty and no process holds RESERVED,
 * since a dead process holds no locks), so the next connection that opens the database — a
 * reader or the restarted follower — rolls the original pages back before reading (pager.c
 * hasHotJournal / pager_playback). After step 4 the new state is complete. Readers never see a
 * mixture: they cannot hold SHARED while we write, and a torn journal tail fails its checksum.
 *
 * Not chosen: writing the primary's frames into a WAL-mode follower's -wal. Readers find new
 * frames through the -shm wal-index, which SQLite's writer updates under its WAL write lock;
 * appending to the -wal without maintaining the wal-index is not visible (or safe) to live
 * readers, and rebuilding the wal-index from outside SQLite means re-implementing wal.c. And
 * `sqlite_dbpage` (which would let SQLite itself journal the writes) is not compiled into
 * better-sqlite3's SQLite.
 *
 * What this asks of readers: a busy_timeout above BUSY_TIMEOUT_MS (1 s; SQLite's CLI and
 * Python's default is 5 s), and — only after a follower crash — a read-write open, because
 * rolling back a hot journal writes the database (a `mode=ro` connection gets
 * SQLITE_READONLY_ROLLBACK until the follower restarts and rolls it back itself).
 */
import { randomInt } from 'node:crypto';
import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { LsinitError } from '../errors.js';
import { openDatabase, type SqliteConnection } from '../sqlite/driver.js';
import { changeCounter, followerHeader, isSQLiteHeader, page1Digest } from './header.js';
import { JOURNAL_RECORDS_OFFSET, journalHeader, journalRecord } from './journal.js';
import { readExactly, type PageSource } from './pages.js';

/** Longest the follower holds PENDING waiting for readers before backing off. */
export const BUSY_TIMEOUT_MS = 1000;

/** What the follower's database is after a transaction: recorded in the state file. */
export interface FileIdentity {
  counter: number;
  digest: string;
}

export interface ApplyHooks {
  /** Called at each step (tests crash the process here). */
  step?: (name: 'journal-synced' | 'page-written' | 'pages-synced' | 'journal-deleted') => void;
}

export class LiveFile {
  private readonly db: SqliteConnection;
  private readonly fd: number;
  private closed = false;

  constructor(
    readonly path: string,
    private readonly busyTimeoutMs = BUSY_TIMEOUT_MS,
    private readonly hooks: ApplyHooks = {},
  ) {
    // The descriptor first, and closed last (see step 3 above).
    this.fd = openSync(path, 'r+');
    let db: SqliteConnection | undefined;
    try {
      // Check the header before SQLite sees the file: opening a WAL-mode database would create
      // its -wal/-shm beside someone else's file.
      const head = readExactly(this.fd, 100, 0, path);
      if (!isSQLiteHeader(head)) throw new LsinitError('LSINIT_ERR_DB', `${path} is not an SQLite database`, { fields: { path } });
      if (head[18] !== 1 || head[19] !== 1) {
        throw new LsinitError('LSINIT_ERR_DB', `${path} is a WAL-mode database, not a follower copy (a follower is in rollback-journal mode): nothing was changed; move it away to restore afresh`, { fields: { path } });
      }
      db = openDatabase(path, { fileMustExist: true });
      db.pragma(`busy_timeout = ${busyTimeoutMs}`);
      // Reading the schema takes SHARED: if we crashed mid-transaction, SQLite rolls back here.
      const mode = db.pragma('journal_mode', { simple: true }) as string;
      if (mode !== 'delete') {
        throw new LsinitError('LSINIT_ERR_DB', `${path} is in ${mode} journal mode, not a follower copy (a follower is in rollback-journal mode; move the file away to restore afresh)`, { fields: { path } });
      }
    } catch (err) {
      db?.close();
      closeSync(this.fd);
      throw err;
    }
    this.db = db;
  }

  /** Current page 1 identity, read under a SHARED lock. */
  identity(): FileIdentity & { pageSize: number; pages: number } {
    const tx = this.db.transaction(() => {
      this.db.prepare('SELECT count(*) FROM sqlite_master').get(); // takes SHARED (and rolls back a hot journal)
      return this.readIdentity();
    });
    return tx();
  }

  private readIdentity(): FileIdentity & { pageSize: number; pages: number } {
    const head = readExactly(this.fd, 100, 0, this.path);
    if (!isSQLiteHeader(head)) throw new LsinitError('LSINIT_ERR_DB', `${this.path} is not an SQLite database`, { fields: { path: this.path } });
    const ps = head.readUInt16BE(16);
    const pageSize = ps === 1 ? 65536 : ps;
    const page1 = readExactly(this.fd, pageSize, 0, this.path);
    return { counter: changeCounter(page1), digest: page1Digest(page1), pageSize, pages: Math.floor(fstatSync(this.fd).size / pageSize) };
  }

  /**
   * Apply `src` as one transaction. `expect` is the identity the follower left last time: a
   * different file means something else wrote it, and nothing is changed. Returns 'busy' when
   * readers kept the lock away for busyTimeoutMs.
   */
  apply(src: PageSource, expect: FileIdentity, onPlanned: (next: FileIdentity) => void = () => {}): FileIdentity | 'busy' {
    try {
      this.db.exec('BEGIN EXCLUSIVE');
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) return 'busy';
      throw err;
    }
    let ok = false;
    try {
      const cur = this.readIdentity();
      if (cur.counter !== expect.counter || cur.digest !== expect.digest) {
        throw new LsinitError('LSINIT_ERR_DB', `${this.path} was changed by something other than the follower (change counter ${cur.counter}, expected ${expect.counter}); it is not the follower's copy any more — move it away and restart to restore afresh`, { fields: { path: this.path } });
      }
      if (cur.pageSize !== src.pageSize) {
        throw new LsinitError('LSINIT_ERR_FORMAT', `${this.path}: page size ${cur.pageSize} differs from the replica's ${src.pageSize}`, { fields: { path: this.path } });
      }
      const id = this.write(src, cur.pages, cur.counter + 1, onPlanned);
      ok = true;
      return id;
    } finally {
      // After a failure past step 2 the journal stays hot: the next reader (or our next BEGIN)
      // rolls it back, exactly as after a crash.
      this.db.exec(ok ? 'COMMIT' : 'ROLLBACK');
    }
  }

  private write(src: PageSource, origPages: number, counter: number, onPlanned: (next: FileIdentity) => void): FileIdentity {
    const ps = src.pageSize;
    const changed: number[] = [];
    let page1: Buffer | undefined;
    for (const pgno of src.candidates()) {
      let page = src.read(pgno);
      if (pgno === 1) {
        page = Buffer.from(page);
        followerHeader(page, counter, src.pages);
        page1 = page;
      }
      if (pgno <= origPages && pgno !== 1 && page.equals(readExactly(this.fd, ps, (pgno - 1) * ps, this.path))) continue;
      changed.push(pgno);
    }
    if (!page1) {
      // The transaction did not touch page 1: the change counter still has to move.
      page1 = readExactly(this.fd, ps, 0, this.path);
      followerHeader(page1, counter, src.pages);
      changed.unshift(1);
    }
    const next = { counter, digest: page1Digest(page1) };
    onPlanned(next); // the state file learns what the file will look like before anything changes
    const journaled = changed.filter((p) => p <= origPages);
    for (let p = src.pages + 1; p <= origPages; p++) journaled.push(p); // truncated pages
    const jpath = `${this.path}-journal`;
    const nonce = randomInt(0, 2 ** 32);
    // 'wx': a journal we did not expect is never overwritten (SQLite rolled any hot one back
    // when BEGIN took the lock, so one here is foreign).
    const jfd = openSync(jpath, 'wx');
    try {
      let off = 0;
      off += writeAll(jfd, journalHeader({ records: 0, nonce, initialPages: origPages, pageSize: ps }), off);
      for (const p of journaled) off += writeAll(jfd, journalRecord(p, readExactly(this.fd, ps, (p - 1) * ps, this.path), nonce), off);
      fsyncSync(jfd);
      const n = Buffer.alloc(4);
      n.writeUInt32BE(journaled.length);
      writeAll(jfd, n, JOURNAL_RECORDS_OFFSET);
      fsyncSync(jfd);
    } finally {
      closeSync(jfd);
    }
    fsyncDir(dirname(this.path));
    this.hooks.step?.('journal-synced');
    for (const p of changed) {
      writeAll(this.fd, p === 1 ? page1 : src.read(p), (p - 1) * ps);
      this.hooks.step?.('page-written');
    }
    if (src.pages < origPages) ftruncateSync(this.fd, src.pages * ps);
    fsyncSync(this.fd);
    this.hooks.step?.('pages-synced');
    // The commit point. Like SQLite's DELETE mode at synchronous=FULL, the directory is not
    // fsynced after the unlink: a power loss may bring the journal back, and then SQLite rolls
    // this transaction back — an older committed state, which the state file's `next` resolves.
    unlinkSync(jpath);
    this.hooks.step?.('journal-deleted');
    return next;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
    closeSync(this.fd);
  }
}

/** Write `src` straight into a file no one else has open (a restore in progress beside the follower). */
export function writePagesDirect(fd: number, src: PageSource): void {
  for (const p of src.candidates()) writeAll(fd, src.read(p), (p - 1) * src.pageSize);
  ftruncateSync(fd, src.pages * src.pageSize);
}

export function writeAll(fd: number, data: Uint8Array, pos: number): number {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off, pos + off);
  return data.length;
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function journalPath(path: string): string {
  return `${dirname(path)}/${basename(path)}-journal`;
}
