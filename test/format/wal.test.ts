import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { FRAME_HEADER_SIZE, WAL_HEADER_SIZE, frameAlign, parseFrameHeader, parseWALHeader, verifyFrame, verifyFrameAt, walChecksum, type Checksum, type WALHeader } from '../../src/format/wal.js';
import { parseSnapshotName, parseWALSegmentName, snapshotPath, walSegmentPath, assertGeneration } from '../../src/format/paths.js';

describe('SQLite WAL format', () => {
  it('parses a WAL written by SQLite and verifies every frame checksum', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lsinit-wal-'));
    try {
      const p = join(dir, 'a.db');
      const db = new Database(p);
      db.pragma('journal_mode = wal');
      db.pragma('wal_autocheckpoint = 0');
      db.exec('CREATE TABLE t(x)');
      for (let i = 0; i < 20; i++) db.prepare('INSERT INTO t VALUES (?)').run('x'.repeat(i * 100));
      const wal = readFileSync(`${p}-wal`);
      const h = parseWALHeader(wal);
      assert.equal(h.pageSize, 4096);
      let sum: Checksum = [h.checksum1, h.checksum2];
      let frames = 0;
      let commits = 0;
      const fs = FRAME_HEADER_SIZE + h.pageSize;
      for (let off = WAL_HEADER_SIZE; off + fs <= wal.length; off += fs) {
        const next = verifyFrame(h, sum, wal.subarray(off, off + fs));
        assert.ok(next, `frame at ${off} should verify`);
        sum = next;
        frames++;
        if (parseFrameHeader(wal.subarray(off)).commit) commits++;
      }
      assert.equal(commits, 21);
      assert.ok(frames >= 21);
      // A flipped bit anywhere in a frame breaks the chain.
      const bad = Buffer.from(wal.subarray(WAL_HEADER_SIZE, WAL_HEADER_SIZE + fs));
      bad[100]! ^= 1;
      assert.equal(verifyFrame(h, [h.checksum1, h.checksum2], bad), undefined);
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a header with a bad magic or checksum', () => {
    assert.throws(() => parseWALHeader(Buffer.alloc(32)), { code: 'LSINIT_ERR_FORMAT' });
    const h = Buffer.alloc(32);
    h.writeUInt32BE(0x377f0682, 0);
    h.writeUInt32BE(3007000, 4);
    h.writeUInt32BE(4096, 8);
    assert.throws(() => parseWALHeader(h), { code: 'LSINIT_ERR_CHECKSUM' });
  });

  it('frameAlign matches Litestream', () => {
    assert.equal(frameAlign(0, 4096), 0);
    assert.equal(frameAlign(31, 4096), 0);
    assert.equal(frameAlign(32, 4096), 32);
    assert.equal(frameAlign(32 + 4120 * 2 + 5, 4096), 32 + 4120 * 2);
  });
});

describe('replica object names', () => {
  it('builds and parses Litestream 0.3 names', () => {
    assert.equal(snapshotPath('/r', '0123456789abcdef', 0x1a), '/r/generations/0123456789abcdef/snapshots/0000001a.snapshot.lz4');
    assert.equal(walSegmentPath('p', '0123456789abcdef', 1, 0x1038), 'p/generations/0123456789abcdef/wal/00000001_00001038.wal.lz4');
    assert.equal(parseSnapshotName('0000001a.snapshot.lz4'), 0x1a);
    assert.deepEqual(parseWALSegmentName('00000001_00001038.wal.lz4'), { index: 1, offset: 0x1038 });
    assert.equal(parseWALSegmentName('00000001_00001038.wal.lz4.tmp'), undefined);
    assert.equal(parseSnapshotName('1a.snapshot.lz4'), undefined);
  });

  it('refuses generation names that could escape the replica root', () => {
    for (const g of ['../../etc/passw', '0123456789ABCDEF', '0123', '0123456789abcdef/..']) {
      assert.throws(() => assertGeneration(g), { code: 'LSINIT_ERR_FORMAT' });
    }
  });
});

describe('verifyFrameAt (restore: frames checked in place)', () => {
  for (const bigEndian of [false, true]) {
    for (const shift of [0, 4, 2]) {
      it(`agrees with verifyFrame frame by frame and stops at the same damaged frame (${bigEndian ? 'big' : 'little'}-endian checksums, frames at offset ${shift})`, () => {
        const pageSize = 1024;
        const fs = FRAME_HEADER_SIZE + pageSize;
        const h: WALHeader = { bigEndian, version: 3007000, pageSize, checkpointSeq: 0, salt1: 0x11223344, salt2: 0x55667788, checksum1: 0, checksum2: 0 };
        const buf = Buffer.alloc(shift + 20 * fs);
        let sum: Checksum = [123, 456];
        for (let i = 0; i < 20; i++) {
          const o = shift + i * fs;
          randomBytes(pageSize).copy(buf, o + FRAME_HEADER_SIZE);
          buf.writeUInt32BE(i + 1, o);
          buf.writeUInt32BE(i === 19 ? 20 : 0, o + 4);
          buf.writeUInt32BE(h.salt1, o + 8);
          buf.writeUInt32BE(h.salt2, o + 12);
          sum = walChecksum(bigEndian, walChecksum(bigEndian, sum, buf.subarray(o, o + 8)), buf.subarray(o + FRAME_HEADER_SIZE, o + fs));
          buf.writeUInt32BE(sum[0], o + 16);
          buf.writeUInt32BE(sum[1], o + 20);
        }
        const walk = (f: (s: Checksum, o: number) => Checksum | undefined): { sums: Checksum[]; stop: number } => {
          const sums: Checksum[] = [];
          let s: Checksum | undefined = [123, 456];
          for (let i = 0; i < 20; i++) {
            s = f(s, shift + i * fs);
            if (!s) return { sums, stop: i };
            sums.push(s);
          }
          return { sums, stop: -1 };
        };
        const ref = (s: Checksum, o: number) => verifyFrame(h, s, buf.subarray(o, o + fs));
        const at = (s: Checksum, o: number) => verifyFrameAt(h, s, buf, o, pageSize);
        assert.deepEqual(walk(at), walk(ref));
        assert.equal(walk(at).stop, -1, 'every frame of the valid WAL passes');
        buf[shift + 7 * fs + FRAME_HEADER_SIZE + 100]! ^= 1;
        assert.equal(walk(at).stop, 7);
        assert.deepEqual(walk(at), walk(ref));
        buf[shift + 7 * fs + FRAME_HEADER_SIZE + 100]! ^= 1;
        buf.writeUInt32BE(h.salt1 + 1, shift + 3 * fs + 8); // another WAL's salt
        assert.equal(walk(at).stop, 3);
      });
    }
  }
});
