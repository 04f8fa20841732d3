/**
 * liblz4's block codec (the system's `liblz4.so.1`, through koffi), writing into buffers the
 * caller owns. lz4-napi allocates a new output buffer per block: on a restore that is one fresh
 * 4 MiB mapping per block, page-faulted in, then garbage to collect, which cost several times the
 * decoding itself. Decoding into buffers reused for the whole restore costs neither; compressing
 * straight behind a frame's size field saves a copy (lz4-block.ts).
 *
 * liblz4 is part of most glibc distributions' base (apt and systemd link it); where it cannot be
 * loaded, callers keep lz4-napi. Decoding is LZ4_decompress_safe: it never writes past the
 * capacity given and returns a negative number for malformed input. Compressing is
 * LZ4_compress_default (acceleration 1, the lz4 command's default level).
 */
import { loadKoffi } from '../util/koffi.js';

export interface NativeLZ4 {
  /**
   * Decode one block into `dst` (at most `dst.length` bytes); with `dict`, the block may refer to
   * it as the output that came just before (linked blocks). Returns the decoded length, or a
   * negative number when the block is malformed or does not fit.
   */
  decompress(src: Uint8Array, dst: Uint8Array, dict?: Uint8Array): number;
  /** Compress `src` as one block into `dst`: its length, or 0 when it does not fit `dst.length`. */
  compress(src: Uint8Array, dst: Uint8Array): number;
}

let loaded: NativeLZ4 | null | undefined;
let enabled = true;

/** liblz4, or undefined when it cannot be loaded here (or is turned off for a test). */
export function nativeLZ4(): NativeLZ4 | undefined {
  if (!enabled) return undefined;
  if (loaded === undefined) loaded = load();
  return loaded ?? undefined;
}

/** Tests: run the lz4-napi paths (compressing and decoding) even where liblz4 is present. */
export function setNativeLZ4(on: boolean): void {
  enabled = on;
}

function load(): NativeLZ4 | null {
  try {
    const lib = loadKoffi().load('liblz4.so.1');
    const safe = lib.func('int LZ4_decompress_safe(const void *src, void *dst, int srcSize, int dstCapacity)') as (s: Uint8Array, d: Uint8Array, n: number, cap: number) => number;
    const withDict = lib.func('int LZ4_decompress_safe_usingDict(const void *src, void *dst, int srcSize, int dstCapacity, const void *dict, int dictSize)') as (s: Uint8Array, d: Uint8Array, n: number, cap: number, dict: Uint8Array, dn: number) => number;
    const compress = lib.func('int LZ4_compress_default(const void *src, void *dst, int srcSize, int dstCapacity)') as (s: Uint8Array, d: Uint8Array, n: number, cap: number) => number;
    return {
      compress: (src, dst) => compress(src, dst, src.length, dst.length),
      decompress: (src, dst, dict) => (dict && dict.length > 0 ? withDict(src, dst, src.length, dst.length, dict, dict.length) : safe(src, dst, src.length, dst.length)),
    };
  } catch {
    return null;
  }
}
