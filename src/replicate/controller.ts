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
import type { Config } from '../config/types.js';
import { LsinitError, errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { createClient } from '../replica/create.js';
import { Replica } from '../replica/replica.js';
import { restore } from '../restore/index.js';
import { fixMmapThreshold } from '../util/memory.js';
import { DB } from '../sqlite/db.js';
import { processClock } from '../util/clock.js';
import { realTimers, type Timers } from '../util/timers.js';
import { leaseKey } from './early-start.js';
import type { Entry } from './entry.js';
import type { LeaseHandover } from './lease-options.js';
import { MetaLocks } from './meta-lock.js';
import { ReplicaLeases } from './replica-leases.js';
import { finalSyncDB } from './shutdown.js';
import { describeConfig, type ControllerLike, type SyncFailure } from './types.js';
import { Validator } from './validate.js';

const ERROR_LOG_EVERY_MS = 30_000;
/** WAL-index poll period: bounds the lag of a commit after a quiet spell. */
export const POLL_MS = 50;

export class Controller implements ControllerLike {
  readonly entries: Entry[];
  private readonly log: Logger;
  private running = false;
  /** Aborts lease waits when shutdown starts during start-up. */
  private readonly abort = new AbortController();
  /** One process per database (meta-lock.ts); absent when the process took them (init's main thread). */
  private readonly locks: MetaLocks | undefined;
  /** The replicas' leases: taking them, and what their states allow. */
  private readonly leasing: ReplicaLeases;

  private readonly config: Config;
  /** Intervals, lag and last-sync times (util/clock.ts): a stepped wall clock must not stall shipping. */
  private readonly now: () => number;
  /** The wall clock, for the shutdown deadline (epoch ms from the caller). */
  private readonly wallNow: () => number;
  /** Poll, retention, snapshot and validation intervals, and the scheduled ticks. */
  private readonly timers: Timers;

  /**
   * `holderIds`: lease holder ids by `leaseKey(db, replica)`, when another thread of this process
   * takes (or took) the leases first (early-start.ts); absent ones are random. `handovers`: what
   * that thread wrote, filled in before start() (adopted without a second write, lease-options.ts).
   * `now`, `wallNow`, `timers`: the clocks and timers (default: util/clock.ts, Date.now, Node's).
   * `mmapThresholdFixed`: another thread of this process already called fixMmapThreshold.
   */
  constructor(config: Config, log: Logger, opts: { now?: () => number; wallNow?: () => number; timers?: Timers; metaLocked?: boolean; holderIds?: Record<string, string>; handovers?: Record<string, LeaseHandover>; mmapThresholdFixed?: boolean } = {}) {
    // glibc's mmap threshold stays at 128 KiB (util/memory.ts), before any buffer of ours exists:
    // the 1–4 MiB buffers of WAL copies, snapshots and LZ4 blocks are unmapped when freed instead
    // of staying resident in a heap arena.
    if (!opts.mmapThresholdFixed) fixMmapThreshold();
    this.config = config;
    this.log = log;
    this.now = opts.now ?? processClock;
    this.wallNow = opts.wallNow ?? Date.now;
    this.timers = opts.timers ?? realTimers;
    this.leasing = new ReplicaLeases({ now: this.now, signal: this.abort.signal, timers: this.timers });
    this.locks = opts.metaLocked ? undefined : new MetaLocks(config.dbs, { log, signal: this.abort.signal });
    this.entries = config.dbs.map((cfg, di) => {
      const dlog = log.child({ db: cfg.path });
      const db = new DB(cfg, dlog, { now: this.wallNow });
      const replicas = cfg.replicas.map((rc) => new Replica(db.source, rc, createClient(rc), dlog.child({ replica: rc.name }), { now: this.now }));
      const e: Entry = { cfg, db, replicas, log: dlog, timers: [], pendingTick: undefined, lastTickAt: 0, lastErrorLog: new Map(), leases: new Map(), syncFailingSince: undefined, syncError: undefined };
      replicas.forEach((r, ri) => {
        const key = leaseKey(di, ri);
        const g = this.leasing.guardFor(r, dlog.child({ replica: r.name }), opts.holderIds?.[key], () => opts.handovers?.[key], () => this.schedule(e, 0));
        if (g) e.leases.set(r, g);
      });
      return e;
    });
  }

  /** Take the leases (ReplicaLeases.acquire); a store not answering is logged like a failed sync. */
  private async acquireLeases(entries: Entry[]): Promise<void> {
    for (const { e, r, err } of await this.leasing.acquire(entries)) this.replicaError(e, r, err, 'sync');
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
      await this.leasing.releaseAll(this.entries);
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
          await this.leasing.releaseAll(this.entries);
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
      e.timers.push(this.timers.setInterval(() => this.poll(e), Math.max(10, Math.min(POLL_MS, e.cfg.monitorIntervalMs))));
      for (const r of e.replicas) {
        if (r.cfg.retentionMs > 0) e.timers.push(this.timers.setInterval(() => void (this.leasing.writable(e, r) && r.enforceRetention().catch((err) => this.replicaError(e, r, err, 'retention'))), r.cfg.retentionCheckIntervalMs));
        if (r.cfg.snapshotIntervalMs > 0) e.timers.push(this.timers.setInterval(() => void (this.leasing.writable(e, r) && r.maybeSnapshot().catch((err) => this.replicaError(e, r, err, 'snapshot'))), Math.min(r.cfg.snapshotIntervalMs, 1000)));
        if (r.cfg.validationIntervalMs > 0) {
          const v = new Validator({ db: e.db, replica: r, log: e.log.child({ replica: r.name }), syncReplica: () => this.syncReplica(e, r), now: this.now, sleep: (ms) => new Promise<void>((res) => this.timers.setTimeout(res, ms)) });
          this.validators.push(v);
          e.timers.push(this.timers.setInterval(() => void (!this.leasing.lost(e, r) && v.run()), r.cfg.validationIntervalMs));
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
    const due = Math.min(monitorDue, ...e.replicas.filter((r) => !this.leasing.lost(e, r)).map((r) => (r.stats.lastSyncAt ?? 0) + r.cfg.syncIntervalMs));
    if (due <= now || frames >= e.cfg.minCheckpointPageCount) this.tick(e, false);
    else this.schedule(e, due - now);
  }

  private schedule(e: Entry, delayMs: number): void {
    if (!this.running || e.pendingTick) return;
    e.pendingTick = this.timers.setTimeout(() => {
      e.pendingTick = undefined;
      this.tick(e, false);
    }, delayMs);
  }

  /** A sync of the database (`monitor`: Litestream's monitor tick, which may checkpoint), then the replicas that are due. */
  private tick(e: Entry, monitor: boolean): void {
    if (!this.running) return;
    if (e.pendingTick) this.timers.clearTimeout(e.pendingTick);
    e.pendingTick = undefined;
    if (monitor) e.lastTickAt = this.now();
    const changed = this.syncDB(e, monitor);
    const now = this.now();
    let wait = Infinity;
    for (const r of e.replicas) {
      if (this.leasing.lost(e, r)) continue;
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
    if (this.syncing.has(r) || this.leasing.lost(e, r)) return;
    this.syncing.add(r);
    try {
      await this.leasing.ensure(e, r);
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
    const live = e.replicas.filter((r) => !this.leasing.lost(e, r));
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
      for (const t of e.timers) this.timers.clearInterval(t);
      if (e.pendingTick) this.timers.clearTimeout(e.pendingTick);
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
    const shutdown = { deadline: opts.deadline, ...(opts.fast ? { fast: true } : {}), now: this.wallNow, timers: this.timers };
    await Promise.all(this.entries.map((e) => finalSyncDB(e, failures, { ...shutdown, ensureLease: (r) => this.leasing.ensure(e, r) })));
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

function isCode(err: unknown, code: string): boolean {
  return err instanceof LsinitError && err.code === code;
}
