/** Shared by the end-to-end tests (test/e2e): the rows of a restored database, read from a copy. */
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

let copies = 0;

/** `SELECT id, v FROM rows` of a restored database, after PRAGMA integrity_check says ok. */
export function rowsOf(path: string, work: string): { id: number; v: string }[] {
  // Inspect a copy: opening a WAL-mode file would create -shm/-wal beside the restored output.
  const copy = join(work, `inspect-${process.pid}-${++copies}.db`);
  copyFileSync(path, copy);
  const db = new Database(copy, { readonly: true });
  try {
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok');
    return db.prepare('SELECT id, v FROM rows ORDER BY id').all() as { id: number; v: string }[];
  } finally {
    db.close();
  }
}
