/**
 * A second lsinit on a database another lsinit replicates (issue 9, item 6): refused by the
 * meta-directory lock before it opens, syncs or checkpoints anything. The running instance is
 * paused (SIGSTOP) with commits in the WAL it has not copied yet, so a second instance that
 * touched anything would show up: every file of the database, its meta directory and the replica
 * is compared (content and mtime) before and after. Then the first instance resumes and ships all.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { lsinit, spawnLsinit } from '../helpers/cli.js';
import { createDB, dump, fileConfig, integrity, logIds, snapshotCopy, startReplicate, workdir, writer } from '../helpers/replicate.js';

/** path → sha256, size and mtime (ns) of every file under these paths (files or directories). */
function fingerprint(paths: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string): void => {
    if (!existsSync(p)) return;
    const st = statSync(p, { bigint: true });
    if (st.isDirectory()) {
      out[`${p}/`] = `dir mtime ${st.mtimeNs}`;
      for (const n of readdirSync(p).sort()) walk(join(p, n));
      return;
    }
    out[p] = `${createHash('sha256').update(readFileSync(p)).digest('hex')} size ${st.size} mtime ${st.mtimeNs}`;
  };
  for (const p of paths) walk(p);
  return out;
}

type Running = Awaited<ReturnType<typeof startReplicate>>;

/** Start `lsinit replicate`, remembered so that a failed assertion still ends it before cleanup. */
function starter(): { start(cfg: string, flags?: string[]): Promise<Running>; endAll(): Promise<void> } {
  const all: Running[] = [];
  return {
    start: async (cfg, flags = []) => {
      const r = await startReplicate(cfg, flags);
      all.push(r);
      return r;
    },
    endAll: async () => {
      for (const r of all) {
        if (r.child.exitCode !== null || r.child.signalCode !== null) continue;
        r.child.kill('SIGCONT');
        r.child.kill('SIGKILL');
        await r.child;
      }
    },
  };
}

