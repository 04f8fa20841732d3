/**
 * Start the app before the replication worker is up. The worker (worker-controller.ts) needs a new
 * V8 isolate, its modules and SQLite before it can open a database: ~40–80 ms in which the app
 * used to wait. What actually protects committed data until the worker has copied it is a read
 * transaction on the database: while a reader holds it, SQLite neither restarts nor truncates
 * the WAL (wal.c: a restart needs every reader lock, and a reader on the database file alone
 * blocks every backfill), so no frame the app commits from then on can vanish before it is
 * copied. The main thread takes such a read transaction itself, the worker takes its own
 * (db.ts, the long-lived read lock) and only then is the main thread's released.
 *
 * The single-writer lease must be held before the app starts too (a second instance must not run
 * its app). The main thread takes it only where that is cheap: `file` replicas (a local
 * exclusive create). Its holder id is handed to the worker, whose guard finds its own id in the
 * store and keeps the lease as its own: as written here when the store still holds exactly that
 * (lease-guard.ts, handedOver: no second write before the final sync can run), else renewed at once. Anything else falls back to
 * the worker doing every step before the app starts: a missing database (restore first), a
 * replica whose lease needs a network SDK, a database not in WAL mode yet, or a lease store error.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants as fsConstants, existsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Config } from '../config/types.js';
import { LsinitError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { leaseStoreFor } from '../replica/lease/index.js';
import { openDatabase, type SqliteConnection } from '../sqlite/driver.js';
import { LeaseGuard } from './lease-guard.js';
import type { LeaseHandover } from './lease-options.js';

/** Key of a replica's lease holder id: database and replica indexes in the config. */
export function leaseKey(db: number, replica: number): string {
  return `${db}.${replica}`;
}

/**
 * Connections in WAL mode that the early start could not use: never closed, since closing the
 * last connection checkpoints the WAL and deletes it (db.ts), which would end the generation.
 */
const strays: SqliteConnection[] = [];

/** A random holder id for every replica with a lease, shared by both threads of this process. */
export function newHolderIds(config: Config): Record<string, string> {
  const ids: Record<string, string> = {};
  config.dbs.forEach((d, di) => d.replicas.forEach((r, ri) => {
    if (r.lease) ids[leaseKey(di, ri)] = randomBytes(8).toString('hex');
  }));
  return ids;
}

/** Whether the main thread can protect every database and take every lease by itself. */
export function canStartEarly(config: Config): boolean {
  return config.dbs.every((d) => !d.follow && existsSync(d.path) && d.replicas.every((r) => !r.lease || r.type === 'file'));
}

export class EarlyHold {
  private readonly conns: SqliteConnection[];
  private readonly guards: LeaseGuard[];
  private handedOver = false;
  /** The leases as written here, by `leaseKey`, for the worker to adopt without writing them again. */
  readonly handovers: Record<string, LeaseHandover>;

  constructor(conns: SqliteConnection[], guards: LeaseGuard[], keys: string[]) {
    this.conns = conns;
    this.guards = guards;
    this.handovers = {};
    guards.forEach((g, i) => {
      const h = g.handover();
      if (h) this.handovers[keys[i]!] = h;
    });
  }

  /** The worker holds its own read locks and the leases: let go of ours (the connections stay open). */
  handOver(): void {
    this.handedOver = true;
    for (const c of this.conns) if (c.inTransaction) c.exec('ROLLBACK');
  }

  /**
   * At the end of the process: a read transaction on each database keeps its -wal past the
   * worker's end (wal-guard.ts explains why), on the connections already open. Leases the worker
   * never took over (it did not start) are released.
   */
  async finish(): Promise<void> {
    for (const c of this.conns) {
      try {
        if (!c.inTransaction) readLock(c);
      } catch {
        // Unreadable now: at worst the next start begins a new generation, nothing is lost.
      }
    }
    if (!this.handedOver) await Promise.all(this.guards.map((g) => g.release().catch(() => {})));
    await Promise.all(this.guards.map((g) => g.store.close().catch(() => {})));
  }
}

function readLock(c: SqliteConnection): void {
  c.exec('BEGIN');
  c.prepare('SELECT 1 FROM sqlite_master LIMIT 1').get();
}

/**
 * Take every lease (throws LSINIT_ERR_LEASE when another instance holds one, like the worker
 * would), then a read transaction on every database. Undefined when the worker must do it all
 * before the app starts (see above); nothing is left held then.
 */
export async function holdEarly(config: Config, holderIds: Record<string, string>, log: Logger, signal: AbortSignal): Promise<EarlyHold | undefined> {
  const guards: LeaseGuard[] = [];
  const keys: string[] = [];
  config.dbs.forEach((d, di) => d.replicas.forEach((r, ri) => {
    if (!r.lease) return;
    keys.push(leaseKey(di, ri));
    guards.push(new LeaseGuard({
      store: leaseStoreFor(r.type, r.settings),
      replica: r.name,
      holderId: holderIds[leaseKey(di, ri)]!,
      ttlMs: r.lease.ttlMs,
      wait: r.lease.wait,
      maxWaitMs: r.lease.maxWaitMs,
      signal,
      log: log.child({ db: d.path, replica: r.name }),
    }));
  }));
  const results = await Promise.allSettled(guards.map((g) => g.acquire()));
  // The worker's guards renew from here on; these only ever release at the end if it never starts.
  for (const g of guards) g.stop();
  const failed = results.find((x): x is PromiseRejectedResult => x.status === 'rejected');
  if (failed) {
    await Promise.all(guards.map((g) => g.release().catch(() => {})));
    const err = failed.reason as unknown;
    if ((err instanceof LsinitError && err.code === 'LSINIT_ERR_LEASE') || (err as Error)?.name === 'AbortError') throw err;
    return undefined; // a store error: the worker logs it and retries, as it always has
  }
  const conns: SqliteConnection[] = [];
  let wal = 0;
  try {
    // SQLite is loaded here (openDatabase), not at start-up: only this path needs it on the main thread.
    for (const d of config.dbs) {
      // WAL mode and a writable directory (for -wal, -shm and the meta directory) are what the
      // worker needs; without them its error must stop the start, before the app runs.
      accessSync(dirname(d.path), fsConstants.W_OK);
      const c = openDatabase(d.path, { fileMustExist: true, timeout: 1000 });
      conns.push(c);
      c.pragma('cache_size = 1'); // this connection reads one page, ever
      if (String(c.pragma('journal_mode', { simple: true })) !== 'wal') throw new Error('not in WAL mode yet');
      wal++;
      readLock(c);
    }
  } catch {
    conns.forEach((c, i) => {
      if (i < wal) {
        if (c.inTransaction) c.exec('ROLLBACK');
        strays.push(c);
      } else {
        c.close();
      }
    });
    // The worker takes the leases again (under the same holder ids) before the app starts.
    await Promise.all(guards.map((g) => g.release().catch(() => {})));
    return undefined;
  }
  return new EarlyHold(conns, guards, keys);
}
