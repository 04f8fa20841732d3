/** Poll `cond` until it holds, or fail after `ms` naming what was awaited (for real servers and children, whose clocks we do not own). */
import { setTimeout as sleep } from 'node:timers/promises';

export async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string, everyMs = 20): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}
