/**
 * Issue 12, "What must hold" 6: a follower pointed at a replica with no generations, at a damaged
 * segment, or at a database file that is not its own stops with a clear error naming it, and
 * nothing is overwritten.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { decodeAll, encodeFrame } from '../../src/format/lz4.js';
import { walSegmentName } from '../../src/format/paths.js';
import { readState } from '../../src/follow/state.js';
import { lsinit } from '../helpers/cli.js';
import { fileConfig, startReplicate, workdir } from '../helpers/replicate.js';
import { bank, followerSeq, rows, startFollower, waitFor } from './helpers.js';

const w = workdir('follow-bad');
let replica: string;

before(async () => {
  const c = fileConfig(w.dir, { sync: '100ms' });
  replica = c.replica;
  await bank(c.db, ['--tx', '1']);
  const p = await startReplicate(c.cfg);
  await bank(c.db, ['--tx', '30']);
  await waitFor(() => existsSync(join(replica, 'generations')), 30_000, 'the first upload');
  await new Promise((r) => setTimeout(r, 1000));
  p.child.kill('SIGTERM');
  await p.child;
});
after(() => w.cleanup());

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

test('a replica with no generations: exit 1 naming the replica, no file created', async () => {
  const empty = join(w.dir, 'empty-replica');
  mkdirSync(empty);
  const out = join(w.dir, 'never.db');
  const r = await lsinit(['restore', '-f', '-o', out, `file://${empty}`]);
  assert.equal(r.exitCode, 1, r.stderr);
  assert.match(r.stderr, /has no generations to follow/);
  assert.ok(r.stderr.includes(empty), r.stderr);
  assert.equal(existsSync(out), false);
  assert.deepEqual(readdirSync(w.dir).filter((n) => n.startsWith('.never.db')), [], 'no temp or state file left');
});

test('an existing database that is not a follower copy is refused and left byte for byte', async () => {
  const other = join(w.dir, 'mine.db');
  const d = new Database(other);
  d.exec('CREATE TABLE t (x); INSERT INTO t VALUES (42)');
  d.close();
  const before = sha(other);
  const r = await lsinit(['restore', '-f', '-o', other, `file://${replica}`]);
  assert.equal(r.exitCode, 1, r.stderr);
  assert.match(r.stderr, /already exists and is not a follower copy/);
  assert.ok(r.stderr.includes(other));
  assert.equal(sha(other), before);
});

test('a follower copy changed by another writer is refused on resume, unchanged', async () => {
  const copy = join(w.dir, 'changed.db');
  const f = startFollower(['-follow-interval', '50ms', '-o', copy, `file://${replica}`]);
  await waitFor(() => followerSeq(copy) >= 31, 60_000, `restore: ${f.output()}`);
  f.child.kill('SIGTERM');
  await f.child;
  const d = new Database(copy);
  d.exec("UPDATE meta SET seq = seq + 1000 WHERE k = 'seq'"); // someone writes to the read copy
  d.close();
  const before = sha(copy);
  const r = await lsinit(['restore', '-f', '-o', copy, `file://${replica}`]);
  assert.equal(r.exitCode, 1, r.stderr);
  assert.match(r.stderr, /does not match its follower state/);
  assert.ok(r.stderr.includes(copy));
  assert.equal(sha(copy), before);
});

test('a damaged next segment stops the follower naming the object; the copy keeps its last state', async () => {
  const copy = join(w.dir, 'damaged.db');
  const f = startFollower(['-follow-interval', '50ms', '-o', copy, `file://${replica}`]);
  await waitFor(() => followerSeq(copy) >= 31, 60_000, `restore: ${f.output()}`);
  const st = readState(copy)!;
  const { generation, index, offset } = st.cursor.pos;
  // The next segment in sequence: real frames of this index with one byte of a page flipped.
  const walDir = join(replica, 'generations', generation, 'wal');
  const first = await decodeAll(readFileSync(join(walDir, walSegmentName(index, 0))));
  const frames = Buffer.from(first.subarray(32, 32 + 24 + 4096));
  frames[24 + 100] = frames[24 + 100]! ^ 0xff;
  const name = walSegmentName(index, offset);
  writeFileSync(join(walDir, name), await encodeFrame(frames));
  const seq = followerSeq(copy);
  const before = rows(copy);
  const res = await f.child;
  assert.equal(res.exitCode, 1, f.output());
  assert.ok(f.output().includes(`generations/${generation}/wal/${name}`), f.output().slice(-1500));
  assert.match(f.output(), /checksum mismatch|salt mismatch/);
  assert.equal(followerSeq(copy), seq);
  assert.deepEqual(rows(copy), before);
  assert.equal(existsSync(`${copy}-journal`), false);
});

test('-f refuses restore-point flags', async () => {
  const r = await lsinit(['restore', '-f', '-timestamp', '2024-01-01T00:00:00Z', '-o', join(w.dir, 'x.db'), `file://${replica}`]);
  assert.equal(r.exitCode, 2, r.stderr);
  assert.match(r.stderr, /-f follows the newest state and cannot be combined with -timestamp/);
  const r2 = await lsinit(['restore', '-follow-interval', '1s', '-o', join(w.dir, 'x.db'), `file://${replica}`]);
  assert.equal(r2.exitCode, 2, r2.stderr);
});
