/**
 * One replicated database (Litestream 0.3 `DB`, reference §2.2–2.5, 2.8): the orchestrator of
 * its parts, each holding one state:
 *  - connections.ts: the SQLite connections, descriptors and the long-lived read lock
 *    (closed, or open with all of them);
 *  - shadow-wal.ts: the current generation, index and shadow file, and a pending new generation;
 *  - checkpointer.ts: checkpoint policy and passes (counters only);
 *  - snapshot-source.ts: what replicas read (positions, shadow files, snapshots), and the holds
 *    that keep our checkpoints off while a snapshot is taken.
 * Calls go one way: the controller drives `sync()` (copy, generations, checkpoint, cleanup up to
 * the position it says every replica holds) and hands `source` to the replicas; nothing here
 * calls back up.
 *
 * The connections are deliberately never closed while the process lives (connections.ts):
 * SQLite's close-time checkpoint would delete the -wal and force a new generation on the next
 * start.
 */
import { mkdirSync } from 'node:fs';
import type { DBConfig } from '../config/types.js';
import { WAL_HEADER_SIZE } from '../format/wal.js';
import type { Logger } from '../log/logger.js';
import type { Pos } from '../replica/client.js';
import { Checkpointer, type CheckpointStats } from './checkpointer.js';
import { Connections, precheckDB } from './connections.js';
import { fileSize } from './shadow.js';
import { ShadowWAL } from './shadow-wal.js';
import { SnapshotSource, type Snapshot } from './snapshot-source.js';

export interface DBStats {
  syncs: number;
  syncErrors: number;
  syncSeconds: number;
  checkpoints: CheckpointStats;
  totalWALBytes: number;
}

export class DB {
  readonly path: string;
  readonly walPath: string;
  readonly metaPath: string;
  readonly cfg: DBConfig;
  readonly stats: DBStats = { syncs: 0, syncErrors: 0, syncSeconds: 0, checkpoints: {}, totalWALBytes: 0 };
  /** What the replicas of this database read (replica.ts). */
  readonly source: SnapshotSource;
  private readonly conns: Connections;
  private readonly wal: ShadowWAL;
  private readonly checkpointer: Checkpointer;

  constructor(cfg: DBConfig, log: Logger, opts: { now?: () => number } = {}) {
    this.cfg = cfg;
    this.path = cfg.path;
    this.walPath = `${cfg.path}-wal`;
    this.metaPath = cfg.metaPath;
    this.conns = new Connections(cfg.path, cfg.checkpointBusyTimeoutMs);
    this.wal = new ShadowWAL(this.walPath, cfg.metaPath, log, this.stats);
    this.checkpointer = new Checkpointer({ cfg, walPath: this.walPath, conns: this.conns, wal: this.wal, log, now: opts.now ?? Date.now, stats: this.stats.checkpoints });
    this.source = new SnapshotSource(cfg.path, this.wal, () => this.init(), () => this.conns.state!.dbFd);
  }

  get opened(): boolean {
    return this.conns.state !== undefined;
  }

  get generation(): string | undefined {
    return this.wal.current?.generation;
  }

  get index(): number {
    return this.wal.current?.index ?? 0;
  }

  shadowPath(gen: string, index: number): string {
    return this.wal.shadowPath(gen, index);
  }

  /** Open SQLite and the shadow state once the database file exists. Returns false while it does not. */
  init(): boolean {
    if (this.conns.state) return true;
    if (!this.precheck()) return false;
    this.conns.openAndLock();
    mkdirSync(this.metaPath, { recursive: true });
    this.wal.load();
    return true;
  }

  /**
   * What init() checks before SQLite opens anything (the directory exists, the file is SQLite),
   * reading nothing but the header: run before the meta lock and leases are taken, so bad input
   * writes nothing. False while the file does not exist.
   */
  precheck(): boolean {
    return precheckDB(this.path);
  }

  pos(): Pos | undefined {
    return this.wal.pos();
  }

  /**
   * One tick (DB.Sync): copy new committed frames to the shadow, start generations, checkpoint.
   * `shipped`: the lowest position every live replica holds (the controller's knowledge); shadow
   * WAL indexes below it are removed when it is in the current generation. Without it none are.
   * `checkpoint: false`: copy only, no checkpoint decision (the controller decides once per
   * monitor-interval, as Litestream's DB.Sync; see Checkpointer.due()).
   */
  sync(shipped?: { generation: string; index: number }, opts: { checkpoint?: boolean } = {}): boolean {
    const t0 = performance.now();
    try {
      if (!this.init()) return false;
      const changed = this.syncInner(shipped, opts.checkpoint ?? true);
      this.stats.syncs++;
      return changed;
    } catch (err) {
      this.stats.syncErrors++;
      throw err;
    } finally {
      this.stats.syncSeconds += (performance.now() - t0) / 1000;
    }
  }

  private syncInner(shipped: { generation: string; index: number } | undefined, checkpoint: boolean): boolean {
    // Make a WAL exist for the shadow to follow.
    if (fileSize(this.walPath) < WAL_HEADER_SIZE) this.conns.bumpSeq();
    const v = this.wal.verify();
    let changed = false;
    if (v.reason) {
      this.wal.createGeneration(v.reason);
      changed = true;
    } else {
      const added = this.wal.copy();
      this.stats.totalWALBytes += added;
      changed = added > 0;
      if (v.restart) {
        // The WAL was restarted by someone else after our last copy, and the frames we last
        // copied are intact: continue in the next index rather than a new generation.
        this.wal.startNextIndex();
        changed = true;
      }
    }
    if (checkpoint) {
      const mode = this.checkpointer.due();
      if (mode && this.checkpoint(mode)) changed = true;
    }
    this.wal.clean(shipped);
    return changed;
  }

  /**
   * Has the app committed past what the shadow holds, or restarted the WAL? The controller polls
   * this between syncs instead of watching the directory: an armed inotify watch makes every
   * write(2) of the app queue an event (measured at a third of a default-settings app's write
   * rate). One 96-byte read of the WAL-index header in -shm (ShadowWAL.newFrames).
   */
  walAdvanced(): boolean {
    return this.newFrames() > 0;
  }

  /** Frames the app committed past the shadow (Infinity: the WAL restarted, or unknown but changed); 0 when none. */
  newFrames(): number {
    return this.wal.newFrames(this.conns.state?.shmFd);
  }

  /**
   * A checkpoint now (checkpointer.ts), unless a snapshot is reading the file (Litestream #477)
   * or the database is not open. Returns whether the WAL restarted (the next index began).
   */
  checkpoint(mode: 'PASSIVE' | 'RESTART' = 'PASSIVE'): boolean {
    if (this.source.held || !this.conns.state) return false;
    return this.checkpointer.run(mode);
  }

  /** The database at the shadow WAL's end now, or at `at` again (SnapshotSource.begin). */
  beginSnapshot(at?: Pos): Snapshot {
    return this.source.begin(at);
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
      this.conns.releaseReadLock();
    } catch {
      /* ignore */
    }
  }

  closeConnections(): void {
    this.conns.close();
  }
}
