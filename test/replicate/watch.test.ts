/**
 * The WAL-index poll drives replication between monitor ticks (no inotify watch: it cost the app
 * an event per write). Every burst must be noticed, not only the first, and an open transaction
 * spilling pages into the WAL is not a commit: the poll must not copy the WAL for it.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { parseConfig } from '../../src/config/file.js';
import { nullLogger } from '../../src/log/logger.js';
import { onOp } from '../../src/metrics/ops.js';
import { Controller } from '../../src/replicate/controller.js';
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
  const controller = new Controller(parseConfig(Buffer.from(text), { file: cfgPath, expandEnv: false, env: {}, cwd: w.dir }), nullLogger);
  const app = new Database(db);
  try {
    await controller.start();
    const stats = controller.entries[0]!.db.stats;
    // A small page cache makes SQLite spill the transaction's pages into the WAL before COMMIT.
    app.pragma('cache_size = 10');
    app.exec('BEGIN');
    const ins = app.prepare('INSERT INTO log (conn, payload) VALUES (?, ?)');
    for (let i = 0; i < 2000; i++) ins.run(1, 'y'.repeat(500));
    await sleep(500); // the spill's writes raise events: let those ticks pass
    const before = stats.syncs;
    await sleep(2000);
    const idleTicks = stats.syncs - before;
    app.exec('COMMIT');
    const committed = stats.syncs;
    const deadline = Date.now() + 10_000;
    while (stats.syncs === committed && Date.now() < deadline) await sleep(10);
    assert.ok(stats.syncs > committed, 'the commit itself was noticed');
    // 2 s at one tick per 50 ms would be ~40 syncs; with nothing new in the WAL there is none.
    assert.ok(idleTicks <= 2, `${idleTicks} syncs in 2 s while the open transaction wrote nothing new`);
  } finally {
    app.close();
    await controller.close({ deadline: Date.now() + 5000 });
    await controller.dispose();
  }
});
