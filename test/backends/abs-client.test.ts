import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { makeABSSettings } from '../../src/replica/clients/abs-config.js';
import { ABS_BLOCK_SIZE, ABSReplicaClient, absTransient, type ABSClientOptions } from '../../src/replica/clients/abs.js';
import { startAzurite, type AzuriteServer } from '../servers/azurite.js';
import { countDuring } from '../helpers/ops.js';

const CONTAINER = 'lsinit-client';
const G = '00112233445566ff';
let azurite: AzuriteServer;

function client(over: { container?: string; key?: string; endpoint?: string } = {}, opts: ABSClientOptions = {}): ABSReplicaClient {
  return new ABSReplicaClient(
    makeABSSettings({ accountName: azurite.accountName, container: over.container ?? CONTAINER, path: `t/${randomBytes(4).toString('hex')}`, endpoint: over.endpoint ?? azurite.endpoint }, over.key ?? azurite.accountKey),
    { retry: { attempts: 3, baseMs: 20 }, ...opts },
  );
}


before(async () => {
  azurite = await startAzurite();
  await azurite.createContainer(CONTAINER);
});
after(async () => {
  await azurite?.stop();
});

describe('abs client against azurite', () => {
  it('a 10 MB streamed snapshot goes up in blocks and reads back byte for byte', async () => {
    const c = client();
    const data = randomBytes(10 * 1024 * 1024);
    const chunks: Buffer[] = [];
    for (let i = 0; i < data.length; i += 700_001) chunks.push(data.subarray(i, i + 700_001));
    const ops = await countDuring('abs', async () => {
      assert.equal((await c.writeSnapshot(G, 1, Readable.from(chunks))).size, data.length);
    });
    // Put Block × 3 (4 + 4 + 2 MiB) + Put Block List.
    assert.equal(ops.PUT.n, Math.ceil(data.length / ABS_BLOCK_SIZE) + 1);
    assert.equal(ops.PUT.bytes, data.length);
    const [snap] = await c.snapshots(G);
    assert.equal(snap!.size, data.length);
    assert.ok((await buffer(await c.snapshotReader(G, 1))).equals(data));
  });

  it('a body stream that fails mid-upload rejects with its own error and leaves no blob (blocks never committed)', async () => {
    const c = client();
    const boom = new Error('snapshot source broke');
    async function* source() {
      for (let i = 0; i < 6; i++) yield randomBytes(1024 * 1024);
      throw boom;
    }
    await assert.rejects(c.writeSnapshot(G, 2, Readable.from(source())), (err) => err === boom);
    assert.deepEqual(await c.snapshots(G), []);
    await assert.rejects(c.snapshotReader(G, 2), { code: 'LSINIT_ERR_NOT_FOUND' });
  });

  it('a wrong account key is LSINIT_ERR_AUTH, not retried, and the key is in no message', async () => {
    const wrong = Buffer.alloc(64, 42).toString('base64');
    const c = client({ key: wrong }, { retry: { attempts: 5, baseMs: 1 } });
    for (const op of [() => c.generations(), () => c.writeSnapshot(G, 0, Buffer.from('x')), () => c.snapshotReader(G, 0), () => c.deleteSnapshot(G, 0)]) {
      await assert.rejects(op(), (err: Error & { code: string; transient: boolean }) => {
        assert.equal(err.code, 'LSINIT_ERR_AUTH');
        assert.equal(err.transient, false);
        assert.match(err.message, /devstoreaccount1/);
        const all = `${err.message}\n${inspect(err, { depth: 10 })}`;
        assert.ok(!all.includes(wrong) && !all.includes(azurite.accountKey), err.message);
        return true;
      });
    }
    const ops = await countDuring('abs', () => assert.rejects(c.generations(), { code: 'LSINIT_ERR_AUTH' }));
    assert.equal(ops.LIST.n, 1);
    assert.ok(!inspect(c, { depth: 10 }).includes(wrong));
  });

  it('a missing container is a permanent LSINIT_ERR_REPLICA naming it', async () => {
    const c = client({ container: 'no-such-container' });
    await assert.rejects(c.writeWALSegment({ generation: G, index: 0, offset: 0 }, Buffer.from('x')), (err: { code: string; transient: boolean; message: string }) => {
      assert.equal(err.code, 'LSINIT_ERR_REPLICA');
      assert.equal(err.transient, false);
      assert.match(err.message, /no-such-container/);
      return true;
    });
  });

  it('a store that accepts connections but never answers fails the request as transient, within the timeout', async () => {
    const sockets: Socket[] = [];
    const hung = createServer((sock) => sockets.push(sock)).listen(0, '127.0.0.1');
    await once(hung, 'listening');
    const port = (hung.address() as { port: number }).port;
    const c = client({ endpoint: `http://127.0.0.1:${port}/devstoreaccount1` }, { retry: { attempts: 2, baseMs: 10 }, requestTimeoutMs: 300 });
    try {
      const t0 = Date.now();
      await assert.rejects(c.writeWALSegment({ generation: G, index: 0, offset: 0 }, Buffer.from('x')), { code: 'LSINIT_ERR_REPLICA', transient: true });
      await assert.rejects(c.walSegments(G), { code: 'LSINIT_ERR_REPLICA', transient: true });
      assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    } finally {
      for (const sock of sockets) sock.destroy();
      hung.close();
    }
  });

  it('survives an outage: transient bounded failure while down, writes work after restart', async () => {
    let decisions = 0;
    const c = client({}, { retry: { attempts: 4, baseMs: 50, maxMs: 200, isTransient: (e) => (decisions++, absTransient(e)) } });
    const pos = (offset: number) => ({ generation: G, index: 1, offset });
    await c.writeWALSegment(pos(0), Buffer.from('before'));
    await azurite.stop();
    const t0 = Date.now();
    await assert.rejects(c.writeWALSegment(pos(6), Buffer.from('during')), (err: Error & { code: string; transient: boolean }) => {
      assert.equal(err.code, 'LSINIT_ERR_REPLICA');
      assert.equal(err.transient, true);
      assert.ok(!err.message.includes(azurite.accountKey));
      return true;
    });
    assert.equal(decisions, 3);
    assert.ok(Date.now() - t0 < 5000);
    await azurite.restart();
    await azurite.createContainer(CONTAINER); // in-memory: the restarted server is empty
    await c.writeWALSegment(pos(6), Buffer.from('after'));
    assert.deepEqual((await c.walSegments(G)).map((s) => s.offset), [6]);
  });
});
