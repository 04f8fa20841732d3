/**
 * Choosing what to restore (reference §4.1–4.3), with Litestream 0.3.13's semantics as the
 * vectors pin them down: generation by newest object, snapshot by index or time, WAL segments
 * cut at the first object after the timestamp. Improvement: segments below the chosen snapshot's
 * index are ignored instead of validated (Litestream #224/#535/#805).
 */
import { LsinitError } from '../errors.js';
import { hex8 } from '../format/paths.js';
import type { ReplicaClient, SnapshotInfo, TimeNs, WALSegmentInfo } from '../replica/client.js';

export interface RestoreRequest {
  generation?: string;
  /** Restore through the end of this WAL index (inclusive). */
  index?: number;
  /** With `index`: stop at this byte offset of that index (a commit boundary), not its end. */
  offset?: number;
  timestamp?: TimeNs;
}

export interface GenerationBounds {
  generation: string;
  createdAt: TimeNs;
  updatedAt: TimeNs;
}

export interface RestorePlan {
  generation: string;
  snapshot: SnapshotInfo;
  /** WAL indexes to apply in order, each with its segments in offset order. */
  indexes: { index: number; segments: WALSegmentInfo[] }[];
  updatedAt: TimeNs;
  /** The last index is applied up to this byte offset only (RestoreRequest.offset). */
  endOffset?: number;
  /** Newer generations passed over because they cannot be restored (no snapshot for the restore point). */
  skipped?: { generation: string; reason: string }[];
}

/** Min/max object time over a generation's snapshots and segments (Replica.GenerationTimeBounds). */
export function generationBounds(generation: string, snapshots: SnapshotInfo[], segments: WALSegmentInfo[]): GenerationBounds | undefined {
  let min: TimeNs | undefined;
  let max: TimeNs | undefined;
  for (const o of [...snapshots, ...segments]) {
    if (min === undefined || o.createdAt < min) min = o.createdAt;
    if (max === undefined || o.createdAt > max) max = o.createdAt;
  }
  if (min === undefined || max === undefined) return undefined;
  return { generation, createdAt: min, updatedAt: max };
}

/** Snapshot with the greatest time <= ts (ties: the later one), or the highest index <= req.index. */
export function pickSnapshot(snapshots: SnapshotInfo[], req: RestoreRequest): SnapshotInfo | undefined {
  let best: SnapshotInfo | undefined;
  for (const s of snapshots) {
    if (req.index !== undefined) {
      if (s.index <= req.index && (!best || s.index >= best.index)) best = s;
      continue;
    }
    if (req.timestamp !== undefined && s.createdAt > req.timestamp) continue;
    if (!best || s.createdAt >= best.createdAt) best = s;
  }
  return best;
}

/**
 * Group segments by index from the snapshot's index on, stopping at the first segment (in
 * (index, offset) order) that is newer than the timestamp or beyond the requested index.
 */
export function planSegments(generation: string, snapshotIndex: number, segments: WALSegmentInfo[], req: RestoreRequest): RestorePlan['indexes'] {
  const byIndex = new Map<number, WALSegmentInfo[]>();
  for (const seg of segments) {
    if (req.timestamp !== undefined && seg.createdAt > req.timestamp) break;
    if (req.index !== undefined && seg.index > req.index) break;
    if (req.index !== undefined && req.offset !== undefined && seg.index === req.index && seg.offset >= req.offset) break;
    if (seg.index < snapshotIndex) continue;
    let list = byIndex.get(seg.index);
    if (!list) byIndex.set(seg.index, (list = []));
    list.push(seg);
  }
  const out: RestorePlan['indexes'] = [];
  if (byIndex.size === 0) return out;
  const max = Math.max(...byIndex.keys());
  for (let i = snapshotIndex; i <= max; i++) {
    const segs = byIndex.get(i);
    if (!segs) {
      throw new LsinitError('LSINIT_ERR_NOT_FOUND', `missing WAL index ${hex8(i)} in generation ${generation} (have the snapshot at ${hex8(snapshotIndex)} and segments up to ${hex8(max)})`, { fields: { generation, index: i } });
    }
    if (segs[0]!.offset !== 0) {
      throw new LsinitError('LSINIT_ERR_NOT_FOUND', `missing initial wal segment: generation=${generation} index=${hex8(i)} offset=${segs[0]!.offset}`, { fields: { generation, index: i } });
    }
    for (let k = 1; k < segs.length; k++) {
      if (segs[k]!.offset <= segs[k - 1]!.offset) {
        throw new LsinitError('LSINIT_ERR_FORMAT', `wal segments out of order: generation=${generation} index=${hex8(i)}`, { fields: { generation, index: i } });
      }
    }
    out.push({ index: i, segments: segs });
  }
  return out;
}

