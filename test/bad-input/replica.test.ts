/**
 * Damaged replicas: every restore names the object (or the generation/index) at fault, exits 1,
 * writes no output, temp or -wal file, and leaves the replica untouched. Complements
 * test/replicate/bad-input.test.ts (bit-flipped/truncated WAL segment, a missing segment).
 */
import assert from 'node:assert/strict';
import { appendFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { lsinit } from '../helpers/cli.js';
import { createDB, dump, fileConfig, integrity, snapshotCopy, startReplicate, workdir, writer } from '../helpers/replicate.js';
import { tree, treeDiff } from './tree.js';

describe('damaged replica objects are refused, naming the object; nothing is written', () => {
  const w = workdir('bad-replica');
  let r4096: string;
  let r1024: string;
  let db4096: string;
  let cfg4096: string;
  before(async () => {
    for (const ps of [4096, 1024]) {
      const d = join(w.dir, `src${ps}`);
      mkdirSync(d);
      const c = fileConfig(d);
      createDB(c.db, ps);
      const rep = await startReplicate(c.cfg);
      await writer(c.db, ['--tx', '40', '--delay', '20', '--blob', '1500']);
      rep.child.kill('SIGTERM');
      const r = await rep.child;
      assert.equal(r.exitCode, 0, rep.output());
      if (ps === 4096) {
        r4096 = c.replica;
        db4096 = c.db;
        cfg4096 = c.cfg;
      } else r1024 = c.replica;
    }
  });
  after(() => w.cleanup());

  const gen = (root: string) => readdirSync(join(root, 'generations'))[0]!;
  const segs = (root: string) => readdirSync(join(root, 'generations', gen(root), 'wal')).sort();
  const segPath = (root: string, name: string) => join(root, 'generations', gen(root), 'wal', name);
  const snapPath = (root: string) => join(root, 'generations', gen(root), 'snapshots', readdirSync(join(root, 'generations', gen(root), 'snapshots')).sort()[0]!);

  let n = 0;
  /** Copy the 4096 replica, damage it, restore: exit 1 (2 for a bad flag, docs/errors.md), message, nothing written or changed. */
  async function refused(damage: (root: string) => void, pattern: RegExp, flags: string[] = [], exitCode = 1) {
    const root = join(w.dir, `copy${++n}`);
    cpSync(r4096, root, { recursive: true });
    damage(root);
    const outDir = join(w.dir, `out${n}`);
    mkdirSync(outDir);
    const before = tree(root, outDir);
    const r = await lsinit(['restore', ...flags, '-o', join(outDir, 'restored.db'), `file://${root}`]);
    assert.equal(r.exitCode, exitCode, r.stdout + r.stderr);
    assert.match(r.stderr, pattern);
    // The output directory's own mtime may move: restore stages a temp file beside the target
    // (for the atomic rename) and removes it on failure. Every entry must be as before.
    const outRoot = `${outDir}:.`;
    assert.deepEqual(treeDiff(before, tree(root, outDir)).filter((l) => !l.startsWith(`${outRoot}: dir mtime=`)), [], 'the restore changed the replica or left files');
    return r.stderr;
  }

  it('the fixture replicas restore (control)', async () => {
    assert.ok(segs(r4096).length >= 3, `want several segments: ${segs(r4096).join(' ')}`);
    const out = join(w.dir, 'control.db');
    const r = await lsinit(['restore', '-o', out, `file://${r4096}`]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(integrity(out), 'ok');
    assert.deepEqual(dump(out), dump(snapshotCopy(db4096, join(w.dir, 'src-copy.db'))));
    assert.ok(cfg4096);
  });

  it('a truncated snapshot', async () => {
    await refused((root) => {
      const p = snapPath(root);
      truncateSync(p, readFileSync(p).length - 20);
    }, /snapshots\/00000000\.snapshot\.lz4: truncated/);
  });

  it('a bit-flipped snapshot', async () => {
    await refused((root) => {
      const p = snapPath(root);
      const b = readFileSync(p);
      b[Math.floor(b.length / 2)]! ^= 0x10;
      writeFileSync(p, b);
    }, /snapshots\/00000000\.snapshot\.lz4: .*(checksum mismatch|corrupt|bad magic|truncated)/);
  });

  it('an empty snapshot, and a snapshot that is not LZ4 at all', async () => {
    await refused((root) => writeFileSync(snapPath(root), ''), /00000000\.snapshot\.lz4: empty object/);
    await refused((root) => writeFileSync(snapPath(root), 'SQLite format 3\0 but uncompressed'), /00000000\.snapshot\.lz4: bad magic number .*not an LZ4 frame/);
  });

  it('a snapshot with bytes appended after its frame', async () => {
    await refused((root) => appendFileSync(snapPath(root), Buffer.from([1, 2, 3, 4, 5, 6, 7, 8])), /00000000\.snapshot\.lz4: bad magic number/);
  });

  it('misnamed segments (short offset, upper case) are not silently skipped', async () => {
    const second = () => segs(r4096)[1]!;
    await refused((root) => renameSync(segPath(root, second()), segPath(root, second().replace(/_0+/, '_'))), /segment is missing or misnamed/);
    await refused((root) => renameSync(segPath(root, second()), segPath(root, second().toUpperCase())), /segment is missing or misnamed/);
  });

  it('a segment renamed to a wrong offset', async () => {
    await refused((root) => {
      const s = segs(root)[2]!;
      const off = Number.parseInt(s.slice(9, 17), 16);
      renameSync(segPath(root, s), segPath(root, `${s.slice(0, 9)}${(off + 1).toString(16).padStart(8, '0')}.wal.lz4`));
    }, /wal\/00000000_[0-9a-f]{8}\.wal\.lz4: segment starts at offset \d+ but the previous segments end at \d+/);
  });

  it('two segments with their contents swapped (out of order)', async () => {
    await refused((root) => {
      const [, a, b] = segs(root);
      const tmp = join(root, 'swap');
      renameSync(segPath(root, a!), tmp);
      renameSync(segPath(root, b!), segPath(root, a!));
      renameSync(tmp, segPath(root, b!));
    }, /(segment is missing or misnamed|salt mismatch|checksum mismatch)/);
  });

  it('a segment from a page-size-1024 replica copied into a 4096 one', async () => {
    // In the middle: the lengths no longer line up with the next segment's name.
    await refused((root) => cpSync(segPath(r1024, segs(r1024)[1]!), segPath(root, segs(root)[1]!)), /wal\/00000000_[0-9a-f]{8}\.wal\.lz4: .*(missing or misnamed)/);
    // As the last segment: the index is no longer whole 4120-byte frames.
    await refused((root) => {
      const last = segs(root).at(-1)!;
      cpSync(segPath(r1024, segs(r1024).at(-1)!), segPath(root, last));
    }, /generation [0-9a-f]{16} WAL index 00000000: (WAL length \d+ is not the header plus whole 4120-byte frames|frame \d+ .*salt mismatch)/);
    // As the first segment (it carries the WAL header): the header's page size differs.
    await refused((root) => cpSync(segPath(r1024, segs(r1024)[0]!), segPath(root, segs(root)[0]!)), /(WAL page size 1024 differs from the snapshot's 4096|missing or misnamed)/);
  });

  it("a snapshot from a page-size-1024 database under the 4096 replica's WAL", async () => {
    await refused((root) => cpSync(snapPath(r1024), snapPath(root)), /WAL page size 4096 differs from the snapshot's 1024/);
  });

  it('generation directory names that try path traversal or are not 16 lower-case hex are ignored; -generation is validated', async () => {
    await refused((root) => {
      const g = join(root, 'generations');
      const real = gen(root);
      renameSync(join(g, real), join(g, `..${real.slice(2)}`));
      mkdirSync(join(g, real.toUpperCase()));
      cpSync(join(g, `..${real.slice(2)}`), join(g, real.toUpperCase()), { recursive: true });
      mkdirSync(join(g, '..%2f..%2fetc'));
    }, /no matching backups found/);
    for (const bad of ['../../../../etc', '..', '0123456789abcde/', '0123456789ABCDEF', '%2e%2e%2f%2e%2e']) {
      await refused(() => {}, /LSINIT_ERR_USAGE: .*invalid -generation/, ['-generation', bad], 2);
    }
  });

  it('a WAL segment where a directory should be, and a directory named like a segment', async () => {
    await refused((root) => {
      const s = segs(root)[1]!;
      rmSync(segPath(root, s));
      mkdirSync(segPath(root, s));
    }, /(EISDIR|directory|00000000_[0-9a-f]{8}\.wal\.lz4)/);
  });

  it('a corrupt last segment does not stop replication for good: later commits still reach a restorable replica', async () => {
    // Replicate reads the last segment to learn its position (Litestream's calcPos). When that
    // object is corrupt, every sync and the final sync fail with "content checksum mismatch",
    // forever: nothing committed afterwards is ever shipped. Found with this corpus.
    const d = join(w.dir, 'stuck');
    mkdirSync(d);
    const c = fileConfig(d);
    createDB(c.db);
    let rep = await startReplicate(c.cfg);
    await writer(c.db, ['--tx', '20', '--delay', '20']);
    rep.child.kill('SIGTERM');
    assert.equal((await rep.child).exitCode, 0, rep.output());
    const last = segs(c.replica).at(-1)!;
    const b = readFileSync(segPath(c.replica, last));
    b[b.length - 6]! ^= 0x01; // inside the content checksum
    writeFileSync(segPath(c.replica, last), b);
    rep = await startReplicate(c.cfg);
    await writer(c.db, ['--tx', '20', '--start', '21', '--delay', '20']);
    rep.child.kill('SIGTERM');
    const r = await rep.child;
    const out = join(w.dir, 'stuck-restored.db');
    const res = await lsinit(['restore', '-o', out, `file://${c.replica}`]);
    assert.equal(res.exitCode, 0, `restore after the restart failed: ${res.stderr}\nreplicate (exit ${r.exitCode}):\n${rep.output()}`);
    assert.deepEqual(dump(out), dump(snapshotCopy(c.db, join(d, 'src.db'))));
    assert.equal(existsSync(out), true);
  });
});
