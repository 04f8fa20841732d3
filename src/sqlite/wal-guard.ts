/**
 * Keeps a database's -wal across the end of the process when its connections live in a worker
 * thread. Terminating a worker (also what process.exit() does to running workers) runs
 * better-sqlite3's environment cleanup, which closes every connection; SQLite's close of the last
 * connection checkpoints the WAL and deletes it when it can take an EXCLUSIVE lock on the database,
 * and the next start would then find no WAL matching the shadow WAL and begin a new generation (see
 * db.ts, whose connections are never closed for this reason). A read transaction held by another
 * connection of this process denies that lock (SQLite tracks locks per inode across the process's
 * connections), so the main thread opens one just before the worker goes away and never closes it:
 * the main thread's environment is not cleaned up at process.exit().
 */
import { existsSync } from 'node:fs';
import { openDatabase, type SqliteConnection } from './driver.js';

const held: SqliteConnection[] = [];

/** Hold a read transaction on each existing database until the process exits. Best effort. */
export function holdWALs(paths: readonly string[]): void {
  const present = paths.filter((p) => existsSync(p) && existsSync(`${p}-wal`));
  if (present.length === 0) return;
  // SQLite is loaded here (openDatabase), at the end, so the init's main thread does not carry it while the app runs.
  for (const p of present) {
    try {
      const c = openDatabase(p, { fileMustExist: true, timeout: 100 });
      c.exec('BEGIN');
      c.prepare('SELECT 1 FROM sqlite_master LIMIT 1').get();
      held.push(c);
    } catch {
      // Unreadable now: at worst the next start begins a new generation (a snapshot), nothing is lost.
    }
  }
}

/** For in-process tests: let go of the read transactions. */
export function releaseWALs(): void {
  for (const c of held.splice(0)) c.close();
}
