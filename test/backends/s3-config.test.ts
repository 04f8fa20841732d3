import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import type { ResolveInput } from '../../src/replica/backend.js';
import { backendFor } from '../../src/replica/clients/registry.js';
import type { S3Settings } from '../../src/replica/clients/s3-config.js';
import { s3Backend } from '../../src/replica/clients/s3.js';
import { parseS3Host } from '../../src/replica/clients/s3-url.js';

function input(over: Partial<ResolveInput> = {}): ResolveInput {
  return { raw: {}, global: {}, env: {}, keyPath: 'dbs[0].replicas[0]', cwd: '/', ...over };
}
function fromURL(url: string, raw: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}) {
  return s3Backend.resolve(input({ url: new URL(url), raw, env }));
}
function pick(s: S3Settings) {
  return { bucket: s.bucket, path: s.path, endpoint: s.endpoint, region: s.region, forcePathStyle: s.forcePathStyle };
}

describe('s3 URL forms (Litestream ParseHost plus R2 and Tigris)', () => {
  const cases: [string, string, ReturnType<typeof pick>][] = [
    ['plain AWS', 's3://mybkt/db/prod', { bucket: 'mybkt', path: 'db/prod', endpoint: undefined, region: 'us-east-1', forcePathStyle: false }],
    ['AWS bucket with dots', 's3://mybkt.litestream.io/x', { bucket: 'mybkt.litestream.io', path: 'x', endpoint: undefined, region: 'us-east-1', forcePathStyle: false }],
    ['MinIO / localhost with port', 's3://foo.localhost:9000/bar', { bucket: 'foo', path: 'bar', endpoint: 'http://localhost:9000', region: 'us-east-1', forcePathStyle: true }],
    ['Backblaze B2', 's3://foo.s3.us-west-000.backblazeb2.com/bar', { bucket: 'foo', path: 'bar', endpoint: 'https://s3.us-west-000.backblazeb2.com', region: 'us-west-000', forcePathStyle: true }],
    ['Filebase (no region: us-east-1 because an endpoint is set)', 's3://foo.s3.filebase.com/bar', { bucket: 'foo', path: 'bar', endpoint: 'https://s3.filebase.com', region: 'us-east-1', forcePathStyle: true }],
    ['DigitalOcean Spaces', 's3://foo.nyc3.digitaloceanspaces.com/bar', { bucket: 'foo', path: 'bar', endpoint: 'https://nyc3.digitaloceanspaces.com', region: 'nyc3', forcePathStyle: true }],
    ['Scaleway', 's3://foo.s3.fr-par.scw.cloud/bar', { bucket: 'foo', path: 'bar', endpoint: 'https://s3.fr-par.scw.cloud', region: 'fr-par', forcePathStyle: true }],
    ['Linode', 's3://foo.us-east-1.linodeobjects.com/bar', { bucket: 'foo', path: 'bar', endpoint: 'https://us-east-1.linodeobjects.com', region: 'us-east-1', forcePathStyle: true }],
    ['Cloudflare R2', 's3://foo.0123abcd.r2.cloudflarestorage.com/bar', { bucket: 'foo', path: 'bar', endpoint: 'https://0123abcd.r2.cloudflarestorage.com', region: 'auto', forcePathStyle: true }],
    ['Tigris (fly)', 's3://foo.fly.storage.tigris.dev/bar', { bucket: 'foo', path: 'bar', endpoint: 'https://fly.storage.tigris.dev', region: 'auto', forcePathStyle: true }],
    ['Tigris (t3)', 's3://foo.t3.storage.dev/bar', { bucket: 'foo', path: 'bar', endpoint: 'https://fly.storage.tigris.dev', region: 'auto', forcePathStyle: true }],
    ['bucket with dots on a provider host', 's3://a.b.nyc3.digitaloceanspaces.com/x', { bucket: 'a.b', path: 'x', endpoint: 'https://nyc3.digitaloceanspaces.com', region: 'nyc3', forcePathStyle: true }],
    ['no path', 's3://mybkt', { bucket: 'mybkt', path: '', endpoint: undefined, region: 'us-east-1', forcePathStyle: false }],
    ['path is cleaned', 's3://mybkt//a/./b/../c/', { bucket: 'mybkt', path: 'a/c', endpoint: undefined, region: 'us-east-1', forcePathStyle: false }],
  ];
  for (const [name, url, want] of cases) {
    it(`${name}: ${url}`, () => {
      assert.deepEqual(pick(fromURL(url).settings), want);
    });
  }

  it('a provider host without a bucket gives an empty bucket (and a config error)', () => {
    assert.equal(parseS3Host('s3.us-west-000.backblazeb2.com').bucket, '');
    assert.throws(() => fromURL('s3://localhost:9000/x'), { code: 'LSINIT_ERR_CONFIG' });
  });

  it('Litestream regexes keep their unescaped dots', () => {
    assert.equal(parseS3Host('foo.s3xus-west-000.backblazeb2xcom').endpoint, 'https://s3.us-west-000.backblazeb2.com');
  });
});

