/**
 * Checkpoints of one replicated database (reference §2.5): the policy (when, and PASSIVE or a
 * restart pass) and the passes themselves, which copy the WAL to the shadow WAL around SQLite's
 * checkpoint so that no frame is back-filled and overwritten before it was copied.
 *
 * State: none of its own besides the counters (litestream_checkpoint_*); it acts on the
 * connections (read lock, write lock) and the shadow WAL it is given. Whether a snapshot holds
 * checkpoints off is the caller's (db.ts) to check first.
 */
import { fsyncSync, closeSync, openSync, statSync } from 'node:fs';
import type { DBConfig } from '../config/types.js';
import { hex8 } from '../format/paths.js';
import { FRAME_HEADER_SIZE, WAL_HEADER_SIZE } from '../format/wal.js';
import type { Logger } from '../log/logger.js';
import type { Connections } from './connections.js';
import type { SqliteConnection } from './driver.js';
import { readWALHeaderFile } from './shadow.js';
import type { ShadowWAL } from './shadow-wal.js';

/**
 * Before a restart pass takes the write lock: catch-up rounds (copy + WAL fsync, no lock) while
 * the app has committed more than this many frames past the shadow (~1 MiB of 4 KiB pages), at
 * most this many rounds (each copies what the app wrote during the previous one).
 */
const CATCH_UP_TAIL_FRAMES = 256;
const CATCH_UP_ROUNDS = 8;
/** For a 1 ms synchronous pause between checkpoint attempts under the write lock. */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

export type CheckpointStats = Record<string, { count: number; errors: number; seconds: number }>;

/** What a checkpoint reported: frames in the WAL, and whether all of them were back-filled. */
interface CheckpointResult {
  log: number;
  complete: boolean;
}

export interface CheckpointerOptions {
  cfg: DBConfig;
  walPath: string;
  conns: Connections;
  wal: ShadowWAL;
  log: Logger;
  /** Wall clock, compared with the database file's mtime (checkpoint-interval). */
  now: () => number;
  /** Counters by mode, shared with the DB's stats. */
  stats: CheckpointStats;
}

export class Checkpointer {
  constructor(private readonly o: CheckpointerOptions) {}

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
   *
   * Returns the mode due, or undefined when none is.
   */
  due(): 'PASSIVE' | 'RESTART' | undefined {
    const { cfg } = this.o;
    const st = this.o.wal.current!.shadow;
    const fs = FRAME_HEADER_SIZE + this.pageSize();
    const pages = (st.size - WAL_HEADER_SIZE) / fs;
    if (cfg.maxCheckpointPageCount > 0 && pages >= cfg.maxCheckpointPageCount) return 'RESTART';
    const due = pages >= cfg.minCheckpointPageCount || (cfg.checkpointIntervalMs > 0 && pages > 1 && this.o.now() - statSync(cfg.path).mtimeMs > cfg.checkpointIntervalMs);
    return due ? 'PASSIVE' : undefined;
  }

  private pageSize(): number {
    return this.o.conns.state!.pageSize;
  }

