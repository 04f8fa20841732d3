/** The options and states of the lease guard (lease-guard.ts), which re-exports them. */
import type { LsinitError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { LeaseStore } from '../replica/lease/types.js';
import type { Timers } from '../util/timers.js';

export const DEFAULT_LEASE_TTL_MS = 30_000;
export const DEFAULT_LEASE_MAX_WAIT_MS = 5 * 60_000;

export interface LeaseGuardOptions {
  store: LeaseStore;
  /** Replica name for messages and fields. */
  replica?: string;
  /** Lease lifetime from each renewal (default 30 s). */
  ttlMs?: number;
  /** Renewal period (default ttl / 3, i.e. 10 s). */
  renewIntervalMs?: number;
  /**
   * Longest wait for one store call (default ttl / 6, 1–10 s): a store that accepts
   * connections and never answers must not hold a renewal, a start or a shutdown.
   */
  requestTimeoutMs?: number;
  /** Re-read period while the lease is unconfirmed (default ttl / 10, 1–3 s). */
  recheckMs?: number;
  /** Wait for a live lease to be released or to expire instead of refusing at once. */
  wait?: boolean;
  /** Longest total wait with `wait` (default 5 min); then acquire fails like without it. */
  maxWaitMs?: number;
  /** Re-read period while waiting (default min(ttl / 3, 5 s)). */
  pollMs?: number;
  /** How long an unreadable lease must stay unchanged before it counts as abandoned (default 2 s). */
  corruptGraceMs?: number;
  /**
   * Take over at once a live-looking lease left by an earlier process on this host (same
   * hostname, and its pid is ours or no longer running here): a container restarted after a crash
   * or OOM kill must not wait out the ttl (default true). Two containers sharing a hostname in
   * separate pid namespaces defeat this check; the other one then loses its lease loudly.
   */
  sameHostTakeover?: boolean;
  /** Whether a pid runs on this host (default: process.kill(pid, 0)). */
  pidAlive?: (pid: number) => boolean;
  /** Holder identity overrides (tests). */
  hostname?: string;
  pid?: number;
  /**
   * The holder id (default random). Threads of one process share it: the init's main thread takes
   * the lease before the app starts and the replication worker's guard, finding its own id in the
   * store, renews it as its own (early-start.ts). Never shared between processes.
   */
  holderId?: string;
  /**
   * The lease the other thread wrote under `holderId` (its token, and the monotonic process time,
   * `process.hrtime.bigint()`, taken before the write). When the store still holds exactly that, it
   * is adopted as written: no second write before the app's final sync can run; the deadline and
   * the first renewal count from the other thread's write.
   */
  handedOver?: () => LeaseHandover | undefined;
  /** Wall clock (ms): the stored expiry, and other holders' expiries, are wall-clock times. */
  now?: () => number;
  /** Monotonic clock (ms) for our own deadline and waits (default performance.now). */
  mono?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Timers for renewals, re-reads, the watchdog and the bound on each store call (default Node's; always unref'd). */
  timers?: Timers;
  /** Aborts a wait (shutdown during start-up); a single attempt is not affected. */
  signal?: AbortSignal;
  log?: Logger;
  /** Called when a held lease can no longer be confirmed: stop writing until `onRegained`. */
  onUnsure?: (err: LsinitError) => void;
  /**
   * Called when an unconfirmed lease is held again. `relearn`: it was not ours any more when read
   * (free or expired), so another instance may have written to the replica meanwhile.
   */
  onRegained?: (info: { relearn: boolean }) => void;
  /** Called once when another live instance holds the lease; the replica is never written again. */
  onLost?: (err: LsinitError) => void;
}

/** What the thread that took a lease hands to the one that keeps it (`handedOver`). */
export interface LeaseHandover {
  token: string;
  writtenAtNs: bigint;
}

export type LeaseState = 'idle' | 'held' | 'unsure' | 'lost' | 'released';
