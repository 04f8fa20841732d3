/**
 * The final sync of one replica at shutdown aims at what the shadow WAL held when it began. Another
 * replica of the same database may still be writing a snapshot then (its snapshot-interval timer
 * fired just before the stop), and a snapshot copies the app's newest commits to the shadow WAL:
 * that must not make the first replica's final sync report "behind" and lsinit exit 1 (torture seed
 * 600015, sigterm-lsinit). Real SQLite and file replicas; the other snapshot runs at a chosen
 * moment of the upload (a client wrapper).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { parseConfig } from '../../src/config/file.js';
import { nullLogger } from '../../src/log/logger.js';
import type { Body, Pos, WALSegmentInfo } from '../../src/replica/client.js';
import { FileReplicaClient } from '../../src/replica/clients/file.js';
import { Replica } from '../../src/replica/replica.js';
import { finalSync } from '../../src/replicate/final-sync.js';
import { DB } from '../../src/sqlite/db.js';
import { createDB } from '../helpers/replicate.js';

describe('final sync', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lsinit-final-sync-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is done once the replica holds what the shadow WAL held at the stop, while another replica\'s snapshot copies newer commits', async () => {
    const path = join(dir, 'app.db');
    createDB(path);
    const text = `dbs:\n  - path: ${path}\n    replicas:\n      - name: a\n        type: file\n        path: ${join(dir, 'a')}\n      - name: b\n        type: file\n        path: ${join(dir, 'b')}\n`;
    writeFileSync(join(dir, 'lsinit.yml'), text);
    const cfg = parseConfig(Buffer.from(text), { file: join(dir, 'lsinit.yml'), expandEnv: false, env: {}, cwd: dir }).dbs[0]!;
    const db = new DB(cfg, nullLogger);
    const a = new Replica(db, cfg.replicas[0]!, new FileReplicaClient({ path: join(dir, 'a') }), nullLogger);
    const bClient = new FileReplicaClient({ path: join(dir, 'b') });
    let duringUpload: (() => Promise<void>) | undefined;
    const hooked = Object.create(bClient) as FileReplicaClient;
    hooked.writeWALSegment = async (pos: Pos, body: Body): Promise<WALSegmentInfo> => {
      const h = duringUpload;
      duringUpload = undefined;
      await h?.();
      return bClient.writeWALSegment(pos, body);
    };
    const b = new Replica(db, cfg.replicas[1]!, hooked, nullLogger);
    const app = new Database(path);
    const commit = (id: number) => app.prepare('INSERT INTO log (id, payload) VALUES (?, ?)').run(id, `row ${id}`);
    try {
      commit(1);
      db.sync();
      await a.sync();
      await b.sync();
      commit(2);
      db.sync(); // the stop's last copy: the final syncs aim here
      const atStop = db.pos()!;
      // While b uploads, the app commits again and a's snapshot (begun by its timer) copies it.
      duringUpload = async () => {
        commit(3);
        await a.snapshot();
      };
      const res = await finalSync(b, undefined, { deadline: Date.now() + 30_000, ensureLease: async () => {} });
      assert.equal(res.error, undefined, `final sync of b: ${String(res.error)}`);
      assert.deepEqual(b.pos, atStop, 'b holds what the shadow WAL held at the stop');
      assert.ok(a.pos && a.pos.offset > atStop.offset, 'a\'s snapshot shipped the newer commit first');
    } finally {
      app.close();
      db.closeConnections();
    }
  });
});
