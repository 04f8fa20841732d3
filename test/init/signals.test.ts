/** Real signals sent from the host namespace to lsinit running as PID 1 (`unshare --pid`), as runc does. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FORWARDED_SIGNALS, STOP_SIGNALS } from '../../src/init/signals.js';
import { killChildAtEnd } from '../helpers/cli.js';
import { ENTRY, FIXTURES, launch, readLines, ROOT, sleep, tmp, waitFor } from './helpers.js';

const APP = [process.execPath, join(FIXTURES, 'signals-app.mjs')];

function listening9229(): boolean {
  // 9229 = 0x2405; state 0A = LISTEN.
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (existsSync(f) && readFileSync(f, 'utf8').split('\n').some((l) => /:2405 \S+ 0A /.test(l))) return true;
  }
  return false;
}

async function matrix(t: { after: (fn: () => void) => void }, flags: string[], stop: NodeJS.Signals) {
  const dir = tmp(t);
  const out = join(dir, 'signals');
  const run = launch([...flags, '--', ...APP], { pid1: true, env: { OUT: out } });
  await waitFor(() => existsSync(`${out}.ready`), 10_000, 'app ready');
  const pid = await run.lsinitPid();
  const sent = FORWARDED_SIGNALS.filter((s) => !STOP_SIGNALS.has(s));
  for (const [i, sig] of sent.entries()) {
    // Swallowed job-control signals go in between: they must never reach the app.
    if (sig === 'SIGWINCH') {
      process.kill(pid, 'SIGTTIN');
      process.kill(pid, 'SIGTTOU');
    }
    process.kill(pid, sig);
    await waitFor(() => readLines(out).length === i + 1 || undefined, 5000, `${sig} to arrive`);
  }
  assert.equal(listening9229(), false, 'SIGUSR1 did not open the inspector');
  process.kill(pid, stop);
  const end = await run.exited;
  assert.equal(end.code, 0, run.stderr());
  assert.deepEqual(readLines(out), [...sent, stop], 'each forwarded signal arrived exactly once, in order');
  assert.doesNotMatch(run.stderr(), /Debugger listening/);
}

test('as PID 1, every forwardable signal reaches the app exactly once; TTIN/TTOU are swallowed; USR1 opens no inspector', async (t) => {
  await matrix(t, [], 'SIGTERM');
});

test('the same matrix in process-group mode, ended by SIGINT (Fly.io)', async (t) => {
  await matrix(t, ['-process-group'], 'SIGINT');
});

test('SIGQUIT is forwarded as a stop signal too', async (t) => {
  const dir = tmp(t);
  const out = join(dir, 'signals');
  const run = launch(['--', ...APP], { pid1: true, env: { OUT: out } });
  await waitFor(() => existsSync(`${out}.ready`), 10_000, 'app ready');
  process.kill(await run.lsinitPid(), 'SIGQUIT');
  assert.equal((await run.exited).code, 0);
  assert.deepEqual(readLines(out), ['SIGQUIT']);
});

test('signal rewrite: HUP arrives as USR2, USR1 is dropped, others untouched', async (t) => {
  const dir = tmp(t);
  const out = join(dir, 'signals');
  const run = launch(['-signal-rewrite', 'HUP:USR2', '-signal-rewrite=USR1:0', '--', ...APP], { pid1: true, env: { OUT: out } });
  await waitFor(() => existsSync(`${out}.ready`), 10_000, 'app ready');
  const pid = await run.lsinitPid();
  process.kill(pid, 'SIGHUP');
  await waitFor(() => readLines(out).length === 1 || undefined, 5000, 'HUP');
  process.kill(pid, 'SIGUSR1');
  process.kill(pid, 'SIGWINCH');
  await waitFor(() => readLines(out).length === 2 || undefined, 5000, 'WINCH');
  process.kill(pid, 'SIGTERM');
  assert.equal((await run.exited).code, 0);
  assert.deepEqual(readLines(out), ['SIGUSR2', 'SIGWINCH', 'SIGTERM']);
});

test('-process-group: a signal the app ignores still reaches its children; without it, only the app gets it', async (t) => {
  const dir = tmp(t);
  const app = [process.execPath, join(FIXTURES, 'pgroup-app.mjs')];
  const group = launch(['-process-group', '--', ...app], { pid1: true, env: { OUT: join(dir, 'g') } });
  await waitFor(() => existsSync(join(dir, 'g.ready')), 10_000, 'group app ready');
  process.kill(await group.lsinitPid(), 'SIGUSR1');
  assert.equal((await group.exited).code, 7, group.stderr());

  const single = launch(['--', ...app], { pid1: true, env: { OUT: join(dir, 's') } });
  await waitFor(() => existsSync(join(dir, 's.ready')), 10_000, 'single app ready');
  const pid = await single.lsinitPid();
  process.kill(pid, 'SIGUSR1');
  await sleep(300);
  assert.equal(single.child.exitCode, null, 'the sleep survived: USR1 went to the app only');
  process.kill(pid, 'SIGTERM');
  assert.equal((await single.exited).code, 143);
});

const SCRIPT = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p));

// `script` runs lsinit as a session leader on a fresh pty, like `docker run -it`; ^C is written to it.
for (const group of [false, true]) {
  test(`under a terminal${group ? ' with -process-group' : ''}: ^C reaches the app, a second ^C ends everything`, { skip: SCRIPT === undefined && 'script(1) not installed' }, async (t) => {
    const dir = tmp(t);
    const out = join(dir, 'signals');
    // `exec`: script(1) runs the command through $SHELL -c, and a shell that stays in between (dash, the
    // CI's /bin/sh when SHELL is unset) dies of the first ^C itself. SHELL is pinned so the run is the same
    // everywhere.
    const cmd = `exec ${[process.execPath, '--import', 'tsx', ENTRY, ...(group ? ['-process-group'] : []), '--', ...APP].map((a) => `'${a}'`).join(' ')}`;
    const child = killChildAtEnd(spawn(SCRIPT as string, ['-qfec', cmd, '/dev/null'], { cwd: ROOT, env: { ...process.env, SHELL: '/bin/sh', OUT: out, IGNORE_TERM: '1' }, stdio: ['pipe', 'ignore', 'ignore'] }));
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    await waitFor(() => existsSync(`${out}.ready`), 10_000, 'app ready');
    child.stdin.write('\x03');
    await waitFor(() => readLines(out).length > 0 || undefined, 5000, 'SIGINT at the app');
    await sleep(200);
    // Without its own group the app is in the terminal's foreground group too: it gets the tty's SIGINT
    // and lsinit's forwarded one, which the kernel may merge into one delivery.
    const lines = readLines(out);
    if (group) assert.deepEqual(lines, ['SIGINT']);
    else assert.ok(lines.length >= 1 && lines.length <= 2 && lines.every((l) => l === 'SIGINT'), lines.join(','));
    child.stdin.write('\x03');
    assert.equal(await exited, 137);
  });
}

test('the app starts with default signal dispositions even if lsinit inherited an ignored SIGHUP (libuv resets them; tini would keep it)', async (t) => {
  const dir = tmp(t);
  const out = join(dir, 'status');
  const inner = [process.execPath, '--import', 'tsx', ENTRY, '--', 'sh', '-c', 'grep SigIgn /proc/self/status > "$OUT"'].map((a) => `'${a}'`).join(' ');
  const child = killChildAtEnd(spawn('sh', ['-c', `trap '' HUP; exec ${inner}`], { cwd: ROOT, env: { ...process.env, OUT: out }, stdio: 'ignore' }));
  assert.equal(await new Promise((r) => child.on('exit', r)), 0);
  const mask = BigInt(`0x${readFileSync(out, 'utf8').split(/\s+/)[1]}`);
  assert.equal(mask & 1n, 0n, 'SIGHUP (bit 0) is not ignored in the app');
});
