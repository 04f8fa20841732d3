/**
 * A local file read as a ByteSource: each read fills the caller's buffer at the file's offset
 * (pread), so a restore from a file replica decodes its snapshot with no read buffer at all.
 * The compressed blocks land in the decoder's own scratch buffer (DecodeBuffers.input), which
 * it already owns and reuses: no pool, nothing another consumer could still hold.
 */
import type { FileHandle } from 'node:fs/promises';
import { LsinitError } from '../errors.js';
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
    let pos = this.consumed;
    for (let at = start; at < out.length; ) {
      const { bytesRead } = await this.fh.read(out, at, out.length - at, pos);
      if (bytesRead === 0) throw new LsinitError('LSINIT_ERR_FORMAT', `file ended at byte ${pos} of the ${this.size} it held when opened`);
      at += bytesRead;
      pos += bytesRead;
    }
    this.onBytes(pos - this.consumed);
    this.consumed = pos;
    return out;
  }
}
