/** Bad inputs through the CLI: one clear line naming the culprit, exit 1 (or 0 with -if-*), nothing written. */
import assert from 'node:assert/strict';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { lsinit } from '../helpers/cli.js';
import { createDB, fileConfig, startReplicate, workdir, writer } from '../helpers/replicate.js';

describe('bad input gets a clear error and writes nothing', () => {
  const w = workdir('bad');
  let replica: string;
  let cfgPath: string;
  let dbPath: string;
  before(async () => {
    const c = fileConfig(w.dir);
    cfgPath = c.cfg;
    dbPath = c.db;
    replica = c.replica;
    createDB(c.db);
    const rep = await startReplicate(c.cfg);
    await writer(c.db, ['--tx', '30', '--delay', '15']);
    rep.child.kill('SIGTERM');
    await rep.child;
  });
  after(() => w.cleanup());

  const outputs = () => readdirSync(w.dir).filter((f) => f.startsWith('out'));

  it('malformed YAML names the file and exits 78 (config error)', async () => {
    const p = join(w.dir, 'broken.yml');
    writeFileSync(p, 'dbs:\n  - path: [unclosed\n');
    const r = await lsinit(['databases', '-config', p]);
    assert.equal(r.exitCode, 78);
    assert.match(r.stderr, /broken\.yml: invalid YAML/);
  });

  it('an unknown key is a warning naming it; the command still works', async () => {
    const p = join(w.dir, 'typo.yml');
    writeFileSync(p, `dbs:\n  - path: ${dbPath}\n    replicas:\n      - path: ${replica}\n        retension: 1h\n`);
    const r = await lsinit(['databases', '-config', p]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /dbs\[0\]\.replicas\[0\]\.retension: unknown key/);
    assert.match(r.stdout, /path\s+replicas\n.*app\.db\s+file/);
  });

  it('a bad duration names the key path', async () => {
    const p = join(w.dir, 'dur.yml');
    writeFileSync(p, `dbs:\n  - path: ${dbPath}\n    replicas:\n      - path: ${replica}\n        sync-interval: 1 second\n`);
    const r = await lsinit(['replicate', '-config', p]);
    assert.equal(r.exitCode, 78);
    assert.match(r.stderr, /dbs\[0\]\.replicas\[0\]\.sync-interval: invalid duration "1 second"/);
  });

  it('a database whose directory is missing is refused by replicate', async () => {
    const r = await lsinit(['replicate', join(w.dir, 'no-such-dir', 'x.db'), `file://${join(w.dir, 'r2')}`], { timeout: 20_000 });
    assert.equal(r.exitCode, 1, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /database directory does not exist: .*no-such-dir/);
    assert.equal(existsSync(join(w.dir, 'r2')), false);
  });

  it('a restore target that exists is left untouched (exit 1), or skipped with -if-db-not-exists (exit 0)', async () => {
    const out = join(w.dir, 'out-exists.db');
    writeFileSync(out, 'precious');
    let r = await lsinit(['restore', '-o', out, `file://${replica}`]);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /output path already exists/);
    assert.equal(readFileSync(out, 'utf8'), 'precious');
    r = await lsinit(['restore', '-if-db-not-exists', '-o', out, `file://${replica}`]);
    assert.equal(r.exitCode, 0);
    assert.equal(readFileSync(out, 'utf8'), 'precious');
  });

  it('a replica with no generations is an error, or exit 0 with -if-replica-exists', async () => {
    const empty = join(w.dir, 'empty-replica');
    let r = await lsinit(['restore', '-o', join(w.dir, 'out-none.db'), `file://${empty}`]);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /no matching backups found/);
    r = await lsinit(['restore', '-if-replica-exists', '-o', join(w.dir, 'out-none.db'), `file://${empty}`]);
    assert.equal(r.exitCode, 0);
    assert.deepEqual(outputs(), ['out-exists.db']);
  });

  for (const [name, mutate, pattern] of [
    ['bit-flipped', (b: Buffer) => { b[Math.floor(b.length / 2)]! ^= 0x40; return b; }, /checksum mismatch|corrupt/],
    ['truncated', (b: Buffer) => b.subarray(0, b.length - 9), /truncated/],
  ] as const) {
    it(`a ${name} WAL segment is an error naming the object, and leaves no file`, async () => {
      const copy = join(w.dir, `replica-${name}`);
      cpSync(replica, copy, { recursive: true });
      const gen = readdirSync(join(copy, 'generations'))[0]!;
      const walDir = join(copy, 'generations', gen, 'wal');
      const seg = readdirSync(walDir).sort().find((f) => !f.endsWith('_00000000.wal.lz4')) ?? readdirSync(walDir).sort()[0]!;
      const p = join(walDir, seg);
      writeFileSync(p, mutate(readFileSync(p)));
      const out = join(w.dir, `out-${name}.db`);
      const r = await lsinit(['restore', '-o', out, `file://${copy}`]);
      assert.equal(r.exitCode, 1, r.stderr);
      assert.match(r.stderr, new RegExp(seg.replace(/\./g, '\\.')));
      assert.match(r.stderr, pattern);
      assert.equal(existsSync(out), false);
      assert.deepEqual(readdirSync(w.dir).filter((f) => f.includes('lsinit-restore')), []);
    });
  }

  it('a missing segment in the middle of an index is reported, not skipped', async () => {
    const copy = join(w.dir, 'replica-gap');
    cpSync(replica, copy, { recursive: true });
    const gen = readdirSync(join(copy, 'generations'))[0]!;
    const walDir = join(copy, 'generations', gen, 'wal');
    const segs = readdirSync(walDir).sort().filter((f) => f.startsWith('00000000_'));
    assert.ok(segs.length >= 3, `need several segments, have ${segs.join(',')}`);
    const { rmSync } = await import('node:fs');
    rmSync(join(walDir, segs[1]!));
    const out = join(w.dir, 'out-gap.db');
    const r = await lsinit(['restore', '-o', out, `file://${copy}`]);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /segment is missing or misnamed/);
    assert.equal(existsSync(out), false);
  });

  it('a file that is not SQLite is refused by replicate', async () => {
    const p = join(w.dir, 'notdb.db');
    writeFileSync(p, 'this is not a database at all, just text');
    const r = await lsinit(['replicate', p, `file://${join(w.dir, 'r3')}`], { timeout: 20_000 });
    assert.equal(r.exitCode, 1);
    assert.match(r.stdout + r.stderr, /notdb\.db is not an SQLite database/);
    assert.equal(readFileSync(p, 'utf8'), 'this is not a database at all, just text');
    assert.equal(existsSync(join(w.dir, 'r3')), false);
  });

  it('usage errors: -index with -timestamp, bad -index, positional before flags', async () => {
    let r = await lsinit(['restore', '-o', join(w.dir, 'out-x.db'), '-index', '1', '-timestamp', '2024-01-01T00:00:00Z', `file://${replica}`]);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /both -index and -timestamp/);
    r = await lsinit(['restore', '-o', join(w.dir, 'out-x.db'), '-index', 'zz', `file://${replica}`]);
    assert.match(r.stderr, /invalid -index "zz"/);
    r = await lsinit(['restore', dbPath, '-o', join(w.dir, 'out-x.db')]);
    assert.match(r.stderr, /too many arguments/);
    assert.equal(existsSync(join(w.dir, 'out-x.db')), false);
    assert.ok(cfgPath);
  });
});
