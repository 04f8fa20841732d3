/**
 * The SQLite side of one replicated database: two connections and two long-lived descriptors,
 * and the read lock (reference §2.2). One explicit state: closed, or open with all of them.
 *
 * `rconn` only ever holds the long-lived read transaction (its read mark stops anyone else from
 * restarting the WAL behind us); `conn` runs our writes and checkpoints. The database file also
 * gets one long-lived read-only descriptor for snapshots: with POSIX locks, closing any descriptor
 * of the file would drop this process's SQLite locks, so we never open and close it ad hoc
 * (Litestream's `db.f`, same reason). Likewise the -shm descriptor.
 *
 * The connections are deliberately never closed while the process lives: SQLite's close-time
 * checkpoint would delete the -wal and force a new generation on the next start. Litestream
 * 0.3.10+ prevents that with SQLITE_FCNTL_PERSIST_WAL, which better-sqlite3 does not expose;
 * the CLI ends with process.exit(), which skips the close. `close()` is for in-process tests.
 */
import { accessSync, closeSync, constants as fsConstants, existsSync, openSync, readSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { LsinitError } from '../errors.js';
import { openDatabase, type SqliteConnection } from './driver.js';

const BUSY_TIMEOUT_MS = 1000;

export interface OpenConnections {
  /** Our writes and checkpoints. */
  conn: SqliteConnection;
  /** The long-lived read transaction (and, with it released, the restart pass's checkpoint). */
  rconn: SqliteConnection;
  /** Long-lived read-only descriptor of the database file (snapshots). */
  dbFd: number;
  /** Long-lived descriptor of the -shm file; undefined when it could not be opened (the WAL is read instead). */
  shmFd: number | undefined;
  pageSize: number;
}

export class Connections {
  private open: OpenConnections | undefined;

  constructor(private readonly path: string, private readonly checkpointBusyTimeoutMs: number) {}

  /** The open state, or undefined before open() (and after close()). */
  get state(): OpenConnections | undefined {
    return this.open;
  }

  /** Open both connections in WAL mode and take the read lock. The file must exist (precheck()). */
  openAndLock(): OpenConnections {
    if (this.open) return this.open;
    let conn: SqliteConnection | undefined;
    let rconn: SqliteConnection | undefined;
    let pageSize: number;
    let dbFd: number;
    try {
      conn = openDatabase(this.path, { timeout: BUSY_TIMEOUT_MS, fileMustExist: true });
      const mode = String(conn.pragma('journal_mode = wal', { simple: true }));
      if (mode !== 'wal') {
        throw new LsinitError('LSINIT_ERR_DB', `${this.path}: cannot switch to WAL mode (journal_mode is ${mode}); stop other writers and retry`);
      }
      conn.pragma('wal_autocheckpoint = 0');
      conn.exec('CREATE TABLE IF NOT EXISTS _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER);');
      conn.exec('CREATE TABLE IF NOT EXISTS _litestream_lock (id INTEGER);');
      rconn = openDatabase(this.path, { timeout: BUSY_TIMEOUT_MS, fileMustExist: true });
      // From here on our writes (the restart write after a checkpoint, the write lock that picks up
      // the old WAL's last frames) queue behind the app's writers for at most
      // checkpoint-busy-timeout; a sync that gives up retries on the next one.
      conn.pragma(`busy_timeout = ${Math.round(this.checkpointBusyTimeoutMs)}`);
      rconn.pragma('wal_autocheckpoint = 0');
      pageSize = Number(conn.pragma('page_size', { simple: true }));
      dbFd = openSync(this.path, 'r');
    } catch (err) {
      if (err instanceof LsinitError) throw err;
      // SQLite only says "unable to open database file"; WAL mode needs to create -wal and -shm.
      let why = '';
      try {
        accessSync(dirname(this.path), fsConstants.W_OK);
      } catch (e) {
        why = ` (its directory ${dirname(this.path)} is not writable: ${(e as NodeJS.ErrnoException).code}; lsinit and the app need to create ${basename(this.path)}-wal and -shm there)`;
      }
      throw new LsinitError('LSINIT_ERR_DB', `${this.path}: cannot open database: ${(err as Error).message}${why}`, { cause: err });
    }
    const open: OpenConnections = { conn, rconn, dbFd, shmFd: undefined, pageSize };
    this.open = open;
    this.acquireReadLock();
    try {
      // Exists once a connection has read the database in WAL mode (our read lock above).
      open.shmFd = openSync(`${this.path}-shm`, 'r');
    } catch {
      open.shmFd = undefined; // ShadowWAL.newFrames() falls back to reading the WAL
    }
    return open;
  }

  acquireReadLock(): void {
    const { rconn } = this.open!;
    rconn.exec('BEGIN');
    rconn.prepare('SELECT COUNT(1) FROM _litestream_seq').get();
  }

  releaseReadLock(): void {
    if (this.open?.rconn.inTransaction) this.open.rconn.exec('ROLLBACK');
  }

  /** Run `fn` with the read lock released; it is taken again whatever `fn` does. */
  withoutReadLock<T>(fn: () => T): T {
    this.releaseReadLock();
    try {
      return fn();
    } finally {
      this.acquireReadLock();
    }
  }

  /** Our one write: makes a WAL exist, or (after a complete checkpoint) makes SQLite restart it. */
  bumpSeq(): void {
    this.open!.conn.prepare('INSERT INTO _litestream_seq (id, seq) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET seq = seq + 1').run();
  }

  /** Release the read lock and close everything (in-process tests; see the header comment). */
  close(): void {
    const o = this.open;
    try {
      this.releaseReadLock();
    } catch {
      /* ignore */
    }
    if (!o) return;
    o.rconn.close();
    o.conn.close();
    closeSync(o.dbFd);
    if (o.shmFd !== undefined) closeSync(o.shmFd);
    this.open = undefined;
  }
}

/**
 * What opening checks before SQLite opens anything (the directory exists, the file is SQLite),
 * reading nothing but the header: run before the meta lock and leases are taken, so bad input
 * writes nothing. False while the file does not exist.
 */
export function precheckDB(path: string): boolean {
  if (!existsSync(dirname(path))) {
    throw new LsinitError('LSINIT_ERR_DB', `database directory does not exist: ${dirname(path)} (create it, or fix dbs[].path)`, { fields: { path } });
  }
  if (!existsSync(path)) return false;
  checkIsSQLite(path);
  return true;
}

function checkIsSQLite(path: string): void {
  if (!statSync(path).isFile()) {
    throw new LsinitError('LSINIT_ERR_DB', `${path} is not a regular file (a directory?); dbs[].path must name the SQLite database file`, { fields: { path } });
  }
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(100);
    const n = readSync(fd, b, 0, 100, 0);
    if (n === 0) return; // an empty file is a new database to SQLite
    if (n < 16 || b.toString('latin1', 0, 16) !== 'SQLite format 3\u0000') {
      throw new LsinitError('LSINIT_ERR_DB', `${path} is not an SQLite database (bad header); check dbs[].path`, { fields: { path } });
    }
    // The rest of the 100-byte header as SQLite checks it when it opens the file: checked here,
    // before the meta lock is taken, so such a file is refused with nothing created beside it.
    const bad = headerProblem(b, n);
    if (bad) throw new LsinitError('LSINIT_ERR_DB', `${path}: cannot open database: file is not a database (${bad}); check dbs[].path or restore it from a replica`, { fields: { path } });
  } finally {
    closeSync(fd);
  }
}

/** What is wrong with a database header that starts with SQLite's magic, or undefined. */
function headerProblem(b: Buffer, n: number): string | undefined {
  if (n < 100) return `only ${n} bytes, shorter than the 100-byte header`;
  const raw = b.readUInt16BE(16);
  const pageSize = raw === 1 ? 65536 : raw;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return `page size ${raw} in the header`;
  if (b[18]! < 1 || b[18]! > 2 || b[19]! < 1 || b[19]! > 2) return `file format versions ${b[18]}/${b[19]}`;
  if (b[21] !== 64 || b[22] !== 32 || b[23] !== 32) return 'payload fractions are not 64/32/32';
  return undefined;
}
