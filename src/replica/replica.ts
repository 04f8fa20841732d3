/**
 * A replica of one database: its position on the store, WAL segment uploads, snapshots and
 * retention (Litestream 0.3 `Replica`, reference §2.7, 3.6, 3.7). Talks to the store only
 * through a stateless ReplicaClient.
 *
 * Requests: a sync makes exactly one PUT per shadow WAL index touched (no LIST on the hot path;
 * Litestream 0.3.5's LIST per sync was 99 % of a user's bill). LIST/GET happen only when the
 * replica (re)learns its position: at start and after a new generation.
 */
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { assertAgeWritable } from '../config/age.js';
import type { ReplicaConfig } from '../config/types.js';
import { LsinitError, errorMessage } from '../errors.js';
import { FRAME_BLOCK_SIZE, decodeFrames, encodeFrame, encodeFrameStream } from '../format/lz4.js';
import { hex8 } from '../format/paths.js';
import type { Logger } from '../log/logger.js';
import type { ReplicaSource } from '../sqlite/snapshot-source.js';
import { comparePos, formatPos, type Pos, type ReplicaClient, type SnapshotInfo } from './client.js';
import { processClock } from '../util/clock.js';
import { withRetry } from './retry.js';
import { gcPacer } from '../util/memory.js';
import { readFullAt } from '../util/read-full.js';

/**
 * Segments up to this size are read whole, compressed in memory and sent in one PUT; larger ones
 * stream one LZ4 block at a time (a PUT too when the store's client finds them small enough).
 */
const INLINE_SEGMENT_MAX = 1 << 20;
/**
 * Readable.from() buffers 16 objects ahead by default: 16 compressed 4 MiB LZ4 blocks (64 MiB of
 * RSS) whenever the store is slower than the disk. One block ahead keeps the pipe full.
 */
export const ONE_BLOCK_AHEAD = { highWaterMark: 1 } as const;
/**
 * Each shipped MiB leaves LZ4 blocks and read buffers behind as external memory, which V8 collects
 * only ~64 MiB later (util/memory.ts): collect every 16 MiB shipped instead (a few ms of the
 * replication thread; in init mode that is the worker, never the thread forwarding signals).
 */
let pace: ((bytes: number) => void) | undefined;
const shipped = (bytes: number) => (pace ??= gcPacer(16 << 20))(bytes);

/** Counts each chunk as it is read, so that one large snapshot is collected as it goes. */
async function* paced(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    shipped(chunk.length);
    yield chunk;
  }
}

/**
 * [start, end) of `path` in chunks of one LZ4 block, all read into one buffer: the encoder hashes
 * and compresses each chunk (into a new buffer) before it asks for the next, so a segment of any
 * size costs one block of read buffer, not a fresh one per block left for the GC.
 */
async function* blocksOf(path: string, start: number, end: number): AsyncGenerator<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(Math.min(FRAME_BLOCK_SIZE, end - start));
    for (let off = start; off < end; ) {
      const want = Math.min(buf.length, end - off);
      const n = await readFullAt(fh, buf, 0, want, off);
      if (n < want) throw new LsinitError('LSINIT_ERR_REPLICA', `short read of ${path}: ${off + n - start} of ${end - start} bytes`, { transient: true });
      shipped(want);
      yield buf.subarray(0, want);
      off += want;
    }
  } finally {
    await fh.close();
  }
}

/** `len` bytes of `path` from `offset`, in one buffer (no list of chunks to join). */
async function readRange(path: string, offset: number, len: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const b = Buffer.allocUnsafe(len);
    const n = await readFullAt(fh, b, 0, len, offset);
    return n === len ? b : b.subarray(0, n);
  } finally {
    await fh.close();
  }
}

export interface ReplicaStats {
  walBytes: number;
  lastSyncAt: number | undefined;
  lastErrorAt: number | undefined;
  lastError: string | undefined;
  /** Commit time (ms) of the oldest data not yet on the replica, for lag. */
  pendingSince: number | undefined;
  snapshots: number;
  /** validation-interval outcomes (src/replicate/validate.ts): `error` is a replica that differs or cannot be restored. */
  validations: { ok: number; error: number };
}

export class Replica {
  readonly name: string;
  readonly cfg: ReplicaConfig;
  readonly client: ReplicaClient;
  /** The database's shadow WAL and snapshots, read-only but for pins (never its syncs or checkpoints). */
  private readonly source: ReplicaSource;
  private readonly log: Logger;
  pos: Pos | undefined;
  private busy: Promise<void> = Promise.resolve();
  readonly stats: ReplicaStats = { walBytes: 0, lastSyncAt: undefined, lastErrorAt: undefined, lastError: undefined, pendingSince: undefined, snapshots: 0, validations: { ok: 0, error: 0 } };
  private lastSnapshotAt = 0;
  private now: () => number;

