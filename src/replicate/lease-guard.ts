/**
 * The single-writer guard of one replica. Two lsinit (or Litestream) processes shipping to the
 * same replica overwrite each other's generations and WAL segments without either noticing
 * (Litestream #422, #1119; reference §5); overlapping deploys make that routine. The guard holds a
 * lease object next to `generations/` (replica/lease/types.ts) with a TTL and renews it; a second
 * instance that finds a live lease refuses to start (or waits for it, bounded), an expired lease is
 * taken over with a conditional replace.
 *
 * A holder whose renewals fail (store slow, down, answering 5xx; the process paused) cannot know
 * whether someone took the lease over, so `safetyMs` before anyone else may treat it as expired it
 * becomes `unsure`: nothing is shipped (`held` is false), and it re-reads the lease every
 * `recheckMs`. Still ours (our random holder id; nobody else can have written in between, since
 * every write is conditional), free, or expired and not renewed by anyone: it takes the lease back
 * and replication resumes from the shadow WAL. Only a live lease of another holder makes it `lost`
 * for good. Litestream 0.3 has no lease and catches up after any outage; a lease must not make an
 * outage permanent.
 *
 * Our own deadline runs on the monotonic clock (a stepped wall clock neither stretches nor
 * shortens it); the stored `expiresAt` is wall-clock, because other hosts compare it with theirs.
 * A reader whose clock runs ahead of ours by more than ttl − renew interval can take a live lease
 * over; our next renewal then finds the other holder and stops loudly, so skew costs an unneeded
 * hand-over, never silent corruption.
 */
import { randomBytes } from 'node:crypto';
import { hostname as osHostname } from 'node:os';
import { setTimeout as sleepTimer } from 'node:timers/promises';
import { errorMessage, LsinitError } from '../errors.js';
import { isLeaseConflict, LEASE_VERSION, leaseConflict, type Lease, type LeaseHolder, type LeaseRecord, type LeaseStore } from '../replica/lease/types.js';
import { describeHolder, heldError, lostError, pidAlive, unsureError } from './lease-messages.js';
import { DEFAULT_LEASE_MAX_WAIT_MS, type LeaseGuardOptions, type LeaseHandover, type LeaseState } from './lease-options.js';
import { LeaseTimers, leaseTiming, safetyMs, timed } from './lease-timers.js';

export { DEFAULT_LEASE_MAX_WAIT_MS, DEFAULT_LEASE_TTL_MS, type LeaseGuardOptions, type LeaseState } from './lease-options.js';

/** Conflicting attempts in a row (lost races) before acquire gives up without `wait`. */
const MAX_RACES = 5;
/** Holder ids of the leases guards in this process hold: same host and pid is stale only if not one of these. */
const LIVE_HERE = new Set<string>();

export class LeaseGuard {
  readonly holder: LeaseHolder;
  /** The store this guard writes through; its owner closes it after `release()`. */
  readonly store: LeaseStore;
  readonly ttlMs: number;
  readonly renewIntervalMs: number;
  readonly requestTimeoutMs: number;
  readonly recheckMs: number;
  private readonly o: LeaseGuardOptions;
  private readonly now: () => number;
  private readonly mono: () => number;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private token: string | undefined;
  /** Monotonic time by which our lease runs out unless renewed. */
  private deadline = 0;
  /** The next renewal (or re-read while unsure) and the watchdog. */
  private readonly timers: LeaseTimers;
  private inFlight: Promise<void> = Promise.resolve();
  private failures = 0;
  private lastFailure: string | undefined;
  private corruptSeen: string | undefined;
  state: LeaseState = 'idle';
  /** Why the lease was lost (another live holder), once it was. */
  lostError: LsinitError | undefined;
  /** Why the lease is unconfirmed, while `state` is `unsure`. */
  unsureError: LsinitError | undefined;

  constructor(opts: LeaseGuardOptions) {
    this.o = opts;
    this.store = opts.store;
    const timing = leaseTiming(opts);
    ({ ttlMs: this.ttlMs, renewIntervalMs: this.renewIntervalMs, requestTimeoutMs: this.requestTimeoutMs, recheckMs: this.recheckMs } = timing);
    this.timers = new LeaseTimers(timing, { renew: () => this.renew(), confirm: () => this.confirm(), state: () => this.state, failures: () => this.failures }, opts.timers);
    this.now = opts.now ?? Date.now;
    this.mono = opts.mono ?? (() => performance.now());
    this.sleep = opts.sleep ?? ((ms, signal) => sleepTimer(ms, undefined, signal ? { signal } : undefined));
    this.holder = {
      hostname: opts.hostname ?? osHostname(),
      pid: opts.pid ?? process.pid,
      id: opts.holderId ?? randomBytes(8).toString('hex'),
      startedAt: new Date(this.now()).toISOString(),
    };
  }

