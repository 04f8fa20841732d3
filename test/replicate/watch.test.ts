/**
 * The WAL-index poll drives replication between monitor ticks (no inotify watch: it cost the app
 * an event per write). Every burst must be noticed, not only the first, and an open transaction
 * spilling pages into the WAL is not a commit: the poll must not copy the WAL for it.
 */
import assert from 'node:assert/strict';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { parseConfig } from '../../src/config/file.js';
import { nullLogger } from '../../src/log/logger.js';
import { onOp } from '../../src/metrics/ops.js';
import { Controller } from '../../src/replicate/controller.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { createDB, dump, integrity, sleep, workdir } from '../helpers/replicate.js';
import { lsinit } from '../helpers/cli.js';

test('with a 30 s monitor interval, every burst of commits still ships within a few sync intervals', { timeout: 120_000 }, async (t) => {
  const w = workdir('watch');
  t.after(w.cleanup);
  const db = join(w.dir, 'app.db');
  const replica = join(w.dir, 'replica');
  createDB(db);
  const text = `lease: false\ndbs:\n  - path: ${db}\n    monitor-interval: 30s\n    replicas:\n      - path: ${replica}\n        sync-interval: 100ms\n`;
  const cfgPath = join(w.dir, 'lsinit.yml');
  writeFileSync(cfgPath, text);
  const controller = new Controller(parseConfig(Buffer.from(text), { file: cfgPath, expandEnv: false, env: {}, cwd: w.dir }), nullLogger);
  let lastPut = 0;
  const off = onOp((type, op) => {
    if (type === 'file' && op === 'PUT') lastPut = Date.now();
  });
  const app = new Database(db);
  let open = true;
  const stop = async () => {
    if (!open) return;
    open = false;
    await controller.close({ deadline: Date.now() + 5000 });
    await controller.dispose();
  };
  try {
    await controller.start();
    const ins = app.prepare('INSERT INTO log (conn, payload) VALUES (?, ?)');
    const lags: number[] = [];
    for (let burst = 0; burst < 6; burst++) {
      // A burst of separate transactions (many write() calls), then quiet.
      for (let i = 0; i < 300; i++) ins.run(burst, `burst ${burst} row ${i}`);
      const committed = Date.now();
      const deadline = committed + 10_000;
      while (lastPut < committed && Date.now() < deadline) await sleep(10);
      assert.ok(lastPut >= committed, `burst ${burst}: not shipped 10 s after commit (the WAL-index poll missed it?)`);
      lags.push(lastPut - committed);
      await sleep(300);
    }
    assert.ok(Math.max(...lags) < 2_000, `lags ${lags.join(', ')} ms`);
    await stop();
    const out = join(w.dir, 'restored.db');
    const r = await lsinit(['restore', '-o', out, `file://${replica}`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(integrity(out), 'ok');
    assert.deepEqual(dump(out), dump(db));
  } finally {
    off();
    app.close();
    await stop();
  }
});

test('an open write transaction whose pages spilled into the WAL does not make lsinit re-read it every tick', { timeout: 60_000 }, async (t) => {
  const w = workdir('watch-spill');
  t.after(w.cleanup);
  const db = join(w.dir, 'app.db');
  createDB(db);
  const text = `lease: false\ndbs:\n  - path: ${db}\n    monitor-interval: 30s\n    replicas:\n      - path: ${join(w.dir, 'replica')}\n        sync-interval: 100ms\n`;
  const cfgPath = join(w.dir, 'lsinit.yml');
  writeFileSync(cfgPath, text);
  // The controller's polls and ticks run on a fake clock: 2 s of polls without waiting 2 s.
  const clock = new FakeClock();
  const controller = new Controller(parseConfig(Buffer.from(text), { file: cfgPath, expandEnv: false, env: {}, cwd: w.dir }), nullLogger, { now: clock.now, timers: clock });
  const app = new Database(db);
  try {
    await controller.start();
    const stats = controller.entries[0]!.db.stats;
    await clock.advance(100); // the first monitor tick: the next one is 30 s away
    // A small page cache makes SQLite spill the transaction's pages into the WAL before COMMIT.
    app.pragma('cache_size = 10');
    app.exec('BEGIN');
    const ins = app.prepare('INSERT INTO log (conn, payload) VALUES (?, ?)');
    for (let i = 0; i < 2000; i++) ins.run(1, 'y'.repeat(500));
    assert.ok(statSync(`${db}-wal`).size > 1_000_000, 'the open transaction spilled into the WAL');
    const before = stats.syncs;
    await clock.advance(2000); // 40 polls of the WAL index
    const idleTicks = stats.syncs - before;
    app.exec('COMMIT');
    const committed = stats.syncs;
    await clock.advance(200); // a poll, then the tick once the replica's 100 ms sync interval allows
    assert.ok(stats.syncs > committed, 'the commit itself was noticed');
    // 2 s at one poll per 50 ms: with nothing committed, no poll syncs.
    assert.equal(idleTicks, 0, `${idleTicks} syncs in 2 s while the open transaction committed nothing`);
  } finally {
    app.close();
    await controller.close({ deadline: Date.now() + 5000 });
    await controller.dispose();
  }
});
