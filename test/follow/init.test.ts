/**
 * Read nodes in init mode: `lsinit -follow -- app` restores the copy, follows the replica, runs
 * the app (reading the copy read-only) with the usual signal handling and exit code, and serves
 * /metrics (lag, position) and /healthz (failing past follow-max-lag or after a fatal error).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/file.js';
import { FollowController } from '../../src/follow/controller.js';
import { followHealth } from '../../src/follow/metrics.js';
import { nullLogger } from '../../src/log/logger.js';
import { spawnLsinit } from '../helpers/cli.js';
import { fileConfig, startReplicate, workdir } from '../helpers/replicate.js';
import { freePort } from '../servers/moto.js';
import { bank, followerSeq, waitFor } from './helpers.js';

const APP = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/follow/read-app.mjs');
const w = workdir('follow-init');
after(() => w.cleanup());

test('lsinit -follow -- app: restore, follow, app reads committed states, metrics and healthz, exit code passes through', { timeout: 180_000 }, async () => {
  const { cfg, db, replica } = fileConfig(w.dir, { sync: '100ms' });
  await bank(db, ['--tx', '1']);
  const primary = await startReplicate(cfg);
  const copy = join(w.dir, 'copy.db');
  const nodeCfg = join(w.dir, 'node.yml');
  writeFileSync(nodeCfg, `dbs:\n  - path: ${copy}\n    follow-interval: 100ms\n    replicas:\n      - url: file://${replica}\n`);
  const port = await freePort();
  const node = spawnLsinit(['-config', nodeCfg, '-follow', '-addr', `127.0.0.1:${port}`, '--', process.execPath, APP, copy], { all: true, buffer: true });
  let out = '';
  node.all!.on('data', (d: Buffer) => (out += d.toString()));
  try {
    await waitFor(() => out.includes('read-app started'), 60_000, `the app to start: ${out}`);
    const final = await bank(db, ['--tx', '300', '--delay', '5']);
    await waitFor(() => followerSeq(copy) === final, 60_000, `the copy to reach ${final}: ${out.slice(-1500)}`);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(metrics, /lsinit_follow_lag_seconds\{db="[^"]+copy\.db"\} \d/);
    assert.match(metrics, /lsinit_follow_wal_offset\{db="[^"]+"\} [1-9]\d*/);
    assert.match(metrics, /lsinit_follow_transactions_total\{db="[^"]+"\} [1-9]/);
    const h = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(h.status, 200, await h.clone().text());
    assert.equal(((await h.json()) as { followers: { status: string }[] }).followers[0]!.status, 'ok');
    node.kill('SIGTERM');
    const r = await node;
    assert.equal(r.exitCode, 0, out.slice(-2000));
    assert.match(out, /read-app done reads=\d+ bad=0 errors=0 last=301/);
  } finally {
    node.kill('SIGKILL');
    primary.child.kill('SIGTERM');
    await primary.child;
  }
});

test('/healthz fails once the copy is behind more than follow-max-lag (no successful poll), naming the error', async () => {
  const { replica } = fileConfig(w.dir, { sync: '100ms' });
  const copy = join(w.dir, 'lagging.db');
  const nodeCfg = join(w.dir, 'lag.yml');
  writeFileSync(nodeCfg, `dbs:\n  - path: ${copy}\n    follow: true\n    follow-max-lag: 5s\n    replicas:\n      - url: file://${replica}\n`);
  const config = await loadConfig({ path: nodeCfg, expandEnv: false });
  let now = 1_000_000;
  const fc = new FollowController(config, nullLogger, { now: () => now });
  await fc.restoreMissing();
  assert.equal(followHealth(fc.entries).code, 200);
  now += 4_000;
  assert.equal(followHealth(fc.entries).code, 200);
  now += 2_000;
  const h = followHealth(fc.entries);
  assert.equal(h.code, 503);
  assert.equal(h.body.followers[0]!.status, 'behind');
  assert.equal(h.body.followers[0]!.lag_seconds, 6);
  await fc.entries[0]!.follower.poll();
  assert.equal(followHealth(fc.entries).code, 200, 'a successful poll catches up');
  await fc.close({ deadline: Date.now() + 1000 });
});
