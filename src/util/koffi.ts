/**
 * koffi for every caller (libc.ts, memory.ts, lz4-native.ts), by the path of its prebuilt addon
 * where glibc Linux keeps it. Requiring the package runs
 * two wrapper modules before the addon (libc detection from node's ELF headers, a search of
 * binary directories, deprecation shims): in a worker thread that was ~7 ms against ~1.4 ms for
 * the addon alone (koffi 3.3.4, node 20), and the replication worker loads koffi for liblz4 on its
 * way to the first sync. The addon is the same object the package hands out (Node caches it by
 * path); the wrappers add only deprecated aliases. Anywhere the addon is not found or does not
 * load (musl, another layout), the package finds its binary its own way.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export type Koffi = typeof import('koffi');

let loaded: Koffi | undefined;

/** koffi for this thread; throws where it cannot be loaded at all. */
export function loadKoffi(): Koffi {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  if (process.platform === 'linux') {
    try {
      const dir = dirname(require.resolve(`@koromix/koffi-linux-${process.arch}/package.json`));
      const addon = require(join(dir, `linux_${process.arch}`, 'koffi.node')) as Partial<Koffi>;
      if (typeof addon.load === 'function' && typeof addon.version === 'string') return (loaded = addon as Koffi);
    } catch {
      /* the package below */
    }
  }
  return (loaded = require('koffi') as Koffi);
}
