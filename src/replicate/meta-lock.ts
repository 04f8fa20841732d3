/**
 * One process per database: an exclusive lock on `<meta-path>/lock`, taken before anything
 * opens, syncs or checkpoints the database, and held until the process ends. The replica lease
 * (lease-guard.ts) keeps two hosts from writing one replica, but it is taken over the network:
 * a second process on the same host used to open the database, copy the WAL into the running
 * instance's shadow WAL and checkpoint before its lease was refused (issue 9, item 6), and two
 * configs naming one database with different replicas would both own its shadow WAL.
 *
 * flock(2) through koffi: the kernel releases it when the process dies, even by SIGKILL or the
 * OOM killer, so a crash never leaves a stale lock, and it works across containers sharing the
 * volume (one kernel). It is taken on a separate file, never the database: SQLite uses POSIX
 * fcntl locks on the database, and closing any descriptor of that file drops them all. Node opens
 * files with O_CLOEXEC, so the app lsinit spawns does not inherit the lock. The file holds the
 * holder's pid, hostname and start time, for the error a second instance prints.
 *
 * Without flock (koffi cannot load, or a filesystem that refuses it) a pid check stands in: the
 * recorded holder counts as live when it is on this host and its pid runs. It cannot see a holder
 * in another pid namespace or container; a warning says so.
 */
