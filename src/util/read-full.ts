/**
 * Positional reads that keep going until they have what was asked (fs reads may return less):
 * shared by the replica's shadow-WAL reads and the file replica's snapshot source.
 */
import type { FileHandle } from 'node:fs/promises';

/**
 * Read `len` bytes of `fh` at file offset `pos` into `buf` from `at`. Returns how many were read:
 * `len`, or fewer when the file ends first (the caller says what a short read means).
 */
export async function readFullAt(fh: FileHandle, buf: Buffer, at: number, len: number, pos: number): Promise<number> {
  let n = 0;
  while (n < len) {
    const { bytesRead } = await fh.read(buf, at + n, len - n, pos + n);
    if (bytesRead === 0) break;
    n += bytesRead;
  }
  return n;
}