  /** Whether we may write now. Checks the deadline too: after a pause (SIGSTOP, a blocked event loop) the watchdog may not have run yet. */
  get held(): boolean {
    if (this.state === 'held' && this.mono() >= this.deadline - safetyMs(this.ttlMs)) {
      this.goUnsure(`it was not renewed in time (${this.lastFailure ?? 'the process or its event loop was paused'})`, undefined);
    }
    return this.state === 'held';
  }

  /** Milliseconds our lease has left unless renewed (monotonic); 0 when not held. */
  get remainingMs(): number {
    return this.state === 'held' ? Math.max(0, this.deadline - this.mono()) : 0;
  }

  /** Take the lease (or throw LSINIT_ERR_LEASE naming the holder), then renew it every interval. */
  async acquire(): Promise<void> {
    if (this.state !== 'idle') throw new LsinitError('LSINIT_ERR_LEASE', `lease guard for ${this.where()} was already used (state ${this.state})`);
    const start = this.mono();
    const deadline = start + (this.o.maxWaitMs ?? DEFAULT_LEASE_MAX_WAIT_MS);
    let races = 0;
    let waitingLogged = false;
    let corruptSeen: string | undefined;
    for (;;) {
      // `signal` aborts waiting only (its sleeps): one attempt at close-time still runs.
      const rec = await this.timed('read', () => this.o.store.read());
      try {
        if (!rec) {
          await this.take((l) => this.o.store.create(l), undefined);
          return;
        }
        const handover = rec.lease.holder.id === this.holder.id ? this.o.handedOver?.() : undefined;
        if (handover && handover.token === rec.token) {
          this.hold(rec.token, this.mono() - Number(process.hrtime.bigint() - handover.writtenAtNs) / 1e6);
          this.o.log?.debug('replica lease taken over from this process\'s other thread, as it wrote it', { replica: this.o.replica, holderId: this.holder.id });
          return;
        }
        if (rec.lease.holder.id === this.holder.id) {
          // Our own write whose response was lost and whose retry hit the precondition, or the
          // lease another thread of this process took under our holder id: renew it at once, so
          // our deadline counts from a write we know the time of.
          await this.take((l) => this.o.store.replace(l, rec.token), undefined, false, this.o.holderId !== undefined);
          return;
        }
        if (rec.corrupt !== undefined) {
          if (corruptSeen !== rec.token) {
            corruptSeen = rec.token;
            this.o.log?.warn('lease object is unreadable; re-reading before taking it over', { replica: this.o.replica, location: this.o.store.location, reason: rec.corrupt });
            await this.sleep(this.o.corruptGraceMs ?? 2000, this.o.signal);
            continue;
          }
          await this.take((l) => this.o.store.replace(l, rec.token), rec);
          return;
        }
        if (this.free(rec)) {
          await this.take((l) => this.o.store.replace(l, rec.token), rec);
          return;
        }
        // A live lease held by someone else.
        const now = this.now();
        const mono = this.mono();
        if (!this.o.wait || mono >= deadline) throw heldError(this.o.store, rec.lease, now, this.o.replica, this.o.wait ? mono - start : undefined);
        if (!waitingLogged) {
          waitingLogged = true;
          this.o.log?.warn('replica lease is held by another instance; waiting for it to be released or to expire', { replica: this.o.replica, ...describeHolder(rec.lease, now) });
        }
        const poll = this.o.pollMs ?? Math.min(5000, Math.floor(this.ttlMs / 3));
        // Wake at the poll period, just after the expiry, or at the deadline, whichever comes first.
        await this.sleep(Math.max(1, Math.min(poll, Date.parse(rec.lease.expiresAt) - now + 50, deadline - mono)), this.o.signal);
      } catch (err) {
        if (!isLeaseConflict(err) || ++races > MAX_RACES) throw err;
        // Lost a race (another instance created or replaced it first): look again.
      }
    }
  }

  /** Expired (wall clock: the holder may be on another host), or left by a dead process on this host. */
  private free(rec: LeaseRecord): boolean {
    return Date.parse(rec.lease.expiresAt) <= this.now() || this.leftHereBefore(rec.lease);
  }

  private leftHereBefore(lease: Lease): boolean {
    if (this.o.sameHostTakeover === false) return false;
    const h = lease.holder;
    if (h.hostname !== this.holder.hostname) return false;
    if (h.pid === this.holder.pid) return !LIVE_HERE.has(h.id);
    return !(this.o.pidAlive ?? pidAlive)(h.pid);
  }

  /** One renewal now. Throws if it failed; a lease that can no longer be confirmed turns `unsure`. */
  renew(): Promise<void> {
    return this.serial(() => this.renewOnce());
  }

