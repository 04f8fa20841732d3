/**
 * age-encrypted replication end to end: `lsinit replicate` ships to a file replica and an S3
 * replica (moto) with `age:`, every object on both stores is an age file, a restart continues the
 * generation (the newest segment is decrypted to learn where the replica ends), restore through
 * the config gives the source rows back, `restore -f` follows it, and the secret key appears
 * nowhere in the output.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { S3ReplicaClient } from '../../src/replica/clients/s3.js';
import { ageBlock, ageKeyPair, fileAndS3Config } from '../helpers/age.js';
import { lsinit, spawnLsinit } from '../helpers/cli.js';
import { WRITER, createDB, dump, integrity, sleep, snapshotCopy, startReplicate, workdir, writer } from '../helpers/replicate.js';
import { startMoto, type MotoServer } from '../servers/moto.js';

const AGE_HEADER = 'age-encryption.org/v1\n';

/** Highest `log.id` in a copy that another process is updating (0 while absent or unreadable). */
function maxLogId(path: string): number {
  if (!existsSync(path)) return 0;
  try {
    const d = new Database(path, { readonly: true, timeout: 5000 });
    try {
      return (d.prepare('SELECT max(id) FROM log').pluck().get() as number | null) ?? 0;
    } finally {
      d.close();
    }
  } catch {
    return 0;
  }
}

