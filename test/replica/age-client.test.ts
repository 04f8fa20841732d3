/**
 * The age decorator around a replica client: objects are stored as age files for the recipients
 * and read back decrypted, on the file backend and on S3 (moto, multipart included); a stream is
 * encrypted and decrypted as it flows; every way an object can fail to open is a distinct code.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, describe, it } from 'node:test';
import { Decrypter, Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';
import { parseAge, type AgeKeys } from '../../src/config/age.js';
import { snapshotPath, walSegmentPath } from '../../src/format/paths.js';
import { AgeClient } from '../../src/replica/age.js';
import type { Pos, ReplicaClient } from '../../src/replica/client.js';
import { FileReplicaClient } from '../../src/replica/clients/file.js';
import { S3_PART_SIZE, S3ReplicaClient } from '../../src/replica/clients/s3.js';
import { startMoto, type MotoServer } from '../servers/moto.js';

const G = '0123456789abcdef';
const AGE_HEADER = 'age-encryption.org/v1\n-> X25519 ';

let id: string, rc: string, otherId: string;
let work: string;
const keys = (identities: string[], recipients: string[]): AgeKeys => parseAge({ identities, recipients }, 'dbs[0].replicas[0].age', [])!;

before(async () => {
  id = await generateX25519Identity();
  rc = await identityToRecipient(id);
  otherId = await generateX25519Identity();
  work = mkdtempSync(join(tmpdir(), 'lsinit-age-client-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

function fileReplica(name: string) {
  const root = join(work, name);
  return { root, plain: new FileReplicaClient({ path: root }) };
}

/** Pseudo-random bytes produced lazily, counting what was produced. */
function source(total: number, chunk = 1 << 20) {
  const state = { produced: 0 };
  const stream = Readable.from((function* () {
    for (let off = 0; off < total; off += chunk) {
      const n = Math.min(chunk, total - off);
      state.produced += n;
      yield Buffer.alloc(n, off / chunk);
    }
  })());
  return { stream, state };
}

async function decryptWithLibrary(bytes: Uint8Array, identity: string): Promise<Buffer> {
  const d = new Decrypter();
  d.addIdentity(identity);
  return Buffer.from(await d.decrypt(bytes));
}

