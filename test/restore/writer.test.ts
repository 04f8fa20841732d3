import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { WALApplier } from '../../src/restore/apply.js';
import { SerialWriter } from '../../src/restore/writer.js';

const dir = mkdtempSync(join(tmpdir(), 'lsinit-writer-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('SerialWriter (restore writes on the thread pool)', () => {
  it('runs writes and truncations in the order queued: the last write of a range wins', async () => {
    const p = join(dir, 'order.bin');
    const fd = openSync(p, 'w+');
    try {
      const w = new SerialWriter(fd);
      // Many overlapping writes in flight at once: any reordering shows in the result.
      for (let i = 0; i < 200; i++) w.writev([Buffer.alloc(4096, i % 251), Buffer.alloc(100, 7)], (i % 3) * 1000);
      w.truncate(3000);
      w.writev([Buffer.from('end')], 2998);
      await w.drained();
      const got = readFileSync(p);
      assert.equal(got.length, 3001);
      assert.equal(got[0], 198 % 251, 'write 198 (at 0) is the last to reach byte 0');
      assert.equal(got[1500], 199 % 251, 'write 199 (at 1000) is the last to reach byte 1500');
      assert.equal(got.subarray(2998).toString(), 'end');
    } finally {
      closeSync(fd);
    }
  });

  it('writes that do not overlap go out together; one that overlaps waits for them', async () => {
    const p = join(dir, 'batch.bin');
    const fd = openSync(p, 'w+');
    try {
      const w = new SerialWriter(fd);
      for (let i = 0; i < 50; i++) w.writev([Buffer.alloc(4096, i + 1)], i * 8192);
      w.writev([Buffer.alloc(100, 0xaa)], 10 * 8192 + 4000); // overlaps write 10's end, then runs past it
      for (let i = 50; i < 60; i++) w.writev([Buffer.alloc(4096, i + 1)], i * 8192);
      await w.turn();
      await w.drained();
      const got = readFileSync(p);
      for (let i = 0; i < 60; i++) assert.equal(got[i * 8192 + 1000], i + 1, `write ${i}`);
      assert.equal(got[10 * 8192 + 3999], 11);
      assert.equal(got[10 * 8192 + 4000], 0xaa, 'the later, overlapping write wins');
      assert.equal(got[10 * 8192 + 4099], 0xaa);
    } finally {
      closeSync(fd);
    }
  });

  it('a failed write fails turn() and drained(), and nothing queued after it is written', async () => {
    const p = join(dir, 'ro.bin');
    writeFileSync(p, 'original');
    const fd = openSync(p, 'r'); // read-only: every write fails with EBADF
    try {
      const w = new SerialWriter(fd);
      w.writev([Buffer.from('x')], 0);
      await w.turn(); // the first turn waits for nothing queued before it
      w.writev([Buffer.from('y')], 1);
      await assert.rejects(w.turn(), { code: 'EBADF' });
      await assert.rejects(w.drained(), { code: 'EBADF' });
      await w.settled();
      assert.equal(readFileSync(p, 'utf8'), 'original');
    } finally {
      closeSync(fd);
    }
  });

  it('a WAL applied through it in 1-byte-misaligned chunks gives the bytes of one applied at once', async () => {
    // Two indexes' worth of frames over a 3-page database, pushed in chunks that cut frames
    // anywhere (pages completed from the carry buffer are queued before it is reused).
    const pageSize = 512;
    const { walBytes, base } = makeWAL(pageSize);
    const results: Buffer[] = [];
    for (const queued of [false, true]) {
      const p = join(dir, `db-${queued}.bin`);
      writeFileSync(p, base);
      const fd = openSync(p, 'r+');
      try {
        const w = new SerialWriter(fd);
        const a = queued ? new WALApplier(fd, pageSize, 'test', { sink: w, filePages: 3 }) : new WALApplier(fd, pageSize, 'test');
        let prev: Buffer | undefined;
        for (let off = 0; off < walBytes.length; off += 777) {
          // Once turn() returns, the chunk before is overwritten, as a reused decode buffer would be.
          const chunk = Buffer.from(walBytes.subarray(off, off + 777));
          a.push(chunk);
          if (queued) await w.turn();
          prev?.fill(0xee);
          prev = chunk;
        }
        assert.equal(a.finish().pages, 5);
        await w.drained();
      } finally {
        closeSync(fd);
      }
      results.push(readFileSync(p));
    }
    assert.equal(results[0]!.length, 5 * pageSize);
    assert.deepEqual(results[1], results[0]);
  });
});

/** A WAL (big-endian checksums) writing pages 2, 4, 2, 5 (commit, 5 pages) over a 3-page database. */
function makeWAL(pageSize: number): { walBytes: Buffer; base: Buffer } {
  const base = Buffer.alloc(3 * pageSize, 1);
  const hdr = Buffer.alloc(32);
  hdr.writeUInt32BE(0x377f0683, 0);
  hdr.writeUInt32BE(3007000, 4);
  hdr.writeUInt32BE(pageSize, 8);
  hdr.writeUInt32BE(0, 12);
  hdr.writeUInt32BE(0x11111111, 16);
  hdr.writeUInt32BE(0x22222222, 20);
  let [s1, s2] = sum(hdr.subarray(0, 24), 0, 0);
  hdr.writeUInt32BE(s1, 24);
  hdr.writeUInt32BE(s2, 28);
  const frames: Buffer[] = [hdr];
  const pages: [number, number][] = [[2, 0], [4, 0], [2, 0], [5, 5]];
  for (const [i, [pgno, commit]] of pages.entries()) {
    const f = Buffer.alloc(24 + pageSize, 10 + i);
    f.writeUInt32BE(pgno, 0);
    f.writeUInt32BE(commit, 4);
    f.writeUInt32BE(0x11111111, 8);
    f.writeUInt32BE(0x22222222, 12);
    [s1, s2] = sum(f.subarray(0, 8), s1, s2);
    [s1, s2] = sum(f.subarray(24), s1, s2);
    f.writeUInt32BE(s1, 16);
    f.writeUInt32BE(s2, 20);
    frames.push(f);
  }
  return { walBytes: Buffer.concat(frames), base };
}

/** SQLite's WAL checksum, big-endian words. */
function sum(b: Buffer, s1: number, s2: number): [number, number] {
  for (let i = 0; i < b.length; i += 8) {
    s1 = (s1 + b.readUInt32BE(i) + s2) >>> 0;
    s2 = (s2 + b.readUInt32BE(i + 4) + s1) >>> 0;
  }
  return [s1, s2];
}
