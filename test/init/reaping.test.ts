/** Orphaned zombies are reaped as PID 1 and as a subreaper, and reaping never steals the app's exit. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { FIXTURES, launch } from './helpers.js';

const ZOMBIES = [process.execPath, join(FIXTURES, 'zombies.mjs'), '100'];

// zombies.mjs exits with the number of zombies left under lsinit after its 100 orphans died.
test('100 orphaned zombies are reaped when lsinit is PID 1', async () => {
  const run = launch(['--', ...ZOMBIES], { pid1: true });
  assert.equal((await run.exited).code, 0, run.stderr());
  assert.match(run.stderr(), /mode=pid1 reaper=pid1/);
  assert.ok(Number(/zombies_reaped=(\d+)/.exec(run.stderr())?.[1]) >= 100, 'the orphans were ours to reap');
});

test('100 orphaned zombies are reaped when lsinit is not PID 1 (child subreaper)', async () => {
  const run = launch(['--', ...ZOMBIES]);
  assert.equal((await run.exited).code, 0, run.stderr());
  assert.match(run.stderr(), /mode=subreaper reaper=subreaper/);
  assert.ok(Number(/zombies_reaped=(\d+)/.exec(run.stderr())?.[1]) >= 100, 'the orphans were re-parented to us');
});

test('negative control: with the reaper off, the 100 orphans stay zombies under PID 1', async () => {
  const run = launch(['--', ...ZOMBIES], { pid1: true, noReap: true });
  assert.equal((await run.exited).code, 100, run.stderr());
});

// No time bound: a lost exit event means a hang, which the test timeout catches.
test("the app's exit is never lost while orphans churn around it (no waitpid(-1))", { timeout: 60_000 }, async () => {
  const runs = Array.from({ length: 4 }, (_, i) =>
    launch(['--', process.execPath, join(FIXTURES, 'churn.mjs')], { pid1: true, env: { CODE: String(40 + i) } }));
  const ends = await Promise.all(runs.map((r) => r.exited));
  assert.deepEqual(ends.map((e) => e.code), [40, 41, 42, 43]);
});