describe('a second instance on the same database', () => {
  it('replicate: refused (exit 75, naming the holder) without changing the database, its -wal, meta directory or replica', async () => {
    const w = workdir('second-rep');
    const run = starter();
    try {
      const { cfg, db, replica } = fileConfig(w.dir, { extra: '    checkpoint-interval: 1h\n' });
      createDB(db);
      const a = await run.start(cfg);
      await writer(db, ['--tx', '20']);
      a.child.kill('SIGSTOP');
      try {
        // Committed while the first instance cannot copy them: a second instance that synced would.
        assert.equal((await writer(db, ['--tx', '30', '--start', '21'])).length, 30);
        const files = [db, `${db}-wal`, `${db}-shm`, join(w.dir, '.app.db-litestream'), replica];
        const before = fingerprint(files);
        assert.ok(Object.keys(before).some((p) => p.endsWith('.wal')), 'the first instance has a shadow WAL');
        const b = await lsinit(['replicate', '-config', cfg], { timeout: 30_000 });
        assert.deepEqual(fingerprint(files), before);
        assert.equal(b.exitCode, 75, b.stdout + b.stderr);
        assert.match(b.stderr, new RegExp(`^lsinit: LSINIT_ERR_LEASE: database ${db.replace(/[.]/g, '\\.')} is in use by another lsinit: pid ${a.child.pid} on host \\S+, started \\S+ \\(it holds the lock .*lock\\); .*stop the other process`, 'm'));
        assert.doesNotMatch(b.stdout + b.stderr, /generation/);
      } finally {
        a.child.kill('SIGCONT');
      }
      await writer(db, ['--tx', '10', '--start', '51']);
      a.child.kill('SIGTERM');
      assert.equal((await a.child).exitCode, 0, a.output());
      assert.equal((a.output().match(/new generation/g) ?? []).length, 1, a.output());
      const out = join(w.dir, 'restored.db');
      assert.equal((await lsinit(['restore', '-o', out, `file://${replica}`])).exitCode, 0);
      assert.equal(integrity(out), 'ok');
      // The writer deletes row id - 5 at every tenth id.
      assert.deepEqual(logIds(out), Array.from({ length: 60 }, (_, i) => i + 1).filter((id) => id % 10 !== 5));
      assert.deepEqual(dump(out), dump(snapshotCopy(db, join(w.dir, 'src.db'))));
    } finally {
      await run.endAll();
      w.cleanup();
    }
  });

  it('init: refused before the app starts, without changing anything; with the database missing, neither init nor restore restores it (even without leases)', async () => {
    const w = workdir('second-init');
    const run = starter();
    try {
      const { cfg, db, replica } = fileConfig(w.dir, { extra: '    checkpoint-interval: 1h\n' });
      createDB(db);
      const marker = join(w.dir, 'app-ran');
      const app = ['--', process.execPath, '-e', `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'x')`];
      const a = await run.start(cfg, ['-no-lease']);
      await writer(db, ['--tx', '20']);
      a.child.kill('SIGSTOP');
      try {
        await writer(db, ['--tx', '5', '--start', '21']);
        const files = [db, `${db}-wal`, `${db}-shm`, join(w.dir, '.app.db-litestream'), replica];
        const before = fingerprint(files);
        const b = await lsinit(['-config', cfg, '-no-lease', ...app], { timeout: 30_000 });
        assert.deepEqual(fingerprint(files), before);
        assert.equal(b.exitCode, 1, b.stdout + b.stderr);
        assert.match(b.stdout + b.stderr, /not starting the app.*is in use by another lsinit: pid \d+/);
        assert.equal(existsSync(marker), false, 'the app did not run');
      } finally {
        a.child.kill('SIGCONT');
      }
      a.child.kill('SIGTERM');
      assert.equal((await a.child).exitCode, 0, a.output());

      // The first instance now runs on a database that does not exist yet (it waits for it), and
      // the replica has a backup: a second instance must not restore under it.
      for (const f of [db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
      const c = await run.start(cfg, ['-no-lease']);
      const b = await lsinit(['-config', cfg, '-no-lease', ...app], { timeout: 30_000 });
      assert.equal(existsSync(db), false, 'nothing restored');
      assert.equal(b.exitCode, 1, b.stdout + b.stderr);
      assert.match(b.stdout + b.stderr, /is in use by another lsinit: pid \d+/);
      assert.equal(existsSync(marker), false, 'the app did not run');
      // Nor does `lsinit restore` write the database under it.
      const r = await lsinit(['restore', '-config', cfg, db], { timeout: 30_000 });
      assert.equal(r.exitCode, 75, r.stdout + r.stderr);
      assert.match(r.stderr, /LSINIT_ERR_LEASE: database .*app\.db is in use by another lsinit: pid \d+.*stop that process before restoring/);
      assert.equal(existsSync(db), false, 'nothing restored');
      c.child.kill('SIGTERM');
      assert.equal((await c.child).exitCode, 0, c.output());
    } finally {
      await run.endAll();
      w.cleanup();
    }
  });

  it('two configs naming one database with different replicas: the second is refused', async () => {
    const w = workdir('second-cfg');
    const run = starter();
    try {
      const { cfg, db } = fileConfig(w.dir);
      createDB(db);
      const other = join(w.dir, 'other.yml');
      writeFileSync(other, readFileSync(cfg, 'utf8').replace(join(w.dir, 'replica'), join(w.dir, 'replica2')));
      const a = await run.start(cfg);
      try {
        const b = spawnLsinit(['replicate', '-config', other], { all: true, timeout: 30_000 });
        const r = await b;
        assert.equal(r.exitCode, 75, String(r.all));
        assert.match(String(r.all), /LSINIT_ERR_LEASE: database .* is in use by another lsinit/);
        assert.equal(existsSync(join(w.dir, 'replica2')), false, 'nothing written to its replica');
      } finally {
        a.child.kill('SIGTERM');
        assert.equal((await a.child).exitCode, 0, a.output());
      }
    } finally {
      await run.endAll();
      w.cleanup();
    }
  });
});
