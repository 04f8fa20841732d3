/**
 * DB.checkpoint and DB.walAdvanced against real SQLite: the restart write is skipped after an
 * incomplete checkpoint (it could not restart the WAL, and behind an app's write lock it would block
 * the sync for the whole busy timeout), and walAdvanced tells a synced WAL from one with new commits.
 */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import type { DBConfig } from '../../src/config/types.js';
import { nullLogger } from '../../src/log/logger.js';
import { DB } from '../../src/sqlite/db.js';
import { createDB, workdir } from '../helpers/replicate.js';

function open(dir: string, minCheckpointPageCount: number, checkpointBusyTimeoutMs = 100): { path: string; db: DB } {
  const path = join(dir, 'app.db');
  createDB(path);
  const cfg: DBConfig = {
    path,
    metaPath: join(dir, '.app.db-litestream'),
    monitorIntervalMs: 100,
    checkpointIntervalMs: 0,
    minCheckpointPageCount,
    maxCheckpointPageCount: 0,
    checkpointBusyTimeoutMs,
    replicas: [],
    keyPath: 'dbs[0]',
  };
  return { path, db: new DB(cfg, nullLogger) };
}

test('an incomplete checkpoint does not queue a restart write behind the app\'s write lock', (t) => {
  const w = workdir('ckpt-skip');
  t.after(w.cleanup);
  const { path, db } = open(w.dir, 1);
  const app = new Database(path, { timeout: 5000 });
  const reader = new Database(path);
  t.after(() => {
    app.close();
    reader.close();
    db.closeConnections();
  });
  app.pragma('wal_autocheckpoint = 0');
  db.sync();
  const ins = app.prepare('INSERT INTO log (conn, payload) VALUES (1, ?)');
  ins.run('before the reader');
  // The reader's snapshot pins every frame committed after it: the checkpoint cannot complete.
  reader.exec('BEGIN');
  reader.prepare('SELECT count(*) FROM log').get();
  for (let i = 0; i < 20; i++) ins.run(`after the reader ${i}`);
  app.exec('BEGIN IMMEDIATE'); // and the app holds the write lock, as a busy writer does
  const t0 = performance.now();
  const changed = db.sync();
  const ms = performance.now() - t0;
  app.exec('ROLLBACK');
  assert.equal(changed, true);
  assert.ok(ms < 500, `sync took ${ms.toFixed(0)} ms: it waited for the app's write lock`);
  assert.equal(db.stats.syncErrors, 0);
  assert.ok((db.stats.checkpoints['PASSIVE']?.count ?? 0) >= 1, 'a checkpoint was attempted');
});

for (const timeoutMs of [100, 600]) {
  test(`checkpoint-busy-timeout ${timeoutMs}ms bounds the restart write's wait behind the app's write lock`, (t) => {
    const w = workdir(`ckpt-busy-${timeoutMs}`);
    t.after(w.cleanup);
    const { path, db } = open(w.dir, 1, timeoutMs);
    const app = new Database(path, { timeout: 5000 });
    t.after(() => {
      app.close();
      db.closeConnections();
    });
    app.pragma('wal_autocheckpoint = 0');
    db.sync();
    app.prepare('INSERT INTO log (conn, payload) VALUES (1, ?)').run('x');
    // Nothing pins the WAL, so the passive checkpoint completes; the write that would restart the
    // WAL then needs the write lock the app holds.
    app.exec('BEGIN IMMEDIATE');
    const t0 = performance.now();
    assert.throws(() => db.sync(), /locked|busy/i);
    const ms = performance.now() - t0;
    app.exec('ROLLBACK');
    assert.ok(ms >= timeoutMs * 0.9 && ms < timeoutMs + 400, `waited ${ms.toFixed(0)} ms with checkpoint-busy-timeout ${timeoutMs}ms`);
    assert.deepEqual(Object.keys(db.stats.checkpoints), ['PASSIVE'], 'counted under the mode SQLite ran');
    // The lock is free again: the next sync restarts the WAL and goes on.
    db.sync();
    assert.equal(db.stats.syncErrors, 1);
  });
}

test('walAdvanced: false once synced, true after a commit, false again after the next sync', (t) => {
  const w = workdir('wal-advanced');
  t.after(w.cleanup);
  const { path, db } = open(w.dir, 1_000_000);
  const app = new Database(path, { timeout: 5000 });
  t.after(() => {
    app.close();
    db.closeConnections();
  });
  db.sync();
  assert.equal(db.walAdvanced(), false);
  app.prepare('INSERT INTO log (conn, payload) VALUES (1, ?)').run('x');
  assert.equal(db.walAdvanced(), true);
  db.sync();
  assert.equal(db.walAdvanced(), false);
});

test('sync(shipped) removes the shadow WAL indexes below the one before the shipped index, only in the current generation', (t) => {
  const w = workdir('shadow-clean');
  t.after(w.cleanup);
  const { path, db } = open(w.dir, 1);
  const app = new Database(path, { timeout: 5000 });
  t.after(() => {
    app.close();
    db.closeConnections();
  });
  app.pragma('wal_autocheckpoint = 0');
  db.sync();
  const ins = app.prepare('INSERT INTO log (conn, payload) VALUES (1, ?)');
  // Each commit then sync checkpoints (min-checkpoint-page-count 1) and starts the next index.
  for (let i = 0; i < 4; i++) {
    ins.run(`row ${i}`);
    db.sync();
  }
  const gen = db.generation!;
  const dir = join(w.dir, '.app.db-litestream', 'generations', gen, 'wal');
  const files = () => readdirSync(dir).sort();
  assert.ok(db.index >= 4, `index ${db.index}`);
  const all = files();
  // (A sync may start one more index: compare what existed before.)
  db.sync({ generation: 'ffffffffffffffff', index: db.index });
  assert.deepEqual(files().slice(0, all.length), all, 'a position in another generation removes nothing');
  db.sync({ generation: gen, index: 3 });
  assert.deepEqual(files().slice(0, all.length - 2), all.filter((f) => Number.parseInt(f.slice(0, 8), 16) >= 2));
  assert.equal(files()[0], '00000002.wal');
});
