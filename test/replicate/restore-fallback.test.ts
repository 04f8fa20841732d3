/**
 * A newest generation with WAL segments but no snapshot (its first snapshot never reached the
 * store) cannot be restored; an older complete generation can. `restore` and init mode's
 * restore-if-missing fall back to it and say so, instead of failing (and, in init mode, never
 * starting the app). An explicit -generation still gets the error.
 */
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { lsinit } from '../helpers/cli.js';
import { createDB, dump, fileConfig, integrity, logIds, snapshotCopy, startReplicate, workdir, writer } from '../helpers/replicate.js';

test('restore and restore-if-missing fall back to the newest generation that has a snapshot, and name the one passed over', { timeout: 120_000 }, async (t) => {
  const w = workdir('restore-fallback');
  t.after(w.cleanup);
  const { cfg, db, replica } = fileConfig(w.dir);
  createDB(db);
  const gens = () => readdirSync(join(replica, 'generations')).sort();

  // Generation 1: complete (snapshot + WAL), rows 1..10.
  let a = await startReplicate(cfg);
  await writer(db, ['--tx', '10']);
  a.child.kill('SIGTERM');
  assert.equal((await a.child).exitCode, 0, a.output());
  const [gen1] = gens();
  const older = dump(snapshotCopy(db, join(w.dir, 'gen1.db')));

  // Generation 2 (the local state is lost, so a new one starts): rows 11..20, then its snapshot goes missing.
  rmSync(join(w.dir, '.app.db-litestream'), { recursive: true, force: true });
  a = await startReplicate(cfg);
  await writer(db, ['--tx', '10', '--start', '11']);
  a.child.kill('SIGTERM');
  assert.equal((await a.child).exitCode, 0, a.output());
  const gen2 = gens().find((g) => g !== gen1)!;
  assert.ok(gen2, 'a second generation');
  rmSync(join(replica, 'generations', gen2, 'snapshots'), { recursive: true, force: true });
  assert.ok(readdirSync(join(replica, 'generations', gen2, 'wal')).length > 0, 'generation 2 still has WAL segments');

  const out = join(w.dir, 'restored.db');
  const r = await lsinit(['restore', '-o', out, `file://${replica}`]);
  assert.equal(r.exitCode, 0, r.stderr + r.stdout);
  assert.match(r.stderr + r.stdout, new RegExp(`passing over a newer generation that cannot be restored.*skipped=${gen2}.*no snapshot.*generation=${gen1}`));
  assert.equal(integrity(out), 'ok');
  assert.deepEqual(dump(out), older);
  assert.ok(!logIds(out).includes(11), 'nothing of generation 2');

  // Asked for by name, it is still an error.
  const named = await lsinit(['restore', '-generation', gen2, '-o', join(w.dir, 'named.db'), `file://${replica}`]);
  assert.notEqual(named.exitCode, 0);
  assert.match(named.stderr, new RegExp(`no snapshot available in generation ${gen2}`));

  // Init mode, database missing: restored from generation 1, then the app runs on it.
  rmSync(db);
  rmSync(`${db}-wal`, { force: true });
  rmSync(`${db}-shm`, { force: true });
  rmSync(join(w.dir, '.app.db-litestream'), { recursive: true, force: true });
  const init = await lsinit(['-config', cfg, '--', process.execPath, '-e', 'process.exit(0)']);
  assert.equal(init.exitCode, 0, init.stderr + init.stdout);
  assert.match(init.stderr + init.stdout, /passing over a newer generation that cannot be restored/);
  assert.match(init.stderr + init.stdout, /msg="app started"/);
  assert.equal(integrity(db), 'ok');
  assert.deepEqual(dump(db), older);
});
