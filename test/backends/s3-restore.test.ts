/**
 * Restore from an s3 replica: a Litestream 0.3.13 replica (test/fixtures/litestream-0.3.13/basic) uploaded object by
 * object to moto restores byte-identical to what Litestream restored, through the CLI (config file
 * with endpoint, and a MinIO-style `s3://BUCKET.localhost:PORT/PATH` URL), and in process with
 * every request counted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as paths from '../../src/format/paths.js';
import { onOp, type Operation } from '../../src/metrics/ops.js';
import type { ReplicaClient } from '../../src/replica/client.js';
import { S3ReplicaClient } from '../../src/replica/clients/s3.js';
import { restore } from '../../src/restore/index.js';
import { lsinit } from '../helpers/cli.js';
import { loadScenario, sha256File } from '../helpers/vectors.js';
import { MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY, startMoto, type MotoServer } from '../servers/moto.js';

const BUCKET = 'lsinit-restore';
const PREFIX = 'vectors/basic';

/** Upload a vectors scenario in mtime order, so the store's timestamps keep Litestream's order. */
async function uploadScenario(c: ReplicaClient, name: string): Promise<number> {
  const { dir, manifest } = loadScenario(name);
  const files = [...manifest.files].sort((a, b) => (BigInt(a.mtime_ns_str) < BigInt(b.mtime_ns_str) ? -1 : 1));
  for (const f of files) {
    const [, gen, kind, base] = f.path.split('/') as [string, string, string, string];
    const body = readFileSync(join(dir, 'replica', f.path));
    if (kind === 'snapshots') await c.writeSnapshot(gen, paths.parseSnapshotName(base)!, body);
    else await c.writeWALSegment({ generation: gen, ...paths.parseWALSegmentName(base)! }, body);
  }
  return files.length;
}

describe('restore from s3 (moto)', () => {
  let moto: MotoServer;
  let work: string;
  let client: S3ReplicaClient;
  let objects = 0;
  const { cases } = loadScenario('basic');
  const latest = cases.find((c) => c.id === 'latest')!;
  const atIndex = cases.find((c) => c.id === 'gen1-index-00000002')!;
  const env = { ...process.env, AWS_ACCESS_KEY_ID: MOTO_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: MOTO_SECRET_ACCESS_KEY };

  before(async () => {
    moto = await startMoto();
    await moto.createBucket(BUCKET);
    work = mkdtempSync(join(tmpdir(), 'lsinit-s3-restore-'));
    client = new S3ReplicaClient(moto.settings(BUCKET, PREFIX));
    objects = await uploadScenario(client, 'basic');
  });
  after(async () => {
    await client?.close();
    await moto?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('lsinit restore -config (endpoint, env credentials) gives Litestream\'s bytes, latest and by index', { timeout: 120_000 }, async () => {
    const cfg = join(work, 'lsinit.yml');
    const db = join(work, 'app.db');
    writeFileSync(cfg, `dbs:\n  - path: ${db}\n    replicas:\n      - type: s3\n        bucket: ${BUCKET}\n        path: ${PREFIX}\n        endpoint: ${moto.endpoint}\n        region: us-east-1\n`);
    const out1 = join(work, 'latest.db');
    let r = await lsinit(['restore', '-config', cfg, '-o', out1, db], { env });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(sha256File(out1), latest.expect.sha256);
    const out2 = join(work, 'index2.db');
    r = await lsinit(['restore', '-config', cfg, '-o', out2, '-generation', atIndex.args.generation!, '-index', atIndex.args.index!, db], { env });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(sha256File(out2), atIndex.expect.sha256);
    assert.ok(!`${r.stdout}${r.stderr}`.includes(MOTO_SECRET_ACCESS_KEY));
  });

  it('lsinit restore s3://BUCKET.localhost:PORT/PATH (MinIO form) works without a config file', { timeout: 120_000 }, async () => {
    const out = join(work, 'url.db');
    const r = await lsinit(['restore', '-o', out, `s3://${BUCKET}.localhost:${moto.port}/${PREFIX}`], { env });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(sha256File(out), latest.expect.sha256);
  });

  it('a wrong bucket fails with a clear error and no secret in the output', { timeout: 120_000 }, async () => {
    const r = await lsinit(['restore', '-o', join(work, 'nope.db'), `s3://no-such-bucket.localhost:${moto.port}/x`], { env });
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /no-such-bucket/);
    assert.ok(!`${r.stdout}${r.stderr}`.includes(MOTO_SECRET_ACCESS_KEY));
  });

  it('restore in process costs one LIST per listing and one GET per object used', async (t) => {
    const seen: Record<Operation, number> = { GET: 0, PUT: 0, LIST: 0, DELETE: 0 };
    const off = onOp((type, op) => type === 's3' && seen[op]++);
    try {
      const res = await restore({ output: join(work, 'inproc.db'), replicas: [{ name: 's3', client }] });
      assert.equal(res.status, 'restored');
    } finally {
      off();
    }
    assert.equal(sha256File(join(work, 'inproc.db')), latest.expect.sha256);
    assert.equal(seen.PUT + seen.DELETE, 0);
    assert.ok(seen.GET <= objects);
    t.diagnostic(`s3 restore of vectors/basic (${objects} objects): ${seen.LIST + seen.GET} requests = ${seen.LIST} LIST + ${seen.GET} GET`);
  });
});
