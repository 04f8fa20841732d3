import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LsinitError } from '../../src/errors.js';
import { FileReplicaClient } from '../../src/replica/clients/file.js';
import { runConformance } from './suite.js';

runConformance('file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lsinit-conf-file-'));
  return { client: new FileReplicaClient({ path: join(dir, 'replica') }), cleanup: () => rm(dir, { recursive: true, force: true }) };
}, { requests: { replicaType: 'file', deletes: 2 } });

describe('file client: reads sized to the object', () => {
  const MiB = 1 << 20;
  it('an object up to 4 MiB is one chunk of exactly its bytes; a larger one comes in chunks of at most 1 MiB; an empty one is empty; a snapshot reads as a source', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lsinit-file-read-'));
    try {
      const c = new FileReplicaClient({ path: dir });
      const cases: [number, (chunks: Buffer[]) => void][] = [
        [0, (ch) => assert.equal(ch.length, 0)],
        [1, (ch) => assert.deepEqual(ch.map((b) => b.length), [1])],
        [688_021, (ch) => assert.deepEqual(ch.map((b) => b.length), [688_021])], // a bench WAL segment
        [2 * MiB + 3, (ch) => assert.deepEqual(ch.map((b) => b.length), [2 * MiB + 3])], // was two 1 MiB reads + one
        [4 * MiB, (ch) => assert.deepEqual(ch.map((b) => b.length), [4 * MiB])],
        [4 * MiB + 1, (ch) => assert.deepEqual(ch.map((b) => b.length), [MiB, MiB, MiB, MiB, 1])],
      ];
      for (const [size, shape] of cases) {
        const data = randomBytes(size);
        const key = `objs/${size}.bin`;
        await c.writeObject(key, data);
        const chunks: Buffer[] = [];
        for await (const ch of await c.objectReader(key)) chunks.push(ch as Buffer);
        shape(chunks);
        // A chunk owns no more memory than it holds (no 1 MiB read buffer behind a small object).
        for (const ch of chunks) assert.ok(ch.buffer.byteLength <= Math.max(ch.length, 8192), `${size}: chunk of ${ch.length} B backed by ${ch.buffer.byteLength} B`);
        assert.ok(Buffer.concat(chunks).equals(data), `${size}: bytes read back differ`);
      }
      // The snapshot as a source for the decoder: its bytes at their offsets; a missing one is not found.
      const snap = randomBytes(100_000);
      await c.writeSnapshot('0123456789abcdef', 3, snap);
      const src = await c.snapshotSource('0123456789abcdef', 3, () => {});
      const got = Buffer.concat([(await src.read(40_000))!, (await src.read(60_000, Buffer.alloc(60_000)))!]);
      assert.ok(got.equals(snap));
      assert.equal(await src.eof(), true);
      await src.close();
      await assert.rejects(c.snapshotSource('0123456789abcdef', 4, () => {}), (e) => e instanceof LsinitError && e.code === 'LSINIT_ERR_NOT_FOUND');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
