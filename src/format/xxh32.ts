/** xxHash32 (seed 0) as the LZ4 frame format uses it, from the xxhash-wasm package. */
import xxhash from 'xxhash-wasm';

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
  return h().h32Raw(data, 0) >>> 0;
}

export interface XXH32Stream {
  update(data: Uint8Array): void;
  digest(): number;
}

export function xxh32Stream(): XXH32Stream {
  const s = h().create32(0);
  return {
    update(data) {
      s.update(data);
    },
    digest() {
      return Number(s.digest()) >>> 0;
    },
  };
}
