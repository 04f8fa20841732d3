/**
 * The meta-directory lock (src/replicate/meta-lock.ts) with real processes: a holder killed with
 * SIGKILL frees it at once, even while a child it spawned lives on (the lock is not inherited);
 * a waiter gives up after its limit or on abort; the probe used by restore changes nothing; the
 * pid check that stands in where flock is not available.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { LsinitError } from '../../src/errors.js';
import { META_LOCK_NAME, MetaLock, metaLockHolder } from '../../src/replicate/meta-lock.js';
import { ROOT } from '../helpers/cli.js';
import { workdir } from '../helpers/replicate.js';

const MODULE = fileURLToPath(new URL('../../src/replicate/meta-lock.ts', import.meta.url));

/** A process that takes the lock, spawns a long-lived child, prints both pids and waits. */
async function holder(metaPath: string): Promise<{ pid: number; grandchild: number; kill(): Promise<void> }> {
  const code = `import { MetaLock } from ${JSON.stringify(MODULE)};
import { spawn } from 'node:child_process';
const l = new MetaLock({ path: '/nonexistent/app.db', metaPath: ${JSON.stringify(metaPath)} });
if (l.tryLock() !== undefined) { console.log('busy'); process.exit(3); }
const c = spawn('sleep', ['60'], { stdio: 'ignore', detached: true });
console.log('locked ' + c.pid);
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  for (let i = 0; i < 400 && !out.includes('\n'); i++) await sleep(25);
  const m = /^locked (\d+)/.exec(out);
  assert.ok(m, `holder did not take the lock: ${out}`);
  const exited = new Promise((r) => child.once('exit', r));
  return {
    pid: child.pid!,
    grandchild: Number(m[1]),
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

describe('meta-directory lock', () => {
  it('held by another process: refused naming its pid; SIGKILL frees it although a child it spawned lives on', async () => {
    const w = workdir('metalock');
    const h = await holder(join(w.dir, 'meta'));
    try {
      const lock = new MetaLock({ path: join(w.dir, 'app.db'), metaPath: join(w.dir, 'meta') });
      const busy = lock.tryLock();
      assert.ok(busy !== undefined && busy !== 'unknown');
      assert.equal(busy.pid, h.pid);
      assert.equal(metaLockHolder(join(w.dir, 'meta')) !== undefined, true);
      await assert.rejects(lock.acquire(), (err: unknown) => err instanceof LsinitError && err.code === 'LSINIT_ERR_LEASE' && (err.fields['holder'] as { pid: number }).pid === h.pid);
      const record = readFileSync(join(w.dir, 'meta', META_LOCK_NAME), 'utf8');
      await h.kill();
      process.kill(h.grandchild, 0); // still running, with the holder's descriptors closed on exec
      assert.equal(metaLockHolder(join(w.dir, 'meta')), undefined);
      assert.equal(readFileSync(join(w.dir, 'meta', META_LOCK_NAME), 'utf8'), record, 'the probe changed nothing');
      assert.equal(lock.tryLock(), undefined);
      assert.equal(JSON.parse(readFileSync(join(w.dir, 'meta', META_LOCK_NAME), 'utf8')).pid, process.pid);
      lock.release();
    } finally {
      await h.kill();
      try {
        process.kill(h.grandchild, 'SIGKILL');
      } catch {
        // already gone
      }
      w.cleanup();
    }
  });

  it('two holders in one process conflict too; waiting gives up at its limit or on abort; release frees it', async () => {
    const w = workdir('metalock2');
    try {
      const cfg = { path: join(w.dir, 'app.db'), metaPath: join(w.dir, '.app.db-litestream') };
      const a = new MetaLock(cfg);
      await a.acquire();
      const ac = new AbortController();
      const b = new MetaLock(cfg, { pollMs: 10, signal: ac.signal });
      await assert.rejects(b.acquire({ wait: true, maxWaitMs: 100 }), (err: unknown) => err instanceof LsinitError && err.code === 'LSINIT_ERR_LEASE' && /gave up after waiting/.test(err.message));
      const waiting = b.acquire({ wait: true });
      ac.abort();
      await assert.rejects(waiting, { name: 'AbortError' });
      assert.equal(b.held, false);
      const c = new MetaLock(cfg, { pollMs: 10 });
      const later = c.acquire({ wait: true, maxWaitMs: 10_000 });
      await sleep(50);
      a.release();
      await later;
      assert.equal(c.held, true);
      c.release();
    } finally {
      w.cleanup();
    }
  });

  it('without flock: a live pid recorded on this host holds it, a dead one does not', async () => {
    const w = workdir('metalock4');
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const cfg = { path: join(w.dir, 'app.db'), metaPath: join(w.dir, 'meta') };
      const other = new MetaLock(cfg, { kernelLock: false, pid: sleeper.pid! });
      assert.equal(other.tryLock(), undefined);
      const warnings: string[] = [];
      const log = { debug() {}, info() {}, warn: (m: string) => void warnings.push(m), error() {}, child: () => log };
      const me = new MetaLock(cfg, { kernelLock: false, log });
      assert.equal((me.tryLock() as { pid: number }).pid, sleeper.pid);
      assert.equal((me.tryLock() as { pid: number }).pid, sleeper.pid);
      assert.equal(warnings.length, 1, 'warned once');
      const exited = new Promise((r) => sleeper.once('exit', r));
      sleeper.kill('SIGKILL');
      await exited;
      assert.equal(me.tryLock(), undefined);
      assert.equal(JSON.parse(readFileSync(join(w.dir, 'meta', META_LOCK_NAME), 'utf8')).pid, process.pid);
      me.release();
      other.release();
    } finally {
      sleeper.kill('SIGKILL');
      w.cleanup();
    }
  });

  it('the probe creates nothing where there is no lock', () => {
    const w = workdir('metalock3');
    try {
      assert.equal(metaLockHolder(join(w.dir, '.x.db-litestream')), undefined);
      assert.equal(existsSync(join(w.dir, '.x.db-litestream')), false);
    } finally {
      w.cleanup();
    }
  });
});