describe('s3 config keys', () => {
  it('explicit keys win over URL-derived values', () => {
    const r = fromURL('s3://foo.s3.us-west-000.backblazeb2.com/bar', { region: 'eu-1', endpoint: 'http://127.0.0.1:9999' });
    assert.equal(r.settings.region, 'eu-1');
    assert.equal(r.settings.endpoint, 'http://127.0.0.1:9999');
    assert.equal(r.settings.bucket, 'foo');
  });

  it('force-path-style: false is turned back on by a provider URL (as Litestream does), kept for AWS', () => {
    assert.equal(fromURL('s3://foo.localhost:9000/bar', { 'force-path-style': false }).settings.forcePathStyle, true);
    assert.equal(fromURL('s3://foo/bar', { 'force-path-style': false, endpoint: 'https://s3.example.com' }).settings.forcePathStyle, false);
    assert.equal(fromURL('s3://foo/bar', { 'force-path-style': true }).settings.forcePathStyle, true);
  });

  it('bucket/path keys without a URL; an endpoint implies path style and us-east-1; a bare endpoint gets https://', () => {
    const r = s3Backend.resolve(input({ raw: { bucket: 'b', path: 'p/q', endpoint: 's3.us-west-000.backblazeb2.com' } }));
    assert.deepEqual(pick(r.settings), { bucket: 'b', path: 'p/q', endpoint: 'https://s3.us-west-000.backblazeb2.com', region: 'us-east-1', forcePathStyle: true });
    assert.equal(r.display, 's3://b/p/q');
  });

  it('without region or endpoint, starts from AWS_REGION and follows region redirects', () => {
    const r = s3Backend.resolve(input({ raw: { bucket: 'b' }, env: { AWS_REGION: 'eu-west-3' } }));
    assert.equal(r.settings.region, 'eu-west-3');
    assert.equal(r.settings.followRegionRedirects, true);
    const explicit = s3Backend.resolve(input({ raw: { bucket: 'b', region: 'ap-south-1' } }));
    assert.equal(explicit.settings.followRegionRedirects, false);
  });

  it('url cannot be combined with bucket or path: the error names the key', () => {
    for (const key of ['bucket', 'path']) {
      assert.throws(() => fromURL('s3://foo/bar', { [key]: 'x' }), (err: { code: string; fields: { key: string } }) => {
        assert.equal(err.code, 'LSINIT_ERR_CONFIG');
        assert.equal(err.fields.key, `dbs[0].replicas[0].${key}`);
        return true;
      });
    }
  });

  it('a missing bucket, a bad endpoint and a non-boolean skip-verify are config errors', () => {
    assert.throws(() => s3Backend.resolve(input({ raw: { path: 'x' } })), { code: 'LSINIT_ERR_CONFIG' });
    assert.throws(() => s3Backend.resolve(input({ raw: { bucket: 'b', endpoint: 'http://[bad' } })), { code: 'LSINIT_ERR_CONFIG' });
    assert.throws(() => s3Backend.resolve(input({ raw: { bucket: 'b', 'skip-verify': 'yes' } })), { code: 'LSINIT_ERR_CONFIG' });
  });

  it('skip-verify is read and warned about', () => {
    const r = s3Backend.resolve(input({ raw: { bucket: 'b', 'skip-verify': true, endpoint: 'https://minio.internal' } }));
    assert.equal(r.settings.skipVerify, true);
    assert.equal(r.warnings.length, 1);
  });

  it('is registered as the s3 backend with its secret env names', () => {
    // The registry resolves with the same function and creates a lazily loaded client.
    assert.equal(backendFor('s3')!.resolve, s3Backend.resolve);
    assert.equal(backendFor('s3')!.type, 's3');
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'LITESTREAM_ACCESS_KEY_ID', 'LITESTREAM_SECRET_ACCESS_KEY']) assert.ok(s3Backend.secretEnv?.includes(k), k);
  });
});

