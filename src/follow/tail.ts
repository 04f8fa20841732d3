/**
 * Reading the replica from a position on: which segments come next, and their frames, verified.
 *
 * Only the current generation's WAL listing is read on each poll; generations are listed by the
 * follower at a slower cadence (follower.ts). Segments are taken strictly in sequence: the next
 * one is the segment at (index, bytes applied so far) or, when the index has nothing beyond that,
 * (index + 1, 0) — the primary restarted its WAL. A later segment of the same index with the
 * expected one missing is a gap (retention removed it while the follower was away): `gap` tells
 * the follower to re-base on a snapshot.
 *
 * Every frame is checked against the WAL header's salts and the running checksum carried over
 * from the previous segment (as SQLite's WAL recovery would), and a batch only ever ends on a
 * commit frame. A damaged object is an error naming it; nothing is applied from it.
 */
import * as fsp from 'node:fs/promises';
import { closeSync, openSync } from 'node:fs';
import { LsinitError, isNotFound } from '../errors.js';
import { decodeFrames } from '../format/lz4.js';
import { walSegmentName } from '../format/paths.js';
import { FRAME_HEADER_SIZE, WAL_HEADER_SIZE, parseFrameHeader, parseWALHeader, verifyFrame, type Checksum, type WALHeader } from '../format/wal.js';
import type { ReplicaClient, WALSegmentInfo } from '../replica/client.js';
import { withRetry } from '../replica/retry.js';
import { FramePages, readExactly } from './pages.js';
import type { Cursor } from './state.js';

export interface NextSegments {
  segments: WALSegmentInfo[];
  /** A later segment exists but the next one in sequence does not. */
  gap: boolean;
}

/** Segments of `cursor`'s generation after it, sorted, from one listing. */
export async function listAfter(client: ReplicaClient, cursor: Cursor): Promise<NextSegments> {
  const { generation, index, offset } = cursor.pos;
  const all = await client.walSegments(generation);
  const after = all.filter((s) => s.index > index || (s.index === index && s.offset >= offset));
  const first = after[0];
  if (!first) return { segments: [], gap: false };
  const inSequence = (first.index === index && first.offset === offset) || (first.index === index + 1 && first.offset === 0) || (offset === 0 && first.index === index && first.offset === 0);
  return { segments: after, gap: !inSequence };
}

export interface Batch {
  pages: FramePages;
  cursor: Cursor;
  segments: number;
  /** Newest object time among the applied segments (ns). */
  createdAt: bigint;
  /** Spool file and descriptor: call `dispose()`. */
  dispose(): Promise<void>;
}

/**
 * Download, decompress and verify the segments that continue `cursor`, up to `maxBytes` of
 * frames, into `spool`. Returns undefined when the first listed segment does not continue it.
 */
