/**
 * End to end through the CLI: `lsinit replicate` to a gcs replica on the test server while an app
 * writes rows, SIGTERM, then `lsinit restore`; and the same across a storage outage. Reports the
 * storage requests one sync and one restore cost (from the server's own request log).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { lsinit, spawnLsinit } from '../helpers/cli.js';
import { startGcs, type RunningGcs } from '../servers/gcs.js';
import { rowsOf } from '../helpers/e2e.js';
import { waitFor } from '../helpers/wait.js';

const SYNC_MS = 200;

function setup(work: string, name: string, gcs: RunningGcs) {
  const db = join(work, `${name}.db`);
  const cfg = join(work, `${name}.yml`);
  const prefix = gcs.prefix();
  writeFileSync(cfg, [
    'dbs:',
    `  - path: ${db}`,
    '    replicas:',
    `      - url: gcs://${gcs.bucket}/${prefix}`,
    `        endpoint: ${gcs.endpoint}`,
    `        sync-interval: ${SYNC_MS}ms`,
    '',
  ].join('\n'));
  const app = new Database(db);
  app.pragma('journal_mode = WAL');
  app.pragma('busy_timeout = 5000');
  app.exec('CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
  const insert = app.prepare('INSERT INTO rows (v) VALUES (?)');
  return { db, cfg, prefix, app, insert };
}

function objectsUnder(gcs: RunningGcs, prefix: string): string[] {
  return [...(gcs.server.buckets.get(gcs.bucket)?.objects.keys() ?? [])].filter((n) => n.startsWith(prefix + '/'));
}

describe('e2e: lsinit replicate → gcs → lsinit restore', () => {
  let gcs: RunningGcs;
  let work: string;
  before(async () => {
    gcs = await startGcs();
    work = mkdtempSync(join(tmpdir(), 'lsinit-e2e-gcs-'));
  });
  after(async () => {
    await gcs.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('rows written while replicating restore identically after SIGTERM', { timeout: 120_000 }, async (t) => {
    const s = setup(work, 'basic', gcs);
    const proc = spawnLsinit(['replicate', '-config', s.cfg]);
    try {
      await waitFor(() => objectsUnder(gcs, s.prefix).some((n) => n.includes('/snapshots/')), 20_000, 'the first snapshot');
      for (let i = 0; i < 100; i++) {
        s.insert.run(`row-${i}`);
        await sleep(5);
      }
      // Quiet period: what does an idle sync interval cost?
      await sleep(3 * SYNC_MS);
      const idleStart = gcs.server.requests.length;
      await sleep(5 * SYNC_MS);
      const idle = gcs.server.requests.length - idleStart;
      // One transaction, then wait for its segment: the requests of one sync that has data.
      const before1 = gcs.server.requests.length;
      const segs = objectsUnder(gcs, s.prefix).filter((n) => n.includes('/wal/')).length;
      s.insert.run('one-more');
      await waitFor(() => objectsUnder(gcs, s.prefix).filter((n) => n.includes('/wal/')).length > segs, 10_000, 'the segment of one transaction');
      await sleep(SYNC_MS / 2);
      const oneSync = gcs.server.requests.slice(before1).map((r) => `${r.method} ${r.query['uploadType'] ?? r.query['alt'] ?? 'json'}`);
      t.diagnostic(`gcs requests: idle for 5 sync intervals: ${idle}; one sync with one transaction: ${oneSync.length} (${oneSync.join(', ')})`);
    } finally {
      proc.kill('SIGTERM');
    }
    const r = await proc;
    assert.equal(r.exitCode, 0, String(r.stderr));
    const expected = s.app.prepare('SELECT id, v FROM rows ORDER BY id').all();
    s.app.close();
    const out = join(work, 'basic-restored.db');
    const reqStart = gcs.server.requests.length;
    const rr = await lsinit(['restore', '-config', s.cfg, '-o', out, s.db]);
    assert.equal(rr.exitCode, 0, rr.stderr);
    const restoreReqs = gcs.server.requests.slice(reqStart);
    t.diagnostic(`gcs requests for one restore: ${restoreReqs.length} (${restoreReqs.filter((q) => q.query['alt'] === 'media').length} GET media, ${restoreReqs.filter((q) => q.path.endsWith('/o')).length} LIST)`);
    assert.deepEqual(rowsOf(out, work), expected);
  });

  it('an outage of several sync intervals loses no committed row', { timeout: 180_000 }, async () => {
    const s = setup(work, 'outage', gcs);
    const proc = spawnLsinit(['replicate', '-config', s.cfg]);
    let n = 0;
    try {
      await waitFor(() => objectsUnder(gcs, s.prefix).some((x) => x.includes('/snapshots/')), 20_000, 'the first snapshot');
      for (let i = 0; i < 20; i++, n++) s.insert.run(`pre-${i}`);
      await sleep(3 * SYNC_MS);
      await gcs.server.stop();
      // Writes keep committing locally while the store is unreachable, for longer than one sync's
      // retry budget, so whole syncs fail and later ones must catch up.
      const until = Date.now() + 20 * SYNC_MS;
      while (Date.now() < until) {
        s.insert.run(`during-${n++}`);
        await sleep(20);
      }
      await gcs.server.start();
      for (let i = 0; i < 20; i++, n++) s.insert.run(`post-${i}`);
      await sleep(4 * SYNC_MS);
    } finally {
      await gcs.server.start(); // no-op when already running
      proc.kill('SIGTERM');
    }
    const r = await proc;
    assert.equal(r.exitCode, 0, String(r.stderr));
    const expected = s.app.prepare('SELECT id, v FROM rows ORDER BY id').all();
    assert.equal(expected.length, n);
    s.app.close();
    const out = join(work, 'outage-restored.db');
    const rr = await lsinit(['restore', '-config', s.cfg, '-o', out, s.db]);
    assert.equal(rr.exitCode, 0, rr.stderr);
    assert.deepEqual(rowsOf(out, work), expected);
  });
});
