/** gcs replica configuration: URL form, keys, endpoint / STORAGE_EMULATOR_HOST, and credential-free emulator use. */
import assert from 'node:assert/strict';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { LsinitError } from '../../src/errors.js';
import type { ResolveInput } from '../../src/replica/backend.js';
import { gcsBackend, type GcsSettings } from '../../src/replica/clients/gcs.js';
import { backendFor } from '../../src/replica/clients/registry.js';
import { startGcs, type RunningGcs } from '../servers/gcs.js';

function resolve(raw: Record<string, unknown>, env: NodeJS.ProcessEnv = {}): GcsSettings {
  const input: ResolveInput = { raw, env, global: {}, keyPath: 'dbs[0].replicas[0]', cwd: '/' };
  if (typeof raw['url'] === 'string') input.url = new URL(raw['url']);
  return gcsBackend.resolve(input).settings;
}

describe('gcs config', () => {
  it('is registered as the "gcs" backend', () => {
    // The registry resolves with the same function and creates a lazily loaded client.
    assert.equal(backendFor('gcs')!.resolve, gcsBackend.resolve);
    assert.equal(backendFor('gcs')!.type, 'gcs');
  });

  it('gcs://BUCKET/PATH gives bucket = host and the path without its leading slash', () => {
    assert.deepEqual(resolve({ url: 'gcs://my-bucket/db/prod' }), { bucket: 'my-bucket', path: 'db/prod' });
    assert.deepEqual(resolve({ url: 'gcs://my-bucket' }), { bucket: 'my-bucket', path: '' });
    assert.deepEqual(resolve({ url: 'gcs://my-bucket/a//b/' }), { bucket: 'my-bucket', path: 'a/b' });
  });

  it('accepts bucket and path keys', () => {
    assert.deepEqual(resolve({ bucket: 'b', path: 'p/q' }), { bucket: 'b', path: 'p/q' });
    assert.equal(gcsBackend.resolve({ raw: { bucket: 'b', path: 'p' }, env: {}, global: {}, keyPath: 'r', cwd: '/' }).display, 'gcs://b/p');
  });

  it('rejects url combined with bucket or path, and a missing bucket, naming the key', () => {
    assert.throws(() => resolve({ url: 'gcs://b/p', bucket: 'other' }), { code: 'LSINIT_ERR_CONFIG', fields: { key: 'dbs[0].replicas[0].bucket' } });
    assert.throws(() => resolve({ url: 'gcs://b/p', path: 'x' }), { code: 'LSINIT_ERR_CONFIG', fields: { key: 'dbs[0].replicas[0].path' } });
    assert.throws(() => resolve({ path: 'x' }), { code: 'LSINIT_ERR_CONFIG' });
  });

  it('endpoint key: kept as given, https:// added when it has no scheme; a project id is set', () => {
    assert.deepEqual(resolve({ bucket: 'b', endpoint: 'http://127.0.0.1:4443/' }), { bucket: 'b', path: '', endpoint: 'http://127.0.0.1:4443', projectId: 'lsinit' });
    assert.equal(resolve({ bucket: 'b', endpoint: 'storage.example.com' }).endpoint, 'https://storage.example.com');
    assert.equal(resolve({ bucket: 'b', endpoint: 'http://x:1' }, { GOOGLE_CLOUD_PROJECT: 'proj-1' }).projectId, 'proj-1');
    assert.throws(() => resolve({ bucket: 'b', endpoint: 'ftp://x' }), { code: 'LSINIT_ERR_CONFIG', fields: { key: 'dbs[0].replicas[0].endpoint' } });
  });

  it('STORAGE_EMULATOR_HOST: a bare host:port means http; the endpoint key wins over it', () => {
    assert.equal(resolve({ url: 'gcs://b/p' }, { STORAGE_EMULATOR_HOST: '127.0.0.1:4443' }).endpoint, 'http://127.0.0.1:4443');
    assert.equal(resolve({ url: 'gcs://b/p' }, { STORAGE_EMULATOR_HOST: 'https://gcs.local' }).endpoint, 'https://gcs.local');
    assert.equal(resolve({ bucket: 'b', endpoint: 'http://a:1' }, { STORAGE_EMULATOR_HOST: 'c:2' }).endpoint, 'http://a:1');
    assert.equal(resolve({ bucket: 'b' }).endpoint, undefined);
  });

  it('lists bucket and endpoint as its keys and GOOGLE_APPLICATION_CREDENTIALS as secret env', () => {
    assert.deepEqual([...gcsBackend.keys].sort(), ['bucket', 'endpoint']);
    assert.ok(gcsBackend.secretEnv?.includes('GOOGLE_APPLICATION_CREDENTIALS'));
  });
});

describe('gcs config against the test server', () => {
  let gcs: RunningGcs;
  const saved: Record<string, string | undefined> = {};
  before(async () => {
    gcs = await startGcs();
    // If the client consulted ADC, this unreadable credentials file would fail every call; and the
    // library's own read of STORAGE_EMULATOR_HOST must not override the resolved settings.
    for (const k of ['GOOGLE_APPLICATION_CREDENTIALS', 'STORAGE_EMULATOR_HOST']) saved[k] = process.env[k];
    process.env['GOOGLE_APPLICATION_CREDENTIALS'] = '/nonexistent/lsinit-test-credentials.json';
    process.env['STORAGE_EMULATOR_HOST'] = '127.0.0.1:1';
  });
  after(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await gcs.stop();
  });

  it('without an endpoint, an unreadable GOOGLE_APPLICATION_CREDENTIALS is a permanent LSINIT_ERR_AUTH (Google endpoint kept)', async () => {
    const c = gcsBackend.create(resolve({ url: 'gcs://b/p' }));
    await assert.rejects(c.generations(), (err: unknown) => {
      assert.ok(err instanceof LsinitError);
      assert.equal(err.code, 'LSINIT_ERR_AUTH', err.message);
      assert.equal(err.transient, false);
      assert.match(err.message, /gcs bucket "b"/);
      return true;
    });
  });

  for (const [label, raw, env] of [
    ['url + endpoint key', () => ({ url: `gcs://${gcs.bucket}/cfg-a`, endpoint: gcs.endpoint }), () => ({})],
    ['url + STORAGE_EMULATOR_HOST', () => ({ url: `gcs://${gcs.bucket}/cfg-b` }), () => ({ STORAGE_EMULATOR_HOST: `127.0.0.1:${gcs.server.port}` })],
  ] as const) {
    it(`a client from ${label} works without credentials`, async () => {
      const settings = resolve(raw(), env());
      const c = gcsBackend.create(settings);
      try {
        await c.writeSnapshot('0123456789abcdef', 0, Buffer.from('cfg'));
        assert.deepEqual(await c.generations(), ['0123456789abcdef']);
        assert.deepEqual(await buffer(await c.snapshotReader('0123456789abcdef', 0)), Buffer.from('cfg'));
        assert.ok(gcs.server.object(gcs.bucket, `${settings.path}/generations/0123456789abcdef/snapshots/00000000.snapshot.lz4`));
      } finally {
        await c.close();
      }
    });
  }
});
