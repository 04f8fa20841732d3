/**
 * After the app exits: descendants it left behind (re-parented to us as PID 1 / subreaper, or still in
 * its process group) get SIGTERM (+ SIGCONT, in case they are stopped), a grace period that is polled,
 * never slept out, then SIGKILL; we wait for them before the final sync so no writer is still running,
 * and so the kernel does not SIGKILL them mid-write when PID 1 exits (tini#180, dumb-init#212).
 */
import type { Logger } from '../log/logger.js';
import { leftovers, listProcs, type ProcInfo } from './proc.js';
import { nodeChildPids } from './reaper.js';

export interface LeftoverOptions {
  log: Logger;
  /** The app's process group (processGroup mode) — its members are leftovers too. */
  pgrp?: number;
  graceMs: number;
  /** Polled: true cuts the grace short (second stop signal). */
  hurry: () => boolean;
  /** Called on every poll so zombies are reaped promptly. */
  reap: () => void;
  pollMs?: number;
  /** How long to wait for SIGKILLed processes to disappear. */
  killWaitMs?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function signalAll(procs: readonly ProcInfo[], sig: NodeJS.Signals, pgrp?: number): void {
  if (pgrp !== undefined) {
    try {
      process.kill(-pgrp, sig);
    } catch {
      /* group already empty */
    }
  }
  for (const p of procs) {
    try {
      process.kill(p.pid, sig);
    } catch {
      /* gone */
    }
  }
}

/** Returns how many processes were still alive when the app exited. */
export async function stopLeftovers(opts: LeftoverOptions): Promise<number> {
  const pollMs = opts.pollMs ?? 20;
  const find = () => leftovers(listProcs(), process.pid, nodeChildPids(), opts.pgrp);
  const waitGone = async (ms: number, hurry: () => boolean): Promise<ProcInfo[]> => {
    const until = performance.now() + ms;
    for (;;) {
      opts.reap();
      const left = find();
      if (left.length === 0 || performance.now() >= until || hurry()) return left;
      await sleep(pollMs);
    }
  };

  const initial = find();
  if (initial.length === 0) return 0;
  const pids = initial.map((p) => p.pid);
  let left = initial;
  if (opts.graceMs > 0 && !opts.hurry()) {
    opts.log.info('terminating processes the app left behind', { count: pids.length, pids: pids.join(','), grace_ms: opts.graceMs });
    signalAll(left, 'SIGTERM', opts.pgrp);
    signalAll(left, 'SIGCONT', opts.pgrp);
    left = await waitGone(opts.graceMs, opts.hurry);
  }
  if (left.length > 0) {
    opts.log.warn('killing processes the app left behind', { count: left.length, pids: left.map((p) => p.pid).join(',') });
    signalAll(left, 'SIGKILL', opts.pgrp);
    left = await waitGone(opts.killWaitMs ?? 1000, () => false);
    if (left.length > 0) opts.log.error('processes survived SIGKILL', { pids: left.map((p) => p.pid).join(',') });
  }
  return initial.length;
}