describe('age-encrypted replication (file and s3)', () => {
  const w = workdir('age-e2e');
  let moto: MotoServer;
  let id: string;
  let rc: string;
  before(async () => {
    moto = await startMoto();
    await moto.createBucket('enc');
    ({ identity: id, recipient: rc } = await ageKeyPair());
  });
  after(async () => {
    await moto?.stop();
    w.cleanup();
  });

  function config(db: string, replica: string, age: string): string {
    const cfg = join(w.dir, `lsinit-${Math.random().toString(36).slice(2)}.yml`);
    fileAndS3Config(cfg, { db, replica, endpoint: moto.endpoint, bucket: 'enc', age });
    return cfg;
  }

  it('ships age(LZ4) objects, continues the generation after a restart, and restores the rows from both stores', async () => {
    const db = join(w.dir, 'app.db');
    const replica = join(w.dir, 'replica');
    // The identity comes from the environment, the usual way to keep it out of the file.
    const cfg = config(db, replica, ageBlock(['${AGE_ID}'], [rc]));
    process.env['AGE_ID'] = id;
    createDB(db);
    let rep = await startReplicate(cfg);
    await writer(db, ['--tx', '120', '--blob', '3000']);
    rep.child.kill('SIGTERM');
    assert.equal((await rep.child).exitCode, 0, rep.output());
    let output = rep.output();
    const gens = readdirSync(join(replica, 'generations'));
    assert.equal(gens.length, 1);

    rep = await startReplicate(cfg);
    await writer(db, ['--tx', '80', '--start', '121', '--blob', '3000']);
    rep.child.kill('SIGTERM');
    assert.equal((await rep.child).exitCode, 0, rep.output());
    output += rep.output();
    assert.match(rep.output(), /continuing generation/);
    assert.deepEqual(readdirSync(join(replica, 'generations')), gens, output);
    assert.doesNotMatch(output, /AGE-SECRET-KEY-1/);
    assert.doesNotMatch(output, /replica sync failed|error/i);

    // Every object on both stores is an age file, under Litestream's names.
    const gdir = join(replica, 'generations', gens[0]!);
    const files = ['snapshots', 'wal'].flatMap((sub) => readdirSync(join(gdir, sub)).map((f) => join(gdir, sub, f)));
    assert.ok(files.filter((f) => f.endsWith('.wal.lz4')).length >= 3, files.join('\n'));
    for (const f of files) assert.equal(readFileSync(f).subarray(0, AGE_HEADER.length).toString('latin1'), AGE_HEADER, f);
    const s3 = new S3ReplicaClient(moto.settings('enc', 'app'));
    try {
      const segs = await s3.walSegments(gens[0]!);
      assert.ok(segs.length >= 3);
      for (const s of segs) {
        const head = (await buffer(await s3.walSegmentReader(s))).subarray(0, AGE_HEADER.length).toString('latin1');
        assert.equal(head, AGE_HEADER);
      }
    } finally {
      await s3.close();
    }

    const source = dump(snapshotCopy(db, join(w.dir, 'src.db')));
    for (const name of ['disk', 's3']) {
      const out = join(w.dir, `restored-${name}.db`);
      const r = await lsinit(['restore', '-config', cfg, '-replica', name, '-o', out, db]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(integrity(out), 'ok');
      assert.deepEqual(dump(out), source, name);
    }
    // `databases` shows the replicas, never a key.
    const dbs = await lsinit(['databases', '-json', '-config', cfg]);
    assert.equal(dbs.exitCode, 0, dbs.stderr);
    assert.deepEqual(JSON.parse(dbs.stdout)[0].replicas.map((r: { name: string }) => r.name), ['disk', 's3']);
    assert.doesNotMatch(dbs.stdout + dbs.stderr, /AGE-SECRET-KEY-1/);
    // A bare URL carries no identity: refused, naming the object, nothing written.
    const out = join(w.dir, 'from-url.db');
    const r = await lsinit(['restore', '-o', out, `file://${replica}`]);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /snapshot\.lz4: object is age-encrypted/);
    assert.deepEqual(readdirSync(w.dir).filter((f) => f.startsWith('from-url')), []);
  });

  it('restore -f follows an encrypted replica: the follower reads through the same decrypting client', async () => {
    const db = join(w.dir, 'followed.db');
    const replica = join(w.dir, 'followed-replica');
    const cfg = config(db, replica, ageBlock([id], [rc]));
    createDB(db);
    const rep = await startReplicate(cfg);
    await writer(db, ['--tx', '30']);
    const copy = join(w.dir, 'follower-copy.db');
    const follower = spawnLsinit(['restore', '-f', '-follow-interval', '100ms', '-config', cfg, '-replica', 'disk', '-o', copy, db], { all: true, buffer: true });
    let out = '';
    follower.all!.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await writer(db, ['--tx', '40', '--start', '31']);
      const deadline = Date.now() + 60_000;
      while (maxLogId(copy) < 70 && Date.now() < deadline && follower.exitCode === null) await sleep(100);
      assert.equal(maxLogId(copy), 70, out);
    } finally {
      follower.kill('SIGTERM');
      await follower;
      rep.child.kill('SIGTERM');
      await rep.child;
    }
    assert.equal(follower.exitCode, 0, out);
    assert.deepEqual(dump(copy), dump(snapshotCopy(db, join(w.dir, 'followed-src.db'))));
  });

  it('init mode (replication in a worker thread) ships encrypted and continues the generation on its next start', async () => {
    const db = join(w.dir, 'init.db');
    const replica = join(w.dir, 'init-replica');
    const cfg = config(db, replica, ageBlock([id], [rc]));
    createDB(db);
    for (const start of [1, 61]) {
      const r = await lsinit(['-config', cfg, '--', process.execPath, WRITER, db, '--tx', '60', '--start', String(start), '--blob', '2000']);
      assert.equal(r.exitCode, 0, r.stderr + r.stdout);
      assert.doesNotMatch(r.stderr + r.stdout, /AGE-SECRET-KEY-1|sync failed/);
    }
    const gens = readdirSync(join(replica, 'generations'));
    assert.equal(gens.length, 1, 'the second start decrypted the newest segment and continued the generation');
    const out = join(w.dir, 'init-restored.db');
    const r = await lsinit(['restore', '-config', cfg, '-replica', 'disk', '-o', out, db]);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(dump(out), dump(snapshotCopy(db, join(w.dir, 'init-src.db'))));
  });

  it('replicate refuses identities without recipients at start-up, writing nothing', async () => {
    const db = join(w.dir, 'ro.db');
    const replica = join(w.dir, 'ro-replica');
    createDB(db);
    const cfg = config(db, replica, ageBlock([id], []));
    const r = await lsinit(['replicate', '-config', cfg], { timeout: 30_000 });
    assert.equal(r.exitCode, 78, r.stderr + r.stdout); // a config error (docs/errors.md)
    assert.match(r.stderr, /dbs\[0\]\.replicas\[0\]\.age\.recipients: is required to replicate/);
    assert.doesNotMatch(r.stderr + r.stdout, /AGE-SECRET-KEY-1/);
    assert.deepEqual(readdirSync(w.dir).filter((f) => f === 'ro-replica'), []);
  });
});
