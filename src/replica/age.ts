/**
 * age encryption of replica objects, as Litestream 0.3.10+ (reference §3.2, `replica.go`
 * syncWAL/Snapshot/calcPos/Restore): every snapshot and WAL segment is `age(LZ4(...))` under its
 * usual name (the `.lz4` extension stays); objects are encrypted to the recipients when any are
 * set, and decrypted with the identities whenever any are set.
 *
 * A decorator around any ReplicaClient, installed by `createClient` when `age:` is configured:
 * every backend gets it at the object-body layer, and every reader of objects (restore, the
 * replica's position after a restart, follow mode, validation) decrypts by construction.
 * Listings are passed through: sizes are the stored (encrypted) sizes, as Litestream shows them.
 *
 * The crypto is the `age-encryption` library's (the reference TypeScript implementation), streamed
 * through its Web-streams API in age's 64 KiB STREAM chunks, so memory stays at a few chunks
 * whatever the object size. Its ChaCha20-Poly1305 is pure JavaScript (@noble/ciphers): this is
 * the main cost of encryption (docs/benchmarks.md). The library is imported on first use; a
 * process without `age:` never loads it.
 */
import { Readable } from 'node:stream';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Decrypter, Encrypter } from 'age-encryption';
import { assertAgeWritable, type AgeKeys } from '../config/age.js';
import { configError } from './backend.js';
import { LsinitError } from '../errors.js';
import { hex8, walSegmentName } from '../format/paths.js';
import type { Body, ObjectInfo, Pos, ReplicaClient, SnapshotInfo, WALSegmentInfo } from './client.js';

/** age's STREAM chunk: feeding whole chunks avoids re-buffering, yielding between them keeps signals flowing. */
const CHUNK = 64 << 10;
const LZ4_MAGIC = Buffer.from([0x04, 0x22, 0x4d, 0x18]);

type AgeLib = typeof import('age-encryption');
let lib: Promise<AgeLib> | undefined;
const loadLib = () => (lib ??= import('age-encryption'));

export class AgeClient implements ReplicaClient {
  readonly type: string;
  private readonly inner: ReplicaClient;
  private readonly keys: AgeKeys;
  private encrypter: Promise<Encrypter> | undefined;
  private decrypter: Promise<Decrypter> | undefined;

  constructor(inner: ReplicaClient, keys: AgeKeys) {
    this.inner = inner;
    this.keys = keys;
    this.type = inner.type;
  }

  generations(): Promise<string[]> { return this.inner.generations(); }
  deleteGeneration(g: string): Promise<void> { return this.inner.deleteGeneration(g); }
  snapshots(g: string): Promise<SnapshotInfo[]> { return this.inner.snapshots(g); }
  deleteSnapshot(g: string, i: number): Promise<void> { return this.inner.deleteSnapshot(g, i); }
  walSegments(g: string): Promise<WALSegmentInfo[]> { return this.inner.walSegments(g); }
  deleteWALSegments(ps: Pos[]): Promise<void> { return this.inner.deleteWALSegments(ps); }
  close(): Promise<void> { return this.inner.close(); }
  abortInFlight(): void { this.inner.abortInFlight?.(); }
  listObjects(dir: string): Promise<ObjectInfo[]> { return this.inner.listObjects(dir); }

  /** Objects by key are sealed and opened like every other object of an encrypted replica. */
  async writeObject(key: string, body: Body): Promise<ObjectInfo> {
    return this.inner.writeObject(key, await this.seal(body));
  }

  async objectReader(key: string): Promise<Readable> {
    return this.open(await this.inner.objectReader(key), key);
  }

  async writeSnapshot(g: string, i: number, body: Body): Promise<SnapshotInfo> {
    return this.inner.writeSnapshot(g, i, await this.seal(body));
  }

  async writeWALSegment(p: Pos, body: Body): Promise<WALSegmentInfo> {
    return this.inner.writeWALSegment(p, await this.seal(body));
  }

  async snapshotReader(g: string, i: number): Promise<Readable> {
    return this.open(await this.inner.snapshotReader(g, i), `generations/${g}/snapshots/${hex8(i)}.snapshot.lz4`);
  }

  async walSegmentReader(p: Pos): Promise<Readable> {
    return this.open(await this.inner.walSegmentReader(p), `generations/${p.generation}/wal/${walSegmentName(p.index, p.offset)}`);
  }

  /** A buffer stays a buffer (one PUT); a stream stays a stream (multipart), encrypted as it flows. */
  private async seal(body: Body): Promise<Body> {
    assertAgeWritable(this.keys);
    const enc = await (this.encrypter ??= this.makeEncrypter());
    if (!(body instanceof Readable)) {
      const out: Buffer[] = [];
      for await (const c of iterate(await enc.encrypt(new Source(slices(body)).stream))) out.push(c);
      return Buffer.concat(out);
    }
    return Readable.from(iterate(await enc.encrypt(new Source(body).stream)));
  }

