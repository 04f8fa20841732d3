/** skip-verify against moto serving HTTPS with a self-signed certificate. */
import assert from 'node:assert/strict';
import { buffer } from 'node:stream/consumers';
import { after, before, it } from 'node:test';
import { s3Backend } from '../../src/replica/clients/s3.js';
import { MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY, startMoto, type MotoServer } from '../servers/moto.js';

const BUCKET = 'lsinit-tls';
const G = '0000000000000001';
let moto: MotoServer;

function clientFor(raw: Record<string, unknown>) {
  const { settings } = s3Backend.resolve({
    raw: { bucket: BUCKET, path: 'tls', endpoint: moto.endpoint, 'access-key-id': MOTO_ACCESS_KEY_ID, 'secret-access-key': MOTO_SECRET_ACCESS_KEY, ...raw },
    global: {}, env: {}, keyPath: 'dbs[0].replicas[0]', cwd: '/',
  });
  return s3Backend.create(settings);
}

before(async () => {
  moto = await startMoto({ tls: true });
  await moto.createBucket(BUCKET);
});
after(async () => {
  await moto?.stop();
});

it('a self-signed endpoint is refused (permanent, with a skip-verify hint) unless skip-verify is set', async () => {
  assert.match(moto.endpoint, /^https:/);
  const strict = clientFor({});
  try {
    await assert.rejects(strict.writeWALSegment({ generation: G, index: 0, offset: 0 }, Buffer.from('x')), (err: Error & { code: string; transient: boolean }) => {
      assert.equal(err.code, 'LSINIT_ERR_REPLICA');
      assert.equal(err.transient, false);
      assert.match(err.message, /skip-verify/);
      return true;
    });
  } finally {
    await strict.close();
  }
  const lax = clientFor({ 'skip-verify': true });
  try {
    await lax.writeWALSegment({ generation: G, index: 0, offset: 0 }, Buffer.from('over tls'));
    assert.equal((await buffer(await lax.walSegmentReader({ generation: G, index: 0, offset: 0 }))).toString(), 'over tls');
  } finally {
    await lax.close();
  }
});
