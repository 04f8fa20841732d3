/**
 * One conformance suite for every ReplicaClient, run unchanged against each backend's real server.
 * Usage in a backend's test file:
 *   runConformance('s3', async () => ({ client, cleanup }));
 * `make` is called once per test and must return a client on an empty, unique prefix.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import type { ReplicaClient } from '../../src/replica/client.js';
import { countDuring } from '../helpers/ops.js';

export interface ConformanceTarget {
  client: ReplicaClient;
  cleanup?: () => Promise<void>;
}

export interface ConformanceOptions {
  manyObjects?: number;
  /**
   * Check the storage requests the client reports (metrics): one per small write, listing page, read,
   * and `deletes` requests for deleting two objects (1 for a batch delete, 2 for one per object).
   */
  requests?: { replicaType: string; deletes: number };
}

const G1 = '0123456789abcdef';
const G2 = 'fedcba9876543210';

async function withClient(make: () => Promise<ConformanceTarget>, fn: (c: ReplicaClient) => Promise<void>) {
  const t = await make();
  try {
    await fn(t.client);
  } finally {
    await t.client.close();
    await t.cleanup?.();
  }
}

async function pMap<T>(items: T[], n: number, fn: (t: T) => Promise<unknown>) {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

export function runConformance(name: string, make: () => Promise<ConformanceTarget>, opts: ConformanceOptions = {}) {
  const many = opts.manyObjects ?? 1100;
  describe(`replica client conformance: ${name}`, () => {
    it('an empty replica lists no generations, snapshots or segments', () =>
      withClient(make, async (c) => {
        assert.deepEqual(await c.generations(), []);
        assert.deepEqual(await c.snapshots(G1), []);
        assert.deepEqual(await c.walSegments(G1), []);
      }));

    it('writes and reads back snapshots and WAL segments byte for byte (buffer and stream bodies)', () =>
      withClient(make, async (c) => {
        const snap = Buffer.from('snapshot-bytes-\u0000\u00ff'.repeat(100));
        const seg = Buffer.from('segment-bytes');
        const info = await c.writeSnapshot(G1, 3, snap);
        assert.equal(info.index, 3);
        assert.equal(info.size, snap.length);
        await c.writeWALSegment({ generation: G1, index: 3, offset: 0 }, Readable.from([seg, seg]));
        assert.deepEqual(await buffer(await c.snapshotReader(G1, 3)), snap);
        assert.deepEqual(await buffer(await c.walSegmentReader({ generation: G1, index: 3, offset: 0 })), Buffer.concat([seg, seg]));
        const segs = await c.walSegments(G1);
        assert.equal(segs.length, 1);
        assert.equal(segs[0]!.size, seg.length * 2);
      }));

    it('lists generations sorted, and snapshots by index and segments by (index, offset)', () =>
      withClient(make, async (c) => {
        await c.writeSnapshot(G2, 0, Buffer.from('b'));
        await c.writeSnapshot(G1, 0x10, Buffer.from('a'));
        await c.writeSnapshot(G1, 2, Buffer.from('a'));
        for (const [index, offset] of [[2, 0x2050], [1, 0], [2, 0], [0x10, 0], [1, 0x1038]] as const) {
          await c.writeWALSegment({ generation: G1, index, offset }, Buffer.from(`${index}/${offset}`));
        }
        assert.deepEqual(await c.generations(), [G1, G2]);
        assert.deepEqual((await c.snapshots(G1)).map((s) => s.index), [2, 0x10]);
        assert.deepEqual((await c.walSegments(G1)).map((s) => [s.index, s.offset]), [[1, 0], [1, 0x1038], [2, 0], [2, 0x2050], [0x10, 0]]);
        assert.deepEqual((await c.walSegments(G2)), []);
      }));

    it('overwriting an object replaces it', () =>
      withClient(make, async (c) => {
        await c.writeSnapshot(G1, 1, Buffer.from('first'));
        await c.writeSnapshot(G1, 1, Buffer.from('second!'));
        assert.deepEqual(await buffer(await c.snapshotReader(G1, 1)), Buffer.from('second!'));
        assert.equal((await c.snapshots(G1)).length, 1);
      }));

    it('missing objects are LSINIT_ERR_NOT_FOUND', () =>
      withClient(make, async (c) => {
        await assert.rejects(async () => buffer(await c.snapshotReader(G1, 7)), { code: 'LSINIT_ERR_NOT_FOUND' });
        await assert.rejects(async () => buffer(await c.walSegmentReader({ generation: G1, index: 7, offset: 0 })), { code: 'LSINIT_ERR_NOT_FOUND' });
      }));

    it('deletes snapshots, segments and whole generations; deleting a missing object is not an error', () =>
      withClient(make, async (c) => {
        await c.writeSnapshot(G1, 1, Buffer.from('x'));
        await c.writeSnapshot(G1, 2, Buffer.from('x'));
        await c.writeWALSegment({ generation: G1, index: 1, offset: 0 }, Buffer.from('w'));
        await c.writeWALSegment({ generation: G1, index: 1, offset: 64 }, Buffer.from('w'));
        await c.writeWALSegment({ generation: G1, index: 2, offset: 0 }, Buffer.from('w'));
        await c.writeSnapshot(G2, 0, Buffer.from('y'));
        await c.deleteSnapshot(G1, 1);
        await c.deleteSnapshot(G1, 99);
        assert.deepEqual((await c.snapshots(G1)).map((s) => s.index), [2]);
        await c.deleteWALSegments([{ generation: G1, index: 1, offset: 0 }, { generation: G1, index: 1, offset: 64 }, { generation: G1, index: 9, offset: 0 }]);
        assert.deepEqual((await c.walSegments(G1)).map((s) => [s.index, s.offset]), [[2, 0]]);
        await c.deleteGeneration(G1);
        assert.deepEqual(await c.generations(), [G2]);
        assert.deepEqual(await c.snapshots(G1), []);
        assert.deepEqual(await c.walSegments(G1), []);
      }));

    it('object timestamps come from the store and bracket the write', () =>
      withClient(make, async (c) => {
        // Stores with 1 s resolution (S3 LastModified) may round down: allow 1 s of slack before.
        const before = BigInt(Date.now() - 1000) * 1_000_000n;
        await c.writeSnapshot(G1, 0, Buffer.from('t'));
        await c.writeWALSegment({ generation: G1, index: 0, offset: 0 }, Buffer.from('t'));
        const after = BigInt(Date.now() + 1000) * 1_000_000n;
        const [s] = await c.snapshots(G1);
        const [w] = await c.walSegments(G1);
        for (const t of [s!.createdAt, w!.createdAt]) {
          assert.ok(t >= before && t <= after, `timestamp ${t} outside [${before}, ${after}]`);
        }
      }));

    it('lists objects beneath a folder at any depth, sorted by key, and reads them back (other layouts: Litestream 0.5 ltx/)', () =>
      withClient(make, async (c) => {
        assert.deepEqual(await c.listObjects('ltx'), []);
        const objs: [string, string][] = [
          ['ltx/9/0000000000000001-0000000000000003.ltx', 'snap'],
          ['ltx/0/0000000000000002-0000000000000002.ltx', 'two'],
          ['ltx/0/0000000000000001-0000000000000001.ltx', 'one'],
          ['ltxother/0/x.ltx', 'not beneath ltx/'],
        ];
        for (const [k, v] of objs) {
          const info = await c.writeObject(k, k.startsWith('ltx/9') ? Readable.from([Buffer.from(v)]) : Buffer.from(v));
          assert.equal(info.key, k);
          assert.equal(info.size, v.length);
        }
        await c.writeSnapshot(G1, 1, Buffer.from('0.3 layout beside it'));
        const listed = await c.listObjects('ltx');
        assert.deepEqual(listed.map((o) => [o.key, o.size]), [
          ['ltx/0/0000000000000001-0000000000000001.ltx', 3],
          ['ltx/0/0000000000000002-0000000000000002.ltx', 3],
          ['ltx/9/0000000000000001-0000000000000003.ltx', 4],
        ]);
        assert.deepEqual((await c.listObjects('ltx/0')).map((o) => o.key), listed.slice(0, 2).map((o) => o.key));
        assert.deepEqual(await buffer(await c.objectReader('ltx/9/0000000000000001-0000000000000003.ltx')), Buffer.from('snap'));
        await assert.rejects(async () => buffer(await c.objectReader('ltx/1/0000000000000001-0000000000000002.ltx')), { code: 'LSINIT_ERR_NOT_FOUND' });
        for (const bad of ['../escape', '/abs', 'ltx//x', 'ltx/./x', '']) {
          await assert.rejects(async () => c.objectReader(bad), { code: 'LSINIT_ERR_FORMAT' }, bad);
        }
      }));

    const req = opts.requests;
    if (req) {
      it(`counts one request per small write, listing, read, and ${req.deletes} to delete two objects, with bytes`, () =>
        withClient(make, async (c) => {
          const body = Buffer.from('x'.repeat(1234));
          const ops = await countDuring(req.replicaType, async () => {
            await c.writeWALSegment({ generation: G1, index: 0, offset: 0 }, body);
            await c.writeWALSegment({ generation: G1, index: 0, offset: 1234 }, Readable.from([body]));
            await c.walSegments(G1);
            await buffer(await c.walSegmentReader({ generation: G1, index: 0, offset: 0 }));
            await c.deleteWALSegments([{ generation: G1, index: 0, offset: 0 }, { generation: G1, index: 0, offset: 1234 }]);
          });
          assert.deepEqual(ops, { PUT: { n: 2, bytes: 2468 }, LIST: { n: 1, bytes: 0 }, GET: { n: 1, bytes: 1234 }, DELETE: { n: req.deletes, bytes: 0 } });
        }));
    }

    it(`lists more than one page (${many} segments) completely and in order`, { timeout: 300_000 }, () =>
      withClient(make, async (c) => {
        const positions = Array.from({ length: many }, (_, i) => ({ generation: G1, index: Math.floor(i / 100), offset: (i % 100) * 4152 }));
        await pMap(positions, 16, (p) => c.writeWALSegment(p, Buffer.from('s')));
        const listed = await c.walSegments(G1);
        assert.equal(listed.length, many);
        assert.deepEqual(listed.map((s) => [s.index, s.offset]), positions.map((p) => [p.index, p.offset]));
        await c.deleteGeneration(G1);
        assert.deepEqual(await c.walSegments(G1), []);
      }));
  });
}
