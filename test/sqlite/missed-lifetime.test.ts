/**
 * A WAL lifetime lsinit never saw. SQLite restarts the WAL (a new header, salt-1 one higher) at
 * the first write after a complete checkpoint when no reader uses the WAL; lsinit's read
 * transaction prevents that, except while DB.checkpoint() has it released. If the WAL was already
 * fully back-filled then (the app's autocheckpoint caught up with lsinit's read mark), the app's
 * next commit T restarts it, and lsinit's own checkpoint then back-fills T and its write restarts
 * the WAL again: T's lifetime is in no shadow index, and the next index starts after it (torture
 * seed 500039, kill9-lsinit: "frame 0 commits a database of 1822 pages, but only 1816 exist").
 * Continuing the generation would ship a replica that lacks T. lsinit now skips its restart write
 * when the WAL header changed during its checkpoint, so one restart by the app is copied into the
 * next index. When the app restarts the WAL twice in the window, a whole lifetime is in no shadow
 * index: lsinit must notice (the new WAL's salt-1 is not the shadow's plus one) and start a new
 * generation, whose snapshot holds it.
 *
 * The app's checkpoint and commit run inside the checkpoint call (a wrapper around the
 * connection's pragma), which only makes a window of microseconds certain.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { ReplicaConfig } from '../../src/config/types.js';
import { nullLogger } from '../../src/log/logger.js';
import { FileReplicaClient } from '../../src/replica/clients/file.js';
import { Replica } from '../../src/replica/replica.js';
import { restore } from '../../src/restore/index.js';
import { DB } from '../../src/sqlite/db.js';
import { checkpointOnDemand, integrity, logIds } from '../helpers/replicate.js';

describe('a WAL lifetime missed in the checkpoint window', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lsinit-missed-lifetime-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** The app restarts the WAL `restarts` times while lsinit's checkpoint has its read lock released. */
  async function run(name: string, restarts: number): Promise<{ sameGeneration: boolean; ids: number[]; check: string }> {
    const sub = join(dir, name);
    mkdirSync(sub);
    const { path, cfg } = checkpointOnDemand(sub, { pageSize: 4096, schema: 'CREATE TABLE log (id INTEGER PRIMARY KEY, data BLOB)' });
    const db = new DB(cfg, nullLogger);
    const client = new FileReplicaClient({ path: join(sub, 'replica') });
    const rcfg: ReplicaConfig = { name: 'file', type: 'file', settings: {}, display: 'file', retentionMs: 0, retentionCheckIntervalMs: 0, snapshotIntervalMs: 0, validationIntervalMs: 0, syncIntervalMs: 1000, keyPath: 'dbs[0].replicas[0]' };
    const replica = new Replica(db.source, rcfg, client, nullLogger);
    const app = new Database(path, { timeout: 5000 });
    app.pragma('wal_autocheckpoint = 0');
    const insert = app.prepare('INSERT INTO log (id, data) VALUES (?, ?)');
    try {
      for (let i = 1; i <= 5; i++) insert.run(i, Buffer.alloc(3000, i));
      db.sync();
      await replica.sync();
      const gen = db.generation!;

      const conn = (db as unknown as { conns: { state: { conn: Database.Database } } }).conns.state.conn; // our write connection (connections.ts)
      const pragma = conn.pragma.bind(conn);
      conn.pragma = ((source: string, options?: Database.PragmaOptions) => {
        if (source.startsWith('wal_checkpoint')) {
          // lsinit's read lock is released here: the app back-fills everything, and its next
          // commit (T, six new pages) restarts the WAL; again for each further restart.
          for (let k = 0; k < restarts; k++) {
            app.pragma('wal_checkpoint(PASSIVE)');
            insert.run(100 + k, Buffer.alloc(6 * 4096, 0x54 + k));
          }
        }
        return pragma(source, options);
      }) as typeof conn.pragma;
      db.checkpoint();
      conn.pragma = pragma as typeof conn.pragma;
      insert.run(200, Buffer.alloc(100, 1));
      db.sync();
      await replica.sync();

      const out = join(sub, 'latest.db');
      await restore({ output: out, replicas: [{ name: 'file', client }] });
      return { sameGeneration: db.generation === gen, ids: logIds(out), check: integrity(out) };
    } finally {
      app.close();
      db.closeConnections();
    }
  }

  it('one restart by the app: lsinit does not restart the WAL again, and continues the generation in the next index', async () => {
    const r = await run('once', 1);
    assert.equal(r.sameGeneration, true, 'T\'s lifetime is the next shadow index');
    assert.equal(r.check, 'ok');
    assert.deepEqual(r.ids, [1, 2, 3, 4, 5, 100, 200], 'the replica holds T');
  });

  it('two restarts by the app: a whole lifetime is in no shadow index, so a new generation starts', async () => {
    const r = await run('twice', 2);
    assert.equal(r.sameGeneration, false, 'a new generation, since the first restart\'s WAL lifetime is in no shadow index');
    assert.equal(r.check, 'ok');
    assert.deepEqual(r.ids, [1, 2, 3, 4, 5, 100, 101, 200], 'the replica holds both');
  });
});
