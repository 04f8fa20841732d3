/**
 * One replicated database: the long-lived read transaction, the shadow WAL, generations and
 * checkpoints (Litestream 0.3 `DB`, reference §2.2–2.5, 2.8).
 *
 * Two SQLite connections: `rconn` only ever holds the long-lived read transaction (its read mark
 * stops anyone else from restarting the WAL behind us); `conn` runs our writes and checkpoints.
 * The database file also gets one long-lived read-only descriptor for snapshots: with POSIX
 * locks, closing any descriptor of the file would drop this process's SQLite locks, so we never
 * open and close it ad hoc (Litestream's `db.f`, same reason).
 *
 * The connections are deliberately never closed while the process lives: SQLite's close-time
 * checkpoint would delete the -wal and force a new generation on the next start. Litestream
 * 0.3.10+ prevents that with SQLITE_FCNTL_PERSIST_WAL, which better-sqlite3 does not expose;
 * the CLI ends with process.exit(), which skips the close.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants as fsConstants, existsSync, fsyncSync, mkdirSync, openSync, readSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import Database from 'better-sqlite3';
import type { DBConfig } from '../config/types.js';
import { LsinitError } from '../errors.js';
import { hex8 } from '../format/paths.js';
import { FRAME_HEADER_SIZE, WAL_HEADER_SIZE, frameAlign } from '../format/wal.js';
import type { Logger } from '../log/logger.js';
import type { Pos } from '../replica/client.js';
import { imageAt } from './image.js';
import { copyToShadow, fileSize, initShadow, openShadow, readExact, readWALHeaderFile, readWALIndexHeader, syncShadowFile, type ShadowState } from './shadow.js';

const MAX_INDEX = 0x7fffffff;
const BUSY_TIMEOUT_MS = 1000;
const SHADOW_RE = /^([0-9a-f]{8})\.wal$/;
/** For a 1 ms synchronous pause between checkpoint attempts under the write lock. */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

export interface DBStats {
  syncs: number;
  syncErrors: number;
  syncSeconds: number;
  checkpoints: Record<string, { count: number; errors: number; seconds: number }>;
  totalWALBytes: number;
}

/** What a checkpoint reported: frames in the WAL, and whether all of them were back-filled. */
interface CheckpointResult {
  log: number;
  complete: boolean;
}

export class DB {
  readonly path: string;
  readonly walPath: string;
  readonly metaPath: string;
  readonly cfg: DBConfig;
  private readonly log: Logger;
  private conn: Database.Database | undefined;
  private rconn: Database.Database | undefined;
  /** Set when continuity was lost in a way verify() cannot see (see checkpoint()). */
  private forceGeneration: string | undefined;
  private dbFd: number | undefined;
  /** Long-lived descriptor of the -shm file (never closed while connections live: POSIX locks). */
  private shmFd: number | undefined;
  pageSize = 0;
  generation: string | undefined;
  index = 0;
  private shadow: ShadowState | undefined;
  private snapshotting = 0;
  private readonly listeners = new Set<() => void>();
  readonly stats: DBStats = { syncs: 0, syncErrors: 0, syncSeconds: 0, checkpoints: {}, totalWALBytes: 0 };
  private now: () => number;

  constructor(cfg: DBConfig, log: Logger, opts: { now?: () => number } = {}) {
    this.cfg = cfg;
    this.path = cfg.path;
    this.walPath = `${cfg.path}-wal`;
    this.metaPath = cfg.metaPath;
    this.log = log;
    this.now = opts.now ?? Date.now;
  }

