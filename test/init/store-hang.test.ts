/**
 * Init mode against a store that accepts connections and never answers (moto behind the fault
 * proxy, every request held): with the database present the app starts after a short bound while
 * replication keeps trying; with the database missing (restore must wait for the store) a stop
 * signal ends lsinit within the shutdown budget instead of being ignored.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnLsinit } from '../helpers/cli.js';
import { createDB, workdir } from '../helpers/replicate.js';
import { startFaultProxy, type FaultProxy } from '../servers/fault-proxy.js';
import { MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY, startMoto, type MotoServer } from '../servers/moto.js';

const ENV = { AWS_ACCESS_KEY_ID: MOTO_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: MOTO_SECRET_ACCESS_KEY };

describe('init mode with a hung store', () => {
  let moto: MotoServer;
  let proxy: FaultProxy;
  before(async () => {
    moto = await startMoto();
    await moto.createBucket('hung');
    proxy = await startFaultProxy(moto.port);
    proxy.inject({ fault: { kind: 'hang' } });
  });
  after(async () => {
    await proxy?.close();
    await moto?.stop();
  });

  function config(dir: string): { cfg: string; db: string } {
    const db = join(dir, 'app.db');
    const cfg = join(dir, 'lsinit.yml');
    writeFileSync(cfg, `dbs:
  - path: ${db}
    monitor-interval: 100ms
    replicas:
      - type: s3
        bucket: hung
        path: app
        endpoint: ${proxy.endpoint}
        region: us-east-1
        sync-interval: 100ms
`);
    return { cfg, db };
  }

  function start(cfg: string, app: string) {
    const child = spawnLsinit(['-config', cfg, '-shutdown-timeout', '6s', '--', process.execPath, '-e', app], { all: true, buffer: true, env: ENV, forceKillAfterDelay: false });
    let out = '';
    child.all!.on('data', (d: Buffer) => (out += d.toString()));
    return { child, output: () => out };
  }

  it('with the database present, the app starts within seconds (default 30 s lease) and lsinit still exits within its budget', async () => {
    const w = workdir('hung-present');
    try {
      const { cfg, db } = config(w.dir);
      createDB(db);
      const t0 = Date.now();
      const p = start(cfg, 'setTimeout(() => {}, 60_000)');
      while (!p.output().includes('msg="app started"') && Date.now() - t0 < 40_000 && p.child.exitCode === null) await sleep(50);
      const startedAfter = Date.now() - t0;
      assert.match(p.output(), /msg="app started"/);
      assert.ok(startedAfter < 15_000, `app started after ${startedAfter} ms`);
      const t1 = Date.now();
      p.child.kill('SIGTERM');
      const r = await p.child;
      assert.ok(Date.now() - t1 < 8000, `lsinit took ${Date.now() - t1} ms after SIGTERM (budget 6 s)`);
      assert.notEqual(r.exitCode, 0, 'the final sync to a hung store cannot succeed');
      assert.match(p.output(), /final sync failed/);
    } finally {
      w.cleanup();
    }
  });

  it('with the database missing, SIGTERM during the restore ends lsinit within the budget and the app never starts', async () => {
    const w = workdir('hung-missing');
    try {
      const { cfg } = config(w.dir);
      const p = start(cfg, 'console.log("APP" + " RAN")');
      await sleep(2000);
      assert.equal(p.child.exitCode, null, `still restoring: ${p.output()}`);
      const t1 = Date.now();
      p.child.kill('SIGTERM');
      const r = await p.child;
      assert.ok(Date.now() - t1 < 8000, `lsinit took ${Date.now() - t1} ms after SIGTERM (budget 6 s)`);
      assert.equal(r.exitCode, 143, p.output());
      assert.match(p.output(), /stop requested before the app started; not starting it.*during=restore/);
      assert.doesNotMatch(p.output(), /APP RAN/);
    } finally {
      w.cleanup();
    }
  });
});