  constructor(source: ReplicaSource, cfg: ReplicaConfig, client: ReplicaClient, log: Logger, opts: { now?: () => number } = {}) {
    if (cfg.age) assertAgeWritable(cfg.age); // refuse at start-up, not at the first sync
    this.source = source;
    this.cfg = cfg;
    this.name = cfg.name;
    this.client = client;
    this.log = log;
    this.now = opts.now ?? processClock;
  }

  /** Serialize operations on this replica (sync, snapshot, retention never overlap). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.busy.then(fn, fn);
    this.busy = run.then(() => undefined, () => undefined);
    return run;
  }

  /** Where the local shadow WAL ends now (what a sync starting now ships up to). */
  localPos(): Pos | undefined {
    return this.source.pos();
  }

  /** True when the DB has committed data this replica does not have yet (or data up to `than`). */
  behind(than?: Pos): boolean {
    const d = than ?? this.source.pos();
    if (!d) return false;
    const p = this.pos;
    return !p || p.generation !== d.generation || p.index < d.index || p.offset < d.offset;
  }

  sync(opts: { fast?: boolean } = {}): Promise<void> {
    return this.exclusive(() => this.syncInner(opts));
  }

  private async syncInner(opts: { fast?: boolean }): Promise<void> {
    const dpos = this.source.pos();
    if (!dpos) return;
    try {
      let target = dpos;
      if (!this.pos || this.pos.generation !== dpos.generation) {
        // A generation's first snapshot: its first segment must reach the snapshot's position.
        const first = await this.learnPos(dpos.generation, opts);
        if (first) target = laterPos(dpos, first);
        this.log.debug('replica position', { position: formatPos(this.pos!) });
      }
      await this.uploadTo(target, opts);
      this.stats.lastSyncAt = this.now();
      this.stats.pendingSince = undefined;
      this.stats.lastError = undefined;
    } catch (err) {
      this.stats.lastErrorAt = this.now();
      this.stats.lastError = errorMessage(err);
      if (err instanceof LsinitError && err.code === 'LSINIT_ERR_REPLICA') this.pos = undefined; // relearn position next time
      throw err;
    }
  }

  /**
   * Learn where the store is in generation `gen` (this.pos). A generation the store holds no
   * snapshot of gets its first one now, before any of its WAL: returns that snapshot's position.
   */
  private async learnPos(gen: string, opts: { fast?: boolean }): Promise<Pos | undefined> {
    const snaps = await this.retry(() => this.client.snapshots(gen), opts);
    if (snaps.length > 0) {
      this.pos = await this.calcPos(gen, opts, snaps);
      return undefined;
    }
    const at = await this.writeSnapshotObject(opts);
    this.pos = { generation: at.generation, index: at.index, offset: 0 };
    return at;
  }

  /**
   * Ship up to `dpos` (where the shadow was when the sync began): one PUT per index touched,
   * not a chase after every commit that lands while an upload is in flight.
   */
  private async uploadTo(dpos: Pos, opts: { fast?: boolean }): Promise<void> {
    let target = dpos;
    for (;;) {
      const p: Pos = this.pos!;
      if (p.generation !== target.generation || p.index > target.index || (p.index === target.index && p.offset >= target.offset)) break;
      const end = p.index === target.index ? target.offset : this.source.shadowSize(p.generation, p.index);
      if (end < 0) {
        // The database moved to another generation meanwhile: the next sync starts on it.
        if (this.source.pos()?.generation !== p.generation) break;
        // The replica is further behind than the local shadow WAL reaches (it was down while
        // older indexes were cleaned up): a snapshot of the current state closes the gap. The
        // store holds nothing of its index yet; the first segment must reach its position.
        this.log.warn('replica is behind the local shadow WAL; writing a snapshot to catch up', { position: formatPos(p) });
        const at = await this.writeSnapshotObject(opts);
        this.pos = { generation: at.generation, index: at.index, offset: 0 };
        target = laterPos(target, at);
        continue;
      }
      if (p.offset < end) {
        await this.uploadSegment(p, end, opts);
        continue;
      }
      if (p.offset > end) throw new LsinitError('LSINIT_ERR_REPLICA', `replica position ${formatPos(p)} is past the local shadow WAL (${end})`);
      // This index is fully shipped; move on if a later one exists.
      if (this.source.shadowSize(p.generation, p.index + 1) >= 0) {
        this.pos = { generation: p.generation, index: p.index + 1, offset: 0 };
        continue;
      }
      break;
    }
  }

