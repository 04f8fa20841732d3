/**
 * The gcs client against the real test server: request economy, integrity checks, error mapping,
 * and behaviour during an outage.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { LsinitError } from '../../src/errors.js';
import { onOp, type Operation } from '../../src/metrics/ops.js';
import { GcsReplicaClient } from '../../src/replica/clients/gcs.js';
import { crc32cBase64 } from '../servers/gcs-server.js';
import { startGcs, type RunningGcs } from '../servers/gcs.js';

const G = '0123456789abcdef';
let gcs: RunningGcs;
before(async () => {
  gcs = await startGcs();
});
after(async () => {
  gcs.server.fault = undefined;
  await gcs.stop();
});

function client(extra: Partial<ConstructorParameters<typeof GcsReplicaClient>[0]> = {}) {
  return new GcsReplicaClient({ bucket: gcs.bucket, path: gcs.prefix(), endpoint: gcs.endpoint, projectId: 'test', ...extra });
}

/** Server requests and counted ops during `fn`. */
async function observe(fn: () => Promise<unknown>): Promise<{ requests: typeof gcs.server.requests; ops: Operation[] }> {
  const start = gcs.server.requests.length;
  const ops: Operation[] = [];
  const off = onOp((t, op) => t === 'gcs' && ops.push(op));
  try {
    await fn();
  } finally {
    off();
  }
  return { requests: gcs.server.requests.slice(start), ops };
}

