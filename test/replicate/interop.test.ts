/**
 * Litestream can restore what lsinit writes: restore an lsinit replica with Litestream 0.3's own
 * algorithm (reference §4.2/§4.5) using independent tools only — the reference `lz4` CLI to
 * decode every object and the `sqlite3` CLI to checkpoint each WAL index into the snapshot —
 * and compare with lsinit's restore byte for byte.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { lsinit } from '../helpers/cli.js';
import { createDB, dump, fileConfig, startReplicate, workdir, writer } from '../helpers/replicate.js';
import { sha256File } from '../helpers/vectors.js';

describe('Litestream-compatible replica format', () => {
  const w = workdir('interop');
  after(() => w.cleanup());

  it('a replica written by lsinit restores with lz4 + sqlite3 exactly as Litestream does it, to the same bytes', async () => {
    const { cfg, db, replica } = fileConfig(w.dir, { extra: '    min-checkpoint-page-count: 40\n' });
    createDB(db);
    const rep = await startReplicate(cfg);
    await writer(db, ['--tx', '150', '--blob', '2500', '--delay', '2']);
    rep.child.kill('SIGTERM');
    assert.equal((await rep.child).exitCode, 0, rep.output());

    const [gen] = readdirSync(join(replica, 'generations'));
    const gdir = join(replica, 'generations', gen!);
    // Every object starts with pierrec/lz4's frame header, like Litestream's.
    for (const sub of ['snapshots', 'wal']) {
      for (const f of readdirSync(join(gdir, sub))) {
        assert.deepEqual([...readFileSync(join(gdir, sub, f)).subarray(0, 7)], [0x04, 0x22, 0x4d, 0x18, 0x64, 0x70, 0xb9], f);
        assert.match(f, sub === 'wal' ? /^[0-9a-f]{8}_[0-9a-f]{8}\.wal\.lz4$/ : /^[0-9a-f]{8}\.snapshot\.lz4$/);
      }
    }
    const snaps = readdirSync(join(gdir, 'snapshots')).sort();
    const snapIndex = snaps[snaps.length - 1]!.slice(0, 8);
    const manual = join(w.dir, 'manual.db');
    execFileSync('lz4', ['-d', '-q', '-f', join(gdir, 'snapshots', `${snapIndex}.snapshot.lz4`), manual]);
    const segs = readdirSync(join(gdir, 'wal')).sort();
    const indexes = [...new Set(segs.map((s) => s.slice(0, 8)))].filter((i) => i >= snapIndex);
    assert.ok(indexes.length >= 2, `want several WAL indexes, got ${indexes.join(',')}`);
    for (const idx of indexes) {
      writeFileSync(`${manual}-wal`, '');
      for (const seg of segs.filter((s) => s.startsWith(`${idx}_`))) {
        appendFileSync(`${manual}-wal`, execFileSync('lz4', ['-d', '-q', '-c', join(gdir, 'wal', seg)], { maxBuffer: 1 << 30 }));
      }
      const out = execFileSync('sqlite3', [manual, 'PRAGMA wal_checkpoint(TRUNCATE);']).toString().trim();
      assert.equal(out.split('|')[0], '0', `checkpoint of index ${idx} was busy: ${out}`);
    }
    const ours = join(w.dir, 'lsinit.db');
    const r = await lsinit(['restore', '-o', ours, `file://${replica}`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(sha256File(ours), sha256File(manual), 'lsinit and the Litestream algorithm restore different bytes');
    assert.deepEqual(dump(manual), dump(ours));
  });
});