  private retry<T>(fn: () => Promise<T>, opts: { fast?: boolean }): Promise<T> {
    // Clients retry each request themselves; one more outer attempt covers the file client and stream replays.
    return withRetry(fn, opts.fast ? { attempts: 1 } : { attempts: 2, baseMs: 200, maxMs: 1000 });
  }

  private async uploadSegment(p: Pos, end: number, opts: { fast?: boolean }): Promise<void> {
    const path = this.source.shadowPath(p.generation, p.index);
    this.source.flushShadow(p.generation, p.index);
    const len = end - p.offset;
    const t0 = performance.now();
    await this.retry(async () => {
    if (len <= INLINE_SEGMENT_MAX) {
      const raw = await readRange(path, p.offset, len);
      if (raw.length !== len) throw new LsinitError('LSINIT_ERR_REPLICA', `short read of ${path}: ${raw.length} of ${len} bytes`, { transient: true });
      await this.client.writeWALSegment(p, await encodeFrame(raw));
      shipped(len);
    } else {
      const body = Readable.from(encodeFrameStream(blocksOf(path, p.offset, end)), ONE_BLOCK_AHEAD);
      await this.client.writeWALSegment(p, body);
    }
    }, opts);
    this.pos = { generation: p.generation, index: p.index, offset: end };
    this.stats.walBytes += len;
    this.log.info('wal segment written', { position: formatPos(p), elapsed_ms: Math.round(performance.now() - t0), sz: len });
  }

  /** Position on the store: end of the last segment, or the newest snapshot's index (reference §2.7). */
  private async calcPos(gen: string, opts: { fast?: boolean }, snaps: SnapshotInfo[]): Promise<Pos> {
    if (snaps.length === 0) throw new LsinitError('LSINIT_ERR_REPLICA', `no snapshot in generation ${gen} after writing one`);
    const snapIndex = Math.max(...snaps.map((s) => s.index));
    const segs = await this.retry(() => this.client.walSegments(gen), opts);
    const last = segs[segs.length - 1];
    if (!last || last.index < snapIndex) return { generation: gen, index: snapIndex, offset: 0 };
    let n: number;
    try {
      n = await this.retry(async () => {
        let total = 0;
        for await (const c of decodeFrames(await this.client.walSegmentReader({ generation: gen, index: last.index, offset: last.offset }), `wal ${hex8(last.index)}_${hex8(last.offset)}`)) total += c.length;
        return total;
      }, opts);
    } catch (err) {
      if (!(err instanceof LsinitError) || (err.code !== 'LSINIT_ERR_FORMAT' && err.code !== 'LSINIT_ERR_CHECKSUM')) throw err;
      // The newest segment on the store is damaged (a torn upload by another tool, bit rot).
      // It is the last one, so rewriting it from the local shadow WAL under the same name
      // repairs the replica instead of blocking replication forever.
      this.log.warn('newest WAL segment on the replica is unreadable; rewriting it from the local shadow WAL', { position: formatPos({ generation: gen, index: last.index, offset: last.offset }), error: err.message });
      return { generation: gen, index: last.index, offset: last.offset };
    }
    const pos = { generation: gen, index: last.index, offset: last.offset + n };
    // A replica ahead of our shadow (another writer, or a lost local state) cannot be continued safely.
    if (this.source.shadowSize(gen, pos.index) < pos.offset) {
      throw new LsinitError('LSINIT_ERR_REPLICA', `replica ${this.name} holds generation ${gen} up to ${formatPos(pos)}, beyond the local shadow WAL; is another lsinit replicating here?`);
    }
    return pos;
  }

  snapshot(opts: { fast?: boolean } = {}): Promise<void> {
    return this.exclusive(async () => void (await this.snapshotInner(opts)));
  }

  /**
   * A snapshot of the database's current position, ordered with the WAL for point-in-time
   * safety (the hazard in reference §4.3). The snapshot holds the database at an exact position
   * (N, P) of shadow index N (db.beginSnapshot); a restore that starts from it replays index N
   * from offset 0, and must then reach P or replay none of it: fewer frames would lay older
   * versions of some pages over a newer snapshot. So when the store already holds this
   * generation, index N is shipped up to P before the snapshot object exists (any timestamp that
   * selects the snapshot also selects those segments); a generation's first snapshot comes before
   * any of its WAL, and its first segment is shipped at least to P (syncInner, uploadTo).
   */
  private async snapshotInner(opts: { fast?: boolean }): Promise<Pos> {
    const gen = this.source.pos()?.generation;
    if (!gen) throw new LsinitError('LSINIT_ERR_DB', `${this.source.path}: no generation yet`);
    if (this.pos?.generation !== gen) {
      const first = await this.learnPos(gen, opts);
      if (first) return first;
    }
    return this.writeSnapshotObject(opts, (at) => this.uploadTo(at, opts));
  }

