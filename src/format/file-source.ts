/**
 * A local file read as a ByteSource: each read fills the caller's buffer at the file's offset
 * (pread), so a restore from a file replica decodes its snapshot with no read buffer at all.
 * The compressed blocks land in the decoder's own scratch buffer (DecodeBuffers.input), which
 * it already owns and reuses: no pool, nothing another consumer could still hold.
 */
import type { FileHandle } from 'node:fs/promises';
import { LsinitError } from '../errors.js';
import { readFullAt } from '../util/read-full.js';
import type { ByteSource } from './bytereader.js';

export class FileByteSource implements ByteSource {
  consumed = 0;

  /**
   * `size`: the object's size at open (replica objects are written whole and renamed into place);
   * `onBytes` is told every byte count read (progress).
   */
  constructor(private readonly fh: FileHandle, private readonly size: number, private readonly onBytes: (n: number) => void = () => {}) {}

  async eof(): Promise<boolean> {
    return this.consumed >= this.size;
  }

  async read(n: number, scratch?: Buffer): Promise<Buffer | undefined> {
    if (this.consumed + n > this.size) return undefined;
    return this.fill(scratch && scratch.length >= n ? scratch.subarray(0, n) : Buffer.allocUnsafe(n), 0);
  }

  async readPrefixed(n: number, prefix: number): Promise<Buffer | undefined> {
    if (this.consumed + n > this.size) return undefined;
    return this.fill(Buffer.allocUnsafe(prefix + n), prefix);
  }

  async close(): Promise<void> {
    await this.fh.close();
  }

  private async fill(out: Buffer, start: number): Promise<Buffer> {
    const want = out.length - start;
    const n = await readFullAt(this.fh, out, start, want, this.consumed);
    if (n < want) throw new LsinitError('LSINIT_ERR_FORMAT', `file ended at byte ${this.consumed + n} of the ${this.size} it held when opened`);
    this.onBytes(n);
    this.consumed += n;
    return out;
  }
}
