import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { isTransient } from '../../src/replica/retry.js';
import { makeCredentials, type S3Settings } from '../../src/replica/clients/s3-config.js';
import { S3_PART_SIZE, S3ReplicaClient, type S3ClientOptions } from '../../src/replica/clients/s3.js';
import { startProxy } from '../servers/s3-abs-proxy.js';
import { freePort, MOTO_SECRET_ACCESS_KEY, startMoto, type MotoServer } from '../servers/moto.js';
import { countDuring } from '../helpers/ops.js';

const BUCKET = 'lsinit-client';
const G = '00112233445566ff';
let moto: MotoServer;
let authMoto: MotoServer;

function settings(over: Partial<S3Settings> = {}): S3Settings {
  return moto.settings(BUCKET, `t/${randomBytes(4).toString('hex')}`, over);
}
const clients: S3ReplicaClient[] = [];
function client(over: Partial<S3ClientOptions> = {}): S3ReplicaClient {
  const c = new S3ReplicaClient({ ...settings(), retry: { attempts: 3, baseMs: 20 }, ...over });
  clients.push(c);
  return c;
}

/** Every s3 request counted while `fn` runs. */

before(async () => {
  [moto, authMoto] = await Promise.all([startMoto(), startMoto({ env: { INITIAL_NO_AUTH_ACTION_COUNT: '0' } })]);
  await moto.createBucket(BUCKET);
});
after(async () => {
  for (const c of clients) await c.close();
  await Promise.all([moto?.stop(), authMoto?.stop()]);
});

describe('s3 client against moto', () => {
  it('a 12 MB streamed snapshot goes up as a multipart upload and reads back byte for byte', async () => {
    const c = client();
    const data = randomBytes(12 * 1024 * 1024);
    // Uneven chunks, so part boundaries do not line up with chunk boundaries.
    const chunks: Buffer[] = [];
    for (let i = 0; i < data.length; i += 700_001) chunks.push(data.subarray(i, i + 700_001));
    const ops = await countDuring('s3', async () => {
      const info = await c.writeSnapshot(G, 1, Readable.from(chunks));
      assert.equal(info.size, data.length);
    });
    // CreateMultipartUpload + 3 parts (5 + 5 + 2 MiB) + CompleteMultipartUpload.
    assert.equal(ops.PUT.n, 2 + Math.ceil(data.length / S3_PART_SIZE));
    assert.equal(ops.PUT.bytes, data.length);
    const [snap] = await c.snapshots(G);
    assert.equal(snap!.size, data.length);
    assert.ok((await buffer(await c.snapshotReader(G, 1))).equals(data));
  });

  it('a body stream that fails mid-upload rejects with its own error and leaves no object (multipart aborted)', async () => {
    const c = client();
    const boom = new Error('snapshot source broke');
    async function* source() {
      for (let i = 0; i < 8; i++) yield randomBytes(1024 * 1024);
      throw boom;
    }
    const ops = await countDuring('s3', () => assert.rejects(c.writeSnapshot(G, 2, Readable.from(source())), (err) => err === boom));
    assert.ok(ops.DELETE.n >= 1, 'AbortMultipartUpload sent');
    assert.deepEqual(await c.snapshots(G), []);
    await assert.rejects(c.snapshotReader(G, 2), { code: 'LSINIT_ERR_NOT_FOUND' });
  });

  it('DeleteObjects carries Content-MD5 (MinIO and others reject it without), not only a CRC32 header', async () => {
    const proxy = await startProxy(moto.port);
    try {
      const c = client({ endpoint: proxy.endpoint });
      await c.writeWALSegment({ generation: G, index: 0, offset: 0 }, Buffer.from('x'));
      await c.deleteGeneration(G);
      const del = proxy.requests.filter((r) => r.method === 'POST' && r.query.has('delete'));
      assert.equal(del.length, 1);
      assert.match(String(del[0]!.headers['content-md5']), /^[A-Za-z0-9+/]{22}==$/);
      assert.deepEqual(await c.walSegments(G), []);
    } finally {
      await proxy.stop();
    }
  });

  it('a missing bucket is a permanent LSINIT_ERR_REPLICA naming the bucket', async () => {
    const c = client({ bucket: 'no-such-bucket-here' });
    await assert.rejects(c.writeWALSegment({ generation: G, index: 0, offset: 0 }, Buffer.from('x')), (err: { code: string; transient: boolean; message: string }) => {
      assert.equal(err.code, 'LSINIT_ERR_REPLICA');
      assert.equal(err.transient, false);
      assert.match(err.message, /no-such-bucket-here/);
      return true;
    });
  });

  it('an unknown access key is LSINIT_ERR_AUTH, not retried, and the secret is in no message', async () => {
    const secret = 'wrong-secret-XYZZY-0123456789';
    const c = client({ endpoint: authMoto.endpoint, credentials: makeCredentials('AKIANOSUCHKEY0000000', secret) });
    for (const op of [() => c.generations(), () => c.writeSnapshot(G, 0, Buffer.from('x')), () => c.snapshotReader(G, 0), () => c.deleteGeneration(G)]) {
      await assert.rejects(op(), (err: Error & { code: string; transient: boolean }) => {
        assert.equal(err.code, 'LSINIT_ERR_AUTH');
        assert.equal(err.transient, false);
        assert.match(err.message, new RegExp(BUCKET));
        assert.ok(!err.message.includes(secret) && !inspect(err, { depth: 10 }).includes(secret), err.message);
        return true;
      });
    }
    // Permanent: exactly one request reaches the store although 5 attempts are allowed.
    const c2 = client({ endpoint: authMoto.endpoint, credentials: makeCredentials('AKIANOSUCHKEY0000000', secret), retry: { attempts: 5, baseMs: 1 } });
    const ops = await countDuring('s3', () => assert.rejects(c2.generations(), { code: 'LSINIT_ERR_AUTH' }));
    assert.equal(ops.LIST.n, 1);
  });

  it('connection failures are transient, retried a bounded number of times, without the secret in the error', async () => {
    const port = await freePort(); // nothing listens here
    let retries = 0;
    const c = client({ endpoint: `http://127.0.0.1:${port}`, retry: { attempts: 4, baseMs: 10, isTransient: (e) => (retries++, isTransient(e)) } });
    const t0 = Date.now();
    await assert.rejects(c.writeWALSegment({ generation: G, index: 0, offset: 0 }, Buffer.from('x')), (err: Error & { code: string; transient: boolean }) => {
      assert.equal(err.code, 'LSINIT_ERR_REPLICA');
      assert.equal(err.transient, true);
      assert.ok(!err.message.includes(MOTO_SECRET_ACCESS_KEY) && !inspect(err, { depth: 10 }).includes(MOTO_SECRET_ACCESS_KEY));
      return true;
    });
    assert.equal(retries, 3, 'attempts - 1 retry decisions');
    assert.ok(Date.now() - t0 < 5000);
  });

  it('display strings carry no credentials', () => {
    const c = client();
    assert.match(c.display, /^s3:\/\/lsinit-client\/t\/[0-9a-f]{8}$/);
    assert.ok(!inspect(c, { depth: 10 }).includes(MOTO_SECRET_ACCESS_KEY));
  });
});
