/**
 * Scheduling runs on the process clock (src/util/clock.ts), not the wall clock: a wall clock
 * stepped back (NTP, a restored VM, libfaketime) used to put every "last sync + interval" an hour
 * in the future, so shipping stopped and the lag read 0. The wall clock is faked here by replacing
 * Date.now in this process, where the controller runs.
 *
 * Also here: the shadow WAL cleanup of a database without replicas (config refuses it since; the
 * controller must still never delete the current shadow WAL: Math.min() of nothing is Infinity).
 */
import assert from 'node:assert/strict';
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { parseConfig } from '../../src/config/file.js';
import { nullLogger } from '../../src/log/logger.js';
import { createRegistry } from '../../src/metrics/registry.js';
import { onOp } from '../../src/metrics/ops.js';
import { Controller } from '../../src/replicate/controller.js';
import { lsinit } from '../helpers/cli.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { createDB, dump, integrity, sleep, workdir } from '../helpers/replicate.js';

function controllerFor(dir: string, db: string, replicas: string, clock?: FakeClock): Controller {
  const text = `dbs:\n  - path: ${db}\n    monitor-interval: 100ms\n    replicas:\n${replicas}`;
  const cfgPath = join(dir, 'lsinit.yml');
  writeFileSync(cfgPath, text);
  return new Controller(parseConfig(Buffer.from(text), { file: cfgPath, expandEnv: false, env: {}, cwd: dir }), nullLogger, clock ? { now: clock.now, timers: clock } : {});
}

/** Real elapsed time, whatever Date.now says. */
const mono = () => performance.now();

test('a wall clock stepped back one hour neither stops shipping nor zeroes the lag', { timeout: 60_000 }, async (t) => {
  const w = workdir('clock-step');
  t.after(w.cleanup);
  const db = join(w.dir, 'app.db');
  const replica = join(w.dir, 'replica');
  createDB(db);
  const controller = controllerFor(w.dir, db, `      - path: ${replica}\n        sync-interval: 100ms\n`);
  const registry = createRegistry({ source: controller, defaultMetrics: false });
  let puts = 0;
  const off = onOp((type, op) => {
    if (type === 'file' && op === 'PUT') puts++;
  });
  const app = new Database(db);
  const realNow = Date.now;
  const lag = async () => Number(/lsinit_replica_lag_seconds\{[^}]*\} (\S+)/.exec(await registry.metrics())?.[1]);
  try {
    await controller.start();
    const ins = app.prepare('INSERT INTO log (conn, payload) VALUES (?, ?)');
    const shipped = async (what: string) => {
      const before = puts;
      const end = mono() + 5000;
      while (puts === before && mono() < end) await sleep(20);
      assert.ok(puts > before, `${what}: nothing shipped within 5 s`);
    };
    for (let i = 0; i < 20; i++) ins.run(0, `before ${i}`);
    await shipped('before the step');
    Date.now = () => realNow() - 3_600_000;
    for (let i = 0; i < 20; i++) ins.run(1, `after ${i}`);
    await shipped('after the step back');
    // Replica unusable: the lag must grow in real time, not read 0.
    renameSync(replica, `${replica}.away`);
    writeFileSync(replica, 'not a directory');
    for (let i = 0; i < 5; i++) ins.run(2, `while away ${i}`);
    const t0 = mono();
    while (mono() - t0 < 1500) await sleep(50);
    const l = await lag();
    assert.ok(l >= 1 && l < 60, `lag ${l} s after 1.5 s behind`);
    rmSync(replica);
    renameSync(`${replica}.away`, replica);
    await shipped('after the replica came back');
  } finally {
    Date.now = realNow;
    off();
    app.close();
    await controller.close({ deadline: Date.now() + 5000 });
    await controller.dispose();
  }
  const out = join(w.dir, 'restored.db');
  const r = await lsinit(['restore', '-o', out, `file://${replica}`]);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.equal(integrity(out), 'ok');
  assert.deepEqual(dump(out), dump(db));
});

test('a database without replicas keeps its generation and current shadow WAL (no cleanup down to Infinity)', { timeout: 30_000 }, async (t) => {
  const w = workdir('no-replicas');
  t.after(w.cleanup);
  const db = join(w.dir, 'app.db');
  createDB(db);
  const clock = new FakeClock();
  const controller = controllerFor(w.dir, db, `      - path: ${join(w.dir, 'replica')}\n`, clock);
  // What a config without replicas used to produce (the config layer refuses it now).
  const e = controller.entries[0]!;
  e.replicas.length = 0;
  e.cfg.replicas.length = 0;
  e.leases.clear();
  const app = new Database(db);
  try {
    await controller.start();
    const gen = e.db.generation;
    assert.ok(gen);
    const ins = app.prepare('INSERT INTO log (conn, payload) VALUES (?, ?)');
    const syncs = e.db.stats.syncs;
    for (let round = 0; round < 10; round++) {
      ins.run(0, `row ${round}`);
      await clock.advance(150); // a monitor tick or more (100 ms)
    }
    assert.ok(e.db.stats.syncs - syncs >= 10, `${e.db.stats.syncs - syncs} syncs in 1.5 s of 100 ms monitor ticks`);
    assert.equal(e.db.generation, gen, 'no new generation');
    assert.ok(existsSync(e.db.shadowPath(gen, e.db.index)), 'the current shadow WAL is still there');
  } finally {
    app.close();
    await controller.close({ deadline: Date.now() + 5000 });
    await controller.dispose();
  }
});
