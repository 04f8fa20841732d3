/**
 * Where the system's liblz4 loads, a replicate process compresses and decodes with it and never
 * loads lz4-napi (its addon costs the worker ~4.5 MB of RSS and a few ms of start-up): not for the
 * snapshot, not for a small WAL segment (one frame in memory) nor a large one (streamed), not for
 * the store position read back from the newest segment on a restart. Seen from outside, in the
 * process's memory maps. lz4-napi, the fallback where liblz4 is missing, is tested in
 * test/format/lz4.test.ts and test/restore/stream.test.ts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { lsinit } from '../helpers/cli.js';
import { createDB, dump, fileConfig, integrity, snapshotCopy, startReplicate, workdir } from '../helpers/replicate.js';
import { waitFor } from '../helpers/wait.js';

/** The shared objects and addons mapped into process `pid`. */
function mapped(pid: number): string[] {
  return [...new Set(readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').map((l) => l.split(/\s+/)[5] ?? '').filter((p) => p.startsWith('/')))];
}

/** Sizes of the WAL segments the replicate process logged as written. */
function segmentSizes(output: string): number[] {
  return [...output.matchAll(/msg="wal segment written".* sz=(\d+)/g)].map((m) => Number(m[1]));
}

describe('LZ4 in a replicate process where liblz4 is present', () => {
  const w = workdir('lz4-codec');
  after(() => w.cleanup());

  it('snapshot, small and streamed WAL segments and the restart go through liblz4; lz4-napi is never loaded; the replica restores row for row', async () => {
    const { cfg, db, replica } = fileConfig(w.dir);
    createDB(db);
    const app = new Database(db);
    const insert = app.prepare('INSERT INTO log (payload, data) VALUES (?, ?)');
    try {
      for (let run = 1; run <= 2; run++) {
        const rep = await startReplicate(cfg);
        const pid = rep.child.pid!;
        insert.run(`small ${run}`, randomBytes(500));
        await waitFor(() => segmentSizes(rep.output()).some((n) => n <= 1 << 20), 30_000, 'a small WAL segment');
        // Half random (stored blocks), half zeros (compressed): a segment over 1 MiB is streamed.
        app.transaction(() => {
          for (let i = 0; i < 24; i++) insert.run(`big ${run}.${i}`, i % 2 ? randomBytes(100_000) : Buffer.alloc(100_000));
        })();
        await waitFor(() => segmentSizes(rep.output()).some((n) => n > 1 << 20), 30_000, 'a streamed WAL segment');
        const libs = mapped(pid);
        assert.ok(libs.some((p) => /\/liblz4\.so/.test(p)), `liblz4 is mapped (run ${run}): ${libs.join(' ')}`);
        assert.deepEqual(libs.filter((p) => /lz4-napi/.test(p)), [], `run ${run}`);
        rep.child.kill('SIGTERM');
        assert.equal((await rep.child).exitCode, 0, rep.output());
        if (run === 2) assert.match(rep.output(), /msg="continuing generation"/, 'the restart goes on with the stored generation (its position read back from the newest segment)');
      }
    } finally {
      app.close();
    }
    assert.equal(readdirSync(join(replica, 'generations')).length, 1);
    const out = join(w.dir, 'restored.db');
    const res = await lsinit(['restore', '-o', out, `file://${replica}`]);
    assert.equal(res.exitCode, 0, res.stderr);
    assert.equal(integrity(out), 'ok');
    assert.deepEqual(dump(out), dump(snapshotCopy(db, join(w.dir, 'src.db'))));
  });
});
