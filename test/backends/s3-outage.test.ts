import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { buffer } from 'node:stream/consumers';
import { after, before, it } from 'node:test';
import { S3ReplicaClient } from '../../src/replica/clients/s3.js';
import { isTransient } from '../../src/replica/retry.js';
import { MOTO_SECRET_ACCESS_KEY, startMoto, type MotoServer } from '../servers/moto.js';

const BUCKET = 'lsinit-outage';
const G = 'aaaaaaaaaaaaaaaa';
let moto: MotoServer;
let client: S3ReplicaClient;
let retryDecisions = 0;

before(async () => {
  moto = await startMoto();
  await moto.createBucket(BUCKET);
  client = new S3ReplicaClient({
    ...moto.settings(BUCKET, 'outage'),
    retry: { attempts: 4, baseMs: 50, maxMs: 200, isTransient: (e) => (retryDecisions++, isTransient(e)) },
  });
});
after(async () => {
  await client?.close();
  await moto?.stop();
});

it('s3 client survives a store outage: transient bounded failure while down, writes work after restart', async () => {
  const pos = (offset: number) => ({ generation: G, index: 1, offset });
  await client.writeWALSegment(pos(0), Buffer.from('before'));

  await moto.stop();
  retryDecisions = 0;
  const t0 = Date.now();
  // The keep-alive socket of the previous request is dead now: the failure must still be clean.
  await assert.rejects(client.writeWALSegment(pos(6), Buffer.from('during')), (err: Error & { code: string; transient: boolean }) => {
    assert.equal(err.code, 'LSINIT_ERR_REPLICA');
    assert.equal(err.transient, true);
    assert.ok(!err.message.includes(MOTO_SECRET_ACCESS_KEY));
    return true;
  });
  assert.equal(retryDecisions, 3, 'retried up to the attempt limit (4 attempts)');
  assert.ok(Date.now() - t0 < 5000, 'bounded');
  await assert.rejects(client.walSegments(G), { code: 'LSINIT_ERR_REPLICA', transient: true });

  await moto.restart();
  await moto.createBucket(BUCKET); // moto is in-memory: the restarted store is empty
  await client.writeWALSegment(pos(6), Buffer.from('after'));
  assert.deepEqual((await client.walSegments(G)).map((s) => s.offset), [6]);
  assert.equal((await buffer(await client.walSegmentReader(pos(6)))).toString(), 'after');
});

it('a store that accepts connections but never answers fails the request as transient, within the timeout', async () => {
  const sockets: Socket[] = [];
  const hung = createServer((s) => sockets.push(s)).listen(0, '127.0.0.1');
  await once(hung, 'listening');
  const port = (hung.address() as { port: number }).port;
  const c = new S3ReplicaClient({ ...moto.settings(BUCKET, 'hang', { endpoint: `http://127.0.0.1:${port}` }), retry: { attempts: 2, baseMs: 10 }, requestTimeoutMs: 300 });
  try {
    const t0 = Date.now();
    await assert.rejects(c.writeWALSegment({ generation: G, index: 0, offset: 0 }, Buffer.from('x')), { code: 'LSINIT_ERR_REPLICA', transient: true });
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    assert.equal(sockets.length, 2, 'one connection per attempt');
  } finally {
    await c.close();
    for (const s of sockets) s.destroy();
    hung.close();
  }
});