import { closeSync, existsSync, accessSync, ftruncateSync, mkdirSync, openSync, readFileSync, constants as fsConstants, writeSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleepTimer } from 'node:timers/promises';
import type { DBConfig } from '../config/types.js';
import { LsinitError, errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { loadLibc } from '../util/libc.js';
import { pidAlive } from './lease-messages.js';

export const META_LOCK_NAME = 'lock';
const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const POLL_MS = 250;

export interface MetaLockHolder {
  pid: number;
  hostname: string;
  startedAt: string;
}

interface Flock {
  flock(fd: number, op: number): number;
  errno(): number;
  busy: Set<number>;
}

let flockLib: Flock | { error: string } | undefined;

function flock(): Flock | { error: string } {
  if (!flockLib) {
    const r = loadLibc((lib) => lib.func('int flock(int, int)') as (fd: number, op: number) => number);
    flockLib = 'error' in r ? r : { flock: r.fns, errno: () => r.koffi.errno(), busy: new Set([r.koffi.os.errno.EWOULDBLOCK, r.koffi.os.errno.EAGAIN].filter((n): n is number => n !== undefined)) };
  }
  return flockLib;
}

function readHolder(path: string): MetaLockHolder | undefined {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Partial<MetaLockHolder>;
    return typeof h.pid === 'number' && typeof h.hostname === 'string' ? { pid: h.pid, hostname: h.hostname, startedAt: String(h.startedAt) } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a live process holds the lock of this meta directory, without creating or changing
 * anything (restore's check before it writes a database some replicate still owns).
 */
export function metaLockHolder(metaPath: string): MetaLockHolder | 'unknown' | undefined {
  const path = join(metaPath, META_LOCK_NAME);
  if (!existsSync(path)) return undefined;
  const fl = flock();
  if ('error' in fl) {
    const h = readHolder(path);
    return h && h.hostname === osHostname() && h.pid !== process.pid && pidAlive(h.pid) ? h : undefined;
  }
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return undefined;
  }
  try {
    // A shared lock conflicts with the holder's exclusive one; ours goes with the descriptor.
    if (fl.flock(fd, LOCK_SH | LOCK_NB) === 0) return undefined;
    return fl.busy.has(fl.errno()) ? (readHolder(path) ?? 'unknown') : undefined;
  } finally {
    closeSync(fd);
  }
}

/** `hint` replaces the default advice (how to run one replicating process per database). */
export function lockedError(db: string, lockPath: string, holder: MetaLockHolder | 'unknown', opts: { waitedMs?: number; hint?: string } = {}): LsinitError {
  const { waitedMs } = opts;
  const who = holder === 'unknown' ? 'another process (it has not written its pid yet)' : `another lsinit: pid ${holder.pid} on host ${holder.hostname}, started ${holder.startedAt}`;
  const waited = waitedMs !== undefined ? `gave up after waiting ${Math.round(waitedMs / 1000)} s: ` : '';
  const hint = opts.hint ?? (waitedMs !== undefined
    ? 'that process is still running; stop it, or raise the wait limit'
    : 'one process replicates a database (list all its replicas under it in one config); stop the other process first, or let this one wait for it (lease: { wait: true } or -lease-wait)');
  return new LsinitError('LSINIT_ERR_LEASE', `${waited}database ${db} is in use by ${who} (it holds the lock ${lockPath}); ${hint}`, {
    fields: { db, lock: lockPath, ...(holder === 'unknown' ? {} : { holder }), ...(waitedMs !== undefined ? { waitedMs } : {}) },
  });
}

export interface MetaLockOptions {
  log?: Logger;
  /** Aborts a wait (shutdown during start-up). */
  signal?: AbortSignal;
  pollMs?: number;
  /** Injected for tests (kernelLock: false takes the pid-check path). */
  kernelLock?: boolean;
  pid?: number;
  hostname?: string;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** The lock of one database's meta directory. */
export class MetaLock {
  readonly db: string;
  readonly path: string;
  private fd: number | undefined;
  private readonly o: MetaLockOptions;
  private warned = false;

  constructor(cfg: Pick<DBConfig, 'path' | 'metaPath'>, opts: MetaLockOptions = {}) {
    this.db = cfg.path;
    this.path = join(cfg.metaPath, META_LOCK_NAME);
    this.o = opts;
  }

  get held(): boolean {
    return this.fd !== undefined;
  }

  /** One attempt: undefined once held, else who holds it. */
  tryLock(): MetaLockHolder | 'unknown' | undefined {
    if (this.fd !== undefined) return undefined;
    try {
      makeMetaDir(dirname(this.path));
      // No O_TRUNC: the holder's record stays as it is until we hold the lock.
      const fd = openSync(this.path, fsConstants.O_RDWR | fsConstants.O_CREAT, 0o644);
      const busy = this.lockFd(fd);
      if (busy) {
        closeSync(fd);
        return busy;
      }
      this.fd = fd;
    } catch (err) {
      throw new LsinitError('LSINIT_ERR_DB', `${this.db}: cannot create the lock ${this.path}: ${errorMessage(err)} (the meta directory must be writable by lsinit; see meta-path)`, { cause: err, fields: { db: this.db, lock: this.path } });
    }
    const me: MetaLockHolder = { pid: this.o.pid ?? process.pid, hostname: this.o.hostname ?? osHostname(), startedAt: new Date((this.o.now ?? Date.now)()).toISOString() };
    ftruncateSync(this.fd, 0);
    writeSync(this.fd, `${JSON.stringify(me)}\n`, 0);
    return undefined;
  }

  /** flock, or the pid check where flock is not available. */
  private lockFd(fd: number): MetaLockHolder | 'unknown' | undefined {
    const fl = this.o.kernelLock === false ? { error: 'kernel lock disabled' } : flock();
    let why: string;
    if ('error' in fl) {
      why = fl.error;
    } else {
      if (fl.flock(fd, LOCK_EX | LOCK_NB) === 0) return undefined;
      const errno = fl.errno();
      if (fl.busy.has(errno)) return readHolder(this.path) ?? 'unknown';
      why = `flock failed (errno ${errno})`;
    }
    if (!this.warned) this.o.log?.warn('cannot take a kernel lock on the meta directory; checking the pid recorded in it instead (a second lsinit in another container or pid namespace would not be seen)', { lock: this.path, error: why });
    this.warned = true;
    const h = readHolder(this.path);
    const me = this.o.pid ?? process.pid;
    return h && h.hostname === (this.o.hostname ?? osHostname()) && h.pid !== me && pidAlive(h.pid) ? h : undefined;
  }

  /**
   * Take the lock; held elsewhere: throw LSINIT_ERR_LEASE naming the holder, or with `wait` poll
   * until it is free or `maxWaitMs` has passed.
   */
  async acquire(opts: { wait?: boolean; maxWaitMs?: number } = {}): Promise<void> {
    const sleep = this.o.sleep ?? ((ms, signal) => sleepTimer(ms, undefined, signal ? { signal } : undefined));
    const t0 = performance.now();
    let holder = this.tryLock();
    if (holder === undefined) return;
    if (!opts.wait) throw lockedError(this.db, this.path, holder);
    const who = holder === 'unknown' ? {} : { holderPid: holder.pid, holderHost: holder.hostname };
    this.o.log?.warn('database is in use by another lsinit process; waiting for it', { lock: this.path, ...who, maxWaitMs: opts.maxWaitMs });
    while (holder !== undefined) {
      const waited = performance.now() - t0;
      if (opts.maxWaitMs !== undefined && waited >= opts.maxWaitMs) throw lockedError(this.db, this.path, holder, { waitedMs: waited });
      await sleep(this.o.pollMs ?? POLL_MS, this.o.signal);
      holder = this.tryLock();
    }
    this.o.log?.info('database lock taken', { lock: this.path, waitedMs: Math.round(performance.now() - t0) });
  }

  /** Closing the descriptor drops the flock. */
  release(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }
}

/** The locks of every database of a config, taken together before anything else touches them. */
export class MetaLocks {
  private readonly locks: { lock: MetaLock; cfg: DBConfig }[];
  private acquired = false;

  constructor(dbs: readonly DBConfig[], opts: MetaLockOptions = {}) {
    this.locks = dbs.map((cfg) => ({ cfg, lock: new MetaLock(cfg, { ...opts, ...(opts.log ? { log: opts.log.child({ db: cfg.path }) } : {}) }) }));
  }

  /** True from a successful acquire() to release(). */
  get held(): boolean {
    return this.acquired;
  }

  /**
   * Take all (idempotent), waiting when a replica of the database is set to wait for its lease
   * (the other instance is then expected to stop). A database whose directory does not exist is
   * skipped: opening it fails with that error. On failure the locks this call took are released.
   */
  async acquire(): Promise<void> {
    try {
      for (const { lock, cfg } of this.locks) {
        if (lock.held || !existsSync(dirname(cfg.path))) continue;
        const waiting = cfg.replicas.flatMap((r) => (r.lease?.wait ? [r.lease.maxWaitMs] : []));
        await lock.acquire(waiting.length > 0 ? { wait: true, maxWaitMs: Math.max(...waiting) } : {});
      }
      this.acquired = true;
    } catch (err) {
      this.release();
      throw err;
    }
  }

  release(): void {
    this.acquired = false;
    for (const { lock } of this.locks) lock.release();
  }
}

/**
 * mkdir -p, but an error names the real reason: a recursive mkdir reports ENOENT on a read-only
 * file system when the directory is missing; the parent's write check says EROFS or EACCES.
 */
function makeMetaDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    if (existsSync(dirname(dir))) accessSync(dirname(dir), fsConstants.W_OK);
    throw err;
  }
}
