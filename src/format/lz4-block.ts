/**
 * LZ4 block decoding into a caller's buffer (https://github.com/lz4/lz4/blob/dev/doc/lz4_Block_format.md),
 * for restore's hot path. lz4-napi returns a new buffer per block: for a restore that is a fresh
 * 4 MiB mapping per block (page faults on every page) and garbage that needs collecting, which
 * cost more than the decompression itself. Decoding into two buffers reused for the whole
 * restore allocates nothing. Every length and offset is checked against both buffers: corrupt
 * input is an error, never a read or write out of bounds.
 */

export class BlockError extends Error {}

/** Decode one independent block `src` into `dst` from its start; returns the decoded length. */
export function decodeBlockInto(src: Uint8Array, dst: Uint8Array): number {
  const iend = src.length;
  const oend = dst.length;
  let ip = 0;
  let op = 0;
  for (;;) {
    if (ip >= iend) throw new BlockError('block ends without its last literals');
    const token = src[ip++]!;
    let lit = token >>> 4;
    if (lit === 15) {
      const more = extraLength(src, ip, 'literal');
      lit += more;
      ip += Math.floor(more / 255) + 1;
    }
    if (lit > iend - ip) throw new BlockError('literals run past the end of the block');
    if (lit > oend - op) throw new BlockError(`decoded data exceeds the ${oend}-byte block maximum`);
    if (lit < 16) {
      for (let i = 0; i < lit; i++) dst[op + i] = src[ip + i]!;
    } else {
      dst.set(src.subarray(ip, ip + lit), op);
    }
    ip += lit;
    op += lit;
    if (ip === iend) return op; // the last sequence is literals only
    if (iend - ip < 2) throw new BlockError('truncated match offset');
    const off = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (off === 0 || off > op) throw new BlockError(`match offset ${off} outside the ${op} bytes decoded`);
    let len = (token & 15) + 4;
    if (len === 19) {
      const more = extraLength(src, ip, 'match');
      len += more;
      ip += Math.floor(more / 255) + 1;
    }
    if (len > oend - op) throw new BlockError(`decoded data exceeds the ${oend}-byte block maximum`);
    const m = op - off;
    if (len < 16 && off >= len) {
      for (let i = 0; i < len; i++) dst[op + i] = dst[m + i]!;
    } else if (off === 1) {
      dst.fill(dst[m]!, op, op + len);
    } else {
      // Overlapping matches repeat the last `off` bytes: copy the longest run already there, which doubles each turn.
      let done = 0;
      while (done < len) {
        const n = Math.min(len - done, op + done - m);
        dst.copyWithin(op + done, m, m + n);
        done += n;
      }
    }
    op += len;
  }
}

/**
 * A length's extra bytes from `ip`: 255s then one byte below 255, summed. (So the bytes read are
 * floor(sum / 255) + 1.)
 */
function extraLength(src: Uint8Array, ip: number, what: string): number {
  let sum = 0;
  for (;;) {
    if (ip >= src.length) throw new BlockError(`truncated ${what} length`);
    const b = src[ip++]!;
    sum += b;
    if (b !== 255) return sum;
  }
}

/**
 * The buffers a decode reuses: two outputs used in turn (a block handed out stays valid while the
 * next one is decoded, so a write of it can still be in flight) and one input for a block that
 * spans the source's chunks. Sized on first use (frames declare 64 KiB to 4 MiB blocks).
 */
export class BlockBuffers {
  private outs: [Buffer, Buffer] | undefined;
  private turn = 0;
  private input: Buffer | undefined;

  /** The output buffer for the next block, of at least `size` bytes. */
  nextOutput(size: number): Buffer {
    if (!this.outs || this.outs[0].length < size) this.outs = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
    this.turn ^= 1;
    return this.outs[this.turn]!.subarray(0, size);
  }

  /** Scratch for a compressed block of `size` bytes (valid until the next call). */
  scratch(size: number): Buffer {
    if (!this.input || this.input.length < size) this.input = Buffer.allocUnsafe(size);
    return this.input.subarray(0, size);
  }
}
