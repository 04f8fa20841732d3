/**
 * Keeping a large restore's RSS near what it holds live. Decompressing produces a new 4 MiB
 * buffer per LZ4 block (the codec allocates its output), and two facts let such garbage pile up:
 *  - V8 collects only when external memory has grown by ~64 MiB since the last collection (its
 *    soft limit), whatever the rate, so tens of dead 4 MiB buffers wait for a GC;
 *  - glibc raises its mmap threshold to the largest block freed (up to 32 MiB), after which 4 MiB
 *    buffers come from the heap arena, and memory freed there stays resident.
 * So: fix glibc's threshold at its default 128 KiB (large buffers are mapped and unmapped, as
 * MALLOC_MMAP_THRESHOLD_ would do at exec), and collect after every few tens of MiB decoded.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { loadKoffi } from './koffi.js';

const M_MMAP_THRESHOLD = -3;

let fixed: boolean | undefined;

/**
 * glibc only (musl has no mallopt and never grows its threshold); false when not applied. The
 * setting is the process's, every thread's: a thread that knows another one made it need not call
 * this (worker-controller.ts); a second call in a thread returns the first one's outcome.
 */
export function fixMmapThreshold(): boolean {
  return (fixed ??= mallopt(M_MMAP_THRESHOLD, 128 << 10));
}

function mallopt(param: number, value: number): boolean {
  try {
    const fn = loadKoffi().load('libc.so.6').func('int mallopt(int, int)') as (p: number, v: number) => number;
    return fn(param, value) === 1;
  } catch {
    return false;
  }
}

let gc: (() => void) | undefined;

/**
 * A counter that runs a full garbage collection after every `every` bytes it is told about. V8's
 * gc() is reached at the first collection, not before: a fresh context costs 1–2 ms, which a
 * replica's first small upload (at start-up, or the final sync of an app that ran for a moment)
 * need not pay.
 */
export function gcPacer(every: number): (bytes: number) => void {
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since >= every) {
      since = 0;
      (gc ??= exposeGC())();
    }
  };
}

/**
 * The documented way to reach V8's gc() without --expose-gc on the command line (the bin shim
 * has none): set the flag, then a fresh context gets the function.
 */
function exposeGC(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
