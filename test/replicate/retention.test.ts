import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import { lsinit } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';
import { createDB, dump, integrity, sleep, snapshotCopy, startReplicate, workdir, writer } from '../helpers/replicate.js';

describe('snapshots, retention and several replicas', () => {
  let cleanup = () => {};
  afterEach(() => cleanup());

  it('snapshot-interval adds snapshots; retention deletes older snapshots and their WAL, and restore still works', async () => {
    const w = workdir('retention');
    cleanup = w.cleanup;
    const db = join(w.dir, 'app.db');
    const replica = join(w.dir, 'replica');
    const cfg = join(w.dir, 'lsinit.yml');
    writeFileSync(cfg, `dbs:
  - path: ${db}
    monitor-interval: 100ms
    min-checkpoint-page-count: 30
    replicas:
      - path: ${replica}
        sync-interval: 100ms
        snapshot-interval: 700ms
        retention: 1500ms
        retention-check-interval: 300ms
`);
    createDB(db);
    const rep = await startReplicate(cfg);
    // A failed assertion must not leave lsinit running: its pipes would keep this file's process alive.
    cleanup = () => {
      rep.child.kill('SIGKILL');
      w.cleanup();
    };
    // "replicating" is logged once the database is open; the first replica sync runs after it.
    await waitFor(() => existsSync(join(replica, 'generations')) && readdirSync(join(replica, 'generations')).length > 0, 20_000, 'the first generation on the replica');
    const gen = readdirSync(join(replica, 'generations'))[0]!;
    const snapsDir = join(replica, 'generations', gen, 'snapshots');
    const walDir = join(replica, 'generations', gen, 'wal');
    for (let round = 0; round < 6; round++) {
      await writer(db, ['--tx', '40', '--start', String(round * 40 + 1), '--blob', '1500']);
      await sleep(500);
    }
    await sleep(500);
    rep.child.kill('SIGTERM');
    assert.equal((await rep.child).exitCode, 0, rep.output());
    assert.match(rep.output(), /snapshot written/);
    const snaps = readdirSync(snapsDir).sort();
    assert.ok(snaps.length >= 1);
    // Retention removed the first snapshot (index 0) and every WAL segment below the oldest kept snapshot.
    assert.ok(!snaps.includes('00000000.snapshot.lz4'), `old snapshot kept: ${snaps.join(',')}`);
    const minKept = Number.parseInt(snaps[0]!.slice(0, 8), 16);
    for (const seg of readdirSync(walDir)) assert.ok(Number.parseInt(seg.slice(0, 8), 16) >= minKept, `segment ${seg} is below the oldest kept snapshot ${snaps[0]}`);
    const out = join(w.dir, 'restored.db');
    const r = await lsinit(['restore', '-o', out, `file://${replica}`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(integrity(out), 'ok');
    assert.deepEqual(dump(out), dump(snapshotCopy(db, join(w.dir, 'src.db'))));
  });

  it('each of several replicas keeps its own position and restores the same data; -replica picks one', async () => {
    const w = workdir('multi');
    cleanup = w.cleanup;
    const db = join(w.dir, 'app.db');
    const cfg = join(w.dir, 'lsinit.yml');
    writeFileSync(cfg, `dbs:
  - path: ${db}
    monitor-interval: 100ms
    replicas:
      - name: fast
        path: ${join(w.dir, 'r-fast')}
        sync-interval: 100ms
      - name: slow
        url: file://${join(w.dir, 'r-slow')}
        sync-interval: 1s
`);
    createDB(db);
    const rep = await startReplicate(cfg);
    // A failed assertion must not leave lsinit running: its pipes would keep this file's process alive.
    cleanup = () => {
      rep.child.kill('SIGKILL');
      w.cleanup();
    };
    await writer(db, ['--tx', '100', '--delay', '5']);
    rep.child.kill('SIGTERM');
    assert.equal((await rep.child).exitCode, 0, rep.output());
    const fastSegs = readdirSync(join(w.dir, 'r-fast', 'generations', readdirSync(join(w.dir, 'r-fast', 'generations'))[0]!, 'wal')).length;
    const slowSegs = readdirSync(join(w.dir, 'r-slow', 'generations', readdirSync(join(w.dir, 'r-slow', 'generations'))[0]!, 'wal')).length;
    assert.ok(fastSegs > slowSegs, `the 100ms replica should have more segments (${fastSegs}) than the 1s one (${slowSegs})`);
    const expected = dump(snapshotCopy(db, join(w.dir, 'src.db')));
    for (const name of ['fast', 'slow']) {
      const out = join(w.dir, `restored-${name}.db`);
      const r = await lsinit(['restore', '-config', cfg, '-replica', name, '-o', out, db]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.deepEqual(dump(out), expected);
    }
    const list = await lsinit(['databases', '-config', cfg]);
    assert.match(list.stdout, /fast,slow/);
    const bad = await lsinit(['restore', '-config', cfg, '-replica', 'nope', '-o', join(w.dir, 'x.db'), db]);
    assert.equal(bad.exitCode, 78);
    assert.match(bad.stderr, /replica "nope" not found/);
  });
});
