/**
 * Issue 12, "What must hold" 2: kill -9 of the follower at any moment leaves a database that
 * SQLite opens as a committed state (its own hot-journal rollback), and the next `restore -f`
 * resumes from the state file without restoring the snapshot again.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { execa, execaSync } from 'execa';
import { fileConfig, sleep, startReplicate, workdir } from '../helpers/replicate.js';
import { bank, followerSeq, rows, startBank, startFollower, waitFor } from './helpers.js';

const CRASHER = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/follow/crash-follower.ts');
const w = workdir('follow-crash');
let primary: Awaited<ReturnType<typeof startReplicate>>;
let db: string;
let replica: string;

before(async () => {
  const c = fileConfig(w.dir, { sync: '100ms' });
  db = c.db;
  replica = c.replica;
  await bank(db, ['--tx', '1']);
  primary = await startReplicate(c.cfg);
});
after(async () => {
  primary.child.kill('SIGTERM');
  await primary.child;
  w.cleanup();
});

/** What another SQLite (Python's) sees: a committed state of the bank, checked in one transaction. */
function pythonView(path: string): { seq: number; integrity: string } {
  const script = `import sqlite3,sys
c=sqlite3.connect(sys.argv[1],timeout=5.0,isolation_level=None)
c.execute('BEGIN')
s,n,q=c.execute("SELECT (SELECT sum(balance) FROM accounts),(SELECT count(*) FROM ledger),(SELECT seq FROM meta WHERE k='seq')").fetchone()
i=c.execute('PRAGMA integrity_check').fetchone()[0]
c.execute('COMMIT')
print(s,n,q,i)`;
  const out = execaSync('python3', ['-c', script, path]).stdout.trim().split(' ');
  assert.equal(Number(out[0]), 2000000, `sum of balances: ${out.join(' ')}`);
  assert.equal(Number(out[1]), Number(out[2]), `ledger rows vs seq: ${out.join(' ')}`);
  return { seq: Number(out[2]), integrity: out[3]! };
}

for (const [step, nth] of [['journal-synced', 1], ['page-written', 2], ['pages-synced', 1], ['journal-deleted', 1]] as const) {
  test(`kill -9 at ${step} (#${nth}): SQLite rolls back or keeps a committed state, and restore -f resumes`, { timeout: 120_000 }, async () => {
    const copy = join(w.dir, `crash-${step}.db`);
    const before = await bank(db, ['--tx', '20']);
    // First run: restores, then dies inside the first transaction it applies after new writes.
    const child = execa(process.execPath, ['--import', 'tsx', CRASHER, copy, replica, step, String(nth)], { reject: false, all: true });
    await waitFor(() => followerSeq(copy) >= before, 60_000, 'the first restore');
    await bank(db, ['--tx', '30', '--delay', '5']);
    const r = await child;
    assert.equal(r.signal, 'SIGKILL', `the follower should have killed itself at ${step}: ${r.all}`);
    const hot = existsSync(`${copy}-journal`);
    assert.equal(hot, step !== 'journal-deleted', 'a hot journal is left exactly when the crash came before the commit point');
    const v = pythonView(copy); // a reader in another process rolls the hot journal back
    assert.equal(v.integrity, 'ok');
    assert.ok(v.seq >= before, `seq ${v.seq} went back before ${before}`);
    assert.equal(existsSync(`${copy}-journal`), false, "SQLite's rollback removed the journal");
    // Restart: resumes from the state file (no snapshot download) and catches up.
    const f = startFollower(['-follow-interval', '50ms', '-o', copy, `file://${replica}`]);
    const final = await bank(db, ['--tx', '5']);
    await waitFor(() => followerSeq(copy) === final, 60_000, `catch-up to ${final}: ${f.output()}`);
    f.child.kill('SIGTERM');
    assert.equal((await f.child).exitCode, 0, f.output());
    assert.match(f.output(), /how=resumed/);
    assert.doesNotMatch(f.output(), /restoring snapshot/);
    const a = rows(db);
    const b = rows(copy);
    assert.equal(b.integrity, 'ok');
    assert.deepEqual(b.ledger, a.ledger);
    assert.deepEqual(b.accounts, a.accounts);
  });
}

test('kill -9 at random moments while the primary writes: every restart finds a committed state', { timeout: 180_000 }, async () => {
  const copy = join(w.dir, 'random.db');
  const writes = startBank(db, ['--tx', '100000', '--delay', '3']);
  try {
    let last = 0;
    for (let round = 0; round < 8; round++) {
      const f = startFollower(['-follow-interval', '20ms', '-o', copy, `file://${replica}`]);
      await waitFor(() => existsSync(copy) && f.output().includes('msg="following'), 60_000, `start: ${f.output()}`);
      await sleep(100 + Math.floor(Math.random() * 700));
      f.child.kill('SIGKILL');
      await f.child;
      const v = pythonView(copy);
      assert.equal(v.integrity, 'ok', `round ${round}`);
      assert.ok(v.seq >= last, `round ${round}: seq ${v.seq} after ${last}`);
      last = v.seq;
      if (round > 0) assert.match(f.output(), /how=resumed/);
    }
    assert.ok(last > 0);
  } finally {
    writes.kill('SIGTERM');
    await writes;
  }
});
