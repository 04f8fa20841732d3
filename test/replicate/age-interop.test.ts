/**
 * age interop with the reference Litestream 0.3.13 binary, both ways, on a file replica and on S3
 * (moto): Litestream restores what lsinit wrote encrypted, and lsinit restores what Litestream
 * wrote encrypted, to the same bytes as the other tool's restore.
 *
 * Opt-in: registered only when LITESTREAM_BIN points at the binary (CI's clean clone has none),
 * e.g. `LITESTREAM_BIN=/path/to/litestream-0.3.13 node --import tsx --test test/replicate/age-interop.test.ts`.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { ageBlock, ageKeyPair, fileAndS3Config } from '../helpers/age.js';
import { lsinit } from '../helpers/cli.js';
import { createDB, dump, integrity, sleep, snapshotCopy, startReplicate, workdir, writer } from '../helpers/replicate.js';
import { sha256File } from '../helpers/vectors.js';
import { startMoto, type MotoServer } from '../servers/moto.js';

const LITESTREAM = process.env['LITESTREAM_BIN'];

if (LITESTREAM) {
  describe('age interop with Litestream 0.3.13 (file and s3)', () => {
    const w = workdir('age-interop');
    let moto: MotoServer;
    let age: string;
    before(async () => {
      moto = await startMoto();
      const { identity, recipient } = await ageKeyPair();
      age = ageBlock([identity], [recipient]);
    });
    after(async () => {
      await moto?.stop();
      w.cleanup();
    });

    /** A config both tools read: a file replica and an S3 replica on moto, both with age. */
    function config(name: string, db: string, bucket: string): { cfg: string; replica: string } {
      const replica = join(w.dir, `${name}-replica`);
      const cfg = join(w.dir, `${name}.yml`);
      fileAndS3Config(cfg, { db, replica, endpoint: moto.endpoint, bucket, age });
      return { cfg, replica };
    }

    /** Every object of the file replica is an age file (the writer did encrypt), WAL segments included. */
    function assertEncrypted(replica: string) {
      const [gen] = readdirSync(join(replica, 'generations'));
      const files = ['snapshots', 'wal'].flatMap((sub) => readdirSync(join(replica, 'generations', gen!, sub)).map((f) => join(replica, 'generations', gen!, sub, f)));
      assert.ok(files.filter((f) => f.endsWith('.wal.lz4')).length >= 2, files.join('\n'));
      for (const f of files) assert.equal(readFileSync(f).subarray(0, 22).toString('latin1'), 'age-encryption.org/v1\n', f);
    }

    /** Restore every replica with both tools: same bytes, integrity ok, the source's rows. */
    async function restoreBoth(cfg: string, db: string, tag: string) {
      const source = dump(snapshotCopy(db, join(w.dir, `${tag}-src.db`)));
      for (const replica of ['disk', 's3']) {
        const theirs = join(w.dir, `${tag}-${replica}-litestream.db`);
        const ours = join(w.dir, `${tag}-${replica}-lsinit.db`);
        const l = await execa(LITESTREAM!, ['restore', '-config', cfg, '-replica', replica, '-o', theirs, db], { reject: false, all: true });
        assert.equal(l.exitCode, 0, `litestream restore from ${replica}: ${l.all}`);
        const r = await lsinit(['restore', '-config', cfg, '-replica', replica, '-o', ours, db]);
        assert.equal(r.exitCode, 0, `lsinit restore from ${replica}: ${r.stderr}`);
        assert.equal(sha256File(ours), sha256File(theirs), `${replica}: lsinit and Litestream restore different bytes`);
        assert.equal(integrity(ours), 'ok');
        assert.deepEqual(dump(ours), source, replica);
      }
    }

    it('Litestream restores the encrypted replicas lsinit wrote', async () => {
      await moto.createBucket('from-lsinit');
      const db = join(w.dir, 'lsinit-app.db');
      const { cfg, replica } = config('lsinit', db, 'from-lsinit');
      createDB(db);
      const rep = await startReplicate(cfg);
      await writer(db, ['--tx', '150', '--blob', '3000']);
      rep.child.kill('SIGTERM');
      assert.equal((await rep.child).exitCode, 0, rep.output());
      assertEncrypted(replica);
      await restoreBoth(cfg, db, 'lsinit');
    });

    it('lsinit restores the encrypted replicas Litestream wrote', async () => {
      await moto.createBucket('from-litestream');
      const db = join(w.dir, 'litestream-app.db');
      const { cfg, replica } = config('litestream', db, 'from-litestream');
      createDB(db);
      const child = execa(LITESTREAM!, ['replicate', '-config', cfg], { reject: false, all: true, buffer: true });
      let out = '';
      child.all!.on('data', (d: Buffer) => (out += d.toString()));
      const deadline = Date.now() + 30_000;
      while (!/replicating to.*s3/.test(out) && Date.now() < deadline && child.exitCode === null) await sleep(50);
      assert.match(out, /replicating to/, out);
      await writer(db, ['--tx', '150', '--blob', '3000']);
      // Litestream's final sync on SIGTERM ships the rest (DB.Close).
      await sleep(500);
      child.kill('SIGTERM');
      await child;
      assert.doesNotMatch(out, /level=ERROR/, out);
      assertEncrypted(replica);
      await restoreBoth(cfg, db, 'litestream');
    });
  });
}
