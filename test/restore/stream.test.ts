/**
 * Restore streams each WAL index into the database (no temporary WAL files): a segment whose
 * download breaks is retried from its start, whether it was fetched ahead or streamed in
 * its turn, and the result is still byte-identical to Litestream's (the 0.3.13 vectors).
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { decodeBuffers, encodeFrame } from '../../src/format/lz4.js';
import { setNativeLZ4 } from '../../src/format/lz4-native.js';
import { walSegmentName } from '../../src/format/paths.js';
import { replicaFromURL } from '../../src/config/load.js';
import type { Pos, ReplicaClient } from '../../src/replica/client.js';
import { createClient } from '../../src/replica/create.js';
import { executeRestore } from '../../src/restore/restore.js';
import { LsinitError } from '../../src/errors.js';
import { planForReplica } from '../../src/restore/target.js';
import { malformedFrame } from '../helpers/lz4-frames.js';
import { loadScenario, sha256File, stageReplica } from '../helpers/vectors.js';

/** A file client whose WAL segment streams each break once, at their very end, with a reset connection. */
function breaksOnce(inner: ReplicaClient): { client: ReplicaClient; broken: () => number } {
  const seen = new Set<string>();
  let broken = 0;
  const client = Object.create(inner) as ReplicaClient;
  client.walSegmentReader = async (pos: Pos) => {
    const src = await inner.walSegmentReader(pos);
    const key = `${pos.generation}/${pos.index}/${pos.offset}`;
    if (seen.has(key)) return src;
    seen.add(key);
    broken++;
    // Every byte arrives, then the connection resets before the end of the stream: the frames
    // already applied must be applied again from the segment's start, not after themselves.
    return Readable.from((async function* () {
      for await (const c of src) yield c as Buffer;
      throw Object.assign(new Error('connection reset by the test'), { code: 'ECONNRESET' });
    })());
  };
  return { client, broken: () => broken };
}

describe('restore streams WAL indexes', () => {
  let work: string;
  let replica: string;
  const { cases } = loadScenario('basic');
  const latest = cases.find((c) => c.expect.outcome === 'ok' && !c.args.generation && !c.args.index && !c.args.timestamp && c.via === 'url')!;
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'lsinit-restore-stream-'));
    replica = stageReplica('basic', work);
  });
  after(() => {
    setNativeLZ4(true);
    rmSync(work, { recursive: true, force: true });
  });

  for (const [what, prefetchBytes] of [['streamed in their turn', 0], ['fetched ahead', 8 << 20]] as const) {
    it(`segments ${what} that break are retried from their start; the result is Litestream's bytes`, async () => {
      const { client, broken } = breaksOnce(createClient(replicaFromURL(`file://${replica}`, 'test')));
      const plan = (await planForReplica(client, {}))!;
      assert.ok(plan.indexes.length > 1, 'the vector has several WAL indexes');
      const outDir = mkdtempSync(join(work, 'out-'));
      const output = join(outDir, 'restored.db');
      const r = await executeRestore(client, plan, { output, prefetchBytes });
      assert.ok(broken() >= plan.indexes.length, `every segment stream broke once (${broken()})`);
      assert.equal(r.walIndexes, plan.indexes.length);
      assert.equal(sha256File(output), latest.expect.sha256);
      assert.deepEqual(readdirSync(outDir), ['restored.db']);
    });
  }

  // liblz4 decodes into reused buffers; lz4-napi (where liblz4 is missing) allocates per block.
  for (const native of [true, false]) {
    it(`${native ? 'liblz4' : 'lz4-napi'}: the result is Litestream's bytes`, async () => {
      setNativeLZ4(native);
      try {
        assert.equal(decodeBuffers() !== undefined, native);
        const client = createClient(replicaFromURL(`file://${replica}`, 'test'));
        const plan = (await planForReplica(client, {}))!;
        const output = join(mkdtempSync(join(work, 'out-')), 'restored.db');
        await executeRestore(client, plan, { output });
        assert.equal(sha256File(output), latest.expect.sha256);
      } finally {
        setNativeLZ4(true);
      }
    });
  }

  // A file replica's snapshot is read straight into the decoder's buffers (snapshotSource);
  // other clients, and an age-wrapped one, stream it.
  for (const native of [true, false]) {
    for (const via of ['source', 'stream'] as const) {
      it(`${native ? 'liblz4' : 'lz4-napi'}: the snapshot read ${via === 'source' ? 'into the decoder\'s buffers' : 'as a stream'} gives Litestream's bytes`, async () => {
        const inner = createClient(replicaFromURL(`file://${replica}`, 'test'));
        const client = Object.create(inner) as ReplicaClient;
        const used = { source: 0, stream: 0 };
        client.snapshotSource = via === 'source'
          ? async (g, i, onBytes) => { used.source++; return inner.snapshotSource!(g, i, onBytes); }
          : async () => undefined;
        client.snapshotReader = async (g, i) => { used.stream++; return inner.snapshotReader(g, i); };
        setNativeLZ4(native);
        try {
          const plan = (await planForReplica(client, {}))!;
          const output = join(mkdtempSync(join(work, 'out-')), 'restored.db');
          const seen: number[] = [];
          await executeRestore(client, plan, { output, onProgress: (p) => seen.push(p.downloaded) });
          assert.equal(sha256File(output), latest.expect.sha256);
          assert.deepEqual(used, via === 'source' ? { source: 1, stream: 0 } : { source: 0, stream: 1 });
          assert.equal(seen.at(-1), plan.snapshot.size + plan.indexes.reduce((a, x) => a + x.segments.reduce((b, g) => b + g.size, 0), 0), 'every stored byte counted');
        } finally {
          setNativeLZ4(true);
        }
      });
    }
  }

  it('a snapshot with a malformed LZ4 block, read into the decoder\'s buffers, fails the restore; nothing is left', async () => {
    const bad = join(mkdtempSync(join(work, 'bad-')), 'replica');
    cpSync(replica, bad, { recursive: true });
    const client = createClient(replicaFromURL(`file://${bad}`, 'test'));
    const plan = (await planForReplica(client, {}))!;
    const snap = join(bad, 'generations', plan.generation, 'snapshots', `${plan.snapshot.index.toString(16).padStart(8, '0')}.snapshot.lz4`);
    writeFileSync(snap, await malformedFrame());
    const outDir = mkdtempSync(join(work, 'out-'));
    await assert.rejects(executeRestore(client, { ...plan, snapshot: { ...plan.snapshot, size: readFileSync(snap).length } }, { output: join(outDir, 'restored.db') }), (err) => err instanceof LsinitError && err.code === 'LSINIT_ERR_FORMAT' && err.message.includes('snapshot') && /corrupt compressed block/.test(err.message));
    assert.deepEqual(readdirSync(outDir), [], 'no output and no temp or sidecar file');
  });

  for (const [what, prefetchBytes] of [['streamed in its turn', 0], ['fetched ahead', 8 << 20]] as const) {
    for (const native of [true, false]) {
      it(`a WAL segment with a malformed LZ4 block (${what}, ${native ? 'liblz4' : 'lz4-napi'}) fails the restore; nothing is left`, async () => {
        const bad = join(mkdtempSync(join(work, 'bad-')), 'replica');
        cpSync(replica, bad, { recursive: true });
        const client = createClient(replicaFromURL(`file://${bad}`, 'test'));
        const plan = (await planForReplica(client, {}))!;
        const last = plan.indexes.at(-1)!;
        const seg = last.segments.at(-1)!;
        const name = walSegmentName(last.index, seg.offset);
        writeFileSync(join(bad, 'generations', plan.generation, 'wal', name), await malformedFrame());
        const outDir = mkdtempSync(join(work, 'out-'));
        setNativeLZ4(native);
        try {
          await assert.rejects(executeRestore(client, plan, { output: join(outDir, 'restored.db'), prefetchBytes }), (err) => err instanceof LsinitError && err.code === 'LSINIT_ERR_FORMAT' && err.message.includes(name) && /corrupt compressed block/.test(err.message));
        } finally {
          setNativeLZ4(true);
        }
        assert.deepEqual(readdirSync(outDir), [], 'no output and no temp or sidecar file');
      });
    }
  }
});

