/**
 * The single-writer guard of one replica. Two lsinit (or Litestream) processes shipping to the
 * same replica overwrite each other's generations and WAL segments without either noticing
 * (Litestream #422, #1119; reference §5); overlapping deploys make that routine. The guard holds a
 * lease object next to `generations/` (replica/lease/types.ts) with a TTL and renews it; a second
 * instance that finds a live lease refuses to start (or waits for it, bounded), an expired lease is
 * taken over with a conditional replace, and a holder that loses its lease (stolen, or not renewed
 * in time) is told through `onLost` before anyone else can consider it expired.
 *
 * Expiry is judged on wall clocks: a reader whose clock runs ahead of the holder's by more than
 * ttl − renew interval can take a live lease over. The holder's next renew then fails its
 * precondition and it stops loudly, so skew costs an unneeded hand-over, never silent corruption.
 */
import { randomBytes } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import { setTimeout as sleepTimer } from 'node:timers/promises';
import { errorMessage, LsinitError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { isLeaseConflict, LEASE_VERSION, leaseConflict, type Lease, type LeaseHolder, type LeaseRecord, type LeaseStore } from '../replica/lease/types.js';

export const DEFAULT_LEASE_TTL_MS = 30_000;
export const DEFAULT_LEASE_MAX_WAIT_MS = 5 * 60_000;
/** Conflicting attempts in a row (lost races) before acquire gives up without `wait`. */
const MAX_RACES = 5;
/** Holder ids of the leases guards in this process hold: same host and pid is stale only if not one of these. */
const LIVE_HERE = new Set<string>();

export interface LeaseGuardOptions {
  store: LeaseStore;
  /** Replica name for messages and fields. */
  replica?: string;
  /** Lease lifetime from each renewal (default 30 s). */
  ttlMs?: number;
  /** Renewal period (default ttl / 3, i.e. 10 s). */
  renewIntervalMs?: number;
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
  /** Holder identity overrides (tests; the id is always random). */
  hostname?: string;
  pid?: number;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Aborts a wait (shutdown during start-up); a single attempt is not affected. */
  signal?: AbortSignal;
  log?: Logger;
  /** Called once when a held lease is lost; the caller must stop writing to the replica. */
  onLost?: (err: LsinitError) => void;
}

export type LeaseState = 'idle' | 'held' | 'lost' | 'released';

export class LeaseGuard {
  readonly holder: LeaseHolder;
  /** The store this guard writes through; its owner closes it after `release()`. */
  readonly store: LeaseStore;
  readonly ttlMs: number;
  readonly renewIntervalMs: number;
  private readonly o: LeaseGuardOptions;
  private readonly now: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private token: string | undefined;
  private expiresAtMs = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> = Promise.resolve();
  private failures = 0;
  private lastFailure: string | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  state: LeaseState = 'idle';
  /** Why the lease was lost, once it was. */
  lostError: LsinitError | undefined;

  constructor(opts: LeaseGuardOptions) {
    this.o = opts;
    this.store = opts.store;
    this.ttlMs = opts.ttlMs ?? DEFAULT_LEASE_TTL_MS;
    this.renewIntervalMs = opts.renewIntervalMs ?? Math.max(1, Math.floor(this.ttlMs / 3));
    if (!(this.ttlMs > 0) || !(this.renewIntervalMs > 0) || this.renewIntervalMs >= this.ttlMs) {
      throw new LsinitError('LSINIT_ERR_CONFIG', `lease: renew interval (${this.renewIntervalMs} ms) must be positive and shorter than the ttl (${this.ttlMs} ms)`, {
        fields: { ttlMs: this.ttlMs, renewIntervalMs: this.renewIntervalMs },
      });
    }
    this.now = opts.now ?? Date.now;
    this.sleep = opts.sleep ?? ((ms, signal) => sleepTimer(ms, undefined, signal ? { signal } : undefined));
    this.holder = {
      hostname: opts.hostname ?? osHostname(),
      pid: opts.pid ?? process.pid,
      id: randomBytes(8).toString('hex'),
      startedAt: new Date(this.now()).toISOString(),
    };
  }

  get held(): boolean {
    return this.state === 'held';
  }

  /** When our lease runs out if not renewed (epoch ms); 0 when not held. */
  get expiresAt(): number {
    return this.state === 'held' ? this.expiresAtMs : 0;
  }

  /** Take the lease (or throw LSINIT_ERR_LEASE naming the holder), then renew it every interval. */
  async acquire(): Promise<void> {
    if (this.state !== 'idle') throw new LsinitError('LSINIT_ERR_LEASE', `lease guard for ${this.where()} was already used (state ${this.state})`);
    const start = this.now();
    const deadline = start + (this.o.maxWaitMs ?? DEFAULT_LEASE_MAX_WAIT_MS);
    let races = 0;
    let waitingLogged = false;
    let corruptSeen: string | undefined;
    for (;;) {
      // `signal` aborts waiting only (its sleeps): one attempt at close-time still runs.
      const rec = await this.o.store.read();
      try {
        if (!rec) {
          await this.take(() => this.o.store.create(this.lease()), undefined);
          return;
        }
        if (rec.lease.holder.id === this.holder.id) {
          // Our own write whose response was lost and whose retry hit the precondition.
          this.adopt(rec);
          return;
        }
        if (rec.corrupt !== undefined) {
          if (corruptSeen !== rec.token) {
            corruptSeen = rec.token;
            this.o.log?.warn('lease object is unreadable; re-reading before taking it over', { replica: this.o.replica, location: this.o.store.location, reason: rec.corrupt });
            await this.sleep(this.o.corruptGraceMs ?? 2000, this.o.signal);
            continue;
          }
          await this.take(() => this.o.store.replace(this.lease(), rec.token), rec);
          return;
        }
        const exp = Date.parse(rec.lease.expiresAt);
        if (exp <= this.now() || this.leftHereBefore(rec.lease)) {
          await this.take(() => this.o.store.replace(this.lease(), rec.token), rec);
          return;
        }
        // A live lease held by someone else.
        const now = this.now();
        if (!this.o.wait || now >= deadline) throw heldError(this.o.store, rec.lease, now, this.o.replica, this.o.wait ? now - start : undefined);
        if (!waitingLogged) {
          waitingLogged = true;
          this.o.log?.warn('replica lease is held by another instance; waiting for it to be released or to expire', { replica: this.o.replica, ...describeHolder(rec.lease, now) });
        }
        const poll = this.o.pollMs ?? Math.min(5000, Math.floor(this.ttlMs / 3));
        // Wake at the poll period, just after the expiry, or at the deadline, whichever comes first.
        await this.sleep(Math.max(1, Math.min(poll, exp - now + 50, deadline - now)), this.o.signal);
      } catch (err) {
        if (!isLeaseConflict(err) || ++races > MAX_RACES) throw err;
        // Lost a race (another instance created or replaced it first): look again.
      }
    }
  }

  private leftHereBefore(lease: Lease): boolean {
    if (this.o.sameHostTakeover === false) return false;
    const h = lease.holder;
    if (h.hostname !== this.holder.hostname) return false;
    if (h.pid === this.holder.pid) return !LIVE_HERE.has(h.id);
    return !(this.o.pidAlive ?? pidAlive)(h.pid);
  }

  /** One renewal now. Throws (and reports the loss) if the lease is no longer ours. */
  renew(): Promise<void> {
    const p = this.inFlight.then(() => this.renewOnce());
    this.inFlight = p.catch(() => {});
    return p;
  }

  /** Stop renewing and delete the lease object if it is still ours. */
  async release(): Promise<void> {
    this.stopTimer();
    // A lost lease is not ours to delete, and a renewal hanging on a dead connection must not hold up shutdown.
    if (this.state === 'held') await this.inFlight;
    if (this.state !== 'held' || this.token === undefined) {
      if (this.state === 'idle') this.state = 'released';
      return;
    }
    this.state = 'released';
    try {
      await this.o.store.delete(this.token);
      this.o.log?.info('replica lease released', { replica: this.o.replica, location: this.o.store.location });
    } catch (err) {
      if (!isLeaseConflict(err)) throw err;
      this.o.log?.warn('replica lease was no longer ours at release; left it in place', { replica: this.o.replica, location: this.o.store.location });
    } finally {
      this.token = undefined;
    }
  }

  /** Stop the renew timer without touching the object (tests, or a crash-like stop). */
  stop(): void {
    this.stopTimer();
  }

  private async renewOnce(): Promise<void> {
    if (this.state !== 'held' || this.token === undefined) {
      throw this.lostError ?? new LsinitError('LSINIT_ERR_LEASE', `lease for ${this.where()} is not held`, { fields: { location: this.o.store.location } });
    }
    const lease = this.lease();
    try {
      const token = await this.o.store.replace(lease, this.token);
      // The watchdog may have given the lease up while this request hung: stay lost (loud, safe).
      if (this.state !== 'held') throw this.lostError!;
      this.token = token;
      this.setExpiry(Date.parse(lease.expiresAt));
      this.failures = 0;
    } catch (err) {
      if (this.state !== 'held') throw this.lostError ?? err;
      if (isLeaseConflict(err)) {
        // Who has it now, for the message; a failed read must not hide the loss.
        const cur = await this.o.store.read().catch(() => undefined);
        this.lose(lostError(this.o.store, this.o.replica, 'another instance replaced or deleted it', cur, this.now(), err));
        throw this.lostError;
      }
      this.failures++;
      this.lastFailure = errorMessage(err);
      // We must stop before anyone else may consider the lease expired.
      if (this.now() + this.safetyMs() >= this.expiresAtMs) {
        this.lose(lostError(this.o.store, this.o.replica, `it could not be renewed before it expired (${this.lastFailure})`, undefined, this.now(), err));
        throw this.lostError;
      }
      throw err;
    }
  }

  /**
   * Record our expiry and arm the watchdog: whatever the renewals are doing (failing, or hanging
   * on a dead connection), the lease is given up `safetyMs` before others may treat it as expired.
   */
  private setExpiry(ms: number): void {
    this.expiresAtMs = ms;
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      this.watchdog = undefined;
      if (this.state !== 'held') return;
      this.lose(lostError(this.o.store, this.o.replica, `it could not be renewed before it expired (${this.lastFailure ?? 'renewal did not answer'})`, undefined, this.now(), undefined));
    }, Math.max(0, ms - this.safetyMs() - this.now()));
    this.watchdog.unref();
  }

  private safetyMs(): number {
    return Math.max(1, Math.floor(this.ttlMs / 6));
  }

  private lose(err: LsinitError): void {
    if (this.state !== 'held') return;
    this.state = 'lost';
    this.lostError = err;
    this.stopTimer();
    this.o.log?.error('replica lease lost: stop writing to this replica', { replica: this.o.replica, location: this.o.store.location, error: err.message });
    this.o.onLost?.(err);
  }

  /** Write our lease with `write`, read it back, and start renewing. */
  private async take(write: () => Promise<string>, previous: LeaseRecord | undefined): Promise<void> {
    await write();
    // Read-after-write: a store that ignores conditional headers (some S3-compatibles) shows here
    // whether our write survived a concurrent one.
    const back = await this.o.store.read();
    if (!back || back.lease.holder.id !== this.holder.id) {
      throw leaseConflict(this.o.store, previous ? 'replace' : 'create', 'another instance wrote the lease object right after us');
    }
    // Renew with the token of what we read back (equal to the write's on every store tested).
    this.adopt(back);
    if (previous) {
      const msg = previous.corrupt !== undefined
        ? 'took over an unreadable replica lease'
        : Date.parse(previous.lease.expiresAt) > this.now()
          ? 'took over the replica lease left by an earlier process on this host'
          : 'took over an expired replica lease';
      this.o.log?.warn(msg, {
        replica: this.o.replica,
        ...(previous.corrupt === undefined ? { previousHolder: `${previous.lease.holder.hostname} pid ${previous.lease.holder.pid}`, previousExpiresAt: previous.lease.expiresAt } : {}),
      });
    }
  }

  private adopt(rec: LeaseRecord): void {
    this.token = rec.token;
    this.state = 'held';
    LIVE_HERE.add(this.holder.id);
    this.setExpiry(Date.parse(rec.lease.expiresAt));
    this.o.log?.info('replica lease acquired', { replica: this.o.replica, location: this.o.store.location, expiresAt: rec.lease.expiresAt, holderId: this.holder.id });
    this.schedule(this.renewIntervalMs);
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.renew().then(
        () => this.schedule(this.renewIntervalMs),
        () => {
          // Transient failure: retry sooner (1 s, 2 s, 4 s… capped at the interval) until renewed or lost.
          if (this.state === 'held') this.schedule(Math.min(this.renewIntervalMs, 1000 * 2 ** Math.min(this.failures - 1, 5)));
        },
      );
    }, ms);
    // The lease must never keep a process alive on its own.
    this.timer.unref();
  }

  private stopTimer(): void {
    LIVE_HERE.delete(this.holder.id);
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = undefined;
  }

  private lease(): Lease {
    return { holder: this.holder, expiresAt: new Date(this.now() + this.ttlMs).toISOString(), version: LEASE_VERSION };
  }

  private where(): string {
    return this.o.replica ? `replica ${this.o.replica} (${this.o.store.location})` : this.o.store.location;
  }
}

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function describeHolder(lease: Lease, now: number): Record<string, unknown> {
  const h = lease.holder;
  return { holderHost: h.hostname, holderPid: h.pid, holderId: h.id, holderStartedAt: h.startedAt, expiresAt: lease.expiresAt, expiresInMs: Date.parse(lease.expiresAt) - now };
}

