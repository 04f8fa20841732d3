import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LsinitError } from '../../src/errors.js';
import { planBudget, fmtMs } from '../../src/init/budget.js';
import { parseInitArgs } from '../../src/init/command.js';
import { requireDuration } from '../../src/util/time.js';
import { stripCredentials } from '../../src/init/env.js';
import { leftovers, parseStat } from '../../src/init/proc.js';
import { exitCodeOf, parseRewrite, parseSignal } from '../../src/init/signals.js';
import { splitCommand } from '../../src/init/words.js';

const usageError = (fn: () => unknown) =>
  assert.throws(fn, (err: unknown) => err instanceof LsinitError && err.code === 'LSINIT_ERR_USAGE');

test('exec lines split like go-shellwords: quotes, escapes, no shell, no $VAR', () => {
  assert.deepEqual(splitCommand('node server.js --port 8080'), ['node', 'server.js', '--port', '8080']);
  assert.deepEqual(splitCommand(`sh -c 'echo "$HOME" && exit 3'`), ['sh', '-c', 'echo "$HOME" && exit 3']);
  assert.deepEqual(splitCommand('a "b c" d\\ e "x\\"y" \'\''), ['a', 'b c', 'd e', 'x"y', '']);
  assert.deepEqual(splitCommand('  $HOME  '), ['$HOME']);
  assert.deepEqual(splitCommand(''), []);
  usageError(() => splitCommand('echo "open'));
});

test('one Go duration parser for flags and keys: a bare number other than 0 is an error naming the flag', () => {
  assert.equal(requireDuration('9s', '-f'), 9000);
  assert.equal(requireDuration('500ms', '-f'), 500);
  assert.equal(requireDuration('1m30s', '-f'), 90_000);
  assert.equal(requireDuration('1.5s', '-f'), 1500);
  assert.equal(requireDuration('0', '-f'), 0);
  assert.throws(() => requireDuration('9', '-shutdown-timeout'), { code: 'LSINIT_ERR_USAGE', message: /^-shutdown-timeout: invalid duration "9": a number needs a unit, e.g. "9s"/ });
  assert.throws(() => requireDuration(9, 'dbs[0].monitor-interval', { code: 'LSINIT_ERR_CONFIG' }), { code: 'LSINIT_ERR_CONFIG', message: /^dbs\[0\]\.monitor-interval: invalid duration 9: a number needs a unit/ });
  usageError(() => requireDuration('9sec', '-f'));
  usageError(() => requireDuration('', '-f'));
  usageError(() => requireDuration('-1s', '-f', { min: 0 }));
});

test('init flags: -flag v, -flag=v, --flag, booleans, repeatable rewrite, command after --', () => {
  const p = parseInitArgs(['-config', '/c.yml', '--shutdown-timeout=4s', '-kill-grace', '500ms', '-signal-rewrite', 'INT:TERM',
    '-signal-rewrite=USR2:0', '-process-group', '-strip-credentials=true', '-no-expand-env', '--', 'node', '-e', '1']);
  assert.equal(p.config, '/c.yml');
  assert.equal(p.expandEnv, false);
  assert.deepEqual(p.command, ['node', '-e', '1']);
  assert.deepEqual(p.overrides, { shutdownTimeoutMs: 4000, killGraceMs: 500, signalRewrite: ['INT:TERM', 'USR2:0'], processGroup: true, stripCredentials: true });
  assert.equal(parseInitArgs(['-h']).help, true);
  assert.equal(parseInitArgs(['-exec', 'sleep 1']).exec, 'sleep 1');
  assert.equal(parseInitArgs(['-process-group=false', '--', 'x']).overrides.processGroup, false);
  usageError(() => parseInitArgs(['-nope', '--', 'x']));
  usageError(() => parseInitArgs(['myapp']));
  usageError(() => parseInitArgs(['--']));
  usageError(() => parseInitArgs(['-config']));
  usageError(() => parseInitArgs(['-exec', 'a', '--', 'b']));
  usageError(() => parseInitArgs(['-shutdown-timeout', '0', '--', 'b']));
});

