/** The lease flags shared by `lsinit replicate` and init mode: -no-lease, -lease-wait, -lease-max-wait. */
import { requireDuration } from '../util/time.js';
import { DEFAULT_LEASE } from './load.js';
import type { Config } from './types.js';

export type LeaseFlags = { [k: string]: string | boolean | string[] | undefined };

export function applyLeaseFlags(config: Config, flags: LeaseFlags): void {
  const off = flags['no-lease'] === true;
  const wait = flags['lease-wait'] === true;
  const mw = typeof flags['lease-max-wait'] === 'string' ? flags['lease-max-wait'] : undefined;
  let maxWaitMs: number | undefined;
  if (mw !== undefined) {
    maxWaitMs = requireDuration(mw, '-lease-max-wait', { min: 0 });
  }
  for (const db of config.dbs) {
    for (const rc of db.replicas) {
      if (off) {
        delete rc.lease;
        continue;
      }
      const base = rc.lease ?? DEFAULT_LEASE;
      if (wait || maxWaitMs !== undefined) rc.lease = { ...base, ...(wait ? { wait: true } : {}), ...(maxWaitMs !== undefined ? { maxWaitMs } : {}) };
    }
  }
}
