/** Exact byte counts, as the frame decoders pull them. */
export interface ByteSource {
  /** Bytes consumed so far, for error messages. */
  readonly consumed: number;
  /** True when no byte is left. */
  eof(): Promise<boolean>;
  /** Exactly n bytes (in `scratch` when it is given and large enough, or may be), or undefined if the source ends first. */
  read(n: number, scratch?: Buffer): Promise<Buffer | undefined>;
  /** The next n bytes in a new buffer of `prefix + n` bytes, after `prefix` bytes left for the caller. */
  readPrefixed(n: number, prefix: number): Promise<Buffer | undefined>;
  close(): Promise<void>;
}

/** Pull exact byte counts from an async stream of chunks (decoders that parse framed input). */
export class ByteReader implements ByteSource {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  private readonly it: AsyncIterator<Uint8Array>;
  /** Bytes consumed so far, for error messages. */
  consumed = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.done) {
      const r = await this.it.next();
      if (r.done) {
        this.done = true;
        break;
      }
      const b = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      if (b.length === 0) continue;
      this.chunks.push(b);
      this.buffered += b.length;
    }
    return this.buffered >= n;
  }

  /** True when no byte is left. */
  async eof(): Promise<boolean> {
    return !(await this.fill(1));
  }

  /**
   * Exactly n bytes, or undefined if the stream ends first.
   * Bytes that arrived in pieces are joined in `scratch` when given (at least n bytes; the result
   * is then valid until the caller reuses it), else in a new buffer.
   */
  async read(n: number, scratch?: Buffer): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) return undefined;
    const first = this.chunks[0]!;
    if (first.length < n) return this.copyOut(scratch && scratch.length >= n ? scratch.subarray(0, n) : Buffer.allocUnsafe(n), 0);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    this.consumed += n;
    return first.subarray(0, n);
  }

  /**
   * The next n bytes in a new buffer of `prefix + n` bytes, after `prefix` bytes left for the
   * caller to fill (lz4-napi wants a block behind a 4-byte size: one copy instead of two).
   */
  async readPrefixed(n: number, prefix: number): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) return undefined;
    return this.copyOut(Buffer.allocUnsafe(prefix + n), prefix);
  }

  /** Consume buffered bytes into `out` from `off` to its end (fill() made sure they are there). */
  private copyOut(out: Buffer, off: number): Buffer {
    const n = out.length - off;
    while (off < out.length) {
      const c = this.chunks[0]!;
      const take = Math.min(c.length, out.length - off);
      c.copy(out, off, 0, take);
      off += take;
      if (take === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(take);
    }
    this.buffered -= n;
    this.consumed += n;
    return out;
  }

  get available(): number {
    return this.buffered;
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}