export interface ReplicaCandidate {
  name: string;
  client: ReplicaClient;
}

/**
 * Best generation of one replica for the request, or undefined when none matches: the newest
 * (by its newest object) that can be restored. A newer generation with WAL segments but no
 * snapshot for the restore point (its first snapshot never made it, or retention removed it) is
 * passed over for the next newest and named in `skipped`, unless `-generation` asked for it:
 * Litestream 0.3 fails there, and in init mode the app would then never start although an older
 * complete generation exists.
 */
export async function planForReplica(client: ReplicaClient, req: RestoreRequest): Promise<RestorePlan | undefined> {
  const generations = await client.generations();
  if (req.generation !== undefined && !generations.includes(req.generation)) return undefined;
  const candidates: { bounds: GenerationBounds; snapshots: SnapshotInfo[]; segments: WALSegmentInfo[] }[] = [];
  for (const gen of generations) {
    if (req.generation !== undefined && gen !== req.generation) continue;
    const [snapshots, segments] = await Promise.all([client.snapshots(gen), client.walSegments(gen)]);
    const bounds = generationBounds(gen, snapshots, segments);
    if (!bounds) continue;
    if (req.timestamp !== undefined && (req.timestamp < bounds.createdAt || req.timestamp > bounds.updatedAt)) continue;
    candidates.push({ bounds, snapshots, segments });
  }
  // Newest first; equal times keep generation-name order (what the single pass used to pick).
  candidates.sort((a, b) => (a.bounds.updatedAt === b.bounds.updatedAt ? 0 : a.bounds.updatedAt > b.bounds.updatedAt ? -1 : 1));
  const skipped: { generation: string; reason: string }[] = [];
  for (const c of candidates) {
    const snapshot = pickSnapshot(c.snapshots, req);
    if (!snapshot) {
      skipped.push({ generation: c.bounds.generation, reason: c.snapshots.length === 0 ? 'it has WAL segments but no snapshot' : 'no snapshot at or before this restore point' });
      if (req.generation !== undefined) break;
      continue;
    }
    return {
      generation: c.bounds.generation,
      snapshot,
      indexes: planSegments(c.bounds.generation, snapshot.index, c.segments, req),
      updatedAt: c.bounds.updatedAt,
      ...(req.index !== undefined && req.offset !== undefined ? { endOffset: req.offset } : {}),
      ...(skipped.length ? { skipped } : {}),
    };
  }
  if (skipped.length === 0) return undefined;
  const newest = skipped[0]!.generation;
  const rest = skipped.length > 1 ? `, nor in the ${skipped.length - 1} older generation(s) that match` : '';
  throw new LsinitError('LSINIT_ERR_NO_BACKUPS', `no snapshot available in generation ${newest} for this restore point${rest}`, { fields: { generation: newest } });
}

/** Across replicas: the one whose best generation is the most recent (DB.CalcRestoreTarget). */
export async function planRestore(replicas: ReplicaCandidate[], req: RestoreRequest): Promise<{ replica: ReplicaCandidate; plan: RestorePlan } | undefined> {
  let best: { replica: ReplicaCandidate; plan: RestorePlan } | undefined;
  for (const replica of replicas) {
    const plan = await planForReplica(replica.client, req);
    if (plan && (!best || plan.updatedAt > best.plan.updatedAt)) best = { replica, plan };
  }
  return best;
}
