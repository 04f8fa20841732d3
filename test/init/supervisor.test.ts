/**
 * supervise() in this process with real child processes, a fake controller and injected signals:
 * exit codes, start-up order, the shutdown budget, final sync after every kind of exit.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { LsinitError } from '../../src/errors.js';
import { supervise, type SuperviseOptions } from '../../src/init/supervisor.js';
import { startReaper } from '../../src/init/reaper.js';
import { FakeController, FakeSignals, FIXTURES, memoryLogger, sleep, tmp, waitFor } from './helpers.js';

function run(argv: string[], o: Partial<SuperviseOptions> = {}) {
  const signals = new FakeSignals();
  const log = memoryLogger();
  const t0 = Date.now();
  const result = supervise({ argv, controller: null, log, signals, reaper: false, ...o }).then((code) => ({ code, ms: Date.now() - t0 }));
  return { signals, log, result };
}

const signalsApp = (out: string, env: Record<string, string> = {}) => ({
  argv: [process.execPath, join(FIXTURES, 'signals-app.mjs')],
  env: { ...process.env, OUT: out, ...env },
});

test('every exit code 0..255 passes through unchanged', async () => {
  for (let n = 0; n <= 255; n++) {
    const { result } = run(['sh', '-c', `exit ${n}`]);
    assert.equal((await result).code, n, `exit ${n}`);
  }
});

test('death by a signal gives 128 + N', async () => {
  const cases: [NodeJS.Signals, number][] = [['SIGTERM', 143], ['SIGHUP', 129], ['SIGQUIT', 131], ['SIGKILL', 137],
    ['SIGUSR1', 138], ['SIGUSR2', 140], ['SIGINT', 130], ['SIGALRM', 142]];
  for (const [sig, code] of cases) {
    const { result } = run(['sh', '-c', `kill -s ${sig.slice(3)} $$`]);
    assert.equal((await result).code, code, sig);
  }
});

test('command not found gives 127, not executable gives 126, each with a clear log line and a final sync', async () => {
  for (const [argv, code, text] of [
    [['/nonexistent/app'], 127, 'command not found'],
    [['no-such-command-lsinit-test'], 127, 'command not found'],
    [[join(FIXTURES, 'not-executable.sh')], 126, 'permission denied'],
  ] as const) {
    const controller = new FakeController();
    const { result, log } = run([...argv], { controller });
    assert.equal((await result).code, code);
    assert.ok(log.lines.some((l) => l.level === 'error' && l.msg.includes(text)), text);
    assert.deepEqual(controller.calls.map((c) => c.type), ['restore', 'start', 'close', 'closed']);
  }
});

test('restore failure: the app is not started, replication is not started, exit 1', async (t) => {
  const dir = tmp(t);
  const marker = join(dir, 'started');
  const controller = new FakeController({ restoreError: new LsinitError('LSINIT_ERR_REPLICA', 'HTTP 500') });
  const { result, log } = run([join(FIXTURES, 'marker.sh'), marker], { controller });
  assert.equal((await result).code, 1);
  assert.equal(existsSync(marker), false);
  assert.deepEqual(controller.calls.map((c) => c.type), ['restore']);
  assert.ok(log.lines.some((l) => l.level === 'error' && l.msg === 'restore failed; not starting the app' && l.fields.code === 'LSINIT_ERR_REPLICA'));
});

test('replication start failure: app not started, controller closed fast, exit 1', async (t) => {
  const dir = tmp(t);
  const marker = join(dir, 'started');
  const controller = new FakeController({ startError: new Error('cannot open database') });
  const { result } = run([join(FIXTURES, 'marker.sh'), marker], { controller });
  assert.equal((await result).code, 1);
  assert.equal(existsSync(marker), false);
  assert.deepEqual(controller.calls.map((c) => `${c.type}${c.fast ? ':fast' : ''}`), ['restore', 'start', 'close:fast', 'closed:fast']);
});

test('restore happens before the app starts; the start-up line names the budget, the dbs and replicas', async (t) => {
  const dir = tmp(t);
  const marker = join(dir, 'started');
  const controller = new FakeController();
  const { result, log } = run([join(FIXTURES, 'marker.sh'), marker], { controller, shutdownTimeoutMs: 4000 });
  assert.equal((await result).code, 0);
  assert.ok(existsSync(marker));
  const types = controller.calls.map((c) => c.type);
  assert.deepEqual(types, ['restore', 'start', 'close', 'closed']);
  const first = log.lines[0];
  assert.equal(first?.msg, 'lsinit supervising');
  assert.equal(first?.fields.shutdown_timeout, '4s');
  assert.equal(first?.fields.app_budget, '3s');
  assert.equal(first?.fields.sync_reserve, '1s');
  assert.ok(String(first?.fields.command).includes('marker.sh'));
  assert.ok(log.lines.some((l) => l.msg === 'replicating database' && l.fields.db === '/data/app.db' && String(l.fields.replicas).includes('s3://')));
});

test('an app ignoring SIGTERM is SIGKILLed at the app budget and the final sync still runs within the total', async (t) => {
  const dir = tmp(t);
  const out = join(dir, 'signals');
  const controller = new FakeController();
  const app = signalsApp(out, { IGNORE_TERM: '1' });
  const { signals, result } = run(app.argv, { env: app.env, controller, shutdownTimeoutMs: 2000 });
  await waitFor(() => existsSync(`${out}.ready`), 5000, 'app ready');
  const t0 = Date.now();
  signals.send('SIGTERM');
  const { code } = await result;
  const end = Date.now();
  assert.equal(code, 137);
  assert.deepEqual(readFileSync(out, 'utf8'), 'SIGTERM\n');
  const close = controller.calls.find((c) => c.type === 'close');
  assert.ok(close !== undefined);
  assert.ok(close.t - t0 >= 950 && close.t - t0 < 1900, `app killed at the 1 s app budget (close at +${close.t - t0} ms)`);
  assert.ok(Math.abs((close.deadline as number) - (t0 + 2000)) < 60, 'sync deadline is the end of the total budget');
  assert.ok(end - t0 < 2100, `exited within the 2 s budget (+${end - t0} ms)`);
});

test('the final sync runs after every kind of app exit', async (t) => {
  const dir = tmp(t);
  // exits 0 by itself
  let controller = new FakeController();
  assert.equal((await run(['true'], { controller }).result).code, 0);
  assert.equal(controller.calls.filter((c) => c.type === 'closed').length, 1);
  // exits 1 from its SIGTERM handler (Litestream skips the final sync here)
  controller = new FakeController();
  const out = join(dir, 'sig');
  const app = signalsApp(out, { TERM_EXIT: '1' });
  const r = run(app.argv, { env: app.env, controller });
  await waitFor(() => existsSync(`${out}.ready`), 5000, 'app ready');
  r.signals.send('SIGTERM');
  assert.equal((await r.result).code, 1);
  assert.equal(controller.calls.filter((c) => c.type === 'closed').length, 1);
  // killed by a signal
  controller = new FakeController();
  assert.equal((await run(['sh', '-c', 'kill -s KILL $$'], { controller }).result).code, 137);
  assert.equal(controller.calls.filter((c) => c.type === 'closed').length, 1);
});

test('final-sync failure: the app code if non-zero, else 70 (or the configured code), and the replica is logged', async () => {
  const failures = [{ db: '/data/app.db', replica: 's3://bucket/app', error: 'HTTP 500' }];
  let r = run(['true'], { controller: new FakeController({ failures }) });
  assert.equal((await r.result).code, 70);
  assert.ok(r.log.lines.some((l) => l.level === 'error' && l.msg === 'final sync failed' && l.fields.replica === 's3://bucket/app'));
  r = run(['sh', '-c', 'exit 3'], { controller: new FakeController({ failures }) });
  assert.equal((await r.result).code, 3);
  r = run(['true'], { controller: new FakeController({ failures }), syncFailureExitCode: 12 });
  assert.equal((await r.result).code, 12);
});

test('a final sync that overruns its deadline is cut off and counted as a failure', async () => {
  const controller = new FakeController({ closeDelayMs: 10_000 });
  const { result, log } = run(['true'], { controller, shutdownTimeoutMs: 1000 });
  const { code, ms } = await result;
  assert.equal(code, 70);
  assert.ok(ms < 3000, `cut at the 1 s deadline, not after the 10 s close (${ms} ms)`);
  assert.ok(log.lines.some((l) => l.msg === 'final sync failed' && String(l.fields.error).includes('deadline')));
});

test('a second stop signal while the app drains kills it and closes fast, at once', async (t) => {
  const dir = tmp(t);
  const out = join(dir, 'signals');
  const controller = new FakeController({ closeDelayMs: 10_000 });
  const app = signalsApp(out, { IGNORE_TERM: '1' });
  const { signals, result, log } = run(app.argv, { env: app.env, controller, shutdownTimeoutMs: 20_000 });
  await waitFor(() => existsSync(`${out}.ready`), 5000, 'app ready');
  const t0 = Date.now();
  signals.send('SIGTERM');
  await sleep(100);
  signals.send('SIGINT');
  const { code } = await result;
  assert.equal(code, 137);
  assert.ok(Date.now() - t0 < 3000, `not the 15 s app budget or the 10 s close (${Date.now() - t0} ms)`);
  assert.deepEqual(controller.calls.filter((c) => c.type === 'close').map((c) => c.fast), [true]);
  assert.ok(log.lines.some((l) => l.level === 'warn' && l.msg.startsWith('second stop signal')));
});

test('a second stop signal during a slow final sync re-issues close({fast}) and exits at once', async () => {
  const controller = new FakeController({ closeDelayMs: 10_000 });
  const { signals, result } = run(['true'], { controller, shutdownTimeoutMs: 20_000 });
  await waitFor(() => controller.calls.some((c) => c.type === 'close'), 5000, 'close');
  const t0 = Date.now();
  signals.send('SIGTERM'); // the platform's first: shutdown is already under way
  signals.send('SIGTERM');
  assert.equal((await result).code, 0);
  assert.ok(Date.now() - t0 < 1500, 'not the 10 s of the slow close');
  assert.deepEqual(controller.calls.filter((c) => c.type === 'close').map((c) => c.fast), [false, true]);
});

test('a stop signal before the app started: the app never starts', async (t) => {
  const dir = tmp(t);
  const marker = join(dir, 'started');
  const controller = new FakeController();
  const signals = new FakeSignals();
  const origStart = controller.start.bind(controller);
  controller.start = async () => {
    await origStart();
    signals.send('SIGTERM');
  };
  const code = await supervise({ argv: [join(FIXTURES, 'marker.sh'), marker], controller, log: memoryLogger(), signals, reaper: false });
  assert.equal(code, 143);
  assert.equal(existsSync(marker), false);
  assert.deepEqual(controller.calls.map((c) => c.type), ['restore', 'start', 'close', 'closed']);
});

test('leftover descendants get SIGTERM, and the grace ends as soon as they are gone', async (t) => {
  const dir = tmp(t);
  const out = join(dir, 'leftover');
  const reaper = startReaper({ log: memoryLogger() }); // subreaper: the orphan stays ours
  const { result } = run([join(FIXTURES, 'leftover.sh')], { env: { ...process.env, OUT: out }, reaper, killGraceMs: 5000 });
  const { code, ms } = await result;
  assert.equal(code, 3);
  assert.equal(readFileSync(`${out}.term`, 'utf8'), 'term\n');
  assert.ok(ms < 1500, `grace not slept out (${ms} ms)`);
});

test('leftover descendants ignoring SIGTERM are SIGKILLed after the kill grace (process-group mode, no reaper)', async (t) => {
  const dir = tmp(t);
  const out = join(dir, 'leftover');
  const { result, log } = run([join(FIXTURES, 'leftover.sh'), 'ignore'], { env: { ...process.env, OUT: out }, processGroup: true, killGraceMs: 300 });
  const { code, ms } = await result;
  assert.equal(code, 3);
  const pid = Number(readFileSync(out, 'utf8'));
  assert.equal(existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z'), false, 'leftover is dead');
  assert.ok(ms >= 280 && ms < 1500, `${ms} ms`);
  assert.ok(log.lines.some((l) => l.msg === 'killing processes the app left behind'));
});

test('no pipes: a background child holding stdout does not hold up the exit', async () => {
  const { result } = run(['sh', '-c', 'sleep 5 & exit 0']);
  const { code, ms } = await result;
  assert.equal(code, 0);
  assert.ok(ms < 3000, `did not wait for the 5 s sleep (${ms} ms)`);
});

test('the reaper says why it cannot reap: no libc, or not PID 1 and prctl failed', () => {
  const log = memoryLogger();
  const none = startReaper({ log, libc: null });
  assert.equal(none.mode, 'none');
  assert.match(String(none.reason), /cannot load libc/);
  const failing = { name: 'fake', waitpid: () => -1, prctl: () => -1 };
  const noSub = startReaper({ log, libc: failing, pid: 4242 });
  assert.equal(noSub.mode, 'none');
  assert.match(String(noSub.reason), /PR_SET_CHILD_SUBREAPER/);
  const asInit = startReaper({ log, libc: failing, pid: 1 });
  assert.equal(asInit.mode, 'pid1');
  asInit.stop();
});

test('a stop signal queued while the config loaded: no restore, no app', async (t) => {
  const dir = tmp(t);
  const marker = join(dir, 'started');
  const controller = new FakeController();
  const signals = new FakeSignals();
  const queued: SuperviseOptions['signals'] = {
    subscribe(h) {
      signals.subscribe(h);
      h('SIGINT');
    },
    dispose: () => signals.dispose(),
  };
  const code = await supervise({ argv: [join(FIXTURES, 'marker.sh'), marker], controller, log: memoryLogger(), signals: queued, reaper: false });
  assert.equal(code, 130);
  assert.equal(existsSync(marker), false);
  assert.deepEqual(controller.calls, []);
});