function holderText(lease: Lease, now: number): string {
  const h = lease.holder;
  const left = Math.max(0, Math.ceil((Date.parse(lease.expiresAt) - now) / 1000));
  return `host ${h.hostname}, pid ${h.pid}, started ${h.startedAt}, lease expires ${lease.expiresAt} (in ${left} s)`;
}

function heldError(store: LeaseStore, lease: Lease, now: number, replica: string | undefined, waitedMs: number | undefined): LsinitError {
  const what = replica ? `replica ${replica} (${store.location})` : store.location;
  const waited = waitedMs !== undefined ? `gave up after waiting ${Math.round(waitedMs / 1000)} s: ` : '';
  const hint = waitedMs !== undefined
    ? 'the other instance is still renewing it; stop it, or raise the wait limit'
    : 'two writers corrupt each other\'s replica history (Litestream #422); stop the other instance, or let this one wait for the lease (lease: { wait: true } or -lease-wait)';
  return new LsinitError('LSINIT_ERR_LEASE', `${waited}${what} is in use by another lsinit: ${holderText(lease, now)}; ${hint}`, {
    fields: { ...(replica ? { replica } : {}), location: store.location, holder: lease.holder, expiresAt: lease.expiresAt, ...(waitedMs !== undefined ? { waitedMs } : {}) },
  });
}

function lostError(store: LeaseStore, replica: string | undefined, why: string, cur: LeaseRecord | undefined, now: number, cause: unknown): LsinitError {
  const what = replica ? `replica ${replica} (${store.location})` : store.location;
  const by = cur && !cur.corrupt ? `; now held by ${holderText(cur.lease, now)}` : '';
  return new LsinitError('LSINIT_ERR_LEASE', `lost the lease of ${what}: ${why}${by}; replication to it stopped`, {
    cause,
    fields: { ...(replica ? { replica } : {}), location: store.location, lost: true, ...(cur && !cur.corrupt ? { holder: cur.lease.holder, expiresAt: cur.lease.expiresAt } : {}) },
  });
}
