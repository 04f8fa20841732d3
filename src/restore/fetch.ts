/**
 * Download-ahead for restore: while one WAL index is applied, the next few small ones are
 * fetched in parallel, compressed, into memory, bounded both in count (`parallelism`) and in
 * bytes (`budget`); an index too large for the budget is not fetched ahead but streamed from the
 * replica when its turn comes, so memory stays bounded whatever the transactions' sizes.
 * Small indexes are where a remote replica's latency adds up (Litestream downloads 8 at a time).
 */
import type { Readable } from 'node:stream';
import { LsinitError, isNotFound } from '../errors.js';
import { walSegmentName } from '../format/paths.js';
import type { ReplicaClient, WALSegmentInfo } from '../replica/client.js';
import { withRetry } from '../replica/retry.js';

export interface IndexItem {
  index: number;
  segments: WALSegmentInfo[];
}

/** Opens a segment's stored (compressed) stream, naming a segment that vanished. */
export async function openSegment(client: ReplicaClient, gen: string, index: number, seg: WALSegmentInfo): Promise<Readable> {
  try {
    return await client.walSegmentReader({ generation: gen, index, offset: seg.offset });
  } catch (err) {
    if (isNotFound(err)) {
      const name = `generations/${gen}/wal/${walSegmentName(seg.index, seg.offset)}`;
      throw new LsinitError('LSINIT_ERR_NOT_FOUND', `${name} disappeared during the restore (retention on another host?)`, { cause: err });
    }
    throw err;
  }
}

export class Prefetcher {
  private readonly pending = new Map<number, Promise<Buffer[]>>();
  private readonly sizes = new Map<number, number>();
  private inFlight = 0;

  constructor(
    private readonly client: ReplicaClient,
    private readonly gen: string,
    private readonly items: IndexItem[],
    private readonly opts: { parallelism: number; budget: number; onBytes: (n: number) => void },
  ) {}

  /** Start fetching the indexes after `k` that fit the count and byte bounds. */
  ahead(k: number): void {
    const end = Math.min(this.items.length, k + 1 + this.opts.parallelism);
    for (let j = k + 1; j < end; j++) {
      if (this.pending.has(j) || this.sizes.has(j)) continue;
      const size = this.items[j]!.segments.reduce((a, s) => a + s.size, 0);
      if (this.inFlight + size > this.opts.budget) return; // in order: never skip one to fetch a later one
      this.inFlight += size;
      this.sizes.set(j, size);
      const p = this.fetch(this.items[j]!);
      p.catch(() => {}); // observed by take()
      this.pending.set(j, p);
    }
  }

  /** The stored bytes of index `k`'s segments when fetched ahead, else undefined (stream it). */
  async take(k: number): Promise<Buffer[] | undefined> {
    const p = this.pending.get(k);
    if (!p) return undefined;
    try {
      return await p;
    } finally {
      this.pending.delete(k);
      this.inFlight -= this.sizes.get(k) ?? 0;
    }
  }

  private async fetch(item: IndexItem): Promise<Buffer[]> {
    const out: Buffer[] = [];
    for (const seg of item.segments) {
      out.push(await withRetry(async () => {
        const parts: Buffer[] = [];
        let n = 0;
        for await (const c of await openSegment(this.client, this.gen, item.index, seg)) {
          parts.push(c as Buffer);
          n += (c as Buffer).length;
        }
        this.opts.onBytes(n);
        return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
      }));
    }
    return out;
  }
}
