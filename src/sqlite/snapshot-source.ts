/**
 * What a replica reads from its database: the shadow WAL's position and files, and snapshots
 * (the database at one exact position, image.ts). The replica sees only `ReplicaSource`: it never
 * syncs the database nor decides its checkpoints; a pinned snapshot position keeps our
 * checkpoints (which move the read mark) off until it is released, and db.ts asks `held` before
 * each checkpoint.
 *
 * One explicit state: `holds`, the number of pins and open snapshot streams (checkpoints run only
 * at 0; Litestream #477).
 */
import type { Readable } from 'node:stream';
import { LsinitError } from '../errors.js';
import { hex8 } from '../format/paths.js';
import type { Pos } from '../replica/client.js';
import { imageAt } from './image.js';
import type { ShadowWAL } from './shadow-wal.js';

/** The database at a position: `size` bytes in `stream`. */
export interface Snapshot {
  generation: string;
  index: number;
  offset: number;
  size: number;
  stream: Readable;
}

/** A snapshot position held with our checkpoints off until `release()`: the same bytes on every `open()`. */
export interface SnapshotPin {
  readonly at: Pos;
  open(): Snapshot;
  release(): void;
}

/** The replica's view of its database (replica.ts). */
export interface ReplicaSource {
  /** The database file, for messages. */
  readonly path: string;
  /** Where the shadow WAL ends now; undefined before the first generation. */
  pos(): Pos | undefined;
  /** Committed size of a shadow index, -1 when it does not exist. */
  shadowSize(gen: string, index: number): number;
  shadowPath(gen: string, index: number): string;
  /** Make a shadow index durable before its bytes are shipped. */
  flushShadow(gen: string, index: number): void;
  /** Copy the WAL, make the index durable and hold that position (see SnapshotSource.pin). */
  pinSnapshot(): SnapshotPin;
}

export class SnapshotSource implements ReplicaSource {
  private holds = 0;

  constructor(
    readonly path: string,
    private readonly wal: ShadowWAL,
    /** Opens the database when it is not yet (db.ts init()); false while the file does not exist. */
    private readonly ensureOpen: () => boolean,
    /** The database file's long-lived descriptor (connections.ts), once open. */
    private readonly dbFd: () => number,
  ) {}

  /** True while a pin or a snapshot stream holds our checkpoints off. */
  get held(): boolean {
    return this.holds > 0;
  }

  pos(): Pos | undefined {
    return this.wal.pos();
  }

  shadowSize(gen: string, index: number): number {
    return this.wal.shadowSize(gen, index);
  }

  shadowPath(gen: string, index: number): string {
    return this.wal.shadowPath(gen, index);
  }

  flushShadow(gen: string, index: number): void {
    this.wal.flush(gen, index);
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
  begin(at?: Pos): Snapshot {
    const cur = this.ensureOpen() ? this.wal.current : undefined;
    if (!cur) throw new LsinitError('LSINIT_ERR_DB', `${this.path}: no generation yet`);
    let index = cur.index;
    let offset: number;
    if (at) {
      // The same position again (a retried upload): valid while our checkpoints stayed off since.
      if (at.generation !== cur.generation || at.index > cur.index) throw new LsinitError('LSINIT_ERR_DB', `${this.path}: snapshot position ${at.generation}/${hex8(at.index)} is gone (generation ${cur.generation})`);
      index = at.index;
      offset = at.offset;
    } else {
      this.wal.copyAndFlush();
      offset = cur.shadow.size;
    }
    const path = this.wal.shadowPath(cur.generation, index);
    this.holds++;
    let released = false;
    const { size, stream } = imageAt(this.dbFd(), path, offset, () => {
      if (!released) {
        released = true;
        this.holds--;
      }
    });
    return { generation: cur.generation, index, offset, size, stream };
  }

  /**
   * A snapshot position for a replica's snapshot object, which may take several attempts: the
   * first `open()` streams the snapshot begun here, later ones the same position again. Our
   * checkpoints stay off from here until `release()` (and any stream still open is closed), so
   * every attempt writes the same bytes.
   */
  pinSnapshot(): SnapshotPin {
    this.holds++;
    let first: Snapshot | undefined;
    try {
      first = this.begin();
    } catch (err) {
      this.holds--;
      throw err;
    }
    const at: Pos = { generation: first.generation, index: first.index, offset: first.offset };
    let released = false;
    return {
      at,
      open: () => {
        const s = first ?? this.begin(at);
        first = undefined;
        return s;
      },
      release: () => {
        if (released) return;
        released = true;
        first?.stream.destroy();
        this.holds--;
      },
    };
  }
}
