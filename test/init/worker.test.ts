/**
 * Replication in init mode runs in a worker thread (src/replicate/worker-controller.ts). What that
 * must not change: the resolved config's secrets (non-enumerable, which structured cloning drops)
 * reach the worker and stay unprintable; and the worker's end at exit does not let SQLite's
 * close-time checkpoint delete the WAL, so the next start continues the same generation.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { readFileSync, rmSync } from 'node:fs';
import { parseConfig } from '../../src/config/file.js';
import { nullLogger, type Logger } from '../../src/log/logger.js';
import { WorkerController } from '../../src/replicate/worker-controller.js';
import { pack, unpack } from '../../src/replicate/worker-protocol.js';
import { killChildAtEnd } from '../helpers/cli.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { fileReplicated, ROOT, tmp } from './helpers.js';

test('pack/unpack: non-enumerable settings (secrets) survive a structured clone and stay non-enumerable', () => {
  const settings = { bucket: 'b', nested: [{ a: 1 }] };
  Object.defineProperty(settings, 'secretAccessKey', { value: 's3cr3t-value', enumerable: false });
  const config = { dbs: [{ path: '/x.db', replicas: [{ name: 's3', settings }] }] };
  const back = unpack(structuredClone(pack(config))) as typeof config;
  const s = back.dbs[0]!.replicas[0]!.settings as Record<string, unknown>;
  assert.equal(s['secretAccessKey'], 's3cr3t-value');
  assert.equal(Object.keys(s).includes('secretAccessKey'), false);
  assert.equal(JSON.stringify(back).includes('s3cr3t'), false);
  assert.deepEqual(s['nested'], [{ a: 1 }]);
});

function runInit(cfg: string, db: string, code: string): Promise<{ code: number | null; output: string }> {
  const child = killChildAtEnd(spawn(process.execPath, [join(ROOT, 'bin/lsinit.js'), '-config', cfg, '--', process.execPath, '-e', code], { env: { ...process.env, DB: db, NODE_PATH: join(ROOT, 'node_modules') }, stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  return new Promise((r) => child.on('exit', (c) => r({ code: c, output })));
}

test('a second init run on the same database continues the generation (the WAL outlives the worker)', { timeout: 120_000 }, async (t) => {
  const dir = tmp(t);
  const { db, cfg } = fileReplicated(dir);
  const write = "const D = require('better-sqlite3'); const d = new D(process.env.DB); d.prepare('INSERT INTO t (v) VALUES (?)').run('row'); d.close();";
  const first = await runInit(cfg, db, write);
  assert.equal(first.code, 0, first.output);
  const gen = /msg="sync: new generation".* generation=([0-9a-f]{16})/.exec(first.output)?.[1];
  assert.ok(gen, first.output);
  const second = await runInit(cfg, db, write);
  assert.equal(second.code, 0, second.output);
  assert.match(second.output, new RegExp(`msg="continuing generation".* generation=${gen}`));
  assert.doesNotMatch(second.output, /new generation/);
  const restored = join(dir, 'restored.db');
  const r = spawn(process.execPath, [join(ROOT, 'bin/lsinit.js'), 'restore', '-o', restored, `file://${join(dir, 'replica')}`], { stdio: 'inherit' });
  assert.equal(await new Promise((res) => r.on('exit', res)), 0);
  const rd = new Database(restored, { readonly: true });
  assert.deepEqual(rd.prepare('SELECT v FROM t ORDER BY id').all(), [{ v: 'row' }, { v: 'row' }]);
  assert.equal(rd.pragma('integrity_check', { simple: true }), 'ok');
  rd.close();
});

test('dispose() terminates a replication worker that never answers its shutdown, after disposeStepMs', { timeout: 30_000 }, async (t) => {
  const dir = tmp(t);
  const { cfg } = fileReplicated(dir);
  const config = parseConfig(readFileSync(cfg), { file: cfg, expandEnv: false, env: {}, cwd: dir });
  const warnings: string[] = [];
  const log: Logger = { ...nullLogger, warn: (m) => void warnings.push(m), child: () => log };
  const clock = new FakeClock();
  const wc = new WorkerController(config, log, { workerUrl: new URL('../fixtures/mute-worker.mjs', import.meta.url), disposeStepMs: 3000, timers: clock });
  let disposed = false;
  const done = wc.dispose().then(() => (disposed = true));
  await clock.advance(2900);
  assert.equal(disposed, false, 'still waiting for the worker before disposeStepMs');
  await clock.advance(100);
  await done; // without the bound, this never settles and the test times out
  assert.deepEqual(warnings, ['the replication worker did not answer the shutdown; terminating it']);
});

test('calls sent before the worker answered its init are run once its controller exists; after a failed init each fails with its error', { timeout: 60_000 }, async (t) => {
  const infos: string[] = [];
  const log: Logger = { ...nullLogger, info: (m) => void infos.push(m), child: () => log };
  // The bundled worker (npm run build), as lsinit runs it: its modules are still loading when the call is sent.
  const workerUrl = new URL('../../dist/chunks/worker.js', import.meta.url);
  const missingDB = () => {
    const dir = tmp(t);
    const { cfg, db } = fileReplicated(dir);
    rmSync(db); // missing: restoreMissing() goes to the worker
    return parseConfig(readFileSync(cfg), { file: cfg, expandEnv: false, env: {}, cwd: dir });
  };
  const wc = new WorkerController(missingDB(), log, { workerUrl });
  t.after(() => wc.dispose());
  await wc.restoreMissing();
  assert.ok(infos.includes('no backup found on any replica; the app starts with an empty database'), infos.join('; '));

  const bad = missingDB();
  (bad.dbs[0]!.replicas[0] as { type: string }).type = 'bogus'; // the worker's Controller cannot be built
  const failing = new WorkerController(bad, log, { workerUrl });
  t.after(() => failing.dispose());
  await assert.rejects(failing.restoreMissing(), /unknown replica type bogus/);
  await assert.rejects(failing.restoreMissing(), /unknown replica type bogus/);
});