  get opened(): boolean {
    return this.conn !== undefined;
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private generationDir(gen: string): string {
    return join(this.metaPath, 'generations', gen, 'wal');
  }

  shadowPath(gen: string, index: number): string {
    return join(this.generationDir(gen), `${hex8(index)}.wal`);
  }

  /** Open SQLite and the shadow state once the database file exists. Returns false while it does not. */
  init(): boolean {
    if (this.conn) return true;
    if (!this.precheck()) return false;
    let conn: Database.Database | undefined;
    let rconn: Database.Database | undefined;
    try {
      conn = new Database(this.path, { timeout: BUSY_TIMEOUT_MS, fileMustExist: true });
      const mode = String(conn.pragma('journal_mode = wal', { simple: true }));
      if (mode !== 'wal') {
        throw new LsinitError('LSINIT_ERR_DB', `${this.path}: cannot switch to WAL mode (journal_mode is ${mode}); stop other writers and retry`);
      }
      conn.pragma('wal_autocheckpoint = 0');
      conn.exec('CREATE TABLE IF NOT EXISTS _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER);');
      conn.exec('CREATE TABLE IF NOT EXISTS _litestream_lock (id INTEGER);');
      rconn = new Database(this.path, { timeout: BUSY_TIMEOUT_MS, fileMustExist: true });
      // From here on our writes (the restart write after a checkpoint, the write lock that picks up
      // the old WAL's last frames) queue behind the app's writers for at most
      // checkpoint-busy-timeout; a sync that gives up retries on the next one.
      conn.pragma(`busy_timeout = ${Math.round(this.cfg.checkpointBusyTimeoutMs)}`);
      rconn.pragma('wal_autocheckpoint = 0');
      this.pageSize = Number(conn.pragma('page_size', { simple: true }));
      this.dbFd = openSync(this.path, 'r');
    } catch (err) {
      if (err instanceof LsinitError) throw err;
      // SQLite only says "unable to open database file"; WAL mode needs to create -wal and -shm.
      let why = '';
      try {
        accessSync(dirname(this.path), fsConstants.W_OK);
      } catch (e) {
        why = ` (its directory ${dirname(this.path)} is not writable: ${(e as NodeJS.ErrnoException).code}; lsinit and the app need to create ${basename(this.path)}-wal and -shm there)`;
      }
      throw new LsinitError('LSINIT_ERR_DB', `${this.path}: cannot open database: ${(err as Error).message}${why}`, { cause: err });
    }
    this.conn = conn;
    this.rconn = rconn;
    this.acquireReadLock();
    try {
      // Exists once a connection has read the database in WAL mode (our read lock above).
      this.shmFd = openSync(`${this.path}-shm`, 'r');
    } catch {
      this.shmFd = undefined; // walAdvanced() falls back to reading the WAL
    }
    mkdirSync(this.metaPath, { recursive: true });
    this.loadGeneration();
    return true;
  }

  /**
   * What init() checks before SQLite opens anything (the directory exists, the file is SQLite),
   * reading nothing but the header: run before the meta lock and leases are taken, so bad input
   * writes nothing. False while the file does not exist.
   */
  precheck(): boolean {
    if (!existsSync(dirname(this.path))) {
      throw new LsinitError('LSINIT_ERR_DB', `database directory does not exist: ${dirname(this.path)} (create it, or fix dbs[].path)`, { fields: { path: this.path } });
    }
    if (!existsSync(this.path)) return false;
    checkIsSQLite(this.path);
    return true;
  }

  private acquireReadLock(): void {
    this.rconn!.exec('BEGIN');
    this.rconn!.prepare('SELECT COUNT(1) FROM _litestream_seq').get();
  }

  private releaseReadLock(): void {
    if (this.rconn?.inTransaction) this.rconn.exec('ROLLBACK');
  }

  /** Pick up the generation and shadow left by a previous run, if still consistent. */
  private loadGeneration(): void {
    const genFile = join(this.metaPath, 'generation');
    let gen: string | undefined;
    try {
      gen = readFileSync(genFile, 'utf8').trim();
    } catch {
      gen = undefined;
    }
    if (!gen || !/^[0-9a-f]{16}$/.test(gen)) return;
    const dir = this.generationDir(gen);
    const indexes = existsSync(dir) ? readdirSync(dir).map((n) => SHADOW_RE.exec(n)).filter((m) => m !== null).map((m) => Number.parseInt(m[1]!, 16)) : [];
    if (existsSync(dir)) for (const n of readdirSync(dir)) if (n.endsWith('.tmp')) rmSync(join(dir, n), { force: true });
    if (indexes.length === 0) return;
    const index = Math.max(...indexes);
    const st = openShadow(this.shadowPath(gen, index));
    const real = readWALHeaderFile(this.walPath);
    // Litestream's verifyHeadersMatch: a restart after the WAL changed starts a new generation.
    if (!st || !real || !st.headerBytes.equals(real)) {
      // Say what happened since the last run; sync() logs it again as the new generation's reason.
      const why = !real
        ? 'the WAL was removed since the last run (the last connection closed the database, e.g. the sqlite3 shell, or it was restored)'
        : !st
          ? 'the shadow WAL of the last run is unreadable'
          : 'the WAL was reset since the last run (checkpointed by another process, or the database was replaced or restored)';
      this.log.info(`generation ${gen} cannot continue: ${why}; a new generation will start`, { generation: gen });
      this.forceGeneration = why;
      rmSync(genFile, { force: true });
      return;
    }
    this.generation = gen;
    this.index = index;
    this.shadow = st;
    this.log.info('continuing generation', { generation: gen, index: hex8(index), offset: st.size });
  }

  pos(): Pos | undefined {
    if (!this.generation || !this.shadow) return undefined;
    return { generation: this.generation, index: this.index, offset: this.shadow.size };
  }

  /** Committed size of a shadow index (what replicas may ship), or -1 when it does not exist. */
  shadowSize(gen: string, index: number): number {
    if (gen === this.generation && index === this.index && this.shadow) return this.shadow.size;
    if (gen !== this.generation || index > this.index) return -1;
    return fileSize(this.shadowPath(gen, index));
  }

  /**
   * One tick (DB.Sync): copy new committed frames to the shadow, start generations, checkpoint.
   * `shipped`: the lowest position every live replica holds (the controller's knowledge); shadow
   * WAL indexes below it are removed when it is in the current generation. Without it none are.
   * `checkpoint: false`: copy only, no checkpoint decision (the controller decides once per
   * monitor-interval, as Litestream's DB.Sync; see maybeCheckpoint()).
   */
  sync(shipped?: { generation: string; index: number }, opts: { checkpoint?: boolean } = {}): boolean {
    const t0 = performance.now();
    try {
      if (!this.init()) return false;
      const changed = this.syncInner(shipped, opts.checkpoint ?? true);
      this.stats.syncs++;
      if (changed) for (const l of this.listeners) l();
      return changed;
    } catch (err) {
      this.stats.syncErrors++;
      throw err;
    } finally {
      this.stats.syncSeconds += (performance.now() - t0) / 1000;
    }
  }

  /**
   * Has the app committed past what the shadow holds, or restarted the WAL? The controller polls
   * this between syncs instead of watching the directory: an armed inotify watch makes every
   * write(2) of the app queue an event (measured at a third of a default-settings app's write
   * rate). One 96-byte read of the WAL-index header in -shm, which SQLite updates at each commit
   * (mxFrame, the last committed frame, and the WAL salts; wal.c walIndexWriteHdr): an open
   * transaction spilling pages into the WAL does not count, unlike a look at the WAL itself.
   */
  walAdvanced(): boolean {
    return this.newFrames() > 0;
  }

  /**
   * How many frames the app committed past the shadow (Infinity when the WAL was restarted or the
   * count is unknown but something changed), 0 when nothing.
   */
  newFrames(): number {
    const st = this.shadow;
    if (!st || !this.generation) return 0; // not replicating yet: the monitor tick retries
    const h = this.shmFd === undefined ? undefined : readWALIndexHeader(this.shmFd);
    if (!h) return this.walFrameAdvanced(st) ? Infinity : 0;
    if (!h.salt.equals(st.headerBytes.subarray(16, 24))) return Infinity;
    const d = h.mxFrame - (st.size - WAL_HEADER_SIZE) / (FRAME_HEADER_SIZE + st.header.pageSize);
    return d === 0 ? 0 : d > 0 ? d : Infinity;
  }

  /** Without a readable WAL index: a frame written at the shadow's end with the same salts, or a new WAL header. */
  private walFrameAdvanced(st: ShadowState): boolean {
    const header = readWALHeaderFile(this.walPath);
    if (!header) return false;
    if (!header.equals(st.headerBytes)) return true;
    let fd: number;
    try {
      fd = openSync(this.walPath, 'r');
    } catch {
      return false;
    }
    try {
      const fh = readExact(fd, FRAME_HEADER_SIZE, st.size);
      // Salts: frame header bytes 8..16, WAL header bytes 16..24.
      return fh !== undefined && fh.subarray(8, 16).equals(header.subarray(16, 24));
    } finally {
      closeSync(fd);
    }
  }

  private syncInner(shipped: { generation: string; index: number } | undefined, checkpoint: boolean): boolean {
    this.ensureWALExists();
    const v = this.verify();
    let changed = false;
    if (v.reason) {
      this.createGeneration(v.reason);
      changed = true;
    } else {
      const added = copyToShadow(this.shadow!, this.shadowPath(this.generation!, this.index), this.walPath);
      this.stats.totalWALBytes += added;
      changed = added > 0;
      if (v.restart) {
        // The WAL was restarted by someone else after our last copy, and the frames we last
        // copied are intact: continue in the next index rather than a new generation.
        this.startNextIndex();
        changed = true;
      }
    }
    if (checkpoint && this.maybeCheckpoint()) changed = true;
    this.clean(shipped);
    return changed;
  }

  private ensureWALExists(): void {
    if (fileSize(this.walPath) >= WAL_HEADER_SIZE) return;
    this.conn!.prepare('INSERT INTO _litestream_seq (id, seq) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET seq = seq + 1').run();
  }

  private verify(): { reason?: string; restart: boolean } {
    if (!this.generation || !this.shadow) {
      const reason = this.forceGeneration ?? 'no generation exists';
      this.forceGeneration = undefined;
      return { reason, restart: false };
    }
    if (this.forceGeneration) {
      const reason = this.forceGeneration;
      this.forceGeneration = undefined;
      return { reason, restart: false };
    }
    if (this.index >= MAX_INDEX) return { reason: 'max index exceeded', restart: false };
    if (!existsSync(this.shadowPath(this.generation, this.index))) return { reason: 'no shadow wal', restart: false };
    if (this.shadow.size < WAL_HEADER_SIZE) return { reason: 'short shadow wal', restart: false };
    const realSize = frameAlign(Math.max(0, fileSize(this.walPath)), this.shadow.header.pageSize);
    if (this.shadow.size > realSize) return { reason: 'wal truncated by another process', restart: false };
    const real = readWALHeaderFile(this.walPath);
    const restart = !real || !real.equals(this.shadow.headerBytes);
    if (restart && !this.shadow.lastFrame) return { reason: 'wal header only, mismatched', restart };
    if (this.shadow.lastFrame) {
      const fs = FRAME_HEADER_SIZE + this.shadow.header.pageSize;
      const fd = openSync(this.walPath, 'r');
      try {
        const cur = readExact(fd, fs, this.shadow.size - fs);
        if (!cur || !cur.equals(this.shadow.lastFrame)) return { reason: 'wal overwritten by another process', restart };
      } finally {
        closeSync(fd);
      }
    }
    return { restart };
  }

  private createGeneration(reason: string): void {
    const gen = randomBytes(8).toString('hex');
    mkdirSync(this.generationDir(gen), { recursive: true });
    const st = initShadow(this.shadowPath(gen, 0), this.walPath);
    if (!st) throw new LsinitError('LSINIT_ERR_DB', `${this.walPath}: WAL missing while starting a generation`);
    const genFile = join(this.metaPath, 'generation');
    writeFileSync(`${genFile}.tmp`, `${gen}\n`);
    renameSync(`${genFile}.tmp`, genFile);
    this.generation = gen;
    this.index = 0;
    this.shadow = st;
    this.stats.totalWALBytes += st.size;
    this.log.info('sync: new generation', { generation: gen, reason });
  }

  /** Make a shadow index durable before its bytes are shipped (see copyToShadow). */
  flushShadow(gen: string, index: number): void {
    if (gen === this.generation && index === this.index && this.shadow) syncShadowFile(this.shadow, this.shadowPath(gen, index));
  }

  /**
   * The WAL restarted: continue in the next index, or start a new generation when continuity is
   * lost. SQLite gives each restart's header the previous salt-1 plus one (wal.c walRestartHdr), so a
   * new WAL whose salt-1 is not the shadow's plus one means a whole WAL lifetime came and went
   * between two copies: the app restarted the WAL while our read lock was released for a
   * checkpoint, and our checkpoint back-filled and restarted that lifetime in turn (torture seed
   * 500039). Its commits are in no shadow index; the new generation's snapshot has them.
   */
  private startNextIndex(): void {
    const prev = this.shadow;
    if (prev) syncShadowFile(prev, this.shadowPath(this.generation!, this.index));
    const next = this.shadowPath(this.generation!, this.index + 1);
    const st = initShadow(next, this.walPath);
    if (!st) throw new LsinitError('LSINIT_ERR_DB', `${this.walPath}: WAL disappeared during a restart`);
    const from = prev?.header.salt1;
    const why = this.forceGeneration ?? (from !== undefined && st.header.salt1 !== ((from + 1) >>> 0) ? `a WAL lifetime was missed: the WAL restarted from salt-1 ${hex8(from)} to ${hex8(st.header.salt1)}, not to the next one, between two copies` : undefined);
    if (why) {
      rmSync(next, { force: true });
      this.forceGeneration = undefined;
      this.createGeneration(why);
      return;
    }
    this.index++;
    this.shadow = st;
    this.stats.totalWALBytes += st.size;
  }

  /**
   * Checkpoint policy (reference §2.5), decided once per monitor-interval as Litestream's DB.Sync
   * does: RESTART at max-checkpoint-page-count, PASSIVE at min-checkpoint-page-count or when the
   * database file has not changed for checkpoint-interval. (Litestream's TruncatePageN, 500,000
   * pages, is not configurable in 0.3 and is past max-checkpoint-page-count: covered by RESTART.)
   *
   * Why not more often: while our read transaction pins the WAL, the app's own autocheckpoint
   * (every commit past 1000 pages) finds nothing to back-fill and costs it a few lock calls; each
   * time we checkpoint and move our read mark, its next autocheckpoint back-fills and fsyncs. An
   * app with SQLite's defaults measured 0.74 of its solo rate with lsinit checkpointing every
   * 1000 pages, against 1.4 with Litestream's once a second (bench/compare.ts, write).
   */
  private maybeCheckpoint(): boolean {
    const st = this.shadow!;
    const fs = FRAME_HEADER_SIZE + this.pageSize;
    const pages = (st.size - WAL_HEADER_SIZE) / fs;
    if (this.cfg.maxCheckpointPageCount > 0 && pages >= this.cfg.maxCheckpointPageCount) return this.checkpoint('RESTART');
    const due = pages >= this.cfg.minCheckpointPageCount || (this.cfg.checkpointIntervalMs > 0 && pages > 1 && this.now() - statSync(this.path).mtimeMs > this.cfg.checkpointIntervalMs);
    return due && this.checkpoint('PASSIVE');
  }

  /**
   * A PASSIVE checkpoint (the only mode SQLite runs for us, and the one it is counted under); when
   * the WAL restarts, finish the old index and start the next.
   *
   * First the WAL is fsynced from here, without any lock: the checkpoint's own fsync of the WAL
   * (whoever runs it: once our read mark moves, the app's autocheckpoint often gets there first)
   * then has little left to write.
   *
   * `RESTART` (max-checkpoint-page-count) keeps the WAL from growing without bound under an app
   * that writes without pause, where a passive checkpoint never lets the WAL restart (the app's
   * next commit lands before our restart write). Litestream 0.3 runs SQLite's RESTART, which holds
   * the write lock while it waits for the app's readers (#724), and after which the app may
   * overwrite frames not yet copied. lsinit catches up and fsyncs the WAL without a lock, then
   * takes the write lock (waiting at most checkpoint-busy-timeout, else it tries again at the next
   * checkpoint), copies the last frames, back-fills from the read connection and lets go: the app's
   * writers wait for that copy and back-fill (measured 20-140 ms under a saturating writer on a
   * busy disk, once per monitor-interval), never for a reader, and nothing uncopied can be
   * overwritten when the next write (ours or the app's) restarts the WAL.
   */
  checkpoint(mode: 'PASSIVE' | 'RESTART' = 'PASSIVE'): boolean {
    if (this.snapshotting > 0 || !this.conn) return false; // a snapshot is reading the file (Litestream #477)
    const t0 = performance.now();
    const gen = this.generation!;
    const fs = FRAME_HEADER_SIZE + this.pageSize;
    const before = readWALHeaderFile(this.walPath);
    copyToShadow(this.shadow!, this.shadowPath(gen, this.index), this.walPath);
    fsyncFile(this.walPath);
    let r: CheckpointResult | undefined;
    if (mode === 'RESTART') {
      // Catch up (without a lock) on what the app committed during that fsync, so the locked pass
      // has only the last few frames to copy and fsync. Our read lock is never released outside
      // the write lock here: no window in which the app could restart the WAL past uncopied frames.
      copyToShadow(this.shadow!, this.shadowPath(gen, this.index), this.walPath);
      fsyncFile(this.walPath);
      r = this.checkpointLocked();
    } else {
      this.releaseReadLock();
      try {
        r = this.runCheckpoint(this.conn);
      } finally {
        this.acquireReadLock();
      }
    }
    const walFrames = r?.log ?? -1;
    const complete = r?.complete ?? false;
    // This write makes SQLite restart the WAL if the checkpoint was complete and no reader pins it.
    // After an incomplete one it cannot: skip it rather than queue behind a busy app's writers for
    // up to the busy timeout with our event loop blocked (every sync, under a saturating writer).
    // Not after the app restarted the WAL itself while our read lock was released: our checkpoint
    // may have back-filled that new lifetime before we copied it, and a second restart would
    // overwrite it (startNextIndex below copies it instead).
    if (complete && before?.equals(readWALHeaderFile(this.walPath) ?? Buffer.alloc(0))) {
      try {
        this.conn.prepare('INSERT INTO _litestream_seq (id, seq) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET seq = seq + 1').run();
      } catch (err) {
        // After a RESTART pass nothing is left to copy: the app's next write restarts the WAL as
        // well, and the next sync continues in the next index.
        if (mode !== 'RESTART' || !/busy|locked/i.test((err as Error).message)) throw err;
      }
    }
    const after = readWALHeaderFile(this.walPath);
    let restarted = false;
    if (before && after && !before.equals(after)) {
      // Under the write lock, pick up old-salt frames still past the new WAL's write position,
      // then start the next index from the new header.
      try {
        this.conn.exec('BEGIN IMMEDIATE');
        try {
          copyToShadow(this.shadow!, this.shadowPath(gen, this.index), this.walPath);
          // An app commit that landed between our copy and the checkpoint was back-filled into
          // the file; if a long transaction restarted the WAL and overwrote its frames before we
          // could copy them, it is in no shadow index. The checkpoint told us how many frames
          // the old WAL had: if we hold fewer, start a new generation, whose snapshot has them.
          // (Litestream 0.3 loses such a commit from every replica; test/torture/checkpoint-race.)
          if (walFrames >= 0 && this.shadow!.size < WAL_HEADER_SIZE + walFrames * fs) {
            this.forceGeneration = `checkpoint race: ${walFrames - (this.shadow!.size - WAL_HEADER_SIZE) / fs} frame(s) of the old WAL were overwritten before they were copied`;
          }
          this.startNextIndex();
          restarted = true;
        } finally {
          this.conn.exec('ROLLBACK');
        }
      } catch (err) {
        // Next sync's verify() sees the restart and either continues or starts a new generation.
        this.log.warn('could not take the write lock after a WAL restart', { error: (err as Error).message });
      }
    }
    this.log.debug('checkpoint', { mode, restarted, index: hex8(this.index), ms: Math.round(performance.now() - t0) });
    return restarted;
  }

  /**
   * Under the write lock: copy every committed frame, then back-fill them all, so the next write
   * (ours, or the app's) restarts the WAL with nothing left to copy. undefined when the app held
   * the write lock for all of checkpoint-busy-timeout.
   */
  private checkpointLocked(): CheckpointResult | undefined {
    const conn = this.conn!;
    try {
      conn.exec('BEGIN IMMEDIATE');
    } catch (err) {
      if (!/busy|locked/i.test((err as Error).message)) throw err;
      this.log.debug('write lock busy; the WAL restarts at a later checkpoint', { error: (err as Error).message });
      return undefined;
    }
    const locked = performance.now();
    try {
      // The app restarted the WAL while our read lock was released (the passive checkpoint just
      // before): its new lifetime is not in the shadow yet, so it must not be back-filled and
      // restarted again; the caller continues in the next index.
      if (!this.shadow!.headerBytes.equals(readWALHeaderFile(this.walPath) ?? Buffer.alloc(0))) return undefined;
      copyToShadow(this.shadow!, this.shadowPath(this.generation!, this.index), this.walPath);
      // A connection in a transaction cannot checkpoint: the read connection runs it. An app with
      // wal_autocheckpoint on may be in its own checkpoint (it runs after its commit, without the
      // write lock): a passive checkpoint does not wait for it (log -1), so look again shortly.
      this.releaseReadLock();
      try {
        const until = performance.now() + this.cfg.checkpointBusyTimeoutMs;
        for (;;) {
          const r = this.runCheckpoint(this.rconn!);
          if (!r || r.log >= 0 || performance.now() >= until) return r;
          Atomics.wait(PAUSE, 0, 0, 1);
        }
      } finally {
        this.acquireReadLock();
      }
    } finally {
      conn.exec('ROLLBACK');
      this.log.debug('write lock held for a restart', { ms: Math.round(performance.now() - locked) });
    }
  }

  /** One `PRAGMA wal_checkpoint(PASSIVE)`: undefined when it failed (logged), else its frame counts. */
  private runCheckpoint(conn: Database.Database): CheckpointResult | undefined {
    const mode = 'PASSIVE';
    const stat = (this.stats.checkpoints[mode] ??= { count: 0, errors: 0, seconds: 0 });
    const t0 = performance.now();
    stat.count++;
    try {
      const r = conn.pragma(`wal_checkpoint(${mode})`) as { busy: number; log: number; checkpointed: number }[];
      const log = r[0]?.log ?? -1;
      return { log, complete: log >= 0 && r[0]?.busy === 0 && r[0]?.checkpointed === log };
    } catch (err) {
      stat.errors++;
      this.log.warn('checkpoint failed', { mode, error: (err as Error).message });
      return undefined;
    } finally {
      stat.seconds += (performance.now() - t0) / 1000;
    }
  }



  /** Remove other generations' shadow dirs and shadow files no replica needs any more. */
  private clean(shipped: { generation: string; index: number } | undefined): void {
    const gensDir = join(this.metaPath, 'generations');
    if (existsSync(gensDir)) {
      for (const g of readdirSync(gensDir)) if (g !== this.generation) rmSync(join(gensDir, g), { recursive: true, force: true });
    }
    // A position in another generation (this sync may just have started a new one) says nothing.
    const min = shipped !== undefined && shipped.generation === this.generation ? shipped.index : 0;
    if (min <= 1) return;
    const dir = this.generationDir(this.generation!);
    for (const n of readdirSync(dir)) {
      const m = SHADOW_RE.exec(n);
      if (m && Number.parseInt(m[1]!, 16) < min - 1) rmSync(join(dir, n), { force: true });
    }
  }

  /**
   * Snapshot: the database at one exact position, the shadow WAL's end after a copy (so at or past
   * our read mark): the file with this index's frames up to that position laid over it (image.ts),
   * whatever a checkpoint of the app back-fills into the file meanwhile. The shadow index is made
   * durable first (the snapshot stands for its frames up to there), and our checkpoints, which move
   * the read mark, are skipped until the stream is done. The caller must ship this index up to the
   * returned offset before the snapshot object exists, or (when the store holds nothing of this
   * index yet) ship its first segment at least that far (replica.ts).
   */
  beginSnapshot(at?: Pos): { generation: string; index: number; offset: number; size: number; stream: Readable } {
    if (!this.init() || !this.generation) throw new LsinitError('LSINIT_ERR_DB', `${this.path}: no generation yet`);
    let index = this.index;
    let offset: number;
    if (at) {
      // The same position again (a retried upload): valid while our checkpoints stayed off since.
      if (at.generation !== this.generation || at.index > this.index) throw new LsinitError('LSINIT_ERR_DB', `${this.path}: snapshot position ${at.generation}/${hex8(at.index)} is gone (generation ${this.generation})`);
      index = at.index;
      offset = at.offset;
    } else {
      copyToShadow(this.shadow!, this.shadowPath(this.generation, index), this.walPath);
      syncShadowFile(this.shadow!, this.shadowPath(this.generation, index));
      offset = this.shadow!.size;
    }
    const path = this.shadowPath(this.generation, index);
    this.snapshotting++;
    let released = false;
    const { size, stream } = imageAt(this.dbFd!, path, offset, () => {
      if (!released) {
        released = true;
        this.snapshotting--;
      }
    });
    return { generation: this.generation, index, offset, size, stream };
  }

  /** Hold off our own checkpoints (and so read-mark moves) while a replica prepares a snapshot. */
  holdCheckpoints(delta: 1 | -1): void {
    this.snapshotting += delta;
  }

  /** Checksum-free identity used by tests and `databases`: size and WAL size. */
  sizes(): { db: number; wal: number } {
    return { db: Math.max(0, fileSize(this.path)), wal: Math.max(0, fileSize(this.walPath)) };
  }

  /**
   * Release the read lock so other processes can checkpoint. The connections stay open until
   * the process exits (see the header comment); `closeConnections` is for in-process tests.
   */
  stop(): void {
    try {
      this.releaseReadLock();
    } catch {
      /* ignore */
    }
  }

  closeConnections(): void {
    this.stop();
    this.rconn?.close();
    this.conn?.close();
    if (this.dbFd !== undefined) closeSync(this.dbFd);
    if (this.shmFd !== undefined) closeSync(this.shmFd);
    this.rconn = this.conn = this.dbFd = this.shmFd = undefined;
  }
}

/** fsync a file by path (none is fine); SQLite takes no POSIX locks on -wal, so a short-lived descriptor is safe. */
function fsyncFile(path: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function checkIsSQLite(path: string): void {
  if (!statSync(path).isFile()) {
    throw new LsinitError('LSINIT_ERR_DB', `${path} is not a regular file (a directory?); dbs[].path must name the SQLite database file`, { fields: { path } });
  }
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(100);
    const n = readSync(fd, b, 0, 100, 0);
    if (n === 0) return; // an empty file is a new database to SQLite
    if (n < 16 || b.toString('latin1', 0, 16) !== 'SQLite format 3\u0000') {
      throw new LsinitError('LSINIT_ERR_DB', `${path} is not an SQLite database (bad header); check dbs[].path`, { fields: { path } });
    }
    // The rest of the 100-byte header as SQLite checks it when it opens the file: checked here,
    // before the meta lock is taken, so such a file is refused with nothing created beside it.
    const bad = headerProblem(b, n);
    if (bad) throw new LsinitError('LSINIT_ERR_DB', `${path}: cannot open database: file is not a database (${bad}); check dbs[].path or restore it from a replica`, { fields: { path } });
  } finally {
    closeSync(fd);
  }
}

/** What is wrong with a database header that starts with SQLite's magic, or undefined. */
function headerProblem(b: Buffer, n: number): string | undefined {
  if (n < 100) return `only ${n} bytes, shorter than the 100-byte header`;
  const raw = b.readUInt16BE(16);
  const pageSize = raw === 1 ? 65536 : raw;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return `page size ${raw} in the header`;
  if (b[18]! < 1 || b[18]! > 2 || b[19]! < 1 || b[19]! > 2) return `file format versions ${b[18]}/${b[19]}`;
  if (b[21] !== 64 || b[22] !== 32 || b[23] !== 32) return 'payload fractions are not 64/32/32';
  return undefined;
}
