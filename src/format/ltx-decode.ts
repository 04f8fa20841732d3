/**
 * Streaming LTX decoder: header, then pages one at a time, then the page index and trailer, with
 * the file checksum verified before the last page is handed over as final. Memory stays at one
 * page (plus the source's read-ahead) whatever the file size. No I/O: bytes in, pages out.
 *
 * The file checksum (ltx decoder.go, README "File checksum") is CRC-64/ISO over the header, each
 * page header and size prefix as stored with the *decompressed* page, the zero page header, the
 * page index and the trailer's post-apply checksum; stored with bit 63 set.
 */
import { LsinitError } from '../errors.js';
import { ByteReader } from './bytereader.js';
import { Crc64 } from './crc64.js';
import { decompressBlock } from './lz4-block.js';
import { decodeOneFrame } from './lz4.js';
import {
  LTX_CHECKSUM_FLAG,
  LTX_HEADER_SIZE,
  LTX_PAGE_FLAG_SIZE,
  LTX_PAGE_HEADER_SIZE,
  LTX_TRAILER_SIZE,
  isSnapshot,
  lockPgno,
  parseLTXHeader,
  parseLTXPageHeader,
  parseLTXTrailer,
  type LTXHeader,
  type LTXTrailer,
} from './ltx.js';

export interface LTXPage {
  pgno: number;
  /** Exactly `header.pageSize` bytes; valid until the next page is read. */
  data: Buffer;
}

export class LTXDecoder {
  private readonly r: ByteReader;
  private readonly hash = new Crc64();
  private hdr: LTXHeader | undefined;
  /** Set once the whole file has been read and its checksum verified. */
  trailer: LTXTrailer | undefined;
  pageCount = 0;

  /** @param name the object key, for errors (`ltx/0/0000000000000001-0000000000000001.ltx`) */
  constructor(source: AsyncIterable<Uint8Array>, readonly name: string) {
    this.r = new ByteReader(source);
  }

  get header(): LTXHeader {
    if (!this.hdr) throw new Error('LTXDecoder: readHeader() first');
    return this.hdr;
  }

  async readHeader(): Promise<LTXHeader> {
    const b = await this.r.read(LTX_HEADER_SIZE);
    if (!b) throw this.bad(`truncated: shorter than the ${LTX_HEADER_SIZE}-byte header`);
    this.hdr = parseLTXHeader(b, this.name);
    this.hash.update(b);
    return this.hdr;
  }

  /** Every page in file order, then the index and trailer; throws on any mismatch. */
  async *pages(): AsyncGenerator<LTXPage> {
    const h = this.hdr ?? (await this.readHeader());
    const lock = lockPgno(h.pageSize);
    let prev = 0;
    for (;;) {
      const ph = await this.r.read(LTX_PAGE_HEADER_SIZE);
      if (!ph) throw this.bad(`truncated after page ${this.pageCount}`);
      this.hash.update(ph);
      const { pgno, flags } = parseLTXPageHeader(ph);
      if (pgno === 0 && flags === 0) break;
      if (pgno === 0) throw this.bad(`page header ${this.pageCount} has page number 0`);
      if ((flags & ~LTX_PAGE_FLAG_SIZE) !== 0) throw this.bad(`page ${pgno}: invalid page flags 0x${flags.toString(16)}`);
      if (pgno <= prev) throw this.bad(`page ${pgno} after page ${prev}: pages out of order`);
      if (pgno > h.commit) throw this.bad(`page ${pgno} is beyond the file's commit size of ${h.commit} pages`);
      if (pgno === lock) throw this.bad(`page ${pgno} is the lock page, which is never stored`);
      if (isSnapshot(h) && pgno !== (prev + 1 === lock ? prev + 2 : prev + 1)) {
        throw this.bad(`snapshot skips from page ${prev} to ${pgno} (a snapshot holds every page)`);
      }
      const data = flags & LTX_PAGE_FLAG_SIZE ? await this.blockPage(pgno, h.pageSize) : await this.framePage(pgno, h.pageSize);
      this.hash.update(data);
      prev = pgno;
      this.pageCount++;
      yield { pgno, data };
    }
    if (isSnapshot(h) && prev !== h.commit && !(prev + 1 === lock && lock === h.commit)) {
      throw this.bad(`snapshot ends at page ${prev} but its commit size is ${h.commit} pages`);
    }
    await this.readIndex();
    const t = await this.r.read(LTX_TRAILER_SIZE);
    if (!t) throw this.bad('truncated trailer');
    this.hash.update(t.subarray(0, 8));
    if (!(await this.r.eof())) throw this.bad('bytes after the trailer');
    const trailer = parseLTXTrailer(t, h, this.name);
    const computed = this.hash.digest() | LTX_CHECKSUM_FLAG;
    if (computed !== trailer.fileChecksum) {
      throw new LsinitError('LSINIT_ERR_CHECKSUM', `${this.name}: file checksum mismatch (trailer ${hex(trailer.fileChecksum)}, computed ${hex(computed)}): the replica object is corrupt`, {
        fields: { name: this.name, expected: hex(trailer.fileChecksum), actual: hex(computed) },
      });
    }
    this.trailer = trailer;
  }