describe('age client: file backend', () => {
  it('stores buffers and streams as age files for the recipients, and reads them back decrypted', async () => {
    const { root, plain } = fileReplica('roundtrip');
    const c = new AgeClient(plain, keys([id], [rc]));
    const snap = randomBytes(200_000);
    const seg = randomBytes(5000);
    await c.writeSnapshot(G, 1, snap);
    await c.writeWALSegment({ generation: G, index: 1, offset: 0 }, Readable.from([seg, seg]));
    for (const p of [snapshotPath(root, G, 1), walSegmentPath(root, G, 1, 0)]) {
      assert.equal(readFileSync(p).subarray(0, AGE_HEADER.length).toString('latin1'), AGE_HEADER, p);
    }
    // The stored object is a standard age file: the library alone opens it.
    assert.deepEqual(await decryptWithLibrary(readFileSync(snapshotPath(root, G, 1)), id), snap);
    assert.deepEqual(await buffer(await c.snapshotReader(G, 1)), snap);
    assert.deepEqual(await buffer(await c.walSegmentReader({ generation: G, index: 1, offset: 0 })), Buffer.concat([seg, seg]));
    // Listings pass through with the stored (encrypted) sizes, as Litestream shows them.
    const [s] = await c.snapshots(G);
    assert.equal(s!.size, readFileSync(snapshotPath(root, G, 1)).length);
    assert.ok(s!.size > snap.length);
    // Each object has its own file key: the same plaintext twice gives different ciphertexts.
    await c.writeSnapshot(G, 2, snap);
    assert.notDeepEqual(readFileSync(snapshotPath(root, G, 1)), readFileSync(snapshotPath(root, G, 2)));
  });

  it('an empty object round-trips', async () => {
    const { plain } = fileReplica('empty');
    const c = new AgeClient(plain, keys([id], [rc]));
    await c.writeWALSegment({ generation: G, index: 0, offset: 0 }, Buffer.alloc(0));
    assert.equal((await buffer(await c.walSegmentReader({ generation: G, index: 0, offset: 0 }))).length, 0);
  });

  it('encrypts a stream as it flows: the source is never far ahead of the store', async () => {
    const { stream, state } = source(24 << 20, 256 << 10);
    let maxAhead = 0;
    let stored = 0;
    // A store that counts what reaches it and notes how far the source ran ahead.
    const sink = { type: 'test', writeSnapshot: async (_g: string, _i: number, body: Readable) => {
      for await (const ch of body) {
        stored += (ch as Buffer).length;
        maxAhead = Math.max(maxAhead, state.produced - stored);
      }
      return { generation: G, index: 0, size: stored, createdAt: 0n };
    } } as unknown as ReplicaClient;
    await new AgeClient(sink, keys([id], [rc])).writeSnapshot(G, 0, stream);
    assert.ok(stored > 24 << 20);
    assert.ok(maxAhead < 2 << 20, `source ran ${maxAhead} bytes ahead of the store`);
  });

  it('decrypts a stream as it is read: the store is never read far ahead of the consumer', async () => {
    const e = new Encrypter();
    e.addRecipient(rc);
    const plainBytes = Buffer.alloc(24 << 20, 7);
    const cipher = Buffer.from(await e.encrypt(plainBytes));
    const state = { produced: 0 };
    const store = { type: 'test', walSegmentReader: async () => Readable.from((function* () {
      for (let off = 0; off < cipher.length; off += 64 << 10) {
        const ch = cipher.subarray(off, off + (64 << 10));
        state.produced += ch.length;
        yield ch;
      }
    })()) } as unknown as ReplicaClient;
    const r = await new AgeClient(store, keys([id], [rc])).walSegmentReader({ generation: G, index: 0, offset: 0 });
    let consumed = 0;
    let maxAhead = 0;
    for await (const ch of r) {
      consumed += (ch as Buffer).length;
      maxAhead = Math.max(maxAhead, state.produced - consumed);
    }
    assert.equal(consumed, plainBytes.length);
    assert.ok(maxAhead < 1 << 20, `store read ${maxAhead} bytes ahead of the consumer`);
  });

  it('each way an object can fail to open has its own code', async () => {
    const { root, plain } = fileReplica('errors');
    const c = new AgeClient(plain, keys([id], [rc]));
    const at = (offset: number): Pos => ({ generation: G, index: 0, offset });
    const read = async (p: Pos, client: ReplicaClient = c) => buffer(await client.walSegmentReader(p));
    const payload = randomBytes(300_000);
    await c.writeWALSegment(at(0), payload);
    const good = readFileSync(walSegmentPath(root, G, 0, 0));
    const put = (offset: number, bytes: Uint8Array) => writeFileSync(walSegmentPath(root, G, 0, offset), bytes);
    const headerEnd = good.indexOf('\n---') + good.subarray(good.indexOf('\n---') + 1).indexOf('\n') + 2;

    // Encrypted for someone else.
    await assert.rejects(read(at(0), new AgeClient(plain, keys([otherId], []))), { code: 'LSINIT_ERR_DECRYPT', fields: { name: `generations/${G}/wal/00000000_00000000.wal.lz4` } });
    // A plain LZ4 object in a replica read with age (e.g. written before age was enabled).
    await plain.writeWALSegment(at(1), Buffer.from([0x04, 0x22, 0x4d, 0x18, 0x64, 0x70, 0xb9, 0, 0, 0, 0]));
    await assert.rejects(read(at(1)), { code: 'LSINIT_ERR_DECRYPT' });
    // Truncated (a torn upload): the last chunk's flag is missing.
    put(2, good.subarray(0, good.length - 100));
    await assert.rejects(read(at(2)), { code: 'LSINIT_ERR_CHECKSUM' });
    // A flipped payload byte.
    const flipped = Buffer.from(good);
    flipped[headerEnd + 16 + 1000]! ^= 1;
    put(3, flipped);
    await assert.rejects(read(at(3)), { code: 'LSINIT_ERR_CHECKSUM' });
    // A header whose MAC does not match.
    const mac = Buffer.from(good);
    const m = mac.indexOf('\n--- ') + 5;
    mac[m] = mac[m] === 0x41 ? 0x42 : 0x41;
    put(4, mac);
    await assert.rejects(read(at(4)), { code: 'LSINIT_ERR_CHECKSUM' });
    // Neither age nor LZ4.
    put(5, randomBytes(1000));
    await assert.rejects(read(at(5)), { code: 'LSINIT_ERR_FORMAT' });
    // The store's own errors pass unchanged.
    await assert.rejects(read(at(6)), { code: 'LSINIT_ERR_NOT_FOUND' });
    assert.deepEqual(await read(at(0)), payload);
  });

  it('a source that fails mid-stream fails the write with its own error (as the backend reports it), and no object appears', async () => {
    const { root, plain } = fileReplica('source-error');
    const c = new AgeClient(plain, keys([id], [rc]));
    const boom = new Error('disk read failed');
    const body = Readable.from((async function* () {
      yield randomBytes(300_000);
      throw boom;
    })());
    // The file backend wraps a source error with the object's path, keeping it as the cause.
    await assert.rejects(c.writeSnapshot(G, 0, body), (err: { cause?: unknown }) => err === boom || err.cause === boom);
    assert.equal(existsSync(snapshotPath(root, G, 0)), false);
  });

  it('identities alone read but refuse to write (they would write plain objects into an age replica)', async () => {
    const { plain } = fileReplica('read-only');
    await new AgeClient(plain, keys([id], [rc])).writeSnapshot(G, 0, Buffer.from('x'));
    const ro = new AgeClient(plain, keys([id], []));
    assert.deepEqual(await buffer(await ro.snapshotReader(G, 0)), Buffer.from('x'));
    await assert.rejects(ro.writeSnapshot(G, 1, Buffer.from('y')), { code: 'LSINIT_ERR_CONFIG', fields: { key: 'dbs[0].replicas[0].age.recipients' } });
  });
});