  /**
   * While `unsure`: read the lease now and take it back if nobody else holds it (the guard also
   * does this every `recheckMs`). Resolves to whether the lease is held afterwards; never throws.
   */
  confirm(): Promise<boolean> {
    if (this.state === 'held') return Promise.resolve(true);
    return this.serial(() => this.recheck()).then(() => this.held, (err: unknown) => {
      this.lastFailure = errorMessage(err);
      return false;
    });
  }

  /** Stop renewing and delete the lease object if it is (still) ours. */
  async release(): Promise<void> {
    this.timers.stop();
    LIVE_HERE.delete(this.holder.id);
    const was = this.state;
    if (was === 'held') await this.inFlight; // bounded: every store call is timed
    if (this.state === 'idle') this.state = 'released';
    if ((this.state !== 'held' && this.state !== 'unsure') || this.token === undefined) return;
    this.state = 'released';
    try {
      let token = this.token;
      if (was === 'unsure') {
        // The last write's answer may have been lost: ours if the object still names us.
        const rec = await this.timed('read', () => this.o.store.read());
        if (!rec || rec.corrupt !== undefined || rec.lease.holder.id !== this.holder.id) return;
        token = rec.token;
      }
      await this.timed('delete', () => this.o.store.delete(token));
      this.o.log?.info('replica lease released', { replica: this.o.replica, location: this.o.store.location });
    } catch (err) {
      if (!isLeaseConflict(err)) throw err;
      this.o.log?.warn('replica lease was no longer ours at release; left it in place', { replica: this.o.replica, location: this.o.store.location });
    } finally {
      this.token = undefined;
    }
  }

  /** Stop the timers without touching the object (tests, or a crash-like stop). */
  stop(): void {
    this.timers.stop();
    LIVE_HERE.delete(this.holder.id);
  }

  private serial(fn: () => Promise<void>): Promise<void> {
    const p = this.inFlight.then(fn);
    this.inFlight = p.catch(() => {});
    return p;
  }

  private async renewOnce(retried = false): Promise<void> {
    if (this.state !== 'held' || this.token === undefined) {
      throw this.lostError ?? this.unsureError ?? new LsinitError('LSINIT_ERR_LEASE', `lease for ${this.where()} is not held`, { fields: { location: this.o.store.location } });
    }
    const at = this.mono();
    const token = this.token;
    try {
      const next = await this.timed('renew', () => this.o.store.replace(this.lease(), token));
      // The watchdog gave the lease up while this request was out: the re-reads take it back.
      if (this.state !== 'held') throw this.unsureError ?? this.lostError!;
      this.token = next;
      this.setDeadline(at + this.ttlMs);
      this.failures = 0;
      this.lastFailure = undefined;
    } catch (err) {
      if (this.state !== 'held') throw this.lostError ?? this.unsureError ?? err;
      if (isLeaseConflict(err)) {
        // Replaced or deleted by someone else, or our own earlier write landed and only its answer
        // was lost (the retry then fails its precondition): read it back to tell which.
        const cur = await this.timed('read', () => this.o.store.read()).catch(() => undefined);
        if (!retried && cur && cur.corrupt === undefined && cur.lease.holder.id === this.holder.id) {
          this.o.log?.info('lease renewal refused, but the lease still names us (an answer was lost); renewing again', { replica: this.o.replica });
          this.token = cur.token;
          return this.renewOnce(true);
        }
        this.goUnsure(`a renewal was refused (${errorMessage(err)})`, err);
        if (cur) await this.recheck(cur);
        if (this.held) return;
        throw this.lostError ?? this.unsureError!;
      }
      this.failures++;
      this.lastFailure = errorMessage(err);
      // We must stop before anyone else may consider the lease expired.
      if (this.mono() + safetyMs(this.ttlMs) >= this.deadline) {
        this.goUnsure(`it could not be renewed before it expired (${this.lastFailure})`, err);
        throw this.unsureError!;
      }
      throw err;
    }
  }

  /**
   * Decide an unconfirmed lease from what the store holds now (`known`, or a fresh read): another
   * holder's live lease → lost for good; ours, free, expired or unreadable → take it (back). Every
   * write is conditional on the token read, so a concurrent taker wins or loses cleanly.
   */
  private async recheck(known?: LeaseRecord): Promise<void> {
    if (this.state !== 'unsure') return;
    const rec = known ?? (await this.timed('read', () => this.o.store.read()));
    const ours = rec !== undefined && rec.corrupt === undefined && rec.lease.holder.id === this.holder.id;
    if (rec && !ours) {
      if (rec.corrupt !== undefined) {
        // Possibly another instance's create half written (file, sftp): decide at the next re-read.
        if (this.corruptSeen !== rec.token) {
          this.corruptSeen = rec.token;
          return;
        }
      } else if (!this.free(rec)) {
        this.lose(lostError(this.o.store, this.o.replica, 'another instance holds it now', rec, this.now(), this.unsureError));
        return;
      }
    }
    const since = this.unsureSince;
    try {
      await this.take((l) => (rec ? this.o.store.replace(l, rec.token) : this.o.store.create(l)), ours ? undefined : rec, true);
    } catch (err) {
      if (isLeaseConflict(err)) return; // someone wrote in between: the next re-read decides
      throw err;
    }
    this.o.log?.info('replica lease confirmed again; shipping resumes', { replica: this.o.replica, location: this.o.store.location, unconfirmed_ms: Math.round(this.mono() - since) });
    this.o.onRegained?.({ relearn: !ours });
  }

