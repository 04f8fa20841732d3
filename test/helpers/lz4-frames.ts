/** Hand-built LZ4 frames, for decoder refusals the encoder never produces. */
import { xxh32, xxhReady } from '../../src/format/xxh32.js';

/** A frame (independent blocks, content checksum) of the given raw blocks, with a chosen BD byte. */
export async function frameOf(blocks: Buffer[], bd = 0x70): Promise<Buffer> {
  await xxhReady();
  const desc = Buffer.from([0x64, bd]);
  const parts: Buffer[] = [Buffer.from([0x04, 0x22, 0x4d, 0x18]), desc, Buffer.from([(xxh32(desc) >>> 8) & 0xff])];
  for (const b of blocks) {
    const sz = Buffer.alloc(4);
    sz.writeUInt32LE(b.length, 0);
    parts.push(sz, b);
  }
  parts.push(Buffer.alloc(8)); // end mark, then a content checksum the decoder never reaches
  return Buffer.concat(parts);
}

/** A frame whose one block is malformed: token 0 (a 4-byte match, no literal) at offset 1, before the output's start. */
export function malformedFrame(): Promise<Buffer> {
  return frameOf([Buffer.from([0x00, 0x01, 0x00])]);
}
