/**
 * xxHash32 (seed 0) as the LZ4 frame format uses it, from the xxhash-wasm package. The package
 * copies each input into its WebAssembly memory, which grows to the largest input and never
 * shrinks: inputs go in pieces of at most PIECE bytes, so that memory stays small whatever the
 * block or segment size.
 */
import xxhash from 'xxhash-wasm';

const PIECE = 256 << 10;

type Hasher = Awaited<ReturnType<typeof xxhash>>;
let hasher: Hasher | undefined;
const ready = xxhash().then((h) => (hasher = h));

/** Must be awaited once before the sync functions below are used. */
export async function xxhReady(): Promise<void> {
  await ready;
}

function h(): Hasher {
  if (!hasher) throw new Error('xxh32 used before xxhReady() resolved');
  return hasher;
}

export function xxh32(data: Uint8Array): number {
  if (data.length <= PIECE) return h().h32Raw(data, 0) >>> 0;
  const s = xxh32Stream();
  s.update(data);
  return s.digest();
}

export interface XXH32Stream {
  update(data: Uint8Array): void;
  digest(): number;
}

export function xxh32Stream(): XXH32Stream {
  const s = h().create32(0);
  return {
    update(data) {
      for (let off = 0; off < data.length; off += PIECE) s.update(data.subarray(off, off + PIECE));
    },
    digest() {
      return Number(s.digest()) >>> 0;
    },
  };
}