  /** Litestream decrypts whenever an identity is configured; without one the bytes pass as stored. */
  private async open(src: Readable, name: string): Promise<Readable> {
    if (this.keys.identities.length === 0) return src;
    const dec = await (this.decrypter ??= this.makeDecrypter());
    const source = new Source(src);
    let plain: ReadableStream<Uint8Array>;
    try {
      plain = await dec.decrypt(source.stream);
    } catch (err) {
      src.destroy();
      throw this.headerError(err, source, name);
    }
    const payloadError = (err: unknown) => (source.failed && err === source.error ? err : new LsinitError('LSINIT_ERR_CHECKSUM', `${name}: age payload does not authenticate (${errText(err)}): the object is corrupt, truncated or was altered`, { fields: { name } }));
    return Readable.from(iterate(plain, payloadError));
  }

  private headerError(err: unknown, source: Source, name: string): unknown {
    if (source.failed && err === source.error) return err; // the store's error (network, not found) as is
    const fields = { name };
    const msg = errText(err);
    const ids = `${this.keys.keyPath}.identities`;
    if (/no identity matched/.test(msg)) {
      return new LsinitError('LSINIT_ERR_DECRYPT', `${name}: no identity in ${ids} can decrypt this object: it was encrypted for other recipients`, { fields });
    }
    if (source.head?.subarray(0, 4).equals(LZ4_MAGIC)) {
      return new LsinitError('LSINIT_ERR_DECRYPT', `${name}: object is not encrypted, but ${this.keys.keyPath} is set: a replica cannot mix plain and age-encrypted objects (Litestream reads neither); replicate to a new path, or remove age: to read this one`, { fields });
    }
    if (/HMAC/.test(msg)) return new LsinitError('LSINIT_ERR_CHECKSUM', `${name}: age header does not authenticate: the object is corrupt or was altered`, { fields });
    return new LsinitError('LSINIT_ERR_FORMAT', `${name}: not a valid age-encrypted object (${msg})`, { fields });
  }

  private async makeEncrypter(): Promise<Encrypter> {
    const age = await loadLib();
    const e = new age.Encrypter();
    this.keys.recipients.forEach((r, i) => {
      try {
        e.addRecipient(r);
      } catch {
        throw configError(`${this.keys.keyPath}.${this.keys.at.recipients[i]}`, 'is not a valid X25519 recipient (bad checksum)');
      }
    });
    return e;
  }

  private async makeDecrypter(): Promise<Decrypter> {
    const age = await loadLib();
    const d = new age.Decrypter();
    this.keys.identities.forEach((id, i) => {
      try {
        d.addIdentity(id);
      } catch {
        // Never the library's message: its bech32 errors quote the key.
        throw configError(`${this.keys.keyPath}.${this.keys.at.identities[i]}`, 'is not a valid X25519 identity (bad checksum)');
      }
    });
    return d;
  }
}

/**
 * A pull-driven Web stream over a Node stream or iterable: one chunk in flight (backpressure by
 * construction), the source's own error remembered so it is passed on unchanged, and the first
 * bytes kept to tell a plain LZ4 object from a damaged age file.
 */
class Source {
  readonly stream: ReadableStream<Uint8Array>;
  failed = false;
  error: unknown;
  head: Buffer | undefined;

  constructor(src: AsyncIterable<Uint8Array>) {
    const it = src[Symbol.asyncIterator]();
    this.stream = new ReadableStream<Uint8Array>(
      {
        pull: async (c) => {
          let r: IteratorResult<Uint8Array>;
          try {
            r = await it.next();
          } catch (err) {
            this.failed = true;
            this.error = err;
            throw err;
          }
          if (r.done) return c.close();
          this.head ??= asBuffer(r.value).subarray(0, 4);
          c.enqueue(r.value);
        },
        cancel: async () => void (await it.return?.()),
      },
      { highWaterMark: 0 },
    );
  }
}

/** A buffer in age-chunk slices, yielding to the event loop between them (the cipher is synchronous JS). */
async function* slices(buf: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < buf.length; off += CHUNK) {
    yield buf.subarray(off, off + CHUNK);
    if (off + CHUNK < buf.length) await yieldToLoop();
  }
}

async function* iterate(rs: ReadableStream<Uint8Array>, mapError: (err: unknown) => unknown = (e) => e): AsyncGenerator<Buffer> {
  const reader = rs.getReader();
  let done = false;
  try {
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (err) {
        done = true;
        throw mapError(err);
      }
      if (r.done) {
        done = true;
        return;
      }
      yield asBuffer(r.value);
    }
  } finally {
    // Stopped early by the consumer: cancel back to the source (closes the store's stream).
    if (!done) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
