/**
 * Shared by the object-store clients: read up to `threshold` bytes of a stream body; if it ends
 * there, the caller sends one PUT of a buffer (one request, retryable); otherwise it streams the
 * rest as a multipart/staged upload. A failure of the source (e.g. the snapshot reader) is kept
 * apart from store errors so callers rethrow it as-is.
 */
import { Readable } from 'node:stream';

export type SplitBody =
  | { kind: 'buffer'; data: Buffer }
  | {
      kind: 'stream';
      stream: Readable;
      /** Bytes read from the source so far (all of them once the upload finished). */
      size(): number;
      /** The source's own error, if reading it failed. */
      sourceError(): { error: unknown } | undefined;
    };

export async function splitBody(body: Readable, threshold: number): Promise<SplitBody> {
  const it = body[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const head: Buffer[] = [];
  let size = 0;
  while (size < threshold) {
    const r = await it.next();
    if (r.done) return { kind: 'buffer', data: Buffer.concat(head) };
    const chunk = Buffer.from(r.value);
    head.push(chunk);
    size += chunk.length;
  }
  let failed: { error: unknown } | undefined;
  async function* rest(): AsyncGenerator<Buffer> {
    yield* head;
    for (;;) {
      let r: IteratorResult<Buffer | string>;
      try {
        r = await it.next();
      } catch (error) {
        failed = { error };
        throw error;
      }
      if (r.done) return;
      const chunk = Buffer.from(r.value);
      size += chunk.length;
      yield chunk;
    }
  }
  // Chunks are up to 4 MiB LZ4 blocks: one ahead, not Readable.from()'s default 16.
  return { kind: 'stream', stream: Readable.from(rest(), { highWaterMark: 1 }), size: () => size, sourceError: () => failed };
}
