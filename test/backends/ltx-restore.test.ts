/**
 * Litestream 0.5 (LTX) replicas on object stores: the `compaction` vector replica uploaded file by
 * file to moto (S3), the GCS test server and azurite (through a config file) restores through the CLI to Litestream's bytes,
 * latest and at a TXID; each object is read at most once.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ReplicaClient } from '../../src/replica/client.js';
import { makeABSSettings } from '../../src/replica/clients/abs-config.js';
import { ABSReplicaClient } from '../../src/replica/clients/abs.js';
import { GcsReplicaClient } from '../../src/replica/clients/gcs.js';
import { S3ReplicaClient } from '../../src/replica/clients/s3.js';
import { lsinit } from '../helpers/cli.js';
import { LTX_VECTORS, loadLTXCases, sha256 } from '../helpers/ltx.js';
import { startAzurite, type AzuriteServer } from '../servers/azurite.js';
import { startGcs, type RunningGcs } from '../servers/gcs.js';
import { MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY, startMoto, type MotoServer } from '../servers/moto.js';

const SCENARIO = 'compaction';
const PREFIX = 'litestream05/compaction';
const cases = loadLTXCases(SCENARIO);
const latest = cases.find((c) => c.args.length === 0)!;
const atTXID = cases.find((c) => c.args[1] === '0000000000000024')!;
const refused = cases.find((c) => c.refused)!;

async function upload(c: ReplicaClient): Promise<number> {
  const root = join(LTX_VECTORS, SCENARIO, 'replica');
  let n = 0;
  for (const level of readdirSync(join(root, 'ltx'))) {
    for (const f of readdirSync(join(root, 'ltx', level))) {
      await c.writeObject(`ltx/${level}/${f}`, readFileSync(join(root, 'ltx', level, f)));
      n++;
    }
  }
  return n;
}

/** `source` is a replica URL, or `-config FILE DB_PATH` to restore through a config. */
async function restoreCases(work: string, source: string | string[], env: NodeJS.ProcessEnv): Promise<string> {
  let output = '';
  for (const c of [latest, atTXID, refused]) {
    const out = join(mkdtempSync(join(work, 'case-')), 'restored.db');
    const r = await lsinit(['restore', ...c.args, '-o', out, ...(typeof source === 'string' ? [source] : source)], { env });
    output += r.stdout + r.stderr;
    if (c.refused) {
      assert.notEqual(r.exitCode, 0);
      assert.match(r.stderr, /no matching backup files available/);
      continue;
    }
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(sha256(readFileSync(out)), c.sha256, `restore ${c.args.join(' ')}`);
  }
  return output;
}

describe('LTX restore from s3 (moto)', () => {
  let moto: MotoServer;
  let work: string;
  let client: S3ReplicaClient;
  before(async () => {
    moto = await startMoto();
    await moto.createBucket('ltx');
    work = mkdtempSync(join(tmpdir(), 'lsinit-ltx-s3-'));
    client = new S3ReplicaClient(moto.settings('ltx', PREFIX));
    await upload(client);
  });
  after(async () => {
    await client?.close();
    await moto?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('restores latest, -txid and refuses a TXID beyond the replica, through the CLI', { timeout: 120_000 }, async () => {
    const env = { ...process.env, AWS_ACCESS_KEY_ID: MOTO_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: MOTO_SECRET_ACCESS_KEY };
    await restoreCases(work, `s3://ltx.localhost:${moto.port}/${PREFIX}`, env);
  });
});

describe('LTX restore from gcs', () => {
  let gcs: RunningGcs;
  let work: string;
  let objects = 0;
  before(async () => {
    gcs = await startGcs();
    work = mkdtempSync(join(tmpdir(), 'lsinit-ltx-gcs-'));
    objects = await upload(new GcsReplicaClient({ bucket: gcs.bucket, path: PREFIX, endpoint: gcs.endpoint }));
  });
  after(async () => {
    await gcs?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('restores latest, -txid and refuses a TXID beyond the replica, reading each object at most once', { timeout: 120_000 }, async () => {
    const env = { ...process.env, STORAGE_EMULATOR_HOST: `127.0.0.1:${gcs.server.port}`, GOOGLE_APPLICATION_CREDENTIALS: '/nonexistent/creds.json' };
    const start = gcs.server.requests.length;
    await restoreCases(work, `gcs://${gcs.bucket}/${PREFIX}`, env);
    const reqs = gcs.server.requests.slice(start);
    const gets = reqs.filter((q) => q.query['alt'] === 'media');
    assert.ok(gets.length > 0 && gets.length <= 2 * objects);
    assert.equal(reqs.filter((q) => q.method !== 'GET').length, 0, 'a restore wrote to the replica');
  });
});

describe('LTX restore from abs (azurite), through a config file', () => {
  let azurite: AzuriteServer;
  let work: string;
  before(async () => {
    azurite = await startAzurite();
    await azurite.createContainer('ltx');
    work = mkdtempSync(join(tmpdir(), 'lsinit-ltx-abs-'));
    const c = new ABSReplicaClient(makeABSSettings({ accountName: azurite.accountName, container: 'ltx', path: PREFIX, endpoint: azurite.endpoint }, azurite.accountKey));
    await upload(c);
    await c.close();
  });
  after(async () => {
    await azurite?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('restores latest, -txid and refuses a TXID beyond the replica; the key never shows', { timeout: 120_000 }, async () => {
    const cfg = join(work, 'lsinit.yml');
    const db = join(work, 'app.db');
    writeFileSync(cfg, `dbs:\n  - path: ${db}\n    replicas:\n      - url: abs://${azurite.accountName}@ltx/${PREFIX}\n        endpoint: ${azurite.endpoint}\n`);
    const output = await restoreCases(work, ['-config', cfg, db], { ...process.env, LITESTREAM_AZURE_ACCOUNT_KEY: azurite.accountKey });
    assert.ok(!output.includes(azurite.accountKey));
  });
});
