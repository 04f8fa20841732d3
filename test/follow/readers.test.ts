/**
 * Issue 12, "What must hold" 1: readers in other processes (better-sqlite3, Python's sqlite3 and
 * the sqlite3 shell, each with a normal busy timeout) query the follower continuously while a
 * real `lsinit replicate` ships the primary's transfers and `lsinit restore -f` applies them:
 * every read sees a committed state (the transfer total and ledger agree), time never goes
 * backwards, no reader errors, and a reader holding a read transaction open sees it unchanged.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileConfig, startReplicate, workdir } from '../helpers/replicate.js';
import { bank, followerSeq, rows, startBank, startFollower, startReader, waitFor } from './helpers.js';

const w = workdir('follow-readers');
after(() => w.cleanup());

test('readers in other processes never see a torn or older state while the follower applies transfers', { timeout: 240_000 }, async () => {
  const { cfg, db, replica } = fileConfig(w.dir, { sync: '100ms' });
  await bank(db, ['--tx', '1']);
  const primary = await startReplicate(cfg);
  const copy = join(w.dir, 'follower.db');
  try {
    const f = startFollower(['-follow-interval', '100ms', '-o', copy, `file://${replica}`]);
    await waitFor(() => followerSeq(copy) >= 1, 60_000, `the follower's first restore: ${f.output()}`);
    const readers = [startReader(copy, 'node', 1500), startReader(copy, 'python'), startReader(copy, 'cli'), startReader(copy, 'node')];
    // Every reader reads before the transfers start: a late start (python under load) read only
    // the last states and could not show that reads during the applies see committed states.
    await Promise.race([Promise.all(readers.map((r) => r.ready)), new Promise((_, rej) => setTimeout(() => rej(new Error('a reader did not read within 60 s')), 60_000).unref())]);
    const final = await bank(db, ['--tx', '600', '--delay', '10']);
    assert.equal(final, 601);
    await waitFor(() => followerSeq(copy) === final, 60_000, `the follower to apply seq ${final}: ${f.output().slice(-2000)}`);
    const results = await Promise.all(readers.map((r) => r.finish()));
    for (const [i, r] of results.entries()) {
      assert.deepEqual(r.bad, [], `reader ${readers[i]!.kind}: ${r.out.slice(0, 2000)}`);
      assert.deepEqual(r.errors, [], `reader ${readers[i]!.kind}: ${r.out.slice(0, 2000)}`);
      console.log(`reader ${readers[i]!.kind}: ${r.reads} reads, ${r.distinct} distinct states`);
      assert.ok(r.distinct >= 3, `reader ${readers[i]!.kind} saw ${r.distinct} states in ${r.reads} reads: it did not read while transactions were applied`);
    }
    f.child.kill('SIGTERM');
    const res = await f.child;
    assert.equal(res.exitCode, 0, f.output());
    const a = rows(db);
    const b = rows(copy);
    assert.equal(b.integrity, 'ok');
    assert.equal(b.journalMode, 'delete');
    assert.deepEqual(b.accounts, a.accounts);
    assert.deepEqual(b.ledger, a.ledger);
    assert.deepEqual(b.meta, a.meta);
  } finally {
    primary.child.kill('SIGTERM');
    await primary.child;
  }
});
