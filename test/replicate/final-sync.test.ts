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
import { FileLeaseStore } from '../../src/replica/lease/file.js';
import type { LeaseStore } from '../../src/replica/lease/types.js';
import { finalSync } from '../../src/replicate/final-sync.js';
import { LeaseGuard } from '../../src/replicate/lease-guard.js';
import { DB } from '../../src/sqlite/db.js';
import { FakeClock } from '../helpers/fake-clock.js';
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
    const a = new Replica(db.source, cfg.replicas[0]!, new FileReplicaClient({ path: join(dir, 'a') }), nullLogger);
    const bClient = new FileReplicaClient({ path: join(dir, 'b') });
    let duringUpload: (() => Promise<void>) | undefined;
    const hooked = Object.create(bClient) as FileReplicaClient;
    hooked.writeWALSegment = async (pos: Pos, body: Body): Promise<WALSegmentInfo> => {
      const h = duringUpload;
      duringUpload = undefined;
      await h?.();
      return bClient.writeWALSegment(pos, body);
    };
    const b = new Replica(db.source, cfg.replicas[1]!, hooked, nullLogger);
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

  it('an unconfirmed lease whose store stopped answering is re-read only until the deadline', async () => {
    const path = join(dir, 'unsure.db');
    createDB(path);
    const text = `dbs:\n  - path: ${path}\n    replicas:\n      - name: u\n        type: file\n        path: ${join(dir, 'u')}\n`;
    const cfg = parseConfig(Buffer.from(text), { file: join(dir, 'lsinit.yml'), expandEnv: false, env: {}, cwd: dir }).dbs[0]!;
    const db = new DB(cfg, nullLogger);
    const r = new Replica(db.source, cfg.replicas[0]!, new FileReplicaClient({ path: join(dir, 'u') }), nullLogger);
    // The store accepts and never answers once `hang` is set (a request times out after 3 s).
    // The guard and the final sync run on a fake clock: nothing sleeps.
    const clock = new FakeClock();
    const inner = new FileLeaseStore({ path: join(dir, 'u') });
    let hang = false;
    const never = <T>(): Promise<T> => new Promise<T>(() => {});
    const store: LeaseStore = {
      type: inner.type,
      location: inner.location,
      read: () => (hang ? never() : inner.read()),
      create: (l) => (hang ? never() : inner.create(l)),
      replace: (l, t) => (hang ? never() : inner.replace(l, t)),
      delete: (t) => (hang ? never() : inner.delete(t)),
      close: () => inner.close(),
    };
    const guard = new LeaseGuard({ store, ttlMs: 1500, renewIntervalMs: 300, requestTimeoutMs: 3000, recheckMs: 1000, now: clock.now, mono: clock.now, timers: clock });
    try {
      await guard.acquire();
      db.sync();
      await r.sync();
      hang = true;
      // The renewal at 300 ms hangs; the watchdog gives the lease up ttl / 6 before it expires.
      await clock.advance(1500 - 250 - 1);
      assert.equal(guard.state, 'held');
      await clock.advance(1);
      assert.equal(guard.state, 'unsure');
      let over = false;
      const p = finalSync(r, guard, { deadline: clock.now() + 500, ensureLease: async () => {}, now: clock.now, timers: clock }).finally(() => (over = true));
      const isOver = () => over;
      await clock.advance(499);
      assert.equal(isOver(), false, 'still re-reading the lease before the deadline');
      await clock.advance(1);
      assert.equal(isOver(), true, 'over at the deadline');
      const res = await p;
      assert.match(String(res.error), /did not finish before the shutdown deadline|not confirmed/);
    } finally {
      guard.stop();
      db.closeConnections();
    }
  });
});
