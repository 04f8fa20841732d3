/**
 * validation-interval: the Validator restores a replica at the database's position and compares
 * CRC-64s. Real SQLite, a real file replica and S3 (moto); no sleeping (the replica is synced by
 * the callback the controller would give).
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { parseConfig } from '../../src/config/file.js';
import { createLogger } from '../../src/log/logger.js';
import { comparePos } from '../../src/replica/client.js';
import { createClient } from '../../src/replica/create.js';
import { Replica } from '../../src/replica/replica.js';
import { Validator } from '../../src/replicate/validate.js';
import { DB } from '../../src/sqlite/db.js';
import { lsinit as lsinitCLI } from '../helpers/cli.js';
import { WRITER, createDB, fileConfig, workdir } from '../helpers/replicate.js';
import { rig as metricsRig } from '../metrics/helpers.js';
import { MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY, startMoto, type MotoServer } from '../servers/moto.js';

interface Rig {
  db: DB;
  replica: Replica;
  app: Database.Database;
  validator: Validator;
  lines: string[];
  sync: () => Promise<void>;
  /** Runs once, inside the next sync the validator asks for: after the position was taken. */
  beforeNextSync: (fn: () => void) => void;
  close: () => Promise<void>;
}

function rig(parent: string, replicaYaml: (dir: string) => string): Rig {
  const dir = mkdtempSync(join(parent, 'rig-'));
  const path = join(dir, 'app.db');
  createDB(path);
  const text = `dbs:\n  - path: ${path}\n    replicas:\n${replicaYaml(dir)}`;
  const cfgPath = join(dir, 'lsinit.yml');
  writeFileSync(cfgPath, text);
  const cfg = parseConfig(Buffer.from(text), { file: cfgPath, expandEnv: false, env: {}, cwd: dir }).dbs[0]!;
  const lines: string[] = [];
  const log = createLogger({ level: 'debug', write: (l) => lines.push(l) });
  const db = new DB(cfg, log);
  const replica = new Replica(db.source, cfg.replicas[0]!, createClient(cfg.replicas[0]!), log);
  const app = new Database(path);
  const sync = async () => {
    db.sync();
    await replica.sync();
  };
  let hook: (() => void) | undefined;
  const validator = new Validator({
    db, replica, log, waitMs: 30_000,
    syncReplica: async () => {
      const h = hook;
      hook = undefined;
      h?.();
      await sync();
    },
  });
  return {
    db, replica, app, validator, lines, sync, beforeNextSync: (fn) => (hook = fn),
    close: async () => {
      validator.close();
      app.close();
      db.closeConnections();
      await replica.client.close();
    },
  };
}

function insert(app: Database.Database, from: number, n: number, size = 300): void {
  const st = app.prepare('INSERT INTO log (id, conn, payload, data) VALUES (?, 1, ?, randomblob(?))');
  app.transaction(() => {
    for (let i = from; i < from + n; i++) st.run(i, `row ${i}`, size);
  })();
}

