/**
 * The lease object must be invisible to readers of the replica format: it lives beside
 * `generations/`, and restore (like Litestream 0.3) lists only names under `generations/`. A real
 * replica made by `lsinit replicate`, a real lease written into it, then `lsinit restore` and
 * `lsinit generations` through the CLI, on a file replica and on an s3 replica (moto).
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { S3Settings } from '../../src/replica/clients/s3-config.js';
import { FileLeaseStore } from '../../src/replica/lease/file.js';
import { LEASE_NAME, type LeaseStore } from '../../src/replica/lease/index.js';
import { S3LeaseStore } from '../../src/replica/lease/s3.js';
import { LeaseGuard } from '../../src/replicate/lease-guard.js';
import { lsinit } from '../helpers/cli.js';
import { createDB, dump, fileConfig, integrity, snapshotCopy, startReplicate, workdir, writer } from '../helpers/replicate.js';
import { MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY, startMoto, type MotoServer } from '../servers/moto.js';

const BUCKET = 'lsinit-lease-restore';

/** Replicate a few hundred transactions into the replica of `cfg`, then stop with SIGTERM. */
async function replicate(cfg: string, db: string): Promise<void> {
  createDB(db);
  const rep = await startReplicate(cfg);
  const committed = await writer(db, ['--tx', '150', '--conns', '2']);
  assert.equal(committed.length, 150);
  rep.child.kill('SIGTERM');
  const r = await rep.child;
  assert.equal(r.exitCode, 0, rep.output());
}

/** Hold a real lease on the replica (as a running lsinit would) and leave it in place. */
async function leaseOn(store: LeaseStore): Promise<void> {
  const g = new LeaseGuard({ store, hostname: 'other-instance' });
  await g.acquire();
  g.stop();
  assert.ok(await store.read());
  await store.close();
}

describe('lease object and restore', () => {
  let moto: MotoServer;
  before(async () => {
    moto = await startMoto();
    await moto.createBucket(BUCKET);
  });
  after(async () => {
    await moto?.stop();
  });

  it('file replica: restore and generations ignore lsinit-lease.json', async () => {
    const w = workdir('lease-restore');
    try {
      const { cfg, db, replica } = fileConfig(w.dir);
      await replicate(cfg, db);
      await leaseOn(new FileLeaseStore({ path: replica }));
      assert.ok(existsSync(join(replica, LEASE_NAME)));
      const gens = await lsinit(['generations', `file://${replica}`]);
      assert.equal(gens.exitCode, 0, gens.stderr);
      assert.doesNotMatch(gens.stdout + gens.stderr, /lease/i);
      const out = join(w.dir, 'restored.db');
      const res = await lsinit(['restore', '-o', out, `file://${replica}`]);
      assert.equal(res.exitCode, 0, res.stderr + res.stdout);
      assert.equal(integrity(out), 'ok');
      assert.deepEqual(dump(out), dump(snapshotCopy(db, join(w.dir, 'src.db'))));
    } finally {
      w.cleanup();
    }
  });

  it('s3 replica: restore ignores lsinit-lease.json', async () => {
    const w = workdir('lease-restore-s3');
    try {
      const prefix = `r-${Date.now().toString(36)}`;
      const db = join(w.dir, 'app.db');
      const cfg = join(w.dir, 'lsinit.yml');
      writeFileSync(cfg, [
        'dbs:',
        `  - path: ${db}`,
        '    monitor-interval: 100ms',
        '    replicas:',
        `      - type: s3`,
        `        bucket: ${BUCKET}`,
        `        path: ${prefix}`,
        `        endpoint: ${moto.endpoint}`,
        '        region: us-east-1',
        '        sync-interval: 100ms',
        '',
      ].join('\n'));
      const env = { AWS_ACCESS_KEY_ID: MOTO_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: MOTO_SECRET_ACCESS_KEY };
      // startReplicate passes this process's environment on (this file runs in its own process).
      Object.assign(process.env, env);
      await replicate(cfg, db);
      const settings: S3Settings = moto.settings(BUCKET, prefix);
      await leaseOn(new S3LeaseStore(settings));
      const out = join(w.dir, 'restored.db');
      const res = await lsinit(['restore', '-config', cfg, '-o', out, db], { env });
      assert.equal(res.exitCode, 0, res.stderr + res.stdout);
      assert.equal(integrity(out), 'ok');
      assert.deepEqual(dump(out), dump(snapshotCopy(db, join(w.dir, 'src.db'))));
    } finally {
      w.cleanup();
    }
  });
});
