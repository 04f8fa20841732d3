/**
 * A snapshot is the database at one exact WAL position, whatever checkpoints write into the
 * database file while it is read. The app's own checkpoint (autocheckpoint, or the last
 * connection's close) may back-fill frames up to lsinit's read mark into the file at any moment,
 * also while a snapshot streams it; a copy of the file is then old in its first part and new in
 * the rest. Replaying the snapshot's WAL index from offset 0 repairs that, but a restore may
 * apply none of it: `-timestamp` between a new generation's snapshot and its first WAL segment
 * (torture seed 123014, `sigterm-lsinit`: lsinit restarts, the WAL was reset meanwhile, a new
 * generation begins while the app writes and checkpoints). Such a restore must still be a
 * consistent database, the state at the snapshot's position.
 *
 * The app's checkpoint runs at a chosen moment of the snapshot upload (a client wrapper), which
 * only makes certain a race the scheduler opens now and then for real.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { parseConfig } from '../../src/config/file.js';
import { nullLogger } from '../../src/log/logger.js';
import type { Body, ReplicaClient, SnapshotInfo, TimeNs } from '../../src/replica/client.js';
import { FileReplicaClient } from '../../src/replica/clients/file.js';
import { Replica } from '../../src/replica/replica.js';
import { restore } from '../../src/restore/index.js';
import { DB } from '../../src/sqlite/db.js';
import { WRITER, createDB, integrity, logIds, sleep } from '../helpers/replicate.js';

const ROWS = 6000;
const KEEP = 4000;

/** A file client whose snapshot upload calls `hook` once, after the first block of the database went through. */
function hookedClient(root: string): { client: ReplicaClient; inner: FileReplicaClient; duringNextSnapshot: (fn: () => void) => void } {
  const inner = new FileReplicaClient({ path: root });
  let hook: (() => void) | undefined;
  const client = Object.create(inner) as FileReplicaClient;
  client.writeSnapshot = async (gen: string, index: number, body: Body): Promise<SnapshotInfo> => {
    const h = hook;
    hook = undefined;
    if (!h || !(body instanceof Readable)) return inner.writeSnapshot(gen, index, body);
    const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    // The LZ4 frame header, then the first compressed 4 MiB block: page 1 has been read by then.
    const head: Buffer[] = [];
    for (let n = 0; n < 2; n++) {
      const r = await it.next();
      if (r.done) break;
      head.push(r.value);
    }
    h();
    async function* rest(): AsyncGenerator<Buffer> {
      yield* head;
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        yield r.value;
      }
    }
    return inner.writeSnapshot(gen, index, Readable.from(rest()));
  };
  return { client, inner, duringNextSnapshot: (fn) => (hook = fn) };
}

