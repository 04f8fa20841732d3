import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { open } from 'node:fs/promises';
import { after, describe, it } from 'node:test';
import { FRAME_BLOCK_SIZE, decodeAll, decodeBuffers, decodeFrames, encodeFrame, encodeFrameStream } from '../../src/format/lz4.js';
import { LsinitError } from '../../src/errors.js';
import { FileByteSource } from '../../src/format/file-source.js';
import { compressBlock, decompressBlock } from '../../src/format/lz4-block.js';
import { setNativeLZ4 } from '../../src/format/lz4-native.js';
import { frameOf, malformedFrame } from '../helpers/lz4-frames.js';

const dir = mkdtempSync(join(tmpdir(), 'lsinit-lz4-'));
after(() => {
  setNativeLZ4(true);
  rmSync(dir, { recursive: true, force: true });
});

/** The two block codecs: the system's liblz4, and lz4-napi (the fallback where liblz4 is missing). */
const CODECS = [['liblz4', true], ['lz4-napi', false]] as const;

/** `fn` with one codec for compressing and decoding, liblz4 again after. */
async function withCodec<T>(native: boolean, fn: () => Promise<T>): Promise<T> {
  setNativeLZ4(native);
  try {
    return await fn();
  } finally {
    setNativeLZ4(true);
  }
}

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
    it(`reads frames the lz4 CLI writes, with liblz4 and with lz4-napi: ${name}`, async () => {
      const data = name === 'incompressible data' ? randomBytes(300_000) : sample(3 << 20);
      const framed = lz4cli([...args], data);
      for (const [codec, native] of CODECS) assert.deepEqual(await withCodec(native, () => decodeAll(framed)), data, codec);
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

  it('a source that reads every block-sized chunk into one reused buffer gives the same frame as the whole input', async () => {
    // Compressible blocks, one incompressible (stored) block, and a short last chunk.
    const data = Buffer.concat([sample(FRAME_BLOCK_SIZE), randomBytes(FRAME_BLOCK_SIZE), sample(FRAME_BLOCK_SIZE + 12345)]);
    const reused = Buffer.alloc(FRAME_BLOCK_SIZE);
    const src = (async function* () {
      for (let off = 0; off < data.length; off += FRAME_BLOCK_SIZE) {
        const n = data.copy(reused, 0, off, off + FRAME_BLOCK_SIZE);
        yield reused.subarray(0, n);
      }
    })();
    const parts: Buffer[] = [];
    // Held across later reads, as a store client queueing one block ahead would.
    for await (const p of encodeFrameStream(src)) parts.push(p);
    const streamed = Buffer.concat(parts);
    assert.deepEqual(streamed, await encodeFrame(data));
    assert.deepEqual(await decodeAll(streamed), data);
    assert.deepEqual(lz4cli(['-d'], streamed), data);
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

/** A frame's blocks as written: stored or not, and the compressed length. */
function blocksOf(frame: Buffer): { stored: boolean; len: number }[] {
  const out: { stored: boolean; len: number }[] = [];
  for (let at = 7; ; ) {
    const sz = frame.readUInt32LE(at);
    if (sz === 0) return out;
    out.push({ stored: (sz & 0x80000000) !== 0, len: sz & 0x7fffffff });
    at += 4 + (sz & 0x7fffffff);
  }
}

describe('LZ4 frames written with liblz4 and with lz4-napi (the fallback where liblz4 is missing)', () => {
  for (const [name, data] of [
    ['compressible pages, three blocks, the last one short', sample(2 * FRAME_BLOCK_SIZE + 12345)],
    ['incompressible data (stored blocks) after a compressible block', Buffer.concat([sample(FRAME_BLOCK_SIZE), randomBytes(FRAME_BLOCK_SIZE + 100)])],
    ['a few bytes', Buffer.from('hello, hello, hello')],
  ] as const) {
    it(`both give frames of the same layout that every decoder reads back to the input: ${name}`, async () => {
      const frames: Buffer[] = [];
      for (const [, native] of CODECS) {
        await withCodec(native, async () => {
          frames.push(await encodeFrame(data));
          const parts: Buffer[] = [];
          for await (const p of encodeFrameStream(pieces(data, 1_000_003))) parts.push(Buffer.from(p));
          frames.push(Buffer.concat(parts));
        });
      }
      const [lib, libStreamed, napi, napiStreamed] = frames as [Buffer, Buffer, Buffer, Buffer];
      assert.deepEqual(libStreamed, lib, 'liblz4: streamed and whole frames are the same bytes');
      assert.deepEqual(napiStreamed, napi, 'lz4-napi: streamed and whole frames are the same bytes');
      // Same header, same blocks (count, stored or not), same end mark and content checksum.
      assert.deepEqual(lib.subarray(0, 7), napi.subarray(0, 7));
      assert.deepEqual(lib.subarray(-8), napi.subarray(-8));
      assert.deepEqual(blocksOf(lib).map((b) => b.stored), blocksOf(napi).map((b) => b.stored));
      assert.equal(blocksOf(lib).length, Math.ceil(data.length / FRAME_BLOCK_SIZE));
      for (const frame of [lib, napi]) {
        for (const [codec, native] of CODECS) assert.deepEqual(await withCodec(native, () => decodeAll(frame)), data, `decoded by ${codec}`);
        assert.deepEqual(await decodeAll(frame, 'obj'), data);
        assert.deepEqual(lz4cli(['-d'], frame), data, 'decoded by the lz4 CLI');
      }
    });
  }

  it('a lone block (LTX pages, legacy frames) decodes to its bytes by both codecs; a malformed or oversized one is a format error in both', async () => {
    const page = sample(4096);
    for (const [by, native] of CODECS) {
      const field = await withCodec(native, async () => compressBlock(page));
      assert.equal(field.readUInt32LE(0) & 0x80000000, 0, `${by}: a page of runs is compressed, not stored`);
      const block = field.subarray(4);
      for (const [codec, nat] of CODECS) {
        await withCodec(nat, async () => {
          assert.deepEqual(decompressBlock(block, 4096, undefined, 'page 2'), page, `${by} block, ${codec} decoder`);
          assert.throws(() => decompressBlock(block, 2048, undefined, 'page 2'), { code: 'LSINIT_ERR_FORMAT', message: /page 2: corrupt compressed block/ }, `${codec}: larger than the page`);
          assert.throws(() => decompressBlock(Buffer.from([0x00, 0x01, 0x00]), 4096, undefined, 'page 3'), { code: 'LSINIT_ERR_FORMAT', message: /page 3: corrupt compressed block/ }, `${codec}: malformed`);
        });
      }
    }
  });

  it('liblz4\'s frames are no larger than lz4-napi\'s for database pages (within 1 %)', async () => {
    const data = sample(FRAME_BLOCK_SIZE);
    const lib = await encodeFrame(data);
    const napi = await withCodec(false, () => encodeFrame(data));
    assert.ok(lib.length <= napi.length * 1.01, `liblz4 ${lib.length} bytes, lz4-napi ${napi.length}`);
  });
});

/** Frame kinds the lz4 CLI writes, for the decoders into reused buffers. */
const CLI_KINDS = [
  ['default (4 MiB blocks)', []],
  ['64 KiB linked blocks', ['-B4', '-BD']],
  ['256 KiB blocks with block checksums', ['-B5', '-BX']],
  ['content size and no content checksum', ['--content-size', '--no-frame-crc']],
  ['legacy format', ['-l']],
  ['incompressible data (stored blocks)', ['-B4']],
] as const;

/** `data` in pieces of `size` bytes, so blocks arrive split across chunks. */
function pieces(data: Buffer, size: number): Readable {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return Readable.from(out);
}

describe('LZ4 frames decoded into reused buffers (liblz4)', () => {
  it('liblz4 is loaded here (the lz4 CLI the tests use depends on it)', () => {
    assert.ok(decodeBuffers());
  });

  for (const [name, args] of CLI_KINDS) {
    it(`gives the same bytes as a fresh buffer per block, blocks split across chunks: ${name}`, async () => {
      const data = name.startsWith('incompressible') ? randomBytes(300_000) : sample(9 << 20);
      const framed = lz4cli([...args], data);
      const got: Buffer[] = [];
      let prev: Buffer | undefined;
      let prevCopy: Buffer | undefined;
      for await (const c of decodeFrames(pieces(framed, 100_003), 'obj', { into: decodeBuffers() })) {
        // The contract restore relies on: the block before the current one is still intact.
        if (prev) assert.deepEqual(prev, prevCopy);
        prev = c;
        prevCopy = Buffer.from(c);
        got.push(prevCopy);
      }
      assert.deepEqual(Buffer.concat(got), data);
      assert.deepEqual(Buffer.concat(got), await decodeAll(framed));
    });
  }

  it('reuses two output buffers however many blocks and objects there are', async () => {
    const framed = lz4cli(['-B4'], sample(2 << 20)); // 32 blocks of 64 KiB
    const into = decodeBuffers();
    const seen = new Set<ArrayBufferLike>();
    let n = 0;
    for (const object of [framed, framed]) {
      for await (const c of decodeFrames(pieces(object, 65_536), 'obj', { into })) {
        seen.add(c.buffer);
        n++;
      }
    }
    assert.equal(n, 64);
    assert.equal(seen.size, 2);
  });

  it('a malformed block, or one that decodes past the frame\'s block size, is a format error in both decoders', async () => {
    const before = await malformedFrame();
    // A 256 KiB block of a compressible page run, declared in a frame of 64 KiB blocks.
    const big = lz4cli(['-B5', '--no-frame-crc'], sample(256 << 10));
    const blockLen = big.readUInt32LE(7);
    assert.ok(blockLen < 65536, 'the compressed block itself fits a 64 KiB frame');
    const tooBig = await frameOf([big.subarray(11, 11 + blockLen)], 0x40);
    for (const bad of [before, tooBig]) {
      for (const reuse of [true, false]) {
        const all = async () => {
          for await (const _ of decodeFrames(pieces(bad, 7), 'seg', { into: reuse ? decodeBuffers() : undefined })) { /* drain */ }
        };
        await assert.rejects(all(), { code: 'LSINIT_ERR_FORMAT', message: /seg: corrupt compressed block/ });
      }
    }
  });
});

describe('LZ4 frames read from a file into the decoder\'s buffers (FileByteSource)', () => {
  async function source(framed: Buffer, counted?: number[]): Promise<FileByteSource> {
    const p = join(dir, `src-${Math.random()}`);
    writeFileSync(p, framed);
    return new FileByteSource(await open(p, 'r'), framed.length, (n) => counted?.push(n));
  }

  for (const [name, args] of CLI_KINDS) {
    it(`gives the bytes of the stream decoder, with and without reused buffers: ${name}`, async () => {
      const data = name.startsWith('incompressible') ? randomBytes(300_000) : sample(9 << 20);
      const framed = lz4cli([...args], data);
      for (const into of [decodeBuffers(), undefined]) {
        const counted: number[] = [];
        const got: Buffer[] = [];
        let prev: Buffer | undefined;
        let prevCopy: Buffer | undefined;
        for await (const c of decodeFrames(await source(framed, counted), 'obj', { into })) {
          if (prev) assert.deepEqual(prev, prevCopy, 'the block before the current one is intact');
          prev = c;
          prevCopy = Buffer.from(c);
          got.push(prevCopy);
        }
        assert.deepEqual(Buffer.concat(got), data);
        assert.equal(counted.reduce((a, b) => a + b, 0), framed.length, 'every byte read is counted once');
      }
    });
  }

  it('concatenated and skippable frames; a read with a scratch buffer fills that buffer', async () => {
    const a = sample(100_000);
    const b = sample(5 << 20);
    const skip = Buffer.alloc(8 + 10);
    skip.writeUInt32LE(0x184d2a5f, 0);
    skip.writeUInt32LE(10, 4);
    const framed = Buffer.concat([await encodeFrame(a), skip, await encodeFrame(b)]);
    const got: Buffer[] = [];
    for await (const c of decodeFrames(await source(framed), 'obj', { into: decodeBuffers() })) got.push(Buffer.from(c));
    assert.deepEqual(Buffer.concat(got), Buffer.concat([a, b]));
    const src = await source(framed);
    const scratch = Buffer.alloc(16);
    const m = (await src.read(4, scratch))!;
    assert.equal(m.buffer, scratch.buffer);
    assert.equal(m.readUInt32LE(0), 0x184d2204);
    await src.close();
  });

  it('truncated input is a format error; a file that shrank after open is one too', async () => {
    const framed = await encodeFrame(sample(200_000));
    await assert.rejects(async () => { for await (const _ of decodeFrames(await source(framed.subarray(0, framed.length - 3)), 'obj')); }, (e) => e instanceof LsinitError && e.code === 'LSINIT_ERR_FORMAT' && /truncated/.test(e.message));
    const p = join(dir, `shrunk-${Math.random()}`);
    writeFileSync(p, framed.subarray(0, 1000));
    const src = new FileByteSource(await open(p, 'r'), framed.length);
    await assert.rejects(async () => { for await (const _ of decodeFrames(src, 'obj')); }, (e) => e instanceof LsinitError && e.code === 'LSINIT_ERR_FORMAT' && /ended at byte/.test(e.message));
  });
});
