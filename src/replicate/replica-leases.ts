/**
 * The controller's side of the replicas' single-writer leases (lease-guard.ts holds each one):
 * making a guard per replica, taking them all at start-up (a refusal stops the start), taking a
 * missing one before a write, and what a lease state allows. Failures are recorded on the
 * replica's stats (/healthz, lsinit_replica_up read them, as for a failed sync).
 */
import { errorMessage, LsinitError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { leaseStoreFor } from '../replica/lease/index.js';
import type { Replica } from '../replica/replica.js';
import type { Timers } from '../util/timers.js';
import type { Entry } from './entry.js';
import { LeaseGuard } from './lease-guard.js';
import type { LeaseHandover } from './lease-options.js';

export class ReplicaLeases {
  private readonly acquiring = new Map<LeaseGuard, Promise<void>>();

  /** `timers`: the controller's, for the guards' renewals and watchdogs (which unref them). */
  constructor(private readonly o: { now: () => number; signal: AbortSignal; timers: Timers }) {}

  /**
   * A guard for `r` (undefined with `lease: false`). `holderId` and `handedOver`: the id and the
   * lease another thread of this process wrote under it (early-start.ts). `onRegained`: the lease is held again after
   * a doubt; the replica's error is cleared and, when another instance may have written to it,
   * its position is learnt from the store again before this is called.
   */
  guardFor(r: Replica, log: Logger, holderId: string | undefined, handedOver: () => LeaseHandover | undefined, onRegained: () => void): LeaseGuard | undefined {
    const lc = r.cfg.lease;
    if (!lc) return undefined;
    return new LeaseGuard({
      ...(holderId === undefined ? {} : { holderId, handedOver }),
      store: leaseStoreFor(r.cfg.type, r.cfg.settings),
      replica: r.name,
      ttlMs: lc.ttlMs,
      wait: lc.wait,
      maxWaitMs: lc.maxWaitMs,
      signal: this.o.signal,
      timers: this.o.timers,
      log,
      // The guard has already logged the loss or the doubt (naming the new holder, if any), and
      // `writable()` now skips the replica; metrics and /healthz read the guard's state.
      onLost: (err) => this.failed(r, err.message),
      onUnsure: (err) => this.failed(r, err.message),
      onRegained: ({ relearn }) => {
        r.stats.lastError = undefined;
        // Another instance may have written to the replica meanwhile: learn its position from the store again.
        if (relearn) void r.forgetPosition();
        onRegained();
      },
    });
  }

  /**
   * Take the leases of these databases' replicas before anything is restored or written to them.
   * Held by another instance (or shutdown during a wait): release what this call took and throw,
   * so the process does not start. The store not answering (network, auth, missing bucket) must no
   * more stop the app than a failing sync does: returned (and recorded on the replica) for the
   * caller to log like one; `ensure()` retries the lease before each sync while the replica
   * stays unwritten.
   */
  async acquire(entries: Entry[]): Promise<{ e: Entry; r: Replica; err: unknown }[]> {
    const all = entries.flatMap((e) => [...e.leases].filter(([, g]) => g.state === 'idle').map(([r, g]) => ({ e, r, g })));
    const results = await Promise.allSettled(all.map(({ g }) => this.take(g)));
    const refused = results.find((x): x is PromiseRejectedResult => x.status === 'rejected' && (isLeaseError(x.reason) || (x.reason as Error)?.name === 'AbortError'));
    if (refused) {
      await Promise.all(all.map(({ g }) => g.release().catch(() => {})));
      throw refused.reason;
    }
    const failed: { e: Entry; r: Replica; err: unknown }[] = [];
    results.forEach((x, i) => {
      if (x.status !== 'rejected') return;
      const { e, r } = all[i]!;
      this.failed(r, errorMessage(x.reason));
      failed.push({ e, r, err: x.reason });
    });
    return failed;
  }

  async releaseAll(entries: readonly Entry[]): Promise<void> {
    await Promise.all(entries.flatMap((e) => [...e.leases.values()].filter((g) => g.held).map((g) => g.release().catch(() => {}))));
  }

  /** False unless the replica's lease is held (true for replicas without a lease). */
  writable(e: Entry, r: Replica): boolean {
    const g = e.leases.get(r);
    return g === undefined || g.held;
  }

  /** Lost to another instance or not renewed in time: never written again by this process. */
  lost(e: Entry, r: Replica): boolean {
    return e.leases.get(r)?.state === 'lost';
  }

  /**
   * Before writing: take the lease if start-up could not (store unreachable then, or the database
   * did not open). Throws if held elsewhere. Nothing to ship yet means nothing to take.
   */
  async ensure(e: Entry, r: Replica): Promise<void> {
    const g = e.leases.get(r);
    if (!g || g.held) return;
    if (g.state === 'unsure') throw g.unsureError!;
    if (g.state !== 'idle') throw g.lostError ?? new LsinitError('LSINIT_ERR_LEASE', `replica ${r.name}: lease ${g.state}; not writing to it`);
    // r.sync writes nothing while the database has no position (it reads pos() synchronously next).
    if (!e.db.pos()) return;
    try {
      await this.take(g);
    } catch (err) {
      this.failed(r, errorMessage(err));
      throw err;
    }
  }

  /** One acquisition per guard at a time (start-up and a sync may both ask). */
  private take(g: LeaseGuard): Promise<void> {
    let p = this.acquiring.get(g);
    if (!p) {
      p = g.acquire().finally(() => this.acquiring.delete(g));
      this.acquiring.set(g, p);
    }
    return p;
  }

  private failed(r: Replica, message: string): void {
    r.stats.lastError = message;
    r.stats.lastErrorAt = this.o.now();
  }
}

function isLeaseError(err: unknown): boolean {
  return err instanceof LsinitError && err.code === 'LSINIT_ERR_LEASE';
}
