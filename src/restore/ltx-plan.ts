/**
 * Which LTX files restore a Litestream 0.5 replica to a target: a port of Litestream 0.5.16's
 * CalcRestorePlan (replica.go). The newest level-9 snapshot at or before the target, then,
 * repeatedly, the file from any level 0–8 that continues the TXID chain furthest (ties: the
 * smaller min TXID, then the higher level, then the older file), until the target is reached.
 */
import { LsinitError } from '../errors.js';
import { LTX_HEADER_SIZE, LTX_SNAPSHOT_LEVEL, formatTXID, parseLTXHeader, parseLTXKey } from '../format/ltx.js';
import type { ReplicaClient, TimeNs } from '../replica/client.js';

export interface LTXFileInfo {
  /** Key relative to the replica root, `ltx/<level>/<min>-<max>.ltx`. */
  key: string;
  level: number;
  minTXID: bigint;
  maxTXID: bigint;
  size: number;
  /** The store's object time, or the LTX header's timestamp after `withHeaderTimes`. */
  createdAt: TimeNs;
}

export interface LTXTarget {
  txid?: bigint;
  timestamp?: TimeNs;
}

/** Every LTX file of the replica, sorted by (level, min, max) as ltx's file iterator sorts. */
export async function listLTXFiles(client: ReplicaClient): Promise<LTXFileInfo[]> {
  const out: LTXFileInfo[] = [];
  for (const o of await client.listObjects('ltx')) {
    const p = parseLTXKey(o.key);
    if (p) out.push({ key: o.key, ...p, size: o.size, createdAt: o.createdAt });
  }
  return out.sort((a, b) => a.level - b.level || cmp(a.minTXID, b.minTXID) || cmp(a.maxTXID, b.maxTXID));
}

function cmp(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Replace each file's time by its header's timestamp (ms), for `-timestamp`. Litestream's file
 * client gets it from the mtime it set with Chtimes and the cloud clients from object metadata;
 * the header is where it comes from, survives a copy, and means the same on every backend.
 */
export async function withHeaderTimes(client: ReplicaClient, files: LTXFileInfo[], concurrency = 8): Promise<LTXFileInfo[]> {
  const out = files.map((f) => ({ ...f }));
  let i = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, out.length) }, async () => {
    while (i < out.length) {
      const f = out[i++]!;
      const src = await client.objectReader(f.key);
      const parts: Buffer[] = [];
      let len = 0;
      try {
        for await (const c of src as AsyncIterable<Buffer>) {
          parts.push(c);
          len += c.length;
          if (len >= LTX_HEADER_SIZE) break;
        }
      } finally {
        src.destroy();
      }
      const h = parseLTXHeader(Buffer.concat(parts), f.key);
      f.createdAt = BigInt(h.timestamp) * 1_000_000n;
    }
  }));
  return out;
}

function noMatch(what: string): LsinitError {
  // Litestream prints "no matching backup files available" for ErrTxNotAvailable.
  return new LsinitError('LSINIT_ERR_NO_BACKUPS', `no matching backup files available${what}`);
}

/** ltx restoreCandidateBetter: further max, then smaller min, then higher level, then older. */
function better(curr: LTXFileInfo, next: LTXFileInfo): boolean {
  if (next.maxTXID !== curr.maxTXID) return next.maxTXID > curr.maxTXID;
  if (next.minTXID !== curr.minTXID) return next.minTXID < curr.minTXID;
  if (next.level !== curr.level) return next.level > curr.level;
  return next.createdAt < curr.createdAt;
}

/** One level's files in (min, max) order, walked once as the chain grows (restoreLevelCursor). */
class Cursor {
  private i = 0;
  candidate: LTXFileInfo | undefined;
  constructor(private readonly files: LTXFileInfo[]) {}

  get current(): LTXFileInfo | undefined {
    return this.files[this.i];
  }

  refresh(currentMax: bigint, eligible: (f: LTXFileInfo) => boolean): void {
    if (this.candidate && this.candidate.maxTXID <= currentMax) this.candidate = undefined;
    for (let f = this.current; f; f = this.current) {
      if (f.minTXID > currentMax + 1n) return;
      this.i++;
      if (f.maxTXID <= currentMax || !eligible(f)) continue;
      if (!this.candidate || better(this.candidate, f)) this.candidate = f;
    }
  }
}

export function calcLTXRestorePlan(files: LTXFileInfo[], target: LTXTarget): LTXFileInfo[] {
  const { txid, timestamp } = target;
  const eligible = (f: LTXFileInfo) => (txid === undefined || f.maxTXID <= txid) && (timestamp === undefined || f.createdAt < timestamp);
  const plan: LTXFileInfo[] = [];
  let snapshot: LTXFileInfo | undefined;
  for (const f of files) if (f.level === LTX_SNAPSHOT_LEVEL && eligible(f)) snapshot = f;
  if (snapshot) plan.push(snapshot);
  let currentMax = snapshot?.maxTXID ?? 0n;
  const cursors: Cursor[] = [];
  for (let level = LTX_SNAPSHOT_LEVEL - 1; level >= 0; level--) cursors.push(new Cursor(files.filter((f) => f.level === level)));
  if (txid === undefined || currentMax < txid) {
    for (;;) {
      let next: Cursor | undefined;
      for (const c of cursors) {
        c.refresh(currentMax, eligible);
        if (c.candidate && (!next || better(next.candidate!, c.candidate))) next = c;
      }
      if (!next) break;
      const f = next.candidate!;
      next.candidate = undefined;
      if (f.maxTXID <= currentMax) continue;
      plan.push(f);
      currentMax = f.maxTXID;
      if (txid !== undefined && currentMax >= txid) break;
    }
    if (plan.length > 0 && txid === undefined && timestamp === undefined) {
      for (const c of cursors) {
        const f = c.current;
        if (f && f.minTXID > currentMax + 1n) {
          throw new LsinitError('LSINIT_ERR_NOT_FOUND', `non-contiguous ltx files: have up to ${formatTXID(currentMax)} but ${f.key} starts at ${formatTXID(f.minTXID)} (a file is missing from the replica)`, { fields: { key: f.key } });
        }
      }
    }
  }
  if (plan.length === 0) throw noMatch(txid !== undefined ? ` for TXID ${formatTXID(txid)}` : timestamp !== undefined ? ' before that timestamp' : '');
  if (txid !== undefined && currentMax < txid) throw noMatch(` for TXID ${formatTXID(txid)} (the replica reaches ${formatTXID(currentMax)})`);
  return plan;
}

/**
 * Across replicas: the first (in config order) that holds LTX files and a chain to the target.
 * Undefined when no replica holds LTX files at all; a refusal (no chain) when some do.
 */
export async function planLTXRestore<R extends { client: ReplicaClient }>(replicas: R[], target: LTXTarget): Promise<{ replica: R; plan: LTXFileInfo[] } | undefined> {
  let refusal: unknown;
  for (const replica of replicas) {
    let files = await listLTXFiles(replica.client);
    if (files.length === 0) continue;
    if (target.timestamp !== undefined) files = await withHeaderTimes(replica.client, files);
    try {
      return { replica, plan: calcLTXRestorePlan(files, target) };
    } catch (err) {
      refusal ??= err;
    }
  }
  if (refusal !== undefined) throw refusal;
  return undefined;
}
