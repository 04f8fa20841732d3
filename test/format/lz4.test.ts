import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { decodeAll, decodeFrames, encodeFrame, encodeFrameStream } from '../../src/format/lz4.js';

const dir = mkdtempSync(join(tmpdir(), 'lsinit-lz4-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function sample(n: number): Buffer {
  // Compressible but not trivial: SQLite-like pages with random islands.
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4096) randomBytes(Math.min(300, n - i)).copy(b, i);
  return b;
}

function lz4cli(args: string[], input: Buffer): Buffer {
  const inp = join(dir, `in-${Math.random()}`);
  const out = `${inp}.out`;
  writeFileSync(inp, input);
  execFileSync('lz4', ['-q', '-f', ...args, inp, out]);
  return readFileSync(out);
}

describe('LZ4 frames', () => {
  it('writes the same frame header as Litestream (pierrec/lz4 defaults)', async () => {
    const f = await encodeFrame(Buffer.from('hello'));
    assert.deepEqual([...f.subarray(0, 7)], [0x04, 0x22, 0x4d, 0x18, 0x64, 0x70, 0xb9]);
  });

  it('our frames decode with the reference lz4 CLI, in one piece and streamed (multi-block)', async () => {
    const data = sample(9 << 20);
    const whole = await encodeFrame(data);
    assert.deepEqual(lz4cli(['-d'], whole), data);
    const parts: Buffer[] = [];
    for await (const p of encodeFrameStream(Readable.from([data.subarray(0, 100), data.subarray(100, 5 << 20), data.subarray(5 << 20)]))) parts.push(p);
    assert.deepEqual(lz4cli(['-d'], Buffer.concat(parts)), data);
  });

  for (const [name, args] of [
    ['default', []],
    ['64 KiB linked blocks', ['-B4', '-BD']],
    ['256 KiB blocks with block checksums', ['-B5', '-BX']],
    ['content size and no content checksum', ['--content-size', '--no-frame-crc']],
    ['legacy format', ['-l']],
    ['incompressible data', []],
  ] as const) {
    it(`reads frames the lz4 CLI writes: ${name}`, async () => {
      const data = name === 'incompressible data' ? randomBytes(300_000) : sample(3 << 20);
      const framed = lz4cli([...args], data);
      assert.deepEqual(await decodeAll(framed), data);
    });
  }

  it('reads concatenated frames and skips skippable frames', async () => {
    const a = await encodeFrame(Buffer.from('first'));
    const b = await encodeFrame(Buffer.from('second'));
    const skip = Buffer.alloc(12);
    skip.writeUInt32LE(0x184d2a53, 0);
    skip.writeUInt32LE(4, 4);
    assert.equal((await decodeAll(Buffer.concat([a, skip, b]))).toString(), 'firstsecond');
  });

  it('a bit flip in the data is a checksum or format error, never silent', async () => {
    const data = sample(200_000);
    const f = await encodeFrame(data);
    for (const pos of [20, Math.floor(f.length / 2), f.length - 6]) {
      const bad = Buffer.from(f);
      bad[pos]! ^= 0x10;
      await assert.rejects(decodeAll(bad, 'obj'), (err: { code?: string }) => err.code === 'LSINIT_ERR_CHECKSUM' || err.code === 'LSINIT_ERR_FORMAT');
    }
  });

  it('truncated, empty and non-LZ4 input are clear errors', async () => {
    const f = await encodeFrame(sample(50_000));
    await assert.rejects(decodeAll(f.subarray(0, f.length - 3), 'seg'), { code: 'LSINIT_ERR_FORMAT', message: /seg: truncated/ });
    await assert.rejects(decodeAll(Buffer.alloc(0), 'seg'), { code: 'LSINIT_ERR_FORMAT', message: /empty/ });
    await assert.rejects(decodeAll(Buffer.from('not-lz4 at all\n'), 'seg'), { code: 'LSINIT_ERR_FORMAT', message: /bad magic/ });
    // An age-encrypted object (Litestream 0.3.10+) read without identities says so.
    await assert.rejects(decodeAll(Buffer.from('age-encryption.org/v1\n'), 'seg'), { code: 'LSINIT_ERR_DECRYPT', message: /seg: object is age-encrypted/ });
  });

  it('streams a large input with bounded memory per chunk', async () => {
    let total = 0;
    const src = Readable.from((function* () {
      for (let i = 0; i < 16; i++) yield sample(1 << 20);
    })());
    const enc = Readable.from(encodeFrameStream(src));
    for await (const c of decodeFrames(enc)) {
      assert.ok(c.length <= 4 << 20);
      total += c.length;
    }
    assert.equal(total, 16 << 20);
  });
});
