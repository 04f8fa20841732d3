/**
 * Object naming of a Litestream 0.3 replica (reference §3.1), identical on every backend:
 *   <path>/generations/<gen>/snapshots/<index %08x>.snapshot.lz4
 *   <path>/generations/<gen>/wal/<index %08x>_<offset %08x>.wal.lz4
 * Pure functions, no I/O.
 */
import { posix } from 'node:path';
import { LsinitError } from '../errors.js';

const GENERATION_RE = /^[0-9a-f]{16}$/;
const SNAPSHOT_RE = /^([0-9a-f]{8})\.snapshot\.lz4$/;
// Litestream 0.3 parses exactly 8 hex digits; %08x prints more once an offset passes 4 GiB,
// so accept 8..16 on read like v0.5's RestoreV3 does, and never produce such names ourselves.
const SEGMENT_RE = /^([0-9a-f]{8})_([0-9a-f]{8,16})\.wal\.lz4$/;

export function isGenerationName(s: string): boolean {
  return GENERATION_RE.test(s);
}

export function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

export function generationsDir(root: string): string {
  return posix.join(root, 'generations');
}
export function generationDir(root: string, gen: string): string {
  assertGeneration(gen);
  return posix.join(root, 'generations', gen);
}
export function snapshotsDir(root: string, gen: string): string {
  return posix.join(generationDir(root, gen), 'snapshots');
}
export function walDir(root: string, gen: string): string {
  return posix.join(generationDir(root, gen), 'wal');
}
export function snapshotName(index: number): string {
  return `${hex8(index)}.snapshot.lz4`;
}
export function walSegmentName(index: number, offset: number): string {
  return `${hex8(index)}_${hex8(offset)}.wal.lz4`;
}
export function snapshotPath(root: string, gen: string, index: number): string {
  return posix.join(snapshotsDir(root, gen), snapshotName(index));
}
export function walSegmentPath(root: string, gen: string, index: number, offset: number): string {
  return posix.join(walDir(root, gen), walSegmentName(index, offset));
}

export function parseSnapshotName(name: string): number | undefined {
  const m = SNAPSHOT_RE.exec(name);
  return m ? Number.parseInt(m[1]!, 16) : undefined;
}

export function parseWALSegmentName(name: string): { index: number; offset: number } | undefined {
  const m = SEGMENT_RE.exec(name);
  if (!m) return undefined;
  return { index: Number.parseInt(m[1]!, 16), offset: Number.parseInt(m[2]!, 16) };
}

/** Generation names come from listings and user flags: never let one escape the replica root. */
export function assertGeneration(gen: string): void {
  if (!GENERATION_RE.test(gen)) {
    throw new LsinitError('LSINIT_ERR_FORMAT', `invalid generation name ${JSON.stringify(gen)}: want 16 lowercase hex characters`, { fields: { generation: gen } });
  }
}

/**
 * Keys given to `listObjects`/`objectReader`/`writeObject` are relative to the replica root: no
 * leading '/', no empty, '.' or '..' segment, so no key can reach outside the replica.
 */
export function assertObjectKey(key: string): void {
  const parts = key.split('/');
  if (key === '' || parts.some((p) => p === '' || p === '.' || p === '..') || key.includes('\\') || key.includes('\u0000')) {
    throw new LsinitError('LSINIT_ERR_FORMAT', `invalid object key ${JSON.stringify(key)}: want a relative path like ltx/0/0000000000000001-0000000000000001.ltx`, { fields: { key } });
  }
}

/** `root` joined with a checked relative key. */
export function objectPath(root: string, key: string): string {
  assertObjectKey(key);
  return posix.join(root, key);
}