describe('snapshot at an exact WAL position', () => {
  const parent = mkdtempSync(join(tmpdir(), 'lsinit-snap-point-'));
  after(() => rmSync(parent, { recursive: true, force: true }));

  it('a -timestamp restore of a new generation\'s snapshot alone is consistent when the app checkpointed while it was read', async () => {
    const dir = mkdtempSync(join(parent, 'newgen-'));
    const path = join(dir, 'app.db');
    const replicaDir = join(dir, 'replica');
    // A ~24 MiB database in the file (checkpointed), then transaction A in the WAL: a delete that
    // frees the pages at the end of the file and rewrites page 1 (the freelist) and the b-tree.
    const app = new Database(path);
    app.pragma('page_size = 4096');
    app.pragma('journal_mode = wal');
    app.pragma('wal_autocheckpoint = 0');
    app.exec('CREATE TABLE log (id INTEGER PRIMARY KEY, data BLOB)');
    const ins = app.prepare('INSERT INTO log (id, data) VALUES (?, ?)');
    app.transaction(() => {
      for (let i = 1; i <= ROWS; i++) ins.run(i, Buffer.alloc(3500, i % 251));
    })();
    app.pragma('wal_checkpoint(TRUNCATE)');
    app.prepare('DELETE FROM log WHERE id > ?').run(KEEP);

    const text = `dbs:\n  - path: ${path}\n    min-checkpoint-page-count: 1000000\n    replicas:\n      - type: file\n        path: ${replicaDir}\n`;
    writeFileSync(join(dir, 'lsinit.yml'), text);
    const cfg = parseConfig(Buffer.from(text), { file: join(dir, 'lsinit.yml'), expandEnv: false, env: {}, cwd: dir }).dbs[0]!;
    const db = new DB(cfg, nullLogger);
    const { client, inner, duringNextSnapshot } = hookedClient(replicaDir);
    const replica = new Replica(db.source, cfg.replicas[0]!, client, nullLogger);
    try {
      db.sync(); // read lock (its mark includes A), new generation, A copied to the shadow WAL
      // While the snapshot streams the file, the app back-fills A into it (up to our read mark).
      let ckpt: unknown;
      duringNextSnapshot(() => (ckpt = app.pragma('wal_checkpoint(PASSIVE)')));
      await replica.sync(); // new generation: snapshot first, then WAL index 0 from offset 0
      assert.ok(ckpt, 'the app checkpointed during the snapshot');
      const gen = db.generation!;
      const [snap] = await inner.snapshots(gen);
      const [seg] = await inner.walSegments(gen);
      assert.ok(snap && seg && seg.createdAt > snap.createdAt, 'the snapshot was written before the first WAL segment');

      // At the snapshot's time no WAL segment exists yet: the snapshot alone is restored.
      const out = join(dir, 'at-snapshot.db');
      const r = await restore({ output: out, replicas: [{ name: 'file', client: inner }], timestamp: snap.createdAt });
      assert.equal(r.status, 'restored');
      assert.equal(r.status === 'restored' && r.result.walIndexes, 0, 'the snapshot alone');
      assert.equal(integrity(out), 'ok');
      assert.deepEqual(logIds(out), Array.from({ length: KEEP }, (_, i) => i + 1), 'the state at the snapshot\'s position (A applied)');

      // The latest state (snapshot + index 0) is the same.
      const latest = join(dir, 'latest.db');
      await restore({ output: latest, replicas: [{ name: 'file', client: inner }] });
      assert.equal(integrity(latest), 'ok');
      assert.deepEqual(logIds(latest), logIds(out));
    } finally {
      app.close();
      db.closeConnections();
    }
  });

  it('every restore point is a consistent committed prefix: snapshots and lsinit restarts while the app writes and checkpoints', async () => {
    const dir = mkdtempSync(join(parent, 'stress-'));
    const path = join(dir, 'app.db');
    const replicaDir = join(dir, 'replica');
    createDB(path);
    const text = `dbs:\n  - path: ${path}\n    min-checkpoint-page-count: 150\n    replicas:\n      - type: file\n        path: ${replicaDir}\n`;
    writeFileSync(join(dir, 'lsinit.yml'), text);
    const cfg = parseConfig(Buffer.from(text), { file: join(dir, 'lsinit.yml'), expandEnv: false, env: {}, cwd: dir }).dbs[0]!;
    const client = new FileReplicaClient({ path: replicaDir });
    // The app: three connections, SQLite's default autocheckpoint (1000 pages), ~1.5 pages per transaction.
    const app = spawn(process.execPath, [WRITER, path, '--tx', '4000', '--conns', '3', '--blob', '5000', '--delay', '1'], { stdio: ['ignore', 'ignore', 'inherit'] });
    const exited = new Promise<number | null>((res) => app.on('exit', (code) => res(code)));
    let running = true;
    void exited.then(() => (running = false));
    try {
      // lsinit runs and is stopped and started again every ~40 syncs. While it is down a checkpoint
      // resets the WAL (two rounds in three), and a new generation starts: its first snapshot is
      // taken while the app writes and its autocheckpoint runs. In the other rounds lsinit also
      // snapshots every 7 syncs (a snapshot at the same index replaces the one before, so rounds
      // that keep their generation's first snapshot take none).
      for (let round = 0; running; round++) {
        const db = new DB(cfg, nullLogger);
        const replica = new Replica(db.source, cfg.replicas[0]!, client, nullLogger);
        try {
          for (let i = 0; i < 40 && running; i++) {
            db.sync();
            await replica.sync();
            if (round % 3 === 1 && i % 7 === 3) await replica.snapshot();
            await sleep(5);
          }
          db.sync();
          await replica.sync();
        } finally {
          db.closeConnections();
        }
        if (round % 3 !== 1) {
          const c = new Database(path, { timeout: 2000 });
          try {
            c.pragma('wal_checkpoint(TRUNCATE)');
          } catch {
            // busy: the next round tries again
          } finally {
            c.close();
          }
        }
        await sleep(20 + (round % 4) * 40);
      }
      assert.equal(await exited, 0, 'the app ran to the end');
      const gens = await client.generations();
      assert.ok(gens.length >= 2, `lsinit restarts began new generations (${gens.length})`);
      // Restore at every snapshot's time, just before the object after it, and at every 4th
      // segment's time from the generation's first snapshot on. (A snapshot at an index that
      // already has one replaces it, so segments may predate a generation's oldest snapshot.)
      const times = new Set<TimeNs>();
      let snapshots = 0;
      for (const g of gens) {
        const snaps = await client.snapshots(g);
        if (snaps.length === 0) continue;
        const from = snaps.reduce((m, x) => (x.createdAt < m ? x.createdAt : m), snaps[0]!.createdAt);
        const objs = [...snaps, ...(await client.walSegments(g))].filter((o) => o.createdAt >= from).sort((x, y) => (x.createdAt < y.createdAt ? -1 : x.createdAt > y.createdAt ? 1 : 0));
        objs.forEach((o, k) => {
          if (!('offset' in o)) {
            snapshots++;
            times.add(o.createdAt);
            const next = objs[k + 1];
            if (next && next.createdAt > o.createdAt) times.add(next.createdAt - 1n);
          } else if (k % 4 === 0) times.add(o.createdAt);
        });
      }
      assert.ok(snapshots >= 5, `snapshots were taken (${snapshots})`);
      let n = 0;
      let alone = 0;
      for (const t of times) {
        const out = join(dir, `pit-${n++}.db`);
        const r = await restore({ output: out, replicas: [{ name: 'file', client }], timestamp: t });
        assert.equal(r.status, 'restored');
        if (r.status === 'restored' && r.result.walIndexes === 0) alone++;
        assert.equal(integrity(out), 'ok', `restore at ${t}`);
        assertWriterPrefix(out, `restore at ${t}`);
        rmSync(out);
      }
      assert.ok(alone > 0, 'some restore points are a snapshot alone');
    } finally {
      app.kill('SIGKILL');
      await exited;
    }
  });
});

/** The writer app's state after its last committed transaction (test/apps/writer.mjs), nothing more, nothing less. */
function assertWriterPrefix(file: string, label: string): void {
  const ids = logIds(file);
  const last = ids.length ? ids[ids.length - 1]! : 0;
  const want: number[] = [];
  for (let id = 1; id <= last; id++) if (!(id % 10 === 5 && id + 5 <= last)) want.push(id);
  assert.deepEqual(ids, want, `${label}: log ids are the writer's state after transaction ${last}`);
  const d = new Database(file, { readonly: true });
  try {
    const total = (d.prepare('SELECT COALESCE(SUM(value), 0) AS n FROM counters').get() as { n: number }).n;
    assert.equal(total, last, `${label}: counters`);
  } finally {
    d.close();
  }
}