  /**
   * A PASSIVE checkpoint (the only mode SQLite runs for us, and the one it is counted under); when
   * the WAL restarts, finish the old index and start the next. Returns whether it did.
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
  run(mode: 'PASSIVE' | 'RESTART'): boolean {
    const { conns, wal, walPath, log } = this.o;
    const conn = conns.state!.conn;
    const t0 = performance.now();
    const fs = FRAME_HEADER_SIZE + this.pageSize();
    const before = readWALHeaderFile(walPath);
    wal.copy();
    fsyncFile(walPath);
    let r: CheckpointResult | undefined;
    if (mode === 'RESTART') {
      // Catch up (without a lock) on what the app committed during that fsync, round after round
      // while a saturating app keeps appending, so the locked pass has only the last few frames to
      // copy and fsync (one catch-up round left 360 ms of copying under the write lock behind a
      // 1 s fsync of a 200 MB WAL; these rounds shrink it to a few ms). Our read lock is never
      // released outside the write lock here: no window in which the app could restart the WAL
      // past uncopied frames.
      for (let i = 0; i < CATCH_UP_ROUNDS; i++) {
        const behind = wal.newFrames(conns.state!.shmFd);
        if (behind <= CATCH_UP_TAIL_FRAMES || behind === Infinity) break; // Infinity: restarted, the locked pass sees it
        if (wal.copy() === 0) break;
        fsyncFile(walPath);
      }
      r = this.restartPass();
    } else {
      r = conns.withoutReadLock(() => this.passive(conn));
    }
    const walFrames = r?.log ?? -1;
    const complete = r?.complete ?? false;
    // This write makes SQLite restart the WAL if the checkpoint was complete and no reader pins it.
    // After an incomplete one it cannot: skip it rather than queue behind a busy app's writers for
    // up to the busy timeout with our event loop blocked (every sync, under a saturating writer).
    // Not after the app restarted the WAL itself while our read lock was released: our checkpoint
    // may have back-filled that new lifetime before we copied it, and a second restart would
    // overwrite it (startNextIndex below copies it instead).
    if (complete && before?.equals(readWALHeaderFile(walPath) ?? Buffer.alloc(0))) {
      try {
        conns.bumpSeq();
      } catch (err) {
        // After a RESTART pass nothing is left to copy: the app's next write restarts the WAL as
        // well, and the next sync continues in the next index.
        if (mode !== 'RESTART' || !/busy|locked/i.test((err as Error).message)) throw err;
      }
    }
    const after = readWALHeaderFile(walPath);
    let restarted = false;
    if (before && after && !before.equals(after)) {
      // Under the write lock, pick up old-salt frames still past the new WAL's write position,
      // then start the next index from the new header.
      try {
        conn.exec('BEGIN IMMEDIATE');
        try {
          wal.copy();
          // An app commit that landed between our copy and the checkpoint was back-filled into
          // the file; if a long transaction restarted the WAL and overwrote its frames before we
          // could copy them, it is in no shadow index. The checkpoint told us how many frames
          // the old WAL had: if we hold fewer, start a new generation, whose snapshot has them.
          // (Litestream 0.3 loses such a commit from every replica; test/torture/checkpoint-race.)
          const size = wal.current!.shadow.size;
          if (walFrames >= 0 && size < WAL_HEADER_SIZE + walFrames * fs) {
            wal.forceNewGeneration(`checkpoint race: ${walFrames - (size - WAL_HEADER_SIZE) / fs} frame(s) of the old WAL were overwritten before they were copied`);
          }
          wal.startNextIndex();
          restarted = true;
        } finally {
          conn.exec('ROLLBACK');
        }
      } catch (err) {
        // Next sync's verify() sees the restart and either continues or starts a new generation.
        log.warn('could not take the write lock after a WAL restart', { error: (err as Error).message });
      }
    }
    log.debug('checkpoint', { mode, restarted, index: hex8(wal.current!.index), ms: Math.round(performance.now() - t0) });
    return restarted;
  }

  /**
   * Under the write lock: copy every committed frame, then back-fill them all, so the next write
   * (ours, or the app's) restarts the WAL with nothing left to copy. undefined when the app held
   * the write lock for all of checkpoint-busy-timeout.
   */
  private restartPass(): CheckpointResult | undefined {
    const { conns, wal, walPath, log, cfg } = this.o;
    const { conn, rconn } = conns.state!;
    try {
      conn.exec('BEGIN IMMEDIATE');
    } catch (err) {
      if (!/busy|locked/i.test((err as Error).message)) throw err;
      log.debug('write lock busy; the WAL restarts at a later checkpoint', { error: (err as Error).message });
      return undefined;
    }
    const locked = performance.now();
    try {
      // The app restarted the WAL while our read lock was released (the passive checkpoint just
      // before): its new lifetime is not in the shadow yet, so it must not be back-filled and
      // restarted again; the caller continues in the next index.
      if (!wal.current!.shadow.headerBytes.equals(readWALHeaderFile(walPath) ?? Buffer.alloc(0))) return undefined;
      wal.copy();
      // A connection in a transaction cannot checkpoint: the read connection runs it. An app with
      // wal_autocheckpoint on may be in its own checkpoint (it runs after its commit, without the
      // write lock): a passive checkpoint does not wait for it (log -1), so look again shortly.
      return conns.withoutReadLock(() => {
        const until = performance.now() + cfg.checkpointBusyTimeoutMs;
        for (;;) {
          const r = this.passive(rconn);
          if (!r || r.log >= 0 || performance.now() >= until) return r;
          Atomics.wait(PAUSE, 0, 0, 1);
        }
      });
    } finally {
      conn.exec('ROLLBACK');
      log.debug('write lock held for a restart', { ms: Math.round(performance.now() - locked) });
    }
  }

  /** One `PRAGMA wal_checkpoint(PASSIVE)`: undefined when it failed (logged), else its frame counts. */
  private passive(conn: SqliteConnection): CheckpointResult | undefined {
    const mode = 'PASSIVE';
    const stat = (this.o.stats[mode] ??= { count: 0, errors: 0, seconds: 0 });
    const t0 = performance.now();
    stat.count++;
    try {
      const r = conn.pragma(`wal_checkpoint(${mode})`) as { busy: number; log: number; checkpointed: number }[];
      const log = r[0]?.log ?? -1;
      return { log, complete: log >= 0 && r[0]?.busy === 0 && r[0]?.checkpointed === log };
    } catch (err) {
      stat.errors++;
      this.o.log.warn('checkpoint failed', { mode, error: (err as Error).message });
      return undefined;
    } finally {
      stat.seconds += (performance.now() - t0) / 1000;
    }
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
