/**
 * The stateless replica client interface, Litestream 0.3's ReplicaClient (reference §3.5).
 * A client lists, reads, writes and deletes objects of the layout in `format/paths.ts`; it holds
 * no positions. Readers return the bytes exactly as stored (LZ4 frames). Positions, snapshot
 * scheduling and retention live above, in `replica/replica.ts`.
 */
import type { Readable } from 'node:stream';
import type { ByteSource } from '../format/bytereader.js';

/** Object timestamps are nanoseconds since the Unix epoch: file mtimes need ns precision (vectors README). */
export type TimeNs = bigint;

export interface Pos {
  generation: string;
  index: number;
  offset: number;
}

export interface SnapshotInfo {
  generation: string;
  index: number;
  /** Stored (compressed) size in bytes. */
  size: number;
  createdAt: TimeNs;
}

export interface WALSegmentInfo {
  generation: string;
  index: number;
  offset: number;
  /** Stored (compressed) size in bytes. */
  size: number;
  createdAt: TimeNs;
}

/** An object found by `listObjects`: its key relative to the replica root ('/'-separated). */
export interface ObjectInfo {
  key: string;
  /** Stored size in bytes. */
  size: number;
  createdAt: TimeNs;
}

/** What a write accepts: a whole buffer (small WAL segments) or a stream (snapshots, huge transactions). */
export type Body = Uint8Array | Readable;

export interface ReplicaClient {
  /** `file`, `s3`, `gcs`, `abs` or `sftp`. */
  readonly type: string;
  /** Generation names (16 lowercase hex) under `generations/`, sorted. */
  generations(): Promise<string[]>;
  deleteGeneration(generation: string): Promise<void>;
  /** Snapshots of a generation, sorted by index. An unknown generation gives []. */
  snapshots(generation: string): Promise<SnapshotInfo[]>;
  writeSnapshot(generation: string, index: number, body: Body): Promise<SnapshotInfo>;
  deleteSnapshot(generation: string, index: number): Promise<void>;
  /** Throws LsinitError LSINIT_ERR_NOT_FOUND when missing. */
  snapshotReader(generation: string, index: number): Promise<Readable>;
  /**
   * Optional: the stored snapshot as a ByteSource that reads straight into the decoder's buffers
   * (a local file); undefined when this client only streams (then use snapshotReader). `onBytes`
   * is told each byte count read. Throws LsinitError LSINIT_ERR_NOT_FOUND when missing.
   */
  snapshotSource?(generation: string, index: number, onBytes: (n: number) => void): Promise<ByteSource | undefined>;
  /** WAL segments of a generation, sorted by (index, offset). An unknown generation gives []. */
  walSegments(generation: string): Promise<WALSegmentInfo[]>;
  writeWALSegment(pos: Pos, body: Body): Promise<WALSegmentInfo>;
  deleteWALSegments(positions: Pos[]): Promise<void>;
  /** Throws LsinitError LSINIT_ERR_NOT_FOUND when missing. */
  walSegmentReader(pos: Pos): Promise<Readable>;
  /**
   * Every object beneath the folder `dir` (a key relative to the replica root, e.g. `ltx`), at
   * any depth, sorted by key. A missing folder gives []. Used to read layouts other than 0.3's
   * (Litestream 0.5's `ltx/<level>/<min>-<max>.ltx`).
   */
  listObjects(dir: string): Promise<ObjectInfo[]>;
  /** Throws LsinitError LSINIT_ERR_NOT_FOUND when missing. `key` as `listObjects` gives it. */
  objectReader(key: string): Promise<Readable>;
  /** Write (replace) the object at `key`, whole or not at all where the store allows. */
  writeObject(key: string, body: Body): Promise<ObjectInfo>;
  /** Release connections (SFTP sessions, HTTP agents). The client may not be used afterwards. */
  close(): Promise<void>;
  /**
   * Abort every request in flight now (they reject); later requests are not affected. The final
   * sync uses it so that one request hung on a stalled store does not eat the whole shutdown
   * budget. Optional: a backend without it is waited for, bounded by its own request timeout.
   */
  abortInFlight?(): void;
}

export function comparePos(a: Pos, b: Pos): number {
  if (a.generation !== b.generation) return a.generation < b.generation ? -1 : 1;
  if (a.index !== b.index) return a.index - b.index;
  return a.offset - b.offset;
}

export function formatPos(p: Pos): string {
  return `${p.generation}/${p.index.toString(16).padStart(8, '0')}:${p.offset}`;
}

/** Order of `listObjects` results: by key, bytewise. */
export function byKey(a: ObjectInfo, b: ObjectInfo): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}