export async function spoolBatch(client: ReplicaClient, cursor: Cursor, listed: WALSegmentInfo[], spool: string, pageSize: number, maxBytes = 256 << 20): Promise<Batch | undefined> {
  const fh = await fsp.open(spool, 'w+');
  let fd: number | undefined;
  const cur: { index: number; offset: number; header?: WALHeader; headerHex?: string; sum?: Checksum } = { index: cursor.pos.index, offset: cursor.pos.offset };
  if (cursor.walHeader) {
    cur.header = parseWALHeader(Buffer.from(cursor.walHeader, 'hex'), 'follower state WAL header');
    cur.headerHex = cursor.walHeader;
    cur.sum = cursor.checksum ?? [cur.header.checksum1, cur.header.checksum2];
  }
  const offsets = new Map<number, number>();
  let spooled = 0;
  let committed: { cursor: Cursor; pages: number } | undefined;
  let commitPages = 0;
  let createdAt = 0n;
  let used = 0;
  const frameSize = FRAME_HEADER_SIZE + pageSize;
  try {
    for (const seg of listed) {
      if (spooled >= maxBytes) break;
      const continues = seg.index === cur.index && seg.offset === cur.offset;
      const rolls = seg.index === cur.index + 1 && seg.offset === 0;
      if (!continues && !rolls) break;
      const name = `generations/${seg.generation}/wal/${walSegmentName(seg.index, seg.offset)}`;
      const start = spooled;
      const len = await withRetry(async () => {
        let src;
        try {
          src = await client.walSegmentReader({ generation: seg.generation, index: seg.index, offset: seg.offset });
        } catch (err) {
          if (isNotFound(err)) throw new LsinitError('LSINIT_ERR_NOT_FOUND', `${name} disappeared before the follower read it (retention?)`, { cause: err });
          throw err;
        }
        let pos = start;
        for await (const c of decodeFrames(src, name)) {
          await fh.write(c, 0, c.length, pos);
          pos += c.length;
        }
        return pos - start;
      });
      fd ??= openSync(spool, 'r');
      let off = 0;
      if (seg.offset === 0) {
        if (len < WAL_HEADER_SIZE) throw damaged(name, `${len} bytes, shorter than the 32-byte WAL header`);
        const hb = readExactly(fd, WAL_HEADER_SIZE, start, name);
        cur.header = parseWALHeader(hb, name);
        cur.headerHex = hb.toString('hex');
        cur.sum = [cur.header.checksum1, cur.header.checksum2];
        if (cur.header.pageSize !== pageSize) throw damaged(name, `page size ${cur.header.pageSize} differs from the database's ${pageSize}`);
        cur.index = seg.index;
        cur.offset = 0;
        off = WAL_HEADER_SIZE;
      }
      if (!cur.header || !cur.sum) throw damaged(name, 'continues a WAL index whose header the follower never saw');
      if ((len - off) % frameSize !== 0) throw damaged(name, `${len - off} bytes of frames are not whole ${frameSize}-byte frames (truncated?)`);
      let lastCommit = -1;
      const n = (len - off) / frameSize;
      for (let k = 0; k < n; k++) {
        const at = start + off + k * frameSize;
        const frame = readExactly(fd, frameSize, at, name);
        const next = verifyFrame(cur.header, cur.sum, frame);
        if (!next) {
          const fh2 = parseFrameHeader(frame);
          const why = fh2.salt1 !== cur.header.salt1 || fh2.salt2 !== cur.header.salt2 ? 'salt mismatch' : 'checksum mismatch';
          throw new LsinitError('LSINIT_ERR_CHECKSUM', `${name}: frame ${k}: ${why}; the replica object is damaged`, { fields: { name, frame: k } });
        }
        cur.sum = next;
        const h = parseFrameHeader(frame);
        if (h.pgno === 0) throw damaged(name, `frame ${k} has page number 0`);
        offsets.set(h.pgno, at + FRAME_HEADER_SIZE);
        if (h.commit !== 0) {
          lastCommit = k;
          commitPages = h.commit;
        }
      }
      if (n > 0 && lastCommit !== n - 1) throw damaged(name, `does not end on a commit frame (last commit at frame ${lastCommit} of ${n})`);
      cur.offset += len;
      // Segments end on commit frames (checked above), so the batch may end after any of them.
      // A header-only segment (a WAL restart with no frames yet) moves the cursor but commits nothing.
      if (n > 0) committed = { cursor: { pos: { generation: seg.generation, index: cur.index, offset: cur.offset }, walHeader: cur.headerHex!, checksum: [...cur.sum] }, pages: commitPages };
      spooled += len;
      used++;
      if (seg.createdAt > createdAt) createdAt = seg.createdAt;
    }
    if (!committed) {
      if (fd !== undefined) closeSync(fd);
      await fh.close();
      await fsp.rm(spool, { force: true });
      return undefined;
    }
    const c = committed;
    const rfd = fd!;
    await fh.close();
    return {
      pages: new FramePages(pageSize, c.pages, rfd, offsets),
      cursor: c.cursor,
      segments: used,
      createdAt,
      async dispose() {
        closeSync(rfd);
        await fsp.rm(spool, { force: true });
      },
    };
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    await fh.close().catch(() => {});
    await fsp.rm(spool, { force: true });
    throw err;
  }
}

function damaged(name: string, why: string): LsinitError {
  return new LsinitError('LSINIT_ERR_FORMAT', `${name}: ${why}; the replica object is damaged`, { fields: { name } });
}