  async close(): Promise<void> {
    await this.r.close();
  }

  /** v0.5.2+: u32 size, then an LZ4 block (the size prefix is hashed as stored). */
  private async blockPage(pgno: number, pageSize: number): Promise<Buffer> {
    const sz = await this.r.read(4);
    if (!sz) throw this.bad(`page ${pgno}: truncated size`);
    this.hash.update(sz);
    const n = sz.readUInt32BE(0);
    // An LZ4 block never needs more than size + size/255 + 16 bytes.
    if (n === 0 || n > pageSize + Math.ceil(pageSize / 255) + 16) throw this.bad(`page ${pgno}: compressed size ${n} is impossible for a ${pageSize}-byte page`);
    const block = await this.r.read(n);
    if (!block) throw this.bad(`page ${pgno}: truncated page data`);
    const data = decompressBlock(block, pageSize, undefined, `${this.name} page ${pgno}`);
    if (data.length !== pageSize) throw this.bad(`page ${pgno}: decompresses to ${data.length} bytes, want ${pageSize}`);
    return data;
  }

  /** Older writers: the page is a whole LZ4 frame, read up to its end mark and checksum. */
  private async framePage(pgno: number, pageSize: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let len = 0;
    for await (const c of decodeOneFrame(this.r, `${this.name} page ${pgno}`)) {
      len += c.length;
      if (len > pageSize) throw this.bad(`page ${pgno}: frame holds more than the ${pageSize}-byte page`);
      parts.push(Buffer.from(c));
    }
    if (len !== pageSize) throw this.bad(`page ${pgno}: frame holds ${len} bytes, want ${pageSize}`);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  /** uvarint triples (pgno, offset, size) up to a zero pgno, then a u64 length; all hashed. */
  private async readIndex(): Promise<void> {
    let entries = 0;
    for (;;) {
      const pgno = await this.uvarint();
      if (pgno === 0n) break;
      await this.uvarint();
      await this.uvarint();
      entries++;
    }
    const size = await this.r.read(8);
    if (!size) throw this.bad('truncated page index');
    this.hash.update(size);
    if (entries !== this.pageCount) throw this.bad(`page index lists ${entries} pages, the file holds ${this.pageCount}`);
  }

  private async uvarint(): Promise<bigint> {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      const b = await this.r.read(1);
      if (!b) throw this.bad('truncated page index');
      this.hash.update(b);
      v |= BigInt(b[0]! & 0x7f) << shift;
      if ((b[0]! & 0x80) === 0) return v;
    }
    throw this.bad('page index varint too long');
  }

  private bad(what: string): LsinitError {
    return new LsinitError('LSINIT_ERR_FORMAT', `${this.name}: ${what}`, { fields: { name: this.name } });
  }
}

function hex(n: bigint): string {
  return n.toString(16).padStart(16, '0');
}
