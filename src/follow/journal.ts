/**
 * SQLite's rollback-journal format (https://www.sqlite.org/fileformat.html §4.1), pure functions.
 * A journal is a header padded to one "sector", then records: page number (4 bytes BE), the
 * page's ORIGINAL content, a 4-byte checksum. The header holds the magic, the record count, a
 * random nonce (the checksum seed), the database size in pages before the transaction, the
 * sector size and the page size. When a connection finds this file beside a database that no
 * one holds a RESERVED lock on ("hot journal", fileformat §4.2), it takes the EXCLUSIVE lock,
 * writes every record whose checksum verifies back into the database, truncates the database
 * to the header's size and deletes the journal (pager.c pager_playback): a rollback. A record
 * that fails its checksum ends the playback, so a torn tail is harmless.
 */

export const JOURNAL_MAGIC = Uint8Array.from([0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]);
/**
 * The header's sector size. SQLite reads it back from the header (readJournalHdr) instead of
 * asking the file system, so any power of two from 32 up is valid; 512 is SQLite's own minimum.
 */
export const JOURNAL_SECTOR_SIZE = 512;

export interface JournalHeader {
  /** Number of records; SQLite plays back nothing when it is 0. */
  records: number;
  nonce: number;
  /** Database size in pages before the transaction; rollback truncates to it. */
  initialPages: number;
  pageSize: number;
}

/** The header padded to JOURNAL_SECTOR_SIZE bytes. */
export function journalHeader(h: JournalHeader): Buffer {
  const b = Buffer.alloc(JOURNAL_SECTOR_SIZE);
  b.set(JOURNAL_MAGIC, 0);
  b.writeUInt32BE(h.records >>> 0, 8);
  b.writeUInt32BE(h.nonce >>> 0, 12);
  b.writeUInt32BE(h.initialPages >>> 0, 16);
  b.writeUInt32BE(JOURNAL_SECTOR_SIZE, 20);
  b.writeUInt32BE(h.pageSize, 24);
  return b;
}

/**
 * pager.c pager_cksum: the nonce plus every 200th byte of the page, walking down from
 * pageSize-200 while the index is above 0 (so byte 0 never counts), modulo 2^32.
 */
export function pageChecksum(nonce: number, page: Uint8Array): number {
  let sum = nonce >>> 0;
  for (let i = page.length - 200; i > 0; i -= 200) sum = (sum + page[i]!) >>> 0;
  return sum;
}

/** One record: page number, the page's original bytes, checksum. */
export function journalRecord(pgno: number, page: Uint8Array, nonce: number): Buffer {
  const b = Buffer.allocUnsafe(8 + page.length);
  b.writeUInt32BE(pgno >>> 0, 0);
  b.set(page, 4);
  b.writeUInt32BE(pageChecksum(nonce, page), 4 + page.length);
  return b;
}

/** Offset of the record count in the header (written last, after the records are durable). */
export const JOURNAL_RECORDS_OFFSET = 8;