describe('gcs client', () => {
  it('a buffered WAL segment write is one request (multipart), counted as one PUT', async () => {
    const c = client();
    const { requests, ops } = await observe(() => c.writeWALSegment({ generation: G, index: 0, offset: 0 }, Buffer.from('frame')));
    assert.equal(requests.length, 1);
    assert.equal(requests[0]!.query['uploadType'], 'multipart');
    assert.deepEqual(ops, ['PUT']);
    const listed = await observe(() => c.walSegments(G));
    assert.equal(listed.requests.length, 1);
    assert.deepEqual(listed.ops, ['LIST']);
    const read = await observe(async () => buffer(await c.walSegmentReader({ generation: G, index: 0, offset: 0 })));
    assert.equal(read.requests.length, 1);
    assert.deepEqual(read.ops, ['GET']);
  });

  it('a streamed upload of 12 MiB round-trips byte-identical through resumable chunks, hashes validated', { timeout: 60_000 }, async () => {
    const c = client({ chunkSize: 4 << 20 });
    const data = randomBytes(12 * 1024 * 1024 + 12345);
    const chunks = Array.from({ length: Math.ceil(data.length / 65536) }, (_, i) => data.subarray(i * 65536, (i + 1) * 65536));
    const { requests, ops } = await observe(() => c.writeSnapshot(G, 1, Readable.from(chunks)));
    assert.equal(ops.length, requests.length, 'every request (session start and each chunk) is counted');
    const puts = requests.filter((r) => r.method === 'PUT');
    assert.equal(requests[0]!.query['uploadType'], 'resumable');
    assert.ok(puts.length >= 4, `expected >= 4 chunk PUTs, got ${puts.length}`);
    assert.deepEqual(puts.slice(0, -1).map((r) => r.status), puts.slice(0, -1).map(() => 308));
    assert.equal(puts.at(-1)!.status, 200);
    const stored = gcs.server.object(gcs.bucket, requests[0]!.query['name']!)!;
    assert.equal(stored.crc32c, crc32cBase64(data));
    assert.equal(stored.md5, createHash('md5').update(data).digest('base64'));
    const [info] = await c.snapshots(G);
    assert.equal(info!.size, data.length);
    const back = await buffer(await c.snapshotReader(G, 1));
    assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(data).digest('hex'));
  });

  it('a download whose bytes do not match x-goog-hash fails with LSINIT_ERR_CHECKSUM', async () => {
    const c = client();
    await c.writeSnapshot(G, 2, Buffer.from('original snapshot bytes'));
    const name = gcs.server.requests.at(-1)!.query['name']!;
    // Corrupt the stored bytes behind the server's recorded hashes (bit rot in the store or in transit).
    const obj = gcs.server.object(gcs.bucket, name)!;
    obj.data = Buffer.from('0riginal snapshot bytes');
    await assert.rejects(async () => buffer(await c.snapshotReader(G, 2)), { code: 'LSINIT_ERR_CHECKSUM' });
  });

  it('a missing bucket is a permanent LSINIT_ERR_REPLICA naming the bucket, tried once', async () => {
    const c = new GcsReplicaClient({ bucket: 'no-such-bucket', path: 'x', endpoint: gcs.endpoint, projectId: 'test' });
    const { requests } = await observe(() =>
      assert.rejects(c.writeWALSegment({ generation: G, index: 0, offset: 0 }, Buffer.from('x')), (err: unknown) => {
        assert.ok(err instanceof LsinitError);
        assert.equal(err.code, 'LSINIT_ERR_REPLICA');
        assert.equal(err.transient, false);
        assert.match(err.message, /no-such-bucket/);
        return true;
      }));
    assert.equal(requests.length, 1);
    await assert.rejects(c.generations(), { code: 'LSINIT_ERR_REPLICA' });
  });

  it('403 is a permanent LSINIT_ERR_AUTH, not retried', async () => {
    const c = client();
    gcs.server.fault = () => 403;
    try {
      const { requests } = await observe(() =>
        assert.rejects(c.writeWALSegment({ generation: G, index: 0, offset: 0 }, Buffer.from('x')), { code: 'LSINIT_ERR_AUTH', transient: false }));
      assert.equal(requests.length, 1);
    } finally {
      gcs.server.fault = undefined;
    }
  });

  it('503s are retried with backoff and the write then succeeds', async () => {
    const c = client({ retry: { baseMs: 10 } });
    let failures = 2;
    gcs.server.fault = () => (failures-- > 0 ? 503 : undefined);
    try {
      const { requests } = await observe(() => c.writeWALSegment({ generation: G, index: 3, offset: 0 }, Buffer.from('after 503')));
      assert.deepEqual(requests.map((r) => r.status), [503, 503, 200]);
    } finally {
      gcs.server.fault = undefined;
    }
    assert.deepEqual(await buffer(await c.walSegmentReader({ generation: G, index: 3, offset: 0 })), Buffer.from('after 503'));
  });

  it('during an outage a write fails with a transient error after bounded retries; after restart writes work', { timeout: 60_000 }, async () => {
    const c = client({ retry: { attempts: 4, baseMs: 50, maxMs: 200 } });
    await c.writeWALSegment({ generation: G, index: 5, offset: 0 }, Buffer.from('before'));
    await gcs.server.stop();
    try {
      const t0 = Date.now();
      await assert.rejects(c.writeWALSegment({ generation: G, index: 5, offset: 100 }, Buffer.from('during')), (err: unknown) => {
        assert.ok(err instanceof LsinitError, String(err));
        assert.equal(err.code, 'LSINIT_ERR_REPLICA');
        assert.equal(err.transient, true);
        return true;
      });
      assert.ok(Date.now() - t0 < 5_000, 'retries are bounded');
      await assert.rejects(c.walSegments(G), { transient: true });
    } finally {
      await gcs.server.start();
    }
    await c.writeWALSegment({ generation: G, index: 5, offset: 100 }, Buffer.from('after'));
    assert.deepEqual((await c.walSegments(G)).map((s) => s.offset), [0, 100]);
  });

  it('a 503 on a resumable chunk is retried by resuming the session, and the object is intact', { timeout: 60_000 }, async () => {
    const c = client({ chunkSize: 256 * 1024 });
    const data = randomBytes(700 * 1024);
    let puts = 0;
    gcs.server.fault = (method) => (method === 'PUT' && ++puts === 2 ? 503 : undefined);
    try {
      await c.writeSnapshot(G, 4, Readable.from([data]));
    } finally {
      gcs.server.fault = undefined;
    }
    assert.deepEqual(await buffer(await c.snapshotReader(G, 4)), data);
  });

  it('a download that stalls is aborted as transient; a slow consumer is not a stall', { timeout: 30_000 }, async () => {
    const c = client({ stallMs: 1000, retry: { attempts: 1 } });
    // Larger than every buffer between the socket and the consumer, so the source really pauses.
    const data = randomBytes(12 << 20);
    await c.writeSnapshot(G, 6, data);
    gcs.server.fault = (method, _path, q) => (method === 'GET' && q.get('alt') === 'media' ? 'hang' : undefined);
    try {
      const t0 = Date.now();
      await assert.rejects(async () => buffer(await c.snapshotReader(G, 6)), { code: 'LSINIT_ERR_REPLICA', transient: true });
      assert.ok(Date.now() - t0 < 5_000);
    } finally {
      gcs.server.fault = undefined;
    }
    // The consumer stops reading for 2.5x stallMs after the first chunk: the source pauses, never stalls.
    const r = await c.snapshotReader(G, 6);
    const got: Buffer[] = [];
    for await (const chunk of r) {
      if (got.length === 0) await new Promise((res) => setTimeout(res, 2500));
      got.push(chunk as Buffer);
    }
    assert.deepEqual(Buffer.concat(got), data);
  });

  it('a streamed upload whose chunk request hangs is aborted as transient', { timeout: 30_000 }, async () => {
    const c = client({ stallMs: 1000, chunkSize: 256 * 1024 });
    gcs.server.fault = (method) => (method === 'PUT' ? 'hang' : undefined);
    try {
      const t0 = Date.now();
      await assert.rejects(c.writeSnapshot(G, 7, Readable.from([randomBytes(1 << 20)])), { code: 'LSINIT_ERR_REPLICA', transient: true });
      assert.ok(Date.now() - t0 < 5_000);
    } finally {
      gcs.server.fault = undefined;
    }
  });

  it('a streamed upload during an outage fails transient within the bounded resumable retries', { timeout: 60_000 }, async () => {
    const c = client();
    await gcs.server.stop();
    try {
      const t0 = Date.now();
      await assert.rejects(c.writeSnapshot(G, 9, Readable.from([Buffer.from('snapshot')])), (err: unknown) => {
        assert.ok(err instanceof LsinitError, String(err));
        assert.equal(err.transient, true);
        return true;
      });
      assert.ok(Date.now() - t0 < 30_000, `took ${Date.now() - t0} ms`);
    } finally {
      await gcs.server.start();
    }
    await c.writeSnapshot(G, 9, Readable.from([Buffer.from('snapshot')]));
    assert.deepEqual(await buffer(await c.snapshotReader(G, 9)), Buffer.from('snapshot'));
  });

  it('inspecting or serializing a client shows no library internals (they hold loaded credentials)', () => {
    const c = client();
    assert.doesNotMatch(inspect(c, { depth: 10 }), /authClient|private_key|GoogleAuth/);
    assert.deepEqual(Object.keys(JSON.parse(JSON.stringify(c))).sort(), ['bucket', 'path', 'type']);
  });

  it('errors never carry the credentials file contents or tokens', async () => {
    const c = client();
    gcs.server.fault = () => 401;
    try {
      await assert.rejects(c.generations(), (err: unknown) => {
        assert.ok(err instanceof LsinitError);
        assert.equal(err.code, 'LSINIT_ERR_AUTH');
        // The cause is a plain summary, not the library error with its request config and headers.
        assert.ok(err.cause instanceof Error);
        assert.deepEqual(Object.keys(err.cause), []);
        assert.doesNotMatch(JSON.stringify({ m: err.message, f: err.fields }), /authorization|bearer/i);
        return true;
      });
    } finally {
      gcs.server.fault = undefined;
    }
  });
});