  /**
   * Write a snapshot object of the database at its current position and return that position.
   * `before` runs once the position is fixed and before the object is written (ship up to it).
   * Our checkpoints stay off throughout, so a retry writes the same position again.
   */
  private async writeSnapshotObject(opts: { fast?: boolean }, before?: (at: Pos) => Promise<void>): Promise<Pos> {
    const t0 = performance.now();
    const pin = this.source.pinSnapshot();
    try {
      const at = pin.at;
      await before?.(at);
      await this.retry(async () => {
        const s = pin.open();
        try {
          await this.client.writeSnapshot(s.generation, s.index, Readable.from(encodeFrameStream(paced(s.stream)), ONE_BLOCK_AHEAD));
        } finally {
          s.stream.destroy();
        }
      }, opts);
      this.lastSnapshotAt = this.now();
      this.stats.snapshots++;
      this.log.info('snapshot written', { position: formatPos(at), elapsed_ms: Math.round(performance.now() - t0) });
      return at;
    } finally {
      pin.release();
    }
  }

  /** Snapshot when `snapshot-interval` has passed since the last one (by this process). */
  async maybeSnapshot(): Promise<void> {
    if (this.cfg.snapshotIntervalMs <= 0 || !this.source.pos()) return;
    if (this.lastSnapshotAt === 0) {
      // First tick: align to the newest snapshot on the store (Litestream 0.3.12+).
      const gen = this.source.pos()!.generation;
      const snaps = await this.client.snapshots(gen);
      const newest = snaps.reduce<bigint>((m, s) => (s.createdAt > m ? s.createdAt : m), 0n);
      // The store's times are wall-clock; ours (util/clock.ts) need not be: carry the age over.
      this.lastSnapshotAt = newest > 0n ? this.now() - Math.max(0, Date.now() - Number(newest / 1_000_000n)) : this.now();
    }
    if (this.now() - this.lastSnapshotAt >= this.cfg.snapshotIntervalMs) await this.snapshot();
  }

  /** Retention (reference §3.6): keep snapshots newer than `retention`, never the current generation's last. */
  enforceRetention(): Promise<void> {
    return this.exclusive(async () => {
      if (this.cfg.retentionMs <= 0) return;
      // Compared with the store's object times: wall clock.
      const cutoff = BigInt(Date.now() - this.cfg.retentionMs) * 1_000_000n;
      const current = this.source.pos()?.generation;
      const gens = await this.client.generations();
      const kept = new Map<string, number>();
      let anyKept = false;
      const all = new Map<string, Awaited<ReturnType<ReplicaClient['snapshots']>>>();
      for (const g of gens) {
        const snaps = await this.client.snapshots(g);
        all.set(g, snaps);
        for (const s of snaps) {
          if (s.createdAt >= cutoff) {
            anyKept = true;
            kept.set(g, Math.min(kept.get(g) ?? Infinity, s.index));
          }
        }
      }
      if (!anyKept && current) {
        await this.snapshotInner({});
        const snaps = await this.client.snapshots(current);
        all.set(current, snaps);
        kept.set(current, Math.max(...snaps.map((s) => s.index)));
      }
      for (const g of gens) {
        const min = kept.get(g);
        if (min === undefined) {
          if (g === current) continue;
          await this.client.deleteGeneration(g);
          this.log.info('generation deleted by retention', { generation: g });
          continue;
        }
        for (const s of all.get(g) ?? []) if (s.index < min) await this.client.deleteSnapshot(g, s.index);
        const segs = (await this.client.walSegments(g)).filter((s) => s.index < min);
        if (segs.length) await this.client.deleteWALSegments(segs.map((s) => ({ generation: g, index: s.index, offset: s.offset })));
      }
    });
  }

  /**
   * Learn the position from the store again at the next sync (after another instance may have
   * written to the replica). Queued behind any operation in flight, which may still move it.
   */
  forgetPosition(): Promise<void> {
    return this.exclusive(async () => {
      this.pos = undefined;
    });
  }

  /** Wait for in-flight work (used at shutdown). */
  idle(): Promise<void> {
    return this.busy;
  }
}

/** The later of two positions; `b` when they are in different generations (the newer one). */
function laterPos(a: Pos, b: Pos): Pos {
  if (a.generation !== b.generation) return b;
  return comparePos(a, b) >= 0 ? a : b;
}