describe('s3 credential precedence: replica → global → AWS_* → LITESTREAM_* → SDK chain', () => {
  const env = { AWS_ACCESS_KEY_ID: 'aws-id', AWS_SECRET_ACCESS_KEY: 'aws-secret', LITESTREAM_ACCESS_KEY_ID: 'ls-id', LITESTREAM_SECRET_ACCESS_KEY: 'ls-secret' };
  const global = { accessKeyId: 'global-id', secretAccessKey: 'global-secret' };
  const replica = { bucket: 'b', 'access-key-id': 'replica-id', 'secret-access-key': 'replica-secret' };
  const creds = (r: { settings: S3Settings }) => [r.settings.credentialSource, r.settings.credentials?.accessKeyId, r.settings.credentials?.secretAccessKey];

  it('replica keys first', () => {
    assert.deepEqual(creds(s3Backend.resolve(input({ raw: replica, global, env }))), ['replica', 'replica-id', 'replica-secret']);
  });
  it('then the top-level keys', () => {
    assert.deepEqual(creds(s3Backend.resolve(input({ raw: { bucket: 'b' }, global, env }))), ['global', 'global-id', 'global-secret']);
  });
  it('then AWS_* env', () => {
    assert.deepEqual(creds(s3Backend.resolve(input({ raw: { bucket: 'b' }, env }))), ['env', 'aws-id', 'aws-secret']);
  });
  it('then LITESTREAM_* env, per variable where AWS_* is unset', () => {
    const { AWS_ACCESS_KEY_ID: _a, AWS_SECRET_ACCESS_KEY: _b, ...ls } = env;
    assert.deepEqual(creds(s3Backend.resolve(input({ raw: { bucket: 'b' }, env: ls }))), ['env', 'ls-id', 'ls-secret']);
    assert.deepEqual(creds(s3Backend.resolve(input({ raw: { bucket: 'b' }, env: { ...ls, AWS_SECRET_ACCESS_KEY: 'aws-secret' } }))), ['env', 'ls-id', 'aws-secret']);
  });
  it('else the SDK default chain', () => {
    assert.deepEqual(creds(s3Backend.resolve(input({ raw: { bucket: 'b' } }))), ['default-chain', undefined, undefined]);
  });
  it('a global key id fills an empty replica key id field by field, as Litestream propagates it', () => {
    const r = s3Backend.resolve(input({ raw: { bucket: 'b', 'secret-access-key': 'replica-secret' }, global }));
    assert.deepEqual(creds(r), ['replica', 'global-id', 'replica-secret']);
  });
  it('half a key pair is a config error naming the missing key', () => {
    assert.throws(() => s3Backend.resolve(input({ raw: { bucket: 'b', 'access-key-id': 'x' } })), { code: 'LSINIT_ERR_CONFIG', fields: { key: 'dbs[0].replicas[0].secret-access-key' } });
  });
  it('the secret never appears in display, warnings, JSON or inspect output of the settings', () => {
    const r = s3Backend.resolve(input({ url: new URL('s3://user:pw-in-url@foo.localhost:9000/bar'), raw: { 'access-key-id': 'id', 'secret-access-key': 'TOPSECRET123' } }));
    const shown = [r.display, ...r.warnings, JSON.stringify(r.settings), inspect(r.settings, { depth: 5 })].join('\n');
    assert.ok(!shown.includes('TOPSECRET123'), shown);
    assert.ok(!shown.includes('pw-in-url'), shown);
    assert.equal(r.settings.credentials?.secretAccessKey, 'TOPSECRET123');
  });
});