test('signal names, numbers and rewrite tables', () => {
  assert.equal(parseSignal('term'), 'SIGTERM');
  assert.equal(parseSignal('SIGUSR1'), 'SIGUSR1');
  assert.equal(parseSignal('2'), 'SIGINT');
  assert.equal(parseSignal('0', true), 0);
  usageError(() => parseSignal('NOPE'));
  const r = parseRewrite(['INT:TERM', 'USR2:0'], { SIGHUP: 'SIGUSR1' });
  assert.deepEqual([...r], [['SIGHUP', 'SIGUSR1'], ['SIGINT', 'SIGTERM'], ['SIGUSR2', 0]]);
  usageError(() => parseRewrite(['CHLD:TERM']));
  usageError(() => parseRewrite(['INT']));
  usageError(() => parseRewrite(['INT:NOPE']));
  assert.deepEqual([...parseRewrite([], { SIGTSTP: 'SIG0' })], [['SIGTSTP', 0]]);
  assert.throws(() => parseRewrite([], { SIGCHLD: 'SIGTERM' }), (e: unknown) => e instanceof LsinitError && e.code === 'LSINIT_ERR_CONFIG');
});

test('exit codes: the code itself, else 128 + signal number', () => {
  assert.equal(exitCodeOf(0, null), 0);
  assert.equal(exitCodeOf(255, null), 255);
  assert.equal(exitCodeOf(null, 'SIGTERM'), 143);
  assert.equal(exitCodeOf(null, 'SIGKILL'), 137);
  assert.equal(exitCodeOf(null, 'SIGUSR1'), 138);
});

test('the shutdown budget always reserves max(1 s, 25 %) for the final sync', () => {
  assert.deepEqual(planBudget(9000), { totalMs: 9000, appMs: 6750, syncReserveMs: 2250 });
  assert.deepEqual(planBudget(4000), { totalMs: 4000, appMs: 3000, syncReserveMs: 1000 });
  assert.deepEqual(planBudget(30_000), { totalMs: 30_000, appMs: 22_500, syncReserveMs: 7500 });
  assert.deepEqual(planBudget(500), { totalMs: 500, appMs: 0, syncReserveMs: 500 });
  assert.equal(fmtMs(6750), '6.75s');
  assert.equal(fmtMs(9000), '9s');
  assert.equal(fmtMs(250), '250ms');
});

test('strip-credentials removes AWS_*, LITESTREAM_*, AZURE_STORAGE_* and the GCS key path only', () => {
  const { env, removed } = stripCredentials({
    AWS_SECRET_ACCESS_KEY: 's', LITESTREAM_ACCESS_KEY_ID: 'k', AZURE_STORAGE_KEY: 'a', GOOGLE_APPLICATION_CREDENTIALS: '/k.json',
    PATH: '/bin', DATABASE_URL: 'x', MY_AWS_THING: 'kept',
  });
  assert.deepEqual(env, { PATH: '/bin', DATABASE_URL: 'x', MY_AWS_THING: 'kept' });
  assert.equal(removed.length, 4);
  // A variable of any name that holds an age identity of the config (e.g. `identities: [$AGE_KEY]`).
  const id = 'AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ';
  const r = stripCredentials({ AGE_KEY: id, KEYFILE: `# comment\n${id}\n`, PATH: '/bin' }, [id]);
  assert.deepEqual(r.env, { PATH: '/bin' });
  assert.deepEqual(r.removed, ['AGE_KEY', 'KEYFILE']);
});

test('/proc stat parsing copes with spaces and parentheses in comm; leftovers skip owned subtrees', () => {
  const p = parseStat('42 (my (weird) app) Z 1 42 42 0 -1');
  assert.deepEqual(p, { pid: 42, comm: 'my (weird) app', state: 'Z', ppid: 1, pgrp: 42 });
  const procs = [
    { pid: 10, ppid: 1, pgrp: 10, state: 'S', comm: 'owned' },
    { pid: 11, ppid: 10, pgrp: 10, state: 'S', comm: 'owned-child' },
    { pid: 20, ppid: 1, pgrp: 20, state: 'S', comm: 'orphan' },
    { pid: 21, ppid: 20, pgrp: 20, state: 'S', comm: 'orphan-child' },
    { pid: 22, ppid: 1, pgrp: 22, state: 'Z', comm: 'zombie' },
    { pid: 30, ppid: 99, pgrp: 5, state: 'S', comm: 'group-member-elsewhere' },
  ];
  assert.deepEqual(leftovers(procs, 1, new Set([10])).map((x) => x.pid).sort(), [20, 21]);
  assert.deepEqual(leftovers(procs, 1, new Set([10]), 5).map((x) => x.pid).sort(), [20, 21, 30]);
});