describe('age client: s3 (moto)', () => {
  let moto: MotoServer;
  let client: S3ReplicaClient;
  before(async () => {
    moto = await startMoto();
    await moto.createBucket('age');
    client = new S3ReplicaClient(moto.settings('age', 'enc'));
  });
  after(async () => {
    await client?.close();
    await moto?.stop();
  });

  it('a stream larger than a part goes out as an encrypted multipart upload and reads back', async () => {
    const c = new AgeClient(client, keys([id], [rc]));
    const total = 2 * S3_PART_SIZE + 12345;
    const { stream } = source(total);
    const info = await c.writeSnapshot(G, 5, stream);
    assert.ok(info.size > total);
    const back = await buffer(await c.snapshotReader(G, 5));
    assert.equal(back.length, total);
    for (let off = 0, k = 0; off < total; off += 1 << 20, k++) assert.equal(back[off], k & 0xff, `byte ${off}`);
    // What the store holds is an age file.
    assert.equal((await buffer(await client.snapshotReader(G, 5))).subarray(0, AGE_HEADER.length).toString('latin1'), AGE_HEADER);
  });

  it('a small WAL segment is one encrypted PUT and reads back', async () => {
    const c = new AgeClient(client, keys([id], [rc]));
    const seg = randomBytes(4152);
    await c.writeWALSegment({ generation: G, index: 0, offset: 32 }, seg);
    assert.deepEqual(await buffer(await c.walSegmentReader({ generation: G, index: 0, offset: 32 })), seg);
    assert.deepEqual(await decryptWithLibrary(await buffer(await client.walSegmentReader({ generation: G, index: 0, offset: 32 })), id), seg);
  });
});
