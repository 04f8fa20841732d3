import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Crc64, crc64 } from '../../src/format/crc64.js';
import { LTXDecoder } from '../../src/format/ltx-decode.js';
import { isContiguous, lockPgno, parseLTXFilename, parseLTXHeader, parseLTXKey, parseTXIDFlag } from '../../src/format/ltx.js';
import { LTX_VECTORS, rewriteAsFrames } from '../helpers/ltx.js';

const BASIC = join(LTX_VECTORS, 'basic/replica/ltx');

async function decode(bytes: Uint8Array, name = 'f.ltx') {
  const d = new LTXDecoder(Readable.from([bytes]), name);
  const header = await d.readHeader();
  const pages: { pgno: number; data: Buffer }[] = [];
  for await (const p of d.pages()) pages.push({ pgno: p.pgno, data: Buffer.from(p.data) });
  return { header, pages, trailer: d.trailer };
}

describe('LTX format', () => {
  it('CRC-64 is Go\'s crc64 ISO table (check value of "123456789")', () => {
    assert.equal(crc64(Buffer.from('123456789')), 0xb90956c775a41001n);
    assert.equal(crc64(Buffer.alloc(0)), 0n);
  });

  it('CRC-64 slicing-by-8 equals the byte-at-a-time definition, whole and in odd-sized pieces', () => {
    const lo = new Uint32Array(256);
    const hi = new Uint32Array(256);
    for (let i = 0; i < 256; i++) {
      let h = 0;
      let l = i;
      for (let k = 0; k < 8; k++) {
        const c = l & 1;
        l = ((l >>> 1) | ((h & 1) << 31)) >>> 0;
        h >>>= 1;
        if (c) h = (h ^ 0xd8000000) >>> 0;
      }
      hi[i] = h;
      lo[i] = l;
    }
    const ref = (d: Uint8Array): bigint => {
      let h = 0xffffffff;
      let l = 0xffffffff;
      for (const b of d) {
        const idx = (l ^ b) & 0xff;
        l = ((l >>> 8) | ((h & 0xff) << 24)) ^ lo[idx]!;
        h = (h >>> 8) ^ hi[idx]!;
      }
      return (BigInt(~h >>> 0) << 32n) | BigInt(~l >>> 0);
    };
    const data = randomBytes(100_003);
    assert.equal(crc64(data), ref(data));
    const c = new Crc64();
    for (let o = 0; o < data.length; o += 4093) c.update(data.subarray(o, o + 4093));
    assert.equal(c.digest(), ref(data));
  });

  it('parses names, keys, TXID flags and contiguity as ltx does', () => {
    assert.deepEqual(parseLTXFilename('0000000000000001-000000000000000b.ltx'), { minTXID: 1n, maxTXID: 11n });
    assert.equal(parseLTXFilename('0000000000000001-000000000000000B.ltx'), undefined);
    assert.equal(parseLTXFilename('0000000000000001-000000000000000b.ltx.tmp'), undefined);
    assert.deepEqual(parseLTXKey('ltx/9/0000000000000001-0000000000000045.ltx'), { level: 9, minTXID: 1n, maxTXID: 0x45n });
    assert.equal(parseLTXKey('ltx/10/0000000000000001-0000000000000045.ltx'), undefined);
    assert.equal(parseTXIDFlag('000000000000002A'), 42n);
    assert.equal(parseTXIDFlag('2a'), undefined);
    assert.equal(isContiguous(3n, 4n, 4n), true);
    assert.equal(isContiguous(3n, 1n, 8n), true);
    assert.equal(isContiguous(3n, 5n, 5n), false);
    assert.equal(isContiguous(8n, 1n, 8n), false);
    assert.equal(lockPgno(4096), 262145);
  });

  it('decodes every Litestream 0.5.16 file (LZ4 block pages, flags 0x2) and verifies its checksum', async () => {
    for (const level of readdirSync(BASIC)) {
      for (const f of readdirSync(join(BASIC, level))) {
        const { header, pages, trailer } = await decode(readFileSync(join(BASIC, level, f)), f);
        assert.equal(header.flags, 0x2);
        assert.equal(header.pageSize, 4096);
        assert.ok(trailer && trailer.postApplyChecksum === 0n, f);
        assert.ok(pages.every((p) => p.data.length === 4096));
        if (header.minTXID === 1n) assert.deepEqual(pages.map((p) => p.pgno), Array.from({ length: header.commit }, (_, i) => i + 1));
      }
    }
  });

  it('reads pages stored as LZ4 frames (older writers) to the same bytes', async () => {
    const orig = readFileSync(join(BASIC, '1/0000000000000001-0000000000000003.ltx'));
    const framed = await rewriteAsFrames(orig);
    assert.notDeepEqual(framed, orig);
    const a = await decode(orig);
    const b = await decode(framed);
    assert.deepEqual(b.pages, a.pages);
  });

  it('a changed byte anywhere in the checksummed content is LSINIT_ERR_CHECKSUM naming the file', async () => {
    const orig = readFileSync(join(BASIC, '0/0000000000000005-0000000000000005.ltx'));
    const name = 'ltx/0/0000000000000005-0000000000000005.ltx';
    // The header timestamp (offset 33) and the page index length just before the trailer: both hashed, neither otherwise checked.
    for (const off of [33, orig.length - 16 - 1]) {
      const bad = Buffer.from(orig);
      bad[off]! ^= 0x01;
      await assert.rejects(decode(bad, name), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'LSINIT_ERR_CHECKSUM');
        assert.match(err.message, /ltx\/0\/0000000000000005-0000000000000005\.ltx: file checksum mismatch/);
        return true;
      });
    }
  });

  it('refuses truncated files, bad magic, bad flags and bytes after the trailer', async () => {
    const orig = readFileSync(join(BASIC, '0/0000000000000002-0000000000000002.ltx'));
    const cases: [string, Buffer][] = [
      ['truncated', orig.subarray(0, orig.length - 3)],
      ['header only', orig.subarray(0, 100)],
      ['magic', Buffer.concat([Buffer.from('LTX2'), orig.subarray(4)])],
      ['trailing', Buffer.concat([orig, Buffer.from([0])])],
    ];
    const flags = Buffer.from(orig);
    flags.writeUInt32BE(0x3, 4);
    cases.push(['flags', flags]);
    for (const [what, bytes] of cases) {
      await assert.rejects(decode(bytes), { code: 'LSINIT_ERR_FORMAT' }, what);
    }
    assert.throws(() => parseLTXHeader(orig.subarray(0, 50), 'x'), { code: 'LSINIT_ERR_FORMAT' });
  });
});
