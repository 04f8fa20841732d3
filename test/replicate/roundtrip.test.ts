import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { lsinit } from '../helpers/cli.js';
import { createDB, dump, fileConfig, integrity, logIds, sleep, snapshotCopy, startReplicate, workdir, writer } from '../helpers/replicate.js';

describe('replicate → restore round trip (file replica)', () => {
  let cleanup = () => {};
  afterEach(() => cleanup());

  it('an app writing through several connections is restored row for row after SIGTERM', async () => {
    const w = workdir('rt');
    cleanup = w.cleanup;
    const { cfg, db } = fileConfig(w.dir);
    createDB(db);
    const rep = await startReplicate(cfg);
    const committed = await writer(db, ['--tx', '400', '--conns', '4', '--blob', '3000']);
    assert.equal(committed.length, 400);
    rep.child.kill('SIGTERM');
    const r = await rep.child;
    assert.equal(r.exitCode, 0, rep.output());
    assert.match(rep.output(), /final sync done/);
    const out = join(w.dir, 'restored.db');
    const res = await lsinit(['restore', '-config', cfg, '-o', out, db]);
    assert.equal(res.exitCode, 0, res.stderr + res.stdout);
    // Nothing left beside the output (no temp, -wal or -shm files).
    assert.deepEqual(readdirSync(w.dir).filter((f) => f.startsWith('restored') || f.includes('lsinit-restore')), ['restored.db']);
    assert.equal(integrity(out), 'ok');
    assert.deepEqual(dump(out), dump(snapshotCopy(db, join(w.dir, 'src.db'))));
  });

  it("the app's own wal_checkpoint(TRUNCATE) never loses data: bounded while replicating, a new generation when it ran while lsinit was down", async () => {
    const w = workdir('trunc');
    cleanup = w.cleanup;
    const { cfg, db, replica } = fileConfig(w.dir);
    createDB(db);
    let rep = await startReplicate(cfg);
    // While lsinit holds its read transaction the TRUNCATE cannot reset the WAL: it returns busy
    // after the app's busy_timeout and nothing is lost.
    await writer(db, ['--tx', '200', '--truncate-at', '100', '--delay', '1']);
    rep.child.kill('SIGTERM');
    assert.equal((await rep.child).exitCode, 0, rep.output());
    // With lsinit down, the app writes and truncates the WAL: the restart must notice.
    await writer(db, ['--tx', '50', '--start', '201', '--truncate-at', '250']);
    rep = await startReplicate(cfg);
    await writer(db, ['--tx', '50', '--start', '251']);
    rep.child.kill('SIGTERM');
    assert.equal((await rep.child).exitCode, 0, rep.output());
    assert.equal(readdirSync(join(replica, 'generations')).length, 2, rep.output());
    assert.match(rep.output(), /new generation/);
    const out = join(w.dir, 'restored.db');
    const res = await lsinit(['restore', '-o', out, `file://${replica}`]);
    assert.equal(res.exitCode, 0, res.stderr);
    assert.equal(integrity(out), 'ok');
    assert.deepEqual(dump(out), dump(snapshotCopy(db, join(w.dir, 'src.db'))));
    assert.equal(logIds(out).length, 300 - 30);
  });

  it('a restart on an intact WAL continues the same generation', async () => {
    const w = workdir('restart');
    cleanup = w.cleanup;
    const { cfg, db, replica } = fileConfig(w.dir);
    createDB(db);
    let rep = await startReplicate(cfg);
    await writer(db, ['--tx', '50']);
    rep.child.kill('SIGTERM');
    assert.equal((await rep.child).exitCode, 0);
    const gens1 = readdirSync(join(replica, 'generations'));
    rep = await startReplicate(cfg);
    await writer(db, ['--tx', '50', '--start', '51']);
    rep.child.kill('SIGTERM');
    assert.equal((await rep.child).exitCode, 0, rep.output());
    assert.deepEqual(readdirSync(join(replica, 'generations')), gens1, rep.output());
    assert.match(rep.output(), /continuing generation/);
    const out = join(w.dir, 'restored.db');
    assert.equal((await lsinit(['restore', '-config', cfg, '-o', out, db])).exitCode, 0);
    assert.deepEqual(dump(out), dump(snapshotCopy(db, join(w.dir, 'src.db'))));
  });

  it('after kill -9 the next start recovers and the restore holds every synced transaction', async () => {
    const w = workdir('kill9');
    cleanup = w.cleanup;
    const { cfg, db } = fileConfig(w.dir);
    createDB(db);
    let rep = await startReplicate(cfg);
    const first = await writer(db, ['--tx', '120', '--conns', '2']);
    await sleep(600); // several sync intervals: everything above is on the replica
    rep.child.kill('SIGKILL');
    await rep.child;
    const out1 = join(w.dir, 'after-kill.db');
    assert.equal((await lsinit(['restore', '-config', cfg, '-o', out1, db])).exitCode, 0);
    const ids1 = new Set(logIds(out1));
    for (const id of first) if (id % 10 !== 5) assert.ok(ids1.has(id), `transaction ${id} was synced before the kill but is missing`);
    rep = await startReplicate(cfg);
    await writer(db, ['--tx', '30', '--start', '121']);
    rep.child.kill('SIGTERM');
    assert.equal((await rep.child).exitCode, 0, rep.output());
    const out2 = join(w.dir, 'after-restart.db');
    assert.equal((await lsinit(['restore', '-config', cfg, '-o', out2, db])).exitCode, 0);
    assert.equal(integrity(out2), 'ok');
    assert.deepEqual(dump(out2), dump(snapshotCopy(db, join(w.dir, 'src.db'))));
  });

  it('point-in-time restore by timestamp and by index gives the earlier state', async () => {
    const w = workdir('pitr');
    cleanup = w.cleanup;
    const { cfg, db, replica } = fileConfig(w.dir, { extra: '    min-checkpoint-page-count: 20\n' });
    createDB(db);
    const rep = await startReplicate(cfg);
    await writer(db, ['--tx', '60', '--blob', '2000']);
    await sleep(500);
    const middle = new Date();
    const early = dump(snapshotCopy(db, join(w.dir, 'early.db')));
    await sleep(300);
    await writer(db, ['--tx', '60', '--start', '61', '--blob', '2000']);
    rep.child.kill('SIGTERM');
    assert.equal((await rep.child).exitCode, 0);
    const out = join(w.dir, 'pitr.db');
    const r = await lsinit(['restore', '-o', out, '-timestamp', middle.toISOString(), `file://${replica}`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(dump(out), early);
    assert.equal(integrity(out), 'ok');
    // By index: the generation's indexes each restore a prefix of the log, growing with the index.
    const gen = readdirSync(join(replica, 'generations'))[0]!;
    const indexes = [...new Set(readdirSync(join(replica, 'generations', gen, 'wal')).map((f) => f.slice(0, 8)))].sort();
    assert.ok(indexes.length >= 2, `expected several WAL indexes, got ${indexes.join(',')}`);
    let prev = -1;
    for (const idx of indexes) {
      const o = join(w.dir, `idx-${idx}.db`);
      const rr = await lsinit(['restore', '-o', o, '-generation', gen, '-index', idx, `file://${replica}`]);
      assert.equal(rr.exitCode, 0, rr.stderr);
      const ids = logIds(o);
      assert.ok(ids.length >= prev, `index ${idx} restored fewer rows than the one before`);
      prev = ids.length;
    }
    assert.deepEqual(logIds(join(w.dir, `idx-${indexes[indexes.length - 1]}.db`)), logIds(snapshotCopy(db, join(w.dir, 'src.db'))));
  });
});
