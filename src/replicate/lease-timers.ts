/**
 * When the lease guard (lease-guard.ts) acts on its own: the periods it derives from the ttl, the
 * next renewal (or, while the lease is unconfirmed, the next re-read), the watchdog that stops
 * shipping before anyone else may treat the lease as expired, and the bound on each store call.
 * Timers run on the monotonic clock, like the guard's deadline, and are all unref'd: the lease must
 * never keep a process alive on its own. They come from an injected `Timers` (Node's by default) so
 * tests drive renewals and the watchdog with a fake clock.
 */
import { LsinitError } from '../errors.js';
import type { LeaseStore } from '../replica/lease/types.js';
import { realTimers, unrefTimer, type TimerHandle, type Timers } from '../util/timers.js';
import { timeoutError } from './lease-messages.js';
import { DEFAULT_LEASE_TTL_MS, type LeaseGuardOptions, type LeaseState } from './lease-options.js';

export interface LeaseTiming {
  ttlMs: number;
  renewIntervalMs: number;
  requestTimeoutMs: number;
  recheckMs: number;
}

/** The guard's periods from its options, defaults derived from the ttl; a renewal not shorter than the ttl is refused. */
export function leaseTiming(o: Pick<LeaseGuardOptions, 'ttlMs' | 'renewIntervalMs' | 'requestTimeoutMs' | 'recheckMs'>): LeaseTiming {
  const ttlMs = o.ttlMs ?? DEFAULT_LEASE_TTL_MS;
  const renewIntervalMs = o.renewIntervalMs ?? Math.max(1, Math.floor(ttlMs / 3));
  if (!(ttlMs > 0) || !(renewIntervalMs > 0) || renewIntervalMs >= ttlMs) {
    throw new LsinitError('LSINIT_ERR_CONFIG', `lease: renew interval (${renewIntervalMs} ms) must be positive and shorter than the ttl (${ttlMs} ms)`, {
      fields: { ttlMs, renewIntervalMs },
    });
  }
  return {
    ttlMs,
    renewIntervalMs,
    requestTimeoutMs: o.requestTimeoutMs ?? Math.max(1000, Math.min(10_000, Math.floor(ttlMs / 6))),
    recheckMs: o.recheckMs ?? Math.max(1000, Math.min(3000, Math.floor(ttlMs / 10))),
  };
}

/** How long before our deadline shipping stops. */
export function safetyMs(ttlMs: number): number {
  return Math.max(1, Math.floor(ttlMs / 6));
}

/** One store call bounded by `ms` (the call itself may still land later). */
export function timed<T>(store: LeaseStore, op: string, ms: number, fn: () => Promise<T>, timers: Timers = realTimers): Promise<T> {
  let t: TimerHandle | undefined;
  return Promise.race([
    fn(),
    new Promise<never>((_, rej) => {
      t = unrefTimer(timers.setTimeout(() => rej(timeoutError(store, op, ms)), ms));
    }),
  ]).finally(() => t && timers.clearTimeout(t));
}

/** What the timers call back into: the guard's renewal and re-read, its state, its renewals failed in a row. */
export interface TimedGuard {
  renew(): Promise<void>;
  confirm(): Promise<boolean>;
  state(): LeaseState;
  failures(): number;
}

export class LeaseTimers {
  /** The next renewal, or the next re-read while unsure: one of them at a time. */
  private timer: TimerHandle | undefined;
  private watchdog: TimerHandle | undefined;

  constructor(private readonly t: LeaseTiming, private readonly g: TimedGuard, private readonly timers: Timers = realTimers) {}

  /** Renew in `ms`, then every renew interval while it succeeds. */
  renewIn(ms: number): void {
    this.set(ms, () => {
      this.g.renew().then(
        () => this.renewIn(this.t.renewIntervalMs),
        () => {
          // Transient failure: retry every 1 s, 2 s, then every ttl / 10 (≤ 3 s with the default
          // ttl), so several attempts fit between the failed renewal and the watchdog.
          if (this.g.state() === 'held') this.renewIn(Math.min(this.t.renewIntervalMs, Math.max(1000, Math.floor(this.t.ttlMs / 10)), 1000 * this.g.failures()));
        },
      );
    });
  }

  /** Re-read every `recheckMs` while unsure, until decided (a lease taken back schedules renewals instead). */
  recheck(): void {
    this.set(this.t.recheckMs, () => {
      void this.g.confirm().then(() => {
        if (this.g.state() === 'unsure' && this.timer === undefined) this.recheck();
      });
    });
  }

  /** Call `expire` in `ms` unless re-armed or stopped first (replaces the previous watchdog). */
  watch(ms: number, expire: () => void): void {
    this.watchdog = this.rearm(this.watchdog, ms, () => {
      this.watchdog = undefined;
      expire();
    });
  }

  stop(): void {
    if (this.timer) this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.watchdog) this.timers.clearTimeout(this.watchdog);
    this.watchdog = undefined;
  }

  private set(ms: number, fn: () => void): void {
    this.timer = this.rearm(this.timer, ms, () => {
      this.timer = undefined;
      fn();
    });
  }

  /** Clear `previous` and start an unref'd timer for `fn` in `ms`. */
  private rearm(previous: TimerHandle | undefined, ms: number, fn: () => void): TimerHandle {
    if (previous) this.timers.clearTimeout(previous);
    return unrefTimer(this.timers.setTimeout(fn, ms));
  }
}
