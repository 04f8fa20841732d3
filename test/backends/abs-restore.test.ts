/**
 * Restore from an abs replica: a Litestream 0.3.13 replica (test/fixtures/litestream-0.3.13/basic) uploaded object by
 * object to azurite restores byte-identical to what Litestream restored, through the CLI (config
 * file with endpoint, key from LITESTREAM_AZURE_ACCOUNT_KEY) and in process with requests counted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as paths from '../../src/format/paths.js';
import { onOp, type Operation } from '../../src/metrics/ops.js';
import { makeABSSettings } from '../../src/replica/clients/abs-config.js';
import { ABSReplicaClient } from '../../src/replica/clients/abs.js';
import { restore } from '../../src/restore/index.js';
import { lsinit } from '../helpers/cli.js';
import { loadScenario, sha256File } from '../helpers/vectors.js';
import { startAzurite, type AzuriteServer } from '../servers/azurite.js';

const CONTAINER = 'lsinit-restore';
const PREFIX = 'vectors/basic';

describe('restore from abs (azurite)', () => {
  let azurite: AzuriteServer;
  let work: string;
  let client: ABSReplicaClient;
  let objects = 0;
  const { dir, manifest, cases } = loadScenario('basic');
  const latest = cases.find((c) => c.id === 'latest')!;

  before(async () => {
    azurite = await startAzurite();
    await azurite.createContainer(CONTAINER);
    work = mkdtempSync(join(tmpdir(), 'lsinit-abs-restore-'));
    client = new ABSReplicaClient(makeABSSettings({ accountName: azurite.accountName, container: CONTAINER, path: PREFIX, endpoint: azurite.endpoint }, azurite.accountKey));
    // Upload in mtime order, so the blobs' creation times keep Litestream's order.
    const files = [...manifest.files].sort((a, b) => (BigInt(a.mtime_ns_str) < BigInt(b.mtime_ns_str) ? -1 : 1));
    for (const f of files) {
      const [, gen, kind, base] = f.path.split('/') as [string, string, string, string];
      const body = readFileSync(join(dir, 'replica', f.path));
      if (kind === 'snapshots') await client.writeSnapshot(gen, paths.parseSnapshotName(base)!, body);
      else await client.writeWALSegment({ generation: gen, ...paths.parseWALSegmentName(base)! }, body);
    }
    objects = files.length;
  });
  after(async () => {
    await client?.close();
    await azurite?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('lsinit restore -config gives Litestream\'s bytes; the key never shows in the output', { timeout: 120_000 }, async () => {
    const cfg = join(work, 'lsinit.yml');
    const db = join(work, 'app.db');
    writeFileSync(cfg, `dbs:\n  - path: ${db}\n    replicas:\n      - url: abs://${azurite.accountName}@${CONTAINER}/${PREFIX}\n        endpoint: ${azurite.endpoint}\n`);
    const out = join(work, 'latest.db');
    const r = await lsinit(['restore', '-config', cfg, '-o', out, db], { env: { ...process.env, LITESTREAM_AZURE_ACCOUNT_KEY: azurite.accountKey } });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(sha256File(out), latest.expect.sha256);
    assert.ok(!`${r.stdout}${r.stderr}`.includes(azurite.accountKey));
  });

  it('a wrong key fails with an auth error that does not contain the key', { timeout: 120_000 }, async () => {
    const cfg = join(work, 'wrong.yml');
    const db = join(work, 'app.db');
    const wrong = Buffer.alloc(64, 3).toString('base64');
    writeFileSync(cfg, `dbs:\n  - path: ${db}\n    replicas:\n      - url: abs://${azurite.accountName}@${CONTAINER}/${PREFIX}\n        endpoint: ${azurite.endpoint}\n        account-key: ${wrong}\n`);
    const r = await lsinit(['restore', '-config', cfg, '-o', join(work, 'nope.db'), db]);
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /shared key/);
    assert.ok(!`${r.stdout}${r.stderr}`.includes(wrong));
  });

  it('restore in process costs one LIST per listing and one GET per object used', async (t) => {
    const seen: Record<Operation, number> = { GET: 0, PUT: 0, LIST: 0, DELETE: 0 };
    const off = onOp((type, op) => type === 'abs' && seen[op]++);
    try {
      assert.equal((await restore({ output: join(work, 'inproc.db'), replicas: [{ name: 'abs', client }] })).status, 'restored');
    } finally {
      off();
    }
    assert.equal(sha256File(join(work, 'inproc.db')), latest.expect.sha256);
    assert.equal(seen.PUT + seen.DELETE, 0);
    assert.ok(seen.GET <= objects);
    t.diagnostic(`abs restore of vectors/basic (${objects} objects): ${seen.LIST + seen.GET} requests = ${seen.LIST} LIST + ${seen.GET} GET`);
  });
});
