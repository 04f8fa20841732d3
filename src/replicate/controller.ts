/**
 * Runs replication for every configured database: monitors, replica syncs on their interval,
 * snapshots, retention, restore-if-missing and the final sync. Implements ControllerLike for
 * the init supervisor and backs `lsinit replicate`.
 *
 * Lag: besides Litestream's fixed monitor tick, the database directory is watched, so a commit
 * is copied to the shadow WAL at once and shipped as soon as the replica's sync interval since
 * its last upload allows: commit → object ≤ sync-interval + upload time.
 */
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Config, DBConfig } from '../config/types.js';
import { LsinitError, errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { createClient } from '../replica/create.js';
import { Replica } from '../replica/replica.js';
import { restore } from '../restore/index.js';
import { DB } from '../sqlite/db.js';
import type { ControllerLike, SyncFailure } from './types.js';

const ERROR_LOG_EVERY_MS = 30_000;
const WATCH_BATCH_MS = 50;

interface Entry {
  cfg: DBConfig;
  db: DB;
  replicas: Replica[];
  log: Logger;
  timers: NodeJS.Timeout[];
  watcher: FSWatcher | undefined;
  pendingTick: NodeJS.Timeout | undefined;
  lastErrorLog: Map<string, number>;
}

export class Controller implements ControllerLike {
  readonly entries: Entry[];
  private readonly log: Logger;
  private running = false;

  constructor(config: Config, log: Logger) {
    this.log = log;
    this.entries = config.dbs.map((cfg) => {
      const dlog = log.child({ db: cfg.path });
      const db = new DB(cfg, dlog);
      const replicas = cfg.replicas.map((rc) => new Replica(db, rc, createClient(rc), dlog.child({ replica: rc.name })));
      db.minReplicaIndex = (gen) => Math.min(...replicas.map((r) => (r.pos?.generation === gen ? r.pos.index : 0)));
      return { cfg, db, replicas, log: dlog, timers: [], watcher: undefined, pendingTick: undefined, lastErrorLog: new Map() };
    });
  }

  describe(): { db: string; replicas: string[] }[] {
    return this.entries.map((e) => ({ db: e.cfg.path, replicas: e.cfg.replicas.map((r) => `${r.name}=${r.display}`) }));
  }

  async restoreMissing(): Promise<void> {
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

  async start(): Promise<void> {
    this.running = true;
    for (const e of this.entries) {
      // Opening takes the read lock and copies the WAL: from here on nothing committed is lost.
      // A database that cannot be replicated at all (missing directory, not SQLite, cannot use
      // WAL mode) is fatal at start: better no app than an app whose data is not protected.
      try {
        e.db.sync();
      } catch (err) {
        if (err instanceof LsinitError && err.code === 'LSINIT_ERR_DB') throw err;
        this.rateLimited(e, 'db', () => e.log.error('sync failed', { error: errorMessage(err) }));
      }
      await Promise.all(e.replicas.map((r) => this.syncReplica(e, r)));
      e.timers.push(setInterval(() => this.tick(e), Math.max(10, e.cfg.monitorIntervalMs)));
      this.watch(e);
      for (const r of e.replicas) {
        if (r.cfg.retentionMs > 0) e.timers.push(setInterval(() => void r.enforceRetention().catch((err) => this.replicaError(e, r, err, 'retention')), r.cfg.retentionCheckIntervalMs));
        if (r.cfg.snapshotIntervalMs > 0) e.timers.push(setInterval(() => void r.maybeSnapshot().catch((err) => this.replicaError(e, r, err, 'snapshot')), Math.min(r.cfg.snapshotIntervalMs, 1000)));
        if (r.cfg.validationIntervalMs > 0) e.log.warn('validation-interval is accepted but not implemented by lsinit yet; restore tests cover it', { replica: r.name });
      }
    }
  }

  private watch(e: Entry): void {
    const base = basename(e.cfg.path);
    try {
      e.watcher = watch(dirname(e.cfg.path), { persistent: false }, (_ev, name) => {
        if (name !== `${base}-wal` && name !== base) return;
        // Copy to the shadow WAL (and maybe checkpoint) at most every WATCH_BATCH_MS under a
        // write burst, and ship as soon as a replica's sync interval allows. One sync per commit
        // would cost the app CPU on small machines; one per monitor tick would let the WAL grow.
        const due = Math.min(...e.replicas.map((r) => (r.stats.lastSyncAt ?? 0) + r.cfg.syncIntervalMs));
        this.schedule(e, Math.max(0, Math.min(WATCH_BATCH_MS, due - Date.now())));
      });
      e.watcher.on('error', () => {});
    } catch {
      e.watcher = undefined; // the monitor interval still drives syncs
    }
  }

  private schedule(e: Entry, delayMs: number): void {
    if (!this.running || e.pendingTick) return;
    e.pendingTick = setTimeout(() => {
      e.pendingTick = undefined;
      this.tick(e);
    }, delayMs);
  }

  private tick(e: Entry): void {
    if (!this.running) return;
    const changed = this.syncDB(e);
    const now = Date.now();
    let wait = Infinity;
    for (const r of e.replicas) {
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

  private async syncReplica(e: Entry, r: Replica, opts: { fast?: boolean } = {}): Promise<void> {
    if (this.syncing.has(r)) return;
    this.syncing.add(r);
    try {
      await r.sync(opts);
    } catch (err) {
      this.replicaError(e, r, err, 'sync');
    } finally {
      this.syncing.delete(r);
    }
  }

  private syncDB(e: Entry): boolean {
    try {
      return e.db.sync();
    } catch (err) {
      this.rateLimited(e, 'db', () => e.log.error('sync failed', { error: errorMessage(err) }));
      return false;
    }
  }

  private replicaError(e: Entry, r: Replica, err: unknown, what: string): void {
    this.rateLimited(e, `${r.name}/${what}`, () => e.log.error(`replica ${what} failed`, { replica: r.name, url: r.cfg.display, error: errorMessage(err) }));
  }

  private rateLimited(e: Entry, key: string, fn: () => void): void {
    const last = e.lastErrorLog.get(key) ?? 0;
    if (Date.now() - last >= ERROR_LOG_EVERY_MS) {
      e.lastErrorLog.set(key, Date.now());
      fn();
    }
  }

  /** Stop the loops, then the final WAL sync to every replica, within the deadline. */
  async close(opts: { deadline: number; fast?: boolean }): Promise<{ failures: SyncFailure[] }> {
    this.running = false;
    const failures: SyncFailure[] = [];
    for (const e of this.entries) {
      for (const t of e.timers) clearInterval(t);
      if (e.pendingTick) clearTimeout(e.pendingTick);
      e.watcher?.close();
    }
    await Promise.all(this.entries.map(async (e) => {
      try {
        e.db.sync();
      } catch (err) {
        failures.push({ db: e.cfg.path, replica: '(local shadow WAL)', error: errorMessage(err) });
        return;
      }
      await Promise.all(e.replicas.map(async (r) => {
        const left = opts.deadline - Date.now();
        try {
          await withDeadline(r.idle().then(() => r.sync(opts.fast ? { fast: true } : {})), left, `final sync of replica ${r.name} did not finish before the shutdown deadline`);
          if (r.behind()) throw new Error(r.stats.lastError ?? 'replica is behind after the final sync');
          e.log.info('final sync done', { replica: r.name, position: r.pos ? `${r.pos.generation}/${r.pos.index.toString(16).padStart(8, '0')}:${r.pos.offset}` : undefined });
        } catch (err) {
          failures.push({ db: e.cfg.path, replica: `${r.name} (${r.cfg.display})`, error: errorMessage(err) });
        }
      }));
      e.db.stop();
    }));
    return { failures };
  }

  /** For in-process tests: close SQLite connections and clients. */
  async dispose(): Promise<void> {
    for (const e of this.entries) {
      e.db.closeConnections();
      await Promise.all(e.replicas.map((r) => r.client.close().catch(() => {})));
    }
  }
}

function withDeadline<T>(p: Promise<T>, ms: number, msg: string): Promise<T> {
  if (ms <= 0) return Promise.reject(new Error(msg));
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(msg)), ms)))]).finally(() => clearTimeout(t));
}