  private unsureSince = 0;

  /** Stop shipping (`held` turns false) and re-read the lease every `recheckMs` until decided. */
  private goUnsure(why: string, cause: unknown): void {
    if (this.state !== 'held') return;
    this.state = 'unsure';
    this.unsureSince = this.mono();
    this.unsureError = unsureError(this.o.store, this.o.replica, why, cause);
    this.timers.stop();
    this.o.log?.warn('replica lease not confirmed: not shipping to this replica until it is read back', { replica: this.o.replica, location: this.o.store.location, error: this.unsureError.message });
    this.o.onUnsure?.(this.unsureError);
    this.timers.recheck();
  }

  /**
   * Record our deadline and arm the watchdog: whatever the renewals are doing (failing, or hanging
   * on a dead connection), shipping stops `safetyMs` before others may treat the lease as expired.
   * Timers run on the monotonic clock, like `deadline`.
   */
  private setDeadline(ms: number): void {
    this.deadline = ms;
    this.timers.watch(Math.max(0, ms - safetyMs(this.ttlMs) - this.mono()), () => {
      this.goUnsure(`it could not be renewed before it expired (${this.lastFailure ?? 'renewal did not answer'})`, undefined);
    });
  }

  private lose(err: LsinitError): void {
    if (this.state !== 'held' && this.state !== 'unsure') return;
    this.state = 'lost';
    this.lostError = err;
    this.unsureError = undefined;
    this.timers.stop();
    LIVE_HERE.delete(this.holder.id);
    this.o.log?.error('replica lease lost: stop writing to this replica', { replica: this.o.replica, location: this.o.store.location, error: err.message });
    this.o.onLost?.(err);
  }

  /** The lease is ours as of `token`, written at monotonic `at`: arm the watchdog and the renewals. */
  private hold(token: string, at: number): void {
    this.token = token;
    this.state = 'held';
    this.unsureError = undefined;
    this.failures = 0;
    this.lastFailure = undefined;
    LIVE_HERE.add(this.holder.id);
    this.setDeadline(at + this.ttlMs);
    this.timers.renewIn(Math.max(0, at + this.renewIntervalMs - this.mono()));
  }

  private written: LeaseHandover | undefined;

  /** Our last write (token, and when: `process.hrtime.bigint()` before it), for the thread that keeps the lease. */
  handover(): LeaseHandover | undefined {
    return this.state === 'held' || this.state === 'idle' ? this.written : undefined;
  }

  /** Write our lease with `write`, read it back, and start renewing. */
  private async take(write: (lease: Lease) => Promise<string>, previous: LeaseRecord | undefined, regain = false, handedOver = false): Promise<void> {
    const at = this.mono();
    const atNs = process.hrtime.bigint();
    const lease = this.lease();
    await this.timed(previous || regain ? 'replace' : 'create', () => write(lease));
    // Read-after-write: a store that ignores conditional headers (some S3-compatibles) shows here
    // whether our write survived a concurrent one.
    const back = await this.timed('read', () => this.o.store.read());
    if (!back || back.lease.holder.id !== this.holder.id) {
      throw leaseConflict(this.o.store, previous ? 'replace' : 'create', 'another instance wrote the lease object right after us');
    }
    // Renew with the token of what we read back (equal to the write's on every store tested).
    this.hold(back.token, at);
    this.written = { token: back.token, writtenAtNs: atNs };
    if (handedOver) this.o.log?.debug('replica lease taken over from this process\'s other thread', { replica: this.o.replica, holderId: this.holder.id });
    else if (!regain) this.o.log?.info('replica lease acquired', { replica: this.o.replica, location: this.o.store.location, expiresAt: lease.expiresAt, holderId: this.holder.id });
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

  /** One store call bounded by `requestTimeoutMs`. */
  private timed<T>(op: string, fn: () => Promise<T>): Promise<T> {
    return timed(this.o.store, op, this.requestTimeoutMs, fn, this.o.timers);
  }

  private lease(): Lease {
    return { holder: this.holder, expiresAt: new Date(this.now() + this.ttlMs).toISOString(), version: LEASE_VERSION };
  }

  private where(): string {
    return this.o.replica ? `replica ${this.o.replica} (${this.o.store.location})` : this.o.store.location;
  }
}
