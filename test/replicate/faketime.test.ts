/**
 * The wall clock stepped back one hour under a running `lsinit replicate` (issue 9, item 4), with
 * libfaketime (Debian `faketime`) preloaded into the real process: only CLOCK_REALTIME moves
 * (FAKETIME_DONT_FAKE_MONOTONIC=1), as an NTP step or a restored VM snapshot would; the step is
 * made by rewriting FAKETIME_TIMESTAMP_FILE, read on every call (FAKETIME_NO_CACHE=1). The
 * multithreaded variant (libfaketimeMT) is used: Node calls the clock from several threads, and
 * init mode (run here too) replicates in a worker thread. Shipping must go on (the replica, restored while
 * lsinit still runs, has the rows committed after the step) and lag and last-sync must stay true.
 * The in-process version with an injected clock is clock.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { lsinit, spawnLsinit } from '../helpers/cli.js';
import { createDB, dump, fileConfig, integrity, logIds, snapshotCopy, startReplicate, workdir, writer } from '../helpers/replicate.js';
import { freePort } from '../servers/moto.js';

/** libfaketimeMT.so.1 where Debian/Ubuntu (multiarch) and a source build put it. */
function libfaketime(): string {
  const multiarch = readdirSync('/usr/lib').map((d) => `/usr/lib/${d}/faketime/libfaketimeMT.so.1`);
  const found = [...multiarch, '/usr/lib/faketime/libfaketimeMT.so.1', '/usr/local/lib/faketime/libfaketimeMT.so.1'].find((p) => existsSync(p));
  if (!found) throw new Error('libfaketimeMT.so.1 not found: install the faketime package (sudo sh scripts/install-system-deps.sh)');
  return found;
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `${name} not in /metrics`);
  return Number(m[1]);
}

const expectedIds = (n: number) => Array.from({ length: n }, (_, i) => i + 1).filter((id) => id % 10 !== 5); // the writer deletes id - 5 at every tenth id

type Started = { child: ReturnType<typeof spawnLsinit>; output: () => string };

/** `lsinit -config cfg -- <idle app>`, once the app runs (replication in the worker thread). */
async function startInit(cfg: string, env: Record<string, string>): Promise<Started> {
  const child = spawnLsinit(['-config', cfg, '--', process.execPath, '-e', 'setInterval(() => {}, 1000)'], { all: true, buffer: true, env });
  let out = '';
  child.all!.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 2400 && !out.includes('msg="app started"'); i++) {
    if (child.exitCode !== null) throw new Error(`init exited early: ${out}`);
    await sleep(25);
  }
  assert.match(out, /msg="app started"/);
  return { child, output: () => out };
}

for (const mode of ['replicate', 'init'] as const) {
  it(`${mode} under libfaketime: the wall clock stepped back 1 h mid-run; shipping goes on, lag and last sync stay true`, { timeout: 180_000 }, async () => {
    const w = workdir(`faketime-${mode}`);
    const clockFile = join(w.dir, 'faketime');
    writeFileSync(clockFile, '+0\n');
    const port = await freePort();
    const { cfg, db, replica } = fileConfig(w.dir, { extra: `    checkpoint-interval: 1h\n`, sync: '1s' });
    writeFileSync(cfg, `addr: 127.0.0.1:${port}\n${readFileSync(cfg, 'utf8')}`);
    createDB(db);
    const env = { LD_PRELOAD: libfaketime(), FAKETIME_TIMESTAMP_FILE: clockFile, FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
    const a: Started = mode === 'replicate' ? await startReplicate(cfg, [], { env }) : await startInit(cfg, env);
    try {
      await writer(db, ['--tx', '20']);
      const out = join(w.dir, 'restored.db');
      /** Restore the replica while lsinit runs, until it has the first n transactions. */
      const shipped = async (n: number): Promise<void> => {
        const until = Date.now() + 30_000;
        for (;;) {
          rmSync(out, { force: true });
          const r = await lsinit(['restore', '-o', out, `file://${replica}`]);
          if (r.exitCode === 0 && logIds(out).join() === expectedIds(n).join()) return;
          if (Date.now() > until) assert.fail(`replica did not reach transaction ${n} while lsinit ran: ${r.stderr} ${a.output()}`);
          await sleep(300);
        }
      };
      await shipped(20);

      writeFileSync(clockFile, '-1h\n');
      const stepAt = Date.now();
      await sleep(200);
      // Behind while a burst waits for the next sync interval, in real seconds (never an hour, never stuck at 0).
      let done = false;
      const burst = writer(db, ['--tx', '40', '--start', '21', '--delay', '20']).finally(() => (done = true));
      const lags: number[] = [];
      while (!done || lags.length < 20) {
        lags.push(await metric(port, 'lsinit_replica_lag_seconds'));
        await sleep(50);
      }
      await burst;
      assert.ok(lags.some((l) => l > 0), `lag never above 0 during the burst: ${lags.join(' ')}`);
      assert.ok(lags.every((l) => l >= 0 && l < 30), `lag out of range: ${lags.join(' ')}`);
      await shipped(60);
      assert.equal(integrity(out), 'ok');
      const lastSync = await metric(port, 'lsinit_replica_last_sync_timestamp_seconds');
      assert.ok(Math.abs(lastSync * 1000 - Date.now()) < 30_000, `last sync ${new Date(lastSync * 1000).toISOString()} is not near the real time`);
      assert.ok((await metric(port, 'lsinit_replica_lag_seconds')) < 5);

      a.child.kill('SIGTERM');
      // init: the app ends by the forwarded SIGTERM, and its code (128 + 15) passes through.
      assert.equal((await a.child).exitCode, mode === 'replicate' ? 0 : 143, a.output());
      assert.doesNotMatch(a.output(), /final sync failed/);
      // The step reached the process: its log lines after it are an hour behind.
      const t = [...a.output().matchAll(/time=(\S+) level=/g)].at(-1)?.[1];
      assert.ok(t && Date.parse(t) < stepAt - 50 * 60_000, `lsinit's wall clock did not step back: ${t}`);
      rmSync(out, { force: true });
      assert.equal((await lsinit(['restore', '-o', out, `file://${replica}`])).exitCode, 0);
      assert.equal(integrity(out), 'ok');
      assert.deepEqual(logIds(out), expectedIds(60));
      assert.deepEqual(dump(out), dump(snapshotCopy(db, join(w.dir, 'src.db'))));
    } finally {
      a.child.kill('SIGKILL');
      await a.child;
      w.cleanup();
    }
  });
}
