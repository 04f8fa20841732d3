/**
 * The follower's database header (https://www.sqlite.org/fileformat.html §1.3). The follower is
 * the primary's pages with four header fields changed, so that other processes read it in
 * rollback-journal mode and notice every applied transaction:
 *  - offsets 18/19 (file format write/read version) = 1: "legacy" rollback mode. With 2 (WAL, as
 *    on the primary) every connection would open the file in WAL mode and look for a -wal/-shm.
 *  - offset 24 (file change counter): SQLite compares bytes 24..39 when a connection takes a
 *    SHARED lock with pages cached (pager.c pagerSharedLock, dbFileVers) and drops its cache when
 *    they differ. A WAL-mode primary never bumps it, so the follower increments it on every
 *    applied transaction; without this a reader would mix cached old pages with new ones.
 *  - offset 92 (version-valid-for) = the change counter, which makes offset 28 (size in pages)
 *    authoritative; offset 28 is set to the real page count.
 * The change counter also identifies the follower's state: the state file records the value each
 * transaction leaves, so a restart can tell which side of a crash the file is on.
 */
import { createHash } from 'node:crypto';

export const HEADER_MAGIC = 'SQLite format 3\u0000';

export function isSQLiteHeader(page1: Uint8Array): boolean {
  return page1.length >= 100 && Buffer.from(page1.subarray(0, 16)).toString('latin1') === HEADER_MAGIC;
}

export function changeCounter(page1: Uint8Array): number {
  return Buffer.from(page1.buffer, page1.byteOffset, 100).readUInt32BE(24);
}

/** Rewrite page 1 in place as the follower's: rollback mode, `counter`, `pages`. */
export function followerHeader(page1: Uint8Array, counter: number, pages: number): void {
  const b = Buffer.from(page1.buffer, page1.byteOffset, 100);
  b[18] = 1;
  b[19] = 1;
  b.writeUInt32BE(counter >>> 0, 24);
  b.writeUInt32BE(pages >>> 0, 28);
  b.writeUInt32BE(counter >>> 0, 92);
}

/** Fingerprint of page 1 as written (header and the schema root), stored in the state file. */
export function page1Digest(page1: Uint8Array): string {
  return createHash('sha256').update(page1).digest('hex').slice(0, 32);
}