describe('restore checks the result before renaming it', () => {
  let work: string;
  before(() => (work = mkdtempSync(join(tmpdir(), 'lsinit-restore-check-'))));
  after(() => rmSync(work, { recursive: true, force: true }));

  it('a database that fails PRAGMA integrity_check is refused before the rename; nothing is left at the output', async () => {
    // A table and its index, then one byte of a row changed in the table's page only: every LZ4
    // and page checksum holds, but the index no longer matches the table.
    const src = join(work, 'src.db');
    const db = new Database(src);
    db.exec("CREATE TABLE t (a TEXT); CREATE INDEX t_a ON t (a); INSERT INTO t VALUES ('row-one-QQQQ'), ('row-two-RRRR');");
    db.close();
    const bytes = readFileSync(src);
    const pageSize = bytes.readUInt16BE(16);
    const at = bytes.indexOf('row-one-QQQQ', pageSize); // page 2: the table's root (the index is page 3)
    assert.ok(at > pageSize && at < 2 * pageSize, 'the row is on the table page');
    bytes[at + 8] = 'Z'.charCodeAt(0);
    const gen = '0123456789abcdef';
    mkdirSync(join(work, 'replica/generations', gen, 'snapshots'), { recursive: true });
    writeFileSync(join(work, 'replica/generations', gen, 'snapshots/00000000.snapshot.lz4'), await encodeFrame(bytes));
    const client = createClient(replicaFromURL(`file://${join(work, 'replica')}`, 'test'));
    const plan = (await planForReplica(client, {}))!;
    const outDir = mkdtempSync(join(work, 'out-'));
    const output = join(outDir, 'restored.db');
    await assert.rejects(executeRestore(client, plan, { output }), (err) => err instanceof LsinitError && err.code === 'LSINIT_ERR_INTEGRITY' && /integrity_check/.test(err.message));
    assert.deepEqual(readdirSync(outDir), [], 'no output and no temp or sidecar file');
    // The same bytes restore when the check is off (the refusal came from the check alone).
    const r = await executeRestore(client, plan, { output, integrityCheck: false });
    assert.equal(r.walIndexes, 0);
    assert.deepEqual(readFileSync(output), bytes);
  });
});