describe('replica validation (file)', () => {
  const w = workdir('validate');
  after(w.cleanup);

  it('passes at the current position, across WAL indexes and with commits after the position, leaving no temp file', async () => {
    const r = rig(w.dir, (d) => `      - type: file\n        path: ${join(d, 'replica')}\n`);
    try {
      insert(r.app, 1, 50);
      await r.sync();
      let res = await r.validator.run();
      assert.equal(res.status, 'ok', JSON.stringify(res));
      // A second WAL index: checkpoint (the app's own, as SQLite's auto-checkpoint would), then more commits.
      r.db.checkpoint();
      insert(r.app, 100, 50, 2000);
      r.db.sync();
      insert(r.app, 200, 10);
      await r.sync();
      res = await r.validator.run();
      assert.equal(res.status, 'ok', JSON.stringify(res));
      assert.ok(res.status === 'ok' && res.pos.index >= 1, `expected a later WAL index: ${JSON.stringify(res)}`);
      assert.equal(res.local, res.replica);
      // Commits after the position is taken ship in the same segment as those before it: the
      // restore stops at the position, inside that segment.
      insert(r.app, 250, 5);
      r.beforeNextSync(() => insert(r.app, 300, 20));
      res = await r.validator.run();
      assert.equal(res.status, 'ok', JSON.stringify(res));
      assert.ok(res.status === 'ok' && comparePos(r.replica.pos!, res.pos) > 0, 'the replica should hold more than the validated position');
      assert.deepEqual(r.replica.stats.validations, { ok: 3, error: 0 });
      assert.deepEqual(readdirSync(r.db.metaPath).filter((n) => n.includes('validate')), []);
      assert.match(r.lines.join('\n'), /msg=validator status=ok/);
    } finally {
      await r.close();
    }
  });

  it('a WAL index replaced by another valid one is a mismatch: logged as an error and counted', async () => {
    let replicaDir = '';
    const r = rig(w.dir, (d) => `      - type: file\n        path: ${(replicaDir = join(d, 'replica'))}\n`);
    try {
      insert(r.app, 1, 40, 1500);
      await r.sync();
      r.db.checkpoint();
      r.app.exec('UPDATE log SET payload = upper(payload)'); // index 1: same pages, new bytes
      await r.sync();
      r.db.checkpoint();
      r.app.exec("INSERT OR REPLACE INTO counters (name, value) VALUES ('n', 1)"); // index 2
      await r.sync();
      assert.equal((await r.validator.run()).status, 'ok');
      // Index 1 becomes a copy of index 0: every frame and checksum valid, the content older.
      const gen = r.db.pos()!.generation;
      const wal = join(replicaDir, 'generations', gen, 'wal');
      const names = readdirSync(wal);
      assert.ok(names.some((n) => n.startsWith('00000002_')), names.join(' '));
      for (const n of names.filter((x) => x.startsWith('00000001_'))) rmSync(join(wal, n));
      for (const n of names.filter((x) => x.startsWith('00000000_'))) copyFileSync(join(wal, n), join(wal, `00000001_${n.slice(9)}`));
      const res = await r.validator.run();
      assert.equal(res.status, 'mismatch', JSON.stringify(res));
      assert.ok(res.status === 'mismatch' && res.local !== res.replica);
      assert.deepEqual(r.replica.stats.validations, { ok: 1, error: 1 });
      assert.match(r.lines.join('\n'), /level=ERROR msg="validation mismatch: the replica differs from the database at the same position"/);
    } finally {
      await r.close();
    }
  });

  it('skips a round, without counting it, while another connection holds the write lock', async () => {
    const r = rig(w.dir, (d) => `      - type: file\n        path: ${join(d, 'replica')}\n`);
    try {
      insert(r.app, 1, 5);
      await r.sync();
      r.app.exec('BEGIN IMMEDIATE');
      const res = await r.validator.run();
      r.app.exec('ROLLBACK');
      assert.equal(res.status, 'skipped', JSON.stringify(res));
      assert.deepEqual(r.replica.stats.validations, { ok: 0, error: 0 });
      assert.equal((await r.validator.run()).status, 'ok');
    } finally {
      await r.close();
    }
  });
});

describe('replica validation (s3, moto)', () => {
  const w = workdir('validate-s3');
  let moto: MotoServer;
  before(async () => {
    moto = await startMoto();
    await moto.createBucket('val');
  });
  after(async () => {
    await moto?.stop();
    w.cleanup();
  });

  it('passes on an S3 replica', async () => {
    const r = rig(w.dir, () => `      - type: s3\n        bucket: val\n        path: app\n        endpoint: ${moto.endpoint}\n        region: us-east-1\n        force-path-style: true\n        access-key-id: ${MOTO_ACCESS_KEY_ID}\n        secret-access-key: ${MOTO_SECRET_ACCESS_KEY}\n`);
    try {
      insert(r.app, 1, 100, 1000);
      await r.sync();
      r.db.checkpoint();
      insert(r.app, 500, 30);
      await r.sync();
      const res = await r.validator.run();
      assert.equal(res.status, 'ok', JSON.stringify(res));
      assert.deepEqual(r.replica.stats.validations, { ok: 1, error: 0 });
    } finally {
      await r.close();
    }
  });
});

describe('validation-interval in the controller', () => {
  it('validates on its interval and counts litestream_replica_validation_total{status="ok"}', { timeout: 60_000 }, async () => {
    const m = await metricsRig('validate-metrics', '      - type: file\n        path: {dir}/replica\n        sync-interval: 100ms\n        validation-interval: 300ms\n');
    try {
      m.write(50);
      const labels = { db: m.db, name: 'file', status: 'ok' };
      const deadline = Date.now() + 30_000;
      let ok = 0;
      while (ok < 2 && Date.now() < deadline) {
        m.write(5);
        await new Promise((res) => setTimeout(res, 200));
        ok = (await m.scrape()).get('litestream_replica_validation_total', labels) ?? 0;
      }
      assert.ok(ok >= 2, `validations counted: ${ok}`);
      assert.equal((await m.scrape()).get('litestream_replica_validation_total', { ...labels, status: 'error' }), 0);
    } finally {
      await m.stop();
    }
  });
});

describe('validation-interval in init mode (replication in the worker thread)', () => {
  const w = workdir('validate-init');
  after(w.cleanup);

  it('validates while the app writes, logs status=ok and leaves no temp file in the meta dir', { timeout: 120_000 }, async () => {
    const { cfg, db } = fileConfig(w.dir, { sync: '200ms', replicaExtra: '        validation-interval: 700ms\n' });
    createDB(db);
    const r = await lsinitCLI(['-config', cfg, '--', process.execPath, WRITER, db, '--tx', '60', '--delay', '50']);
    const out = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.exitCode, 0, out);
    assert.ok(out.split('\n').some((l) => /msg=validator .*status=ok/.test(l)), out);
    assert.doesNotMatch(out, /validation mismatch|validation error/);
    assert.deepEqual(readdirSync(join(w.dir, '.app.db-litestream')).filter((n) => n.includes('validate')), []);
  });
});
