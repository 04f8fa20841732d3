/**
 * Runs replication for every configured database: monitors, replica syncs on their interval,
 * snapshots, retention, restore-if-missing and the final sync. Implements ControllerLike for
 * the init supervisor and backs `lsinit replicate`.
 *
 * Lag: besides Litestream's monitor tick (a full sync every monitor-interval), the WAL index is
 * polled every POLL_MS (one 96-byte read, DB.walAdvanced). New commits are copied to the shadow
 * WAL and shipped as soon as a replica's sync interval since its last upload allows:
 * commit → object ≤ max(POLL_MS, sync-interval) + upload time. Under a write burst that is one copy
 * per sync interval (Litestream: one per monitor interval), not one per commit.
 *
 * No directory watch: an armed inotify watch makes every write(2) of the app queue an event,
 * which cost a default-settings app a third of its write rate (bench/throughput-floor.ts, W).
 */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config, DBConfig } from '../config/types.js';
import { LsinitError, errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { createClient } from '../replica/create.js';
import { leaseStoreFor } from '../replica/lease/index.js';
import { Replica } from '../replica/replica.js';
import { restore } from '../restore/index.js';
import { fixMmapThreshold } from '../util/memory.js';
import { DB } from '../sqlite/db.js';
import { processClock } from '../util/clock.js';
import { leaseKey } from './early-start.js';
import { finalSync } from './final-sync.js';
import { LeaseGuard } from './lease-guard.js';
import type { LeaseHandover } from './lease-options.js';
import { MetaLocks } from './meta-lock.js';
import { describeConfig, type ControllerLike, type SyncFailure } from './types.js';
import { Validator } from './validate.js';

const ERROR_LOG_EVERY_MS = 30_000;
/** WAL-index poll period: bounds the lag of a commit after a quiet spell. */
export const POLL_MS = 50;

interface Entry {
  cfg: DBConfig;
  db: DB;
  replicas: Replica[];
  log: Logger;
  timers: NodeJS.Timeout[];
  pendingTick: NodeJS.Timeout | undefined;
  /** When the last sync of the database (copy to the shadow WAL) ran. */
  lastTickAt: number;
  lastErrorLog: Map<string, number>;
  /** Since when every shadow WAL sync failed (undefined after a success), and the last error: /healthz. */
  syncFailingSince: number | undefined;
  syncError: string | undefined;
  /** Single-writer lease per replica (absent for replicas with `lease: false`). */
  leases: Map<Replica, LeaseGuard>;
}

export class Controller implements ControllerLike {
  readonly entries: Entry[];
  private readonly log: Logger;
  private running = false;
  /** Aborts lease waits when shutdown starts during start-up. */
  private readonly abort = new AbortController();
  /** One process per database (meta-lock.ts); absent when the process took them (init's main thread). */
  private readonly locks: MetaLocks | undefined;

  private readonly config: Config;
  /** Intervals, lag and last-sync times (util/clock.ts): a stepped wall clock must not stall shipping. */
  private readonly now: () => number;

  /**
   * glibc's mmap threshold stays at 128 KiB (util/memory.ts): the 1–4 MiB buffers of WAL copies
   * and LZ4 blocks are unmapped when freed instead of staying resident in a heap arena.
   */
  private static readonly mmapFixed = fixMmapThreshold();

  /**
   * `holderIds`: lease holder ids by `leaseKey(db, replica)`, when another thread of this process
   * takes (or took) the leases first (early-start.ts); absent ones are random. `handovers`: what
   * that thread wrote, filled in before start() (adopted without a second write, lease-options.ts).
   */
  constructor(config: Config, log: Logger, opts: { now?: () => number; metaLocked?: boolean; holderIds?: Record<string, string>; handovers?: Record<string, LeaseHandover> } = {}) {
    this.config = config;
    this.log = log;
    this.now = opts.now ?? processClock;
    this.locks = opts.metaLocked ? undefined : new MetaLocks(config.dbs, { log, signal: this.abort.signal });
    this.entries = config.dbs.map((cfg, di) => {
      const dlog = log.child({ db: cfg.path });
      const db = new DB(cfg, dlog);
      const replicas = cfg.replicas.map((rc) => new Replica(db.source, rc, createClient(rc), dlog.child({ replica: rc.name }), { now: this.now }));
      const e: Entry = { cfg, db, replicas, log: dlog, timers: [], pendingTick: undefined, lastTickAt: 0, lastErrorLog: new Map(), leases: new Map(), syncFailingSince: undefined, syncError: undefined };
      replicas.forEach((r, ri) => {
        const lc = r.cfg.lease;
        if (!lc) return;
        const key = leaseKey(di, ri);
        const holderId = opts.holderIds?.[key];
        e.leases.set(r, new LeaseGuard({
          ...(holderId === undefined ? {} : { holderId, handedOver: () => opts.handovers?.[key] }),
          store: leaseStoreFor(r.cfg.type, r.cfg.settings),
          replica: r.name,
          ttlMs: lc.ttlMs,
          wait: lc.wait,
          maxWaitMs: lc.maxWaitMs,
          signal: this.abort.signal,
          log: dlog.child({ replica: r.name }),
          onLost: (err) => this.leaseLost(r, err),
          onUnsure: (err) => this.leaseLost(r, err),
          onRegained: ({ relearn }) => {
            r.stats.lastError = undefined;
            // Another instance may have written to the replica meanwhile: learn its position from the store again.
            if (relearn) void r.forgetPosition();
            this.schedule(e, 0);
          },
        }));
      });
      return e;
    });
  }

  /**
   * Take the leases of these databases' replicas before anything is restored or written to them.
   * Held by another instance (or shutdown during a wait): release what this call took and throw,
   * so the process does not start. The store not answering (network, auth, missing bucket) must no
   * more stop the app than a failing sync does: logged like one, and `syncReplica` retries the
   * lease before each attempt while the replica stays unwritten.
   */
  private async acquireLeases(entries: Entry[]): Promise<void> {
    const all = entries.flatMap((e) => [...e.leases].filter(([, g]) => g.state === 'idle').map(([r, g]) => ({ e, r, g })));
    const results = await Promise.allSettled(all.map(({ g }) => this.take(g)));
    const refused = results.find((x): x is PromiseRejectedResult => x.status === 'rejected' && (isCode(x.reason, 'LSINIT_ERR_LEASE') || (x.reason as Error)?.name === 'AbortError'));
    if (refused) {
      await Promise.all(all.map(({ g }) => g.release().catch(() => {})));
      throw refused.reason;
    }
    results.forEach((x, i) => {
      if (x.status === 'rejected') this.leaseError(all[i]!.e, all[i]!.r, x.reason);
    });
  }

  private async releaseLeases(): Promise<void> {
    await Promise.all(this.entries.flatMap((e) => [...e.leases.values()].filter((g) => g.held).map((g) => g.release().catch(() => {}))));
  }

  private acquiring = new Map<LeaseGuard, Promise<void>>();

  /** One acquisition per guard at a time (start-up and a sync may both ask). */
  private take(g: LeaseGuard): Promise<void> {
    let p = this.acquiring.get(g);
    if (!p) {
      p = g.acquire().finally(() => this.acquiring.delete(g));
      this.acquiring.set(g, p);
    }
    return p;
  }

  private leaseError(e: Entry, r: Replica, err: unknown): void {
    // /healthz and lsinit_replica_up read these, as for a failed sync.
    r.stats.lastError = errorMessage(err);
    r.stats.lastErrorAt = this.now();
    this.replicaError(e, r, err, 'sync');
  }

  /** False unless the replica's lease is held (true for replicas without a lease). */
  private writable(e: Entry, r: Replica): boolean {
    const g = e.leases.get(r);
    return g === undefined || g.held;
  }

  /** Lost to another instance or not renewed in time: never written again by this process. */
  private lost(e: Entry, r: Replica): boolean {
    return e.leases.get(r)?.state === 'lost';
  }

  /**
   * Before writing: take the lease if start-up could not (store unreachable then, or the database
   * did not open). Throws if held elsewhere. Nothing to ship yet means nothing to take.
   */
  private async ensureLease(e: Entry, r: Replica): Promise<void> {
    const g = e.leases.get(r);
    if (!g || g.held) return;
    if (g.state === 'unsure') throw g.unsureError!;
    if (g.state !== 'idle') throw g.lostError ?? new LsinitError('LSINIT_ERR_LEASE', `replica ${r.name}: lease ${g.state}; not writing to it`);
    // r.sync writes nothing while the database has no position (it reads pos() synchronously next).
    if (!e.db.pos()) return;
    try {
      await this.take(g);
    } catch (err) {
      r.stats.lastError = errorMessage(err);
      r.stats.lastErrorAt = this.now();
      throw err;
    }
  }

  /**
   * The guard has already logged the loss or the doubt (naming the new holder, if any), and
   * `writable()` now skips the replica; metrics and /healthz read the guard's state.
   */
  private leaseLost(r: Replica, err: LsinitError): void {
    r.stats.lastError = err.message;
    r.stats.lastErrorAt = this.now();
  }

  describe(): { db: string; replicas: string[] }[] {
    return describeConfig(this.config);
  }

  async restoreMissing(): Promise<void> {
    await this.locks?.acquire();
    // Only databases about to be restored: with `wait`, the restore then sees the old instance's final sync.
    await this.acquireLeases(this.entries.filter((e) => e.replicas.length > 0 && !existsSync(e.cfg.path) && existsSync(dirname(e.cfg.path))));
    try {
      await this.restoreMissingUnderLease();
    } catch (err) {
      // The app will not start (supervisor): hand the replicas back now rather than at expiry.
      await this.releaseLeases();
      throw err;
    }
  }

  private async restoreMissingUnderLease(): Promise<void> {
    for (const e of this.entries) {
      if (existsSync(e.cfg.path)) {
        e.log.info('database exists, not restoring');
        continue;
      }
      if (e.replicas.length === 0) continue;
      const outcome = await restore({
        output: e.cfg.path,
        replicas: e.replicas.map((r) => ({ name: r.name, client: r.client })),
        ifDBNotExists: true,
        ifReplicaExists: true,
        log: e.log,
      });
      if (outcome.status === 'no-backups') e.log.info('no backup found on any replica; the app starts with an empty database');
      else if (outcome.status === 'restored') e.log.info('database restored', { replica: outcome.replica, generation: outcome.generation, size: outcome.result.size });
    }
  }

  /** The running start(), which close() lets settle first (its leases and timers are then known). */
  private starting: Promise<void> | undefined;

  /**
   * Open every database (read lock, shadow WAL copy: from then on nothing committed is lost) and
   * take the leases; the first sync to each replica is started, not awaited. The app need not
   * wait for a store: its data is protected once the shadow WAL holds it, and a store that is slow
   * or hangs must not keep the app down (later ticks and the final sync ship everything).
   */
  start(): Promise<void> {
    this.starting = this.startInner();
    return this.starting;
  }

  private async startInner(): Promise<void> {
    this.running = true;
    // A database that cannot be replicated at all (missing directory, not SQLite) is fatal at
    // start: better no app than an app whose data is not protected. Checked reading only the
    // header, so bad input writes nothing, not even a lock or a lease.
    for (const e of this.entries) {
      try {
        e.db.precheck();
      } catch (err) {
        if (isCode(err, 'LSINIT_ERR_DB')) throw err;
      }
    }
    // Nothing opens, syncs or checkpoints a database before this process owns its meta directory
    // and the leases of its replicas: a refused second instance leaves the running one untouched.
    await this.locks?.acquire();
    await this.acquireLeases(this.entries);
    for (const e of this.entries) {
      // Opening takes the read lock and copies the WAL: from here on nothing committed is lost.
      try {
        e.db.sync();
      } catch (err) {
        if (isCode(err, 'LSINIT_ERR_DB')) {
          // Cannot use WAL mode, cannot open: hand the replicas back rather than at expiry.
          await this.releaseLeases();
          throw err;
        }
        e.syncFailingSince ??= this.now();
        e.syncError = errorMessage(err);
        this.rateLimited(e, 'db', () => e.log.error('sync failed', { error: errorMessage(err) }));
      }
    }
    for (const e of this.entries) {
      if (!this.running) return; // close() began while the leases were taken
      for (const r of e.replicas) void this.syncReplica(e, r);
      e.timers.push(setInterval(() => this.poll(e), Math.max(10, Math.min(POLL_MS, e.cfg.monitorIntervalMs))));
      for (const r of e.replicas) {
        if (r.cfg.retentionMs > 0) e.timers.push(setInterval(() => void (this.writable(e, r) && r.enforceRetention().catch((err) => this.replicaError(e, r, err, 'retention'))), r.cfg.retentionCheckIntervalMs));
        if (r.cfg.snapshotIntervalMs > 0) e.timers.push(setInterval(() => void (this.writable(e, r) && r.maybeSnapshot().catch((err) => this.replicaError(e, r, err, 'snapshot'))), Math.min(r.cfg.snapshotIntervalMs, 1000)));
        if (r.cfg.validationIntervalMs > 0) {
          const v = new Validator({ db: e.db, replica: r, log: e.log.child({ replica: r.name }), syncReplica: () => this.syncReplica(e, r) });
          this.validators.push(v);
          e.timers.push(setInterval(() => void (!this.lost(e, r) && v.run()), r.cfg.validationIntervalMs));
        }
      }
    }
  }

  /**
   * Between syncs: the monitor tick once monitor-interval has passed since the last one (the only
   * sync that checkpoints, as Litestream's DB.Sync: see DB.maybeCheckpoint); else, when the app
   * committed, a copy to the shadow WAL as soon as a replica may ship again, or at once when the
   * WAL grew by min-checkpoint-page-count pages (a copy only, so one sync never has a whole
   * interval of a fast writer's WAL to copy; it takes no lock the app could notice).
   */
  private poll(e: Entry): void {
    if (!this.running) return;
    const now = this.now();
    const monitorDue = e.lastTickAt + e.cfg.monitorIntervalMs;
    if (now >= monitorDue) return this.tick(e, true);
    let frames = 0;
    try {
      frames = e.db.newFrames();
    } catch {
      // Unreadable now: the monitor tick retries and logs.
    }
    if (frames === 0) return;
    const due = Math.min(monitorDue, ...e.replicas.filter((r) => !this.lost(e, r)).map((r) => (r.stats.lastSyncAt ?? 0) + r.cfg.syncIntervalMs));
    if (due <= now || frames >= e.cfg.minCheckpointPageCount) this.tick(e, false);
    else this.schedule(e, due - now);
  }

  private schedule(e: Entry, delayMs: number): void {
    if (!this.running || e.pendingTick) return;
    e.pendingTick = setTimeout(() => {
      e.pendingTick = undefined;
      this.tick(e, false);
    }, delayMs);
  }

  /** A sync of the database (`monitor`: Litestream's monitor tick, which may checkpoint), then the replicas that are due. */
  private tick(e: Entry, monitor: boolean): void {
    if (!this.running) return;
    if (e.pendingTick) clearTimeout(e.pendingTick);
    e.pendingTick = undefined;
    if (monitor) e.lastTickAt = this.now();
    const changed = this.syncDB(e, monitor);
    const now = this.now();
    let wait = Infinity;
    for (const r of e.replicas) {
      if (this.lost(e, r)) continue;
      if (changed && r.stats.pendingSince === undefined) r.stats.pendingSince = now;
      if (!r.behind() && !(changed && r.pos === undefined)) continue;
      const due = (r.stats.lastSyncAt ?? 0) + r.cfg.syncIntervalMs;
      // After a failure, wait a sync interval before trying again.
      const errDue = (r.stats.lastErrorAt ?? 0) + r.cfg.syncIntervalMs;
      const at = Math.max(due, r.stats.lastError ? errDue : 0);
      if (at <= now) void this.syncReplica(e, r);
      else wait = Math.min(wait, at - now);
    }
    if (wait !== Infinity) this.schedule(e, wait);
  }

  private syncing = new WeakSet<Replica>();
  private readonly validators: Validator[] = [];

  private async syncReplica(e: Entry, r: Replica, opts: { fast?: boolean } = {}): Promise<void> {
    if (this.syncing.has(r) || this.lost(e, r)) return;
    this.syncing.add(r);
    try {
      await this.ensureLease(e, r);
      await r.sync(opts);
    } catch (err) {
      this.replicaError(e, r, err, 'sync');
    } finally {
      this.syncing.delete(r);
    }
  }

  /**
   * The lowest shadow WAL index every replica still needs, for the database's cleanup. A replica
   * that lost its lease is never written again: it must not hold shadow WAL back.
   */
  private shipped(e: Entry): { generation: string; index: number } | undefined {
    const gen = e.db.generation;
    const live = e.replicas.filter((r) => !this.lost(e, r));
    // Every replica lost (or none, which config refuses): keep all shadow WAL (nothing ships it,
    // but nothing is lost either). Math.min() of nothing is Infinity, which would delete the
    // current shadow WAL and start a new generation on every tick.
    if (!gen || live.length === 0) return undefined;
    return { generation: gen, index: Math.min(...live.map((r) => (r.pos?.generation === gen ? r.pos.index : 0))) };
  }

  private syncDB(e: Entry, checkpoint: boolean): boolean {
    try {
      const changed = e.db.sync(this.shipped(e), { checkpoint });
      e.syncFailingSince = undefined;
      return changed;
    } catch (err) {
      e.syncFailingSince ??= this.now();
      e.syncError = errorMessage(err);
      this.rateLimited(e, 'db', () => e.log.error('sync failed', { error: errorMessage(err) }));
      return false;
    }
  }

  private replicaError(e: Entry, r: Replica, err: unknown, what: string): void {
    this.rateLimited(e, `${r.name}/${what}`, () => e.log.error(`replica ${what} failed`, { replica: r.name, url: r.cfg.display, error: errorMessage(err) }));
  }

  private rateLimited(e: Entry, key: string, fn: () => void): void {
    const last = e.lastErrorLog.get(key) ?? 0;
    if (this.now() - last >= ERROR_LOG_EVERY_MS) {
      e.lastErrorLog.set(key, this.now());
      fn();
    }
  }

  /** Stop the loops, then the final WAL sync to every replica, within the deadline. */
  async close(opts: { deadline: number; fast?: boolean }): Promise<{ failures: SyncFailure[] }> {
    this.running = false;
    this.abort.abort();
    // A start that failed (refused, or stopped while waiting for the lock or a lease) handed its
    // leases back and opened nothing to sync: no final sync, which would open the databases now.
    let startError: unknown;
    const startFailed = await this.starting?.then(() => false, (err: unknown) => ((startError = err), true));
    const failures: SyncFailure[] = [];
    for (const e of this.entries) {
      for (const t of e.timers) clearInterval(t);
      if (e.pendingTick) clearTimeout(e.pendingTick);
    }
    // Refused (or stopped while waiting for the lock): the databases belong to another process.
    if (this.locks && !this.locks.held) return { failures };
    if (startFailed) {
      this.locks?.release();
      // Stopped while waiting is what was asked for; a refused start is a failure to report (the
      // init's app may have run meanwhile, unprotected).
      if ((startError as Error | undefined)?.name === 'AbortError') return { failures };
      return { failures: this.entries.map((e) => ({ db: e.cfg.path, replica: '(replication)', error: `replication did not start: ${errorMessage(startError)}` })) };
    }
    await Promise.all(this.entries.map(async (e) => {
      try {
        e.db.sync();
      } catch (err) {
        failures.push({ db: e.cfg.path, replica: '(local shadow WAL)', error: errorMessage(err) });
        return;
      }
      await Promise.all(e.replicas.map(async (r) => {
        const guard = e.leases.get(r);
        const { settled, error } = await finalSync(r, guard, { deadline: opts.deadline, ...(opts.fast ? { fast: true } : {}), ensureLease: () => this.ensureLease(e, r) });
        if (error === undefined) {
          e.log.info('final sync done', { replica: r.name, position: r.pos ? `${r.pos.generation}/${r.pos.index.toString(16).padStart(8, '0')}:${r.pos.offset}` : undefined });
        } else {
          failures.push({ db: e.cfg.path, replica: `${r.name} (${r.cfg.display})`, error: errorMessage(error) });
        }
        // Hand the replica over only once nothing of ours is in flight; a sync cut off by the
        // deadline keeps the lease until it expires (ttl), so the next instance cannot overlap it.
        if (guard && settled) {
          await withDeadline(guard.release(), Math.max(250, opts.deadline - Date.now()), 'lease release timed out').catch((err) =>
            e.log.warn('replica lease not released; the next instance takes it over when it expires', { replica: r.name, error: errorMessage(err) }));
        } else if (guard) {
          guard.stop();
        }
        // Bounded too: an SFTP store still dialling a server that never answers waits out its dial timeout (30 s).
        if (guard) await withDeadline(guard.store.close(), Math.max(250, opts.deadline - Date.now()), 'lease store close timed out').catch(() => {});
      }));
      e.db.stop();
    }));
    for (const v of this.validators) v.stop();
    this.locks?.release();
    return { failures };
  }

  /** For in-process tests: close SQLite connections and clients. */
  async dispose(): Promise<void> {
    for (const v of this.validators) v.close();
    for (const e of this.entries) {
      e.db.closeConnections();
      await Promise.all(e.replicas.map((r) => r.client.close().catch(() => {})));
      for (const g of e.leases.values()) {
        g.stop();
        await g.store.close().catch(() => {});
      }
    }
    this.locks?.release();
  }
}

function withDeadline<T>(p: Promise<T>, ms: number, msg: string): Promise<T> {
  if (ms <= 0) return Promise.reject(new Error(msg));
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(msg)), ms)))]).finally(() => clearTimeout(t));
}

function isCode(err: unknown, code: string): boolean {
  return err instanceof LsinitError && err.code === code;
}
