import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import type { ResolveInput } from '../../src/replica/backend.js';
import { absBackend } from '../../src/replica/clients/abs.js';
import type { ABSSettings } from '../../src/replica/clients/abs-config.js';
import { backendFor } from '../../src/replica/clients/registry.js';

const KEY = Buffer.alloc(64, 7).toString('base64');
function input(over: Partial<ResolveInput> = {}): ResolveInput {
  return { raw: {}, global: {}, env: {}, keyPath: 'dbs[0].replicas[0]', cwd: '/', ...over };
}
function pick(s: ABSSettings) {
  return { accountName: s.accountName, container: s.container, path: s.path, endpoint: s.endpoint };
}

describe('abs config', () => {
  it('abs://ACCOUNT@CONTAINER/PATH with the key from config', () => {
    const r = absBackend.resolve(input({ url: new URL('abs://myacct@mycontainer/db/prod/'), raw: { 'account-key': KEY } }));
    assert.deepEqual(pick(r.settings), { accountName: 'myacct', container: 'mycontainer', path: 'db/prod', endpoint: 'https://myacct.blob.core.windows.net' });
    assert.equal(r.settings.accountKey, KEY);
    assert.equal(r.display, 'abs://myacct@mycontainer/db/prod');
  });

  it('the key falls back to LITESTREAM_AZURE_ACCOUNT_KEY; account-key wins over it', () => {
    const env = { LITESTREAM_AZURE_ACCOUNT_KEY: KEY };
    assert.equal(absBackend.resolve(input({ url: new URL('abs://a@c/p'), env })).settings.accountKey, KEY);
    const other = Buffer.alloc(64, 9).toString('base64');
    assert.equal(absBackend.resolve(input({ url: new URL('abs://a@c/p'), raw: { 'account-key': other }, env })).settings.accountKey, other);
  });

  it('keys without a URL; an endpoint may carry the account as its path (azurite)', () => {
    const r = absBackend.resolve(input({ raw: { 'account-name': 'devstoreaccount1', 'account-key': KEY, bucket: 'ctr', path: 'x/y', endpoint: 'http://127.0.0.1:10000/devstoreaccount1/' } }));
    assert.deepEqual(pick(r.settings), { accountName: 'devstoreaccount1', container: 'ctr', path: 'x/y', endpoint: 'http://127.0.0.1:10000/devstoreaccount1' });
  });

  it('account-name wins over the URL user; an endpoint without scheme gets https://', () => {
    const r = absBackend.resolve(input({ url: new URL('abs://urlacct@ctr'), raw: { 'account-name': 'cfgacct', 'account-key': KEY, endpoint: 'blob.example.net' } }));
    assert.equal(r.settings.accountName, 'cfgacct');
    assert.equal(r.settings.path, '');
    assert.equal(r.settings.endpoint, 'https://blob.example.net');
    assert.equal(r.display, 'abs://cfgacct@ctr');
  });

  it('url cannot be combined with bucket or path: the error names the key', () => {
    for (const key of ['bucket', 'path']) {
      assert.throws(() => absBackend.resolve(input({ url: new URL('abs://a@c/p'), raw: { [key]: 'x', 'account-key': KEY } })), { code: 'LSINIT_ERR_CONFIG', fields: { key: `dbs[0].replicas[0].${key}` } });
    }
  });

  it('missing account, container or key are config errors naming the key', () => {
    assert.throws(() => absBackend.resolve(input({ url: new URL('abs://ctr/p'), raw: { 'account-key': KEY } })), { code: 'LSINIT_ERR_CONFIG', fields: { key: 'dbs[0].replicas[0].account-name' } });
    assert.throws(() => absBackend.resolve(input({ raw: { 'account-name': 'a', 'account-key': KEY } })), { code: 'LSINIT_ERR_CONFIG', fields: { key: 'dbs[0].replicas[0].bucket' } });
    assert.throws(() => absBackend.resolve(input({ url: new URL('abs://a@c/p') })), { code: 'LSINIT_ERR_CONFIG', fields: { key: 'dbs[0].replicas[0].account-key' } });
  });

  it('a key that is not base64 is rejected without echoing it', () => {
    const bad = 'not base64 !! secret-ish-value';
    assert.throws(() => absBackend.resolve(input({ url: new URL('abs://a@c/p'), raw: { 'account-key': bad } })), (err: Error & { code: string }) => {
      assert.equal(err.code, 'LSINIT_ERR_CONFIG');
      assert.ok(!err.message.includes(bad) && !inspect(err, { depth: 10 }).includes(bad));
      return true;
    });
  });

  it('the key never appears in display, warnings, JSON or inspect output of the settings', () => {
    const r = absBackend.resolve(input({ url: new URL('abs://a:pw-in-url@c/p'), raw: { 'account-key': KEY } }));
    const shown = [r.display, ...r.warnings, JSON.stringify(r.settings), inspect(r.settings, { depth: 5 })].join('\n');
    assert.ok(!shown.includes(KEY), shown);
    assert.ok(!shown.includes('pw-in-url'), shown);
  });

  it('is registered as the abs backend with its secret env name', () => {
    // The registry resolves with the same function and creates a lazily loaded client.
    assert.equal(backendFor('abs')!.resolve, absBackend.resolve);
    assert.equal(backendFor('abs')!.type, 'abs');
    assert.deepEqual(absBackend.secretEnv, ['LITESTREAM_AZURE_ACCOUNT_KEY']);
  });
});
