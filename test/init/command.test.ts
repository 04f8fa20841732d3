/** runInit: flags, config discovery and precedence, the command sources, env stripping; and real-signal shutdown as PID 1. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Config } from '../../src/config/types.js';
import { LsinitError } from '../../src/errors.js';
import { runInit, type InitDeps } from '../../src/init/command.js';
import { killChildAtEnd } from '../helpers/cli.js';
import { ENTRY, FakeController, FakeSignals, FIXTURES, launch, memoryLogger, readEvents, ROOT, tmp, waitFor } from './helpers.js';

function config(over: Partial<Config> = {}): Config {
  return { dbs: [], logging: { level: 'info', type: 'text', stderr: true }, init: {}, warnings: [], ...over };
}

function deps(over: Partial<InitDeps> = {}) {
  const log = memoryLogger();
  const loaded: string[] = [];
  const controllers: FakeController[] = [];
  const d: InitDeps = {
    log,
    signals: new FakeSignals(),
    reap: false,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    defaultConfigPath: '/nonexistent/litestream.yml',
    loadConfig: async (o) => {
      loaded.push(`${o.path ?? ''}${o.expandEnv ? '' : ' (no-expand)'}`);
      return config();
    },
    createController: () => {
      const c = new FakeController();
      controllers.push(c);
      return c;
    },
    ...over,
  };
  return { d, log, loaded, controllers };
}

test('-h prints usage and returns 0; usage errors are LSINIT_ERR_USAGE', async () => {
  let printed = '';
  assert.equal(await runInit(['-h'], { ...deps().d, stdout: (t) => (printed += t) }), 0);
  assert.match(printed, /-shutdown-timeout DUR/);
  for (const bad of [[], ['-nope', '--', 'x'], ['app'], ['-exec', '"unterminated']]) {
    await assert.rejects(runInit(bad, deps().d), (e: unknown) => e instanceof LsinitError && e.code === 'LSINIT_ERR_USAGE', JSON.stringify(bad));
  }
});

test('without a config lsinit is a plain init: no config loaded, no controller', async () => {
  const { d, loaded, controllers } = deps();
  assert.equal(await runInit(['--', 'sh', '-c', 'exit 4'], d), 4);
  assert.deepEqual(loaded, []);
  assert.equal(controllers.length, 0);
});

test('config discovery: -config, then $LITESTREAM_CONFIG, then the default path if it exists', async (t) => {
  const dir = tmp(t);
  const dflt = join(dir, 'litestream.yml');
  writeFileSync(dflt, 'dbs: []\n');
  let x = deps({ defaultConfigPath: dflt, env: { PATH: process.env.PATH, LITESTREAM_CONFIG: '/env.yml' } });
  await runInit(['-config', '/flag.yml', '-no-expand-env', '--', 'true'], x.d);
  assert.deepEqual(x.loaded, ['/flag.yml (no-expand)']);
  assert.equal(x.controllers.length, 1);
  x = deps({ defaultConfigPath: dflt, env: { PATH: process.env.PATH, LITESTREAM_CONFIG: '/env.yml' } });
  await runInit(['--', 'true'], x.d);
  assert.deepEqual(x.loaded, ['/env.yml']);
  x = deps({ defaultConfigPath: dflt });
  await runInit(['--', 'true'], x.d);
  assert.deepEqual(x.loaded, [dflt]);
});

test('the command comes from --, else -exec, else config exec:; flags override config init:', async () => {
  const { d, log } = deps({
    loadConfig: async () => config({ exec: `sh -c 'exit 6'`, init: { shutdownTimeoutMs: 4000, processGroup: true } }),
  });
  assert.equal(await runInit(['-config', '/c.yml'], d), 6);
  assert.equal(log.lines[0]?.fields.shutdown_timeout, '4s');
  assert.equal(log.lines[0]?.fields.process_group, true);
  const x = deps({ loadConfig: async () => config({ exec: 'false', init: { shutdownTimeoutMs: 4000 } }) });
  assert.equal(await runInit(['-config', '/c.yml', '-shutdown-timeout', '2s', '-process-group=false', '-exec', `sh -c "exit 5"`], x.d), 5);
  assert.equal(x.log.lines[0]?.fields.shutdown_timeout, '2s');
  assert.equal(x.log.lines[0]?.fields.process_group, false);
});

test('-strip-credentials removes replica credentials from the app env; without it the env passes through', async (t) => {
  const dir = tmp(t);
  const env = { PATH: process.env.PATH, FOO: 'bar', AWS_SECRET_ACCESS_KEY: 's', LITESTREAM_ACCESS_KEY_ID: 'k', AZURE_STORAGE_KEY: 'a' };
  const dump = [process.execPath, join(FIXTURES, 'env-dump.mjs')];
  const out1 = join(dir, 'stripped.json');
  assert.equal(await runInit(['-strip-credentials', '--', ...dump], deps({ env: { ...env, OUT: out1 } }).d), 0);
  assert.deepEqual(JSON.parse(readFileSync(out1, 'utf8')), { PATH: process.env.PATH, FOO: 'bar', OUT: out1 });
  const out2 = join(dir, 'kept.json');
  assert.equal(await runInit(['--', ...dump], deps({ env: { ...env, OUT: out2 } }).d), 0);
  assert.deepEqual(JSON.parse(readFileSync(out2, 'utf8')), { ...env, OUT: out2 });
});

test('as PID 1: SIGTERM to an app that ignores it → SIGKILL at the app budget, final sync, exit within the budget', async (t) => {
  const dir = tmp(t);
  const out = join(dir, 'signals');
  const events = join(dir, 'events');
  const run = launch(['-config', '/fake.yml', '-shutdown-timeout', '2s', '--', process.execPath, join(FIXTURES, 'signals-app.mjs')], {
    pid1: true, env: { OUT: out, IGNORE_TERM: '1' }, controller: { events },
  });
  await waitFor(() => existsSync(`${out}.ready`), 10_000, 'app ready');
  const pid = await run.lsinitPid();
  const t0 = Date.now();
  process.kill(pid, 'SIGTERM');
  const end = await run.exited;
  assert.equal(end.code, 137, run.stderr());
  const ev = readEvents(events);
  assert.deepEqual(ev.map((e) => e.type), ['restore', 'start', 'close', 'closed']);
  const close = ev[2]!;
  assert.ok(close.t - t0 >= 950, `SIGKILL after the 1 s app budget (+${close.t - t0} ms)`);
  assert.ok(end.at - t0 < 2300, `lsinit exited ${end.at - t0} ms after SIGTERM (budget 2 s)`);
});

test('as PID 1: two SIGTERMs 100 ms apart end everything at once', async (t) => {
  const dir = tmp(t);
  const out = join(dir, 'signals');
  const events = join(dir, 'events');
  const run = launch(['-config', '/fake.yml', '-shutdown-timeout', '30s', '--', process.execPath, join(FIXTURES, 'signals-app.mjs')], {
    pid1: true, env: { OUT: out, IGNORE_TERM: '1' }, controller: { events, closeDelayMs: 20_000 },
  });
  await waitFor(() => existsSync(`${out}.ready`), 10_000, 'app ready');
  const pid = await run.lsinitPid();
  const t0 = Date.now();
  process.kill(pid, 'SIGTERM');
  await new Promise((r) => setTimeout(r, 100));
  process.kill(pid, 'SIGTERM');
  const end = await run.exited;
  assert.equal(end.code, 137);
  assert.ok(end.at - t0 < 3000, `not the 22.5 s app budget or the 20 s close (${end.at - t0} ms)`);
  assert.match(run.stderr(), /second stop signal/);
  assert.deepEqual(readEvents(events).filter((e) => e.type === 'close').map((e) => e.fast), [true]);
});

test('as PID 1: restore failure → the app is never started, exit 1', async (t) => {
  const dir = tmp(t);
  const marker = join(dir, 'started');
  const events = join(dir, 'events');
  const run = launch(['-config', '/fake.yml', '--', join(FIXTURES, 'marker.sh'), marker], { pid1: true, controller: { events, restoreFail: true } });
  assert.equal((await run.exited).code, 1);
  assert.equal(existsSync(marker), false);
  assert.match(run.stderr(), /restore failed; not starting the app/);
});

test('a closed log pipe (EPIPE) does not kill lsinit: the app still runs to its end and its code comes back', async () => {
  const child = killChildAtEnd(spawn(process.execPath, ['--import', 'tsx', ENTRY, '--', 'sh', '-c', 'sleep 0.5; exit 5'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }));
  child.stdout.destroy();
  child.stderr.destroy();
  const code = await new Promise((r) => child.on('exit', r));
  assert.equal(code, 5);
});

test('socket activation: fd 3 reaches the app and LISTEN_PID is rewritten to the app\'s pid', async () => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  // exec keeps the pid, so $$ is lsinit's pid, as systemd would set it.
  const child = killChildAtEnd(spawn('sh', ['-c', `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" --import tsx "$1" -- "$0" "$2"`, process.execPath, ENTRY, join(FIXTURES, 'listen-app.mjs')], {
    cwd: ROOT, stdio: ['ignore', 'inherit', 'pipe', fd],
  }));
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  server.close(); // the app owns the socket now
  await waitFor(() => err.includes('msg="app started"'), 10_000, 'app start');
  const reply = await new Promise<string>((res, rej) => {
    const c = net.connect(port, '127.0.0.1');
    let data = '';
    c.on('data', (d) => (data += d.toString()));
    c.on('end', () => res(data));
    c.on('error', rej);
  });
  const appPid = /msg="app started" pid=(\d+)/.exec(err)?.[1];
  assert.equal(reply, `ok ${appPid}\n`);
  assert.match(err, /socket activation/);
  child.kill('SIGTERM');
  assert.equal(await new Promise((r) => child.on('exit', r)), 143);
});

test('on Fly.io (FLY_MACHINE_ID) the default budget is 4 s, to fit the default 5 s kill_timeout; an explicit one wins', async () => {
  const fly = { PATH: process.env.PATH, FLY_MACHINE_ID: '148ed193b95089' };
  let x = deps({ env: fly });
  await runInit(['--', 'true'], x.d);
  assert.equal(x.log.lines.find((l) => l.msg === 'lsinit supervising')?.fields.shutdown_timeout, '4s');
  assert.ok(x.log.lines.some((l) => l.msg.startsWith('Fly.io detected')));
  x = deps({ env: fly });
  await runInit(['-shutdown-timeout', '20s', '--', 'true'], x.d);
  assert.equal(x.log.lines.find((l) => l.msg === 'lsinit supervising')?.fields.shutdown_timeout, '20s');
  x = deps();
  await runInit(['--', 'true'], x.d);
  assert.equal(x.log.lines.find((l) => l.msg === 'lsinit supervising')?.fields.shutdown_timeout, '9s');
});
