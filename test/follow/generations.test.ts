/**
 * Issue 12, "What must hold" 3: the primary starts a new generation (lsinit restarted after the
 * app's TRUNCATE checkpoint and a VACUUM, with its shadow state lost, as after a crash) and the
 * follower moves to it without a restart, readers in other processes seeing only committed states.
 */
import assert from 'node:assert/strict';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileConfig, startReplicate, workdir } from '../helpers/replicate.js';
import { bank, followerSeq, rows, startFollower, startReader, waitFor } from './helpers.js';

const w = workdir('follow-gen');
after(() => w.cleanup());

test('a new generation on the primary is applied as one transaction, without a restart or a torn read', { timeout: 240_000 }, async () => {
  const { cfg, db, replica } = fileConfig(w.dir, { sync: '100ms' });
  await bank(db, ['--tx', '1']);
  let primary = await startReplicate(cfg);
  const copy = join(w.dir, 'follower.db');
  const f = startFollower(['-follow-interval', '50ms', '-o', copy, `file://${replica}`]);
  try {
    await waitFor(() => followerSeq(copy) >= 1, 60_000, `the first restore: ${f.output()}`);
    const readers = [startReader(copy, 'node'), startReader(copy, 'python'), startReader(copy, 'cli')];
    let seq = await bank(db, ['--tx', '150', '--delay', '5']);
    await waitFor(() => followerSeq(copy) === seq, 60_000, 'catch-up in the first generation');
    primary.child.kill('SIGTERM');
    await primary.child;
    // While lsinit is down the app truncates the WAL and vacuums; the shadow state is lost.
    seq = await bank(db, ['--tx', '100', '--truncate-at', '50', '--vacuum-at', '90']);
    rmSync(join(w.dir, '.app.db-litestream'), { recursive: true, force: true });
    primary = await startReplicate(cfg);
    seq = await bank(db, ['--tx', '100', '--delay', '5']);
    await waitFor(() => followerSeq(copy) === seq, 90_000, `the follower to reach ${seq} in the new generation: ${f.output().slice(-2000)}`);
    assert.equal(readdirSync(join(replica, 'generations')).length, 2, 'the primary started a second generation');
    assert.match(f.output(), /follower moving to a new image.*reason="new generation"/);
    const results = await Promise.all(readers.map((r) => r.finish()));
    for (const r of results) {
      assert.deepEqual(r.bad, [], r.out.slice(0, 2000));
      assert.deepEqual(r.errors, [], r.out.slice(0, 2000));
    }
    const a = rows(db);
    const b = rows(copy);
    assert.equal(b.integrity, 'ok');
    assert.deepEqual(b.ledger, a.ledger);
    assert.deepEqual(b.accounts, a.accounts);
  } finally {
    f.child.kill('SIGTERM');
    await f.child;
    primary.child.kill('SIGTERM');
    await primary.child;
  }
});
