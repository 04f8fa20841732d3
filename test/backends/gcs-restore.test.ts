/**
 * `lsinit restore` from a gcs replica: a Litestream 0.3.13 replica (test/fixtures/litestream-0.3.13/basic) uploaded
 * object by object to the test server restores byte-identical to what Litestream restored, and the
 * restore costs one LIST per listing page plus one GET per object.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as paths from '../../src/format/paths.js';
import { GcsReplicaClient } from '../../src/replica/clients/gcs.js';
import { lsinit } from '../helpers/cli.js';
import { loadScenario, sha256File } from '../helpers/vectors.js';
import { startGcs, type RunningGcs } from '../servers/gcs.js';

describe('lsinit restore from gcs', () => {
  let gcs: RunningGcs;
  let work: string;
  const prefix = 'vectors/basic';
  let objects = 0;
  before(async () => {
    gcs = await startGcs();
    work = mkdtempSync(join(tmpdir(), 'lsinit-gcs-restore-'));
    const { dir, manifest } = loadScenario('basic');
    const c = new GcsReplicaClient({ bucket: gcs.bucket, path: prefix, endpoint: gcs.endpoint });
    // Upload in mtime order so the store's creation times keep Litestream's order.
    const files = [...manifest.files].sort((a, b) => (BigInt(a.mtime_ns_str) < BigInt(b.mtime_ns_str) ? -1 : 1));
    for (const f of files) {
      const [, gen, kind, name] = f.path.split('/') as [string, string, string, string];
      const body = readFileSync(join(dir, 'replica', f.path));
      if (kind === 'snapshots') await c.writeSnapshot(gen, paths.parseSnapshotName(name)!, body);
      else {
        const p = paths.parseWALSegmentName(name)!;
        await c.writeWALSegment({ generation: gen, ...p }, body);
      }
      objects++;
    }
  });
  after(async () => {
    await gcs.stop();
    rmSync(work, { recursive: true, force: true });
  });

  it('restores the latest state byte-identical to Litestream, through STORAGE_EMULATOR_HOST', { timeout: 120_000 }, async (t) => {
    const expected = loadScenario('basic').cases.find((c) => c.id === 'latest')!;
    const out = join(work, 'restored.db');
    const start = gcs.server.requests.length;
    const r = await lsinit(['restore', '-o', out, `gcs://${gcs.bucket}/${prefix}`], {
      env: { ...process.env, STORAGE_EMULATOR_HOST: `127.0.0.1:${gcs.server.port}`, GOOGLE_APPLICATION_CREDENTIALS: '/nonexistent/creds.json' },
    });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(sha256File(out), expected.expect.sha256);
    const reqs = gcs.server.requests.slice(start);
    const lists = reqs.filter((q) => q.method === 'GET' && q.path.endsWith('/o'));
    const gets = reqs.filter((q) => q.query['alt'] === 'media');
    // Every object is read at most once, and nothing but listings and reads is sent.
    assert.equal(reqs.length, lists.length + gets.length, JSON.stringify(reqs.map((q) => `${q.method} ${q.path}`)));
    assert.ok(gets.length <= objects);
    assert.equal(new Set(gets.map((q) => q.path)).size, gets.length, 'an object was downloaded twice');
    t.diagnostic(`gcs restore of vectors/basic (${objects} objects): ${reqs.length} requests = ${lists.length} LIST + ${gets.length} GET`);
  });

  it('restores through a config file whose gcs replica names the endpoint key', { timeout: 120_000 }, async () => {
    const expected = loadScenario('basic').cases.find((c) => c.id === 'latest')!;
    const db = join(work, 'app.db');
    const cfg = join(work, 'lsinit.yml');
    writeFileSync(cfg, `dbs:\n  - path: ${db}\n    replicas:\n      - url: gcs://${gcs.bucket}/${prefix}\n        endpoint: ${gcs.endpoint}\n`);
    const out = join(work, 'from-config.db');
    const env: NodeJS.ProcessEnv = { ...process.env, GOOGLE_APPLICATION_CREDENTIALS: '/nonexistent/creds.json' };
    delete env['STORAGE_EMULATOR_HOST'];
    const r = await lsinit(['restore', '-config', cfg, '-o', out, db], { env });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(sha256File(out), expected.expect.sha256);
  });
});
