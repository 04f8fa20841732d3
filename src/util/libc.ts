/**
 * The C library through koffi, for the few calls Node does not expose (waitpid/prctl for the
 * reaper, flock for the meta-directory lock). koffi ships prebuilt binaries inside its package, so
 * no compiler is needed at install; a platform where it cannot load makes each caller fall back.
 */
import { arch } from 'node:os';
import { errorMessage } from '../errors.js';
import { loadKoffi, type Koffi } from './koffi.js';

export type { Koffi };
export type LibcLib = ReturnType<Koffi['load']>;

/**
 * glibc first, then musl (Alpine) by architecture, then the symbols already linked into node.
 * `bind` declares the functions a caller needs; a library lacking one counts as not loaded.
 */
export function loadLibc<T>(bind: (lib: LibcLib, koffi: Koffi) => T): { name: string; fns: T; koffi: Koffi } | { error: string } {
  let koffi: Koffi;
  try {
    koffi = loadKoffi();
  } catch (err) {
    return { error: `koffi unavailable: ${errorMessage(err)}` };
  }
  const errors: string[] = [];
  for (const name of ['libc.so.6', `libc.musl-${arch() === 'arm64' ? 'aarch64' : 'x86_64'}.so.1`, null]) {
    try {
      return { name: name ?? '(node process)', fns: bind(koffi.load(name), koffi), koffi };
    } catch (err) {
      errors.push(`${name ?? '(node process)'}: ${errorMessage(err)}`);
    }
  }
  return { error: errors.join('; ') };
}
