/**
 * The checkpoint window, made deterministic. DB.checkpoint() copies the WAL to the shadow, then
 * releases its read lock and runs wal_checkpoint, then writes `_litestream_seq` and, if the WAL
 * restarted, copies "old-salt frames still past the new WAL's write position" before starting
 * the next index (Litestream 0.3's db.go:checkpoint, same order).
 *
 * An app commit that lands between that first copy and the checkpoint (T) is back-filled into
 * the database file and lives on only in the old WAL. If the app then restarts the WAL with a
 * transaction (U) longer than the shadow (its frames overwrite T's before lsinit's second copy),
 * T is in neither shadow index: no replica can ever hold it, and a restore from any snapshot
 * taken before this point replays index 0 without T, then index 1's pages on top.
 *
 * Here the two app commits run inside the checkpoint call (a wrapper around the connection's
 * pragma), which only makes a window of microseconds certain; on a loaded machine the scheduler
 * opens it for real.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { nullLogger } from '../../src/log/logger.js';
import { DB } from '../../src/sqlite/db.js';
import { checkpointOnDemand } from '../helpers/replicate.js';

describe('checkpoint window (DB.checkpoint)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lsinit-ckpt-race-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a commit between the pre-checkpoint copy and the checkpoint is in a shadow WAL index even when the app restarts the WAL with a long transaction', () => {
    const { path, cfg } = checkpointOnDemand(dir, { pageSize: 1024, schema: 'CREATE TABLE log (id INTEGER PRIMARY KEY, data BLOB); CREATE TABLE marks (name TEXT)' });
    const db = new DB(cfg, nullLogger);
    const app = new Database(path, { timeout: 5000 });
    app.pragma('wal_autocheckpoint = 0');
    try {
      db.sync();
      for (let i = 0; i < 5; i++) app.prepare('INSERT INTO log (data) VALUES (?)').run(Buffer.alloc(200, i));
      db.sync();
      const gen = db.generation!;
      const shadowFrames = (readFileSync(db.shadowPath(gen, db.index)).length - 32) / (24 + 1024);

      // Wrap the checkpoint pragma: T commits just before it, U (longer than the shadow) right after.
      const conn = (db as unknown as { conns: { state: { conn: Database.Database } } }).conns.state.conn; // our write connection (connections.ts)
      const pragma = conn.pragma.bind(conn);
      // If lsinit holds the write lock through the window (a fix), T and U cannot commit in it:
      // a real app would wait for its busy_timeout and commit afterwards, which is safe.
      let committedT = false;
      const tryCommit = (fn: () => void) => {
        app.pragma('busy_timeout = 50');
        try {
          fn();
          return true;
        } catch (err) {
          if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
          return false;
        } finally {
          app.pragma('busy_timeout = 5000');
        }
      };
      conn.pragma = ((source: string, options?: Database.PragmaOptions) => {
        if (!source.startsWith('wal_checkpoint')) return pragma(source, options);
        committedT = tryCommit(() => app.prepare('INSERT INTO marks (name) VALUES (?)').run('MARKER-T-committed-in-the-window'));
        const r = pragma(source, options);
        tryCommit(() => app.prepare('INSERT INTO log (data) VALUES (?)').run(Buffer.alloc((shadowFrames + 20) * 1024, 0x55)));
        return r;
      }) as typeof conn.pragma;
      db.checkpoint();
      conn.pragma = pragma as typeof conn.pragma;
      db.sync();
      if (!committedT) {
        assert.equal(db.index, 1, 'the checkpoint should have restarted the WAL (next shadow index)');
        return;
      }
      // The source has T ...
      assert.equal((app.prepare('SELECT COUNT(*) AS n FROM marks').get() as { n: number }).n, 1);
      const walDir = join(cfg.metaPath, 'generations', gen, 'wal');
      if (db.generation === gen) {
        // ... so some shadow index of this generation must hold a page image with T's row,
        assert.equal(db.index, 1, 'the checkpoint should have restarted the WAL (next shadow index)');
        const holders = readdirSync(walDir).filter((f) => f.endsWith('.wal') && readFileSync(join(walDir, f)).includes('MARKER-T-committed-in-the-window'));
        assert.ok(holders.length > 0, `transaction T is in the database but in no shadow WAL index (${readdirSync(walDir).join(', ')}): no replica can ever restore it`);
      } else {
        // ... or, when its frames were overwritten before they could be copied, lsinit noticed and
        // started a new generation, whose first snapshot (the database file) holds T.
        assert.ok(readFileSync(path).includes('MARKER-T-committed-in-the-window'), 'T is in neither a shadow index nor the new generation\'s snapshot');
      }
    } finally {
      app.close();
      db.closeConnections();
    }
  });
});
