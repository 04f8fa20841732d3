/**
 * `gcs` replica client: the Litestream layout in a Google Cloud Storage bucket, through
 * `@google-cloud/storage` 7 (reference §1.3, §3.4). Object time = `timeCreated` (Litestream reads
 * attrs.Created), millisecond resolution, converted to ns.
 *
 * Requests: buffers go up in one multipart request (`resumable: false`; most syncs write one small
 * WAL segment, and every request costs money); streams use a resumable upload in 8 MiB chunks so a
 * dropped connection resumes instead of restarting a large snapshot. Every JSON call is wrapped in
 * `withRetry`; the library's own retries are off for them, and bounded for resumable chunks (a stream
 * cannot be replayed from our side, but the library keeps the current chunk and resumes it).
 */
import { PassThrough, type Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { posix } from 'node:path';
import { IdempotencyStrategy, Storage, type Bucket, type File, type StorageOptions } from '@google-cloud/storage';
import { LsinitError } from '../../errors.js';
import * as paths from '../../format/paths.js';
import { countOp } from '../../metrics/ops.js';
import type { Backend } from '../backend.js';
import { byKey, type Body, type ObjectInfo, type Pos, type ReplicaClient, type SnapshotInfo, type WALSegmentInfo } from '../client.js';
import { withRetry, type RetryOptions } from '../retry.js';
import { GCS_KEYS, resolveGcs, type GcsSettings } from './gcs-config.js';
import { gcsError, libRetryable, stalledError } from './gcs-errors.js';

export type { GcsSettings } from './gcs-config.js';
export { normalizeEndpoint } from './gcs-config.js';

export interface GcsClientOptions extends GcsSettings {
  retry?: RetryOptions;
  /** Resumable upload chunk size (a multiple of 256 KiB). */
  chunkSize?: number;
  /** Abort a download or streamed upload after this long without progress (default 60 s). */
  stallMs?: number;
}

const TYPE = 'gcs';
const CHUNK_SIZE = 8 << 20;
/** Deadline of one JSON call (list, delete, simple upload of a small body). */
const REQUEST_TIMEOUT_MS = 60_000;
/** Transfers of any size are aborted only when they make no progress this long. */
const STALL_MS = 60_000;
const DELETE_CONCURRENCY = 8;
const CONTENT_TYPE = 'application/octet-stream';

export class GcsReplicaClient implements ReplicaClient {
  readonly type = TYPE;
  readonly bucketName: string;
  readonly root: string;
  private readonly storage: Storage;
  /** JSON calls and simple uploads: a total deadline per request, no library retries (withRetry does them). */
  private readonly bucket: Bucket;
  /**
   * Downloads: the library applies a Service `timeout` to the whole body, which would kill any
   * snapshot that takes longer to fetch; so no timeout here, and a stall guard instead.
   */
  private readonly downloadBucket: Bucket;
  /** Resumable (stream) uploads: bounded library retries that resume the session; stall guard. */
  private readonly uploadBucket: Bucket;
  private readonly stallMs: number;
  private readonly retry: RetryOptions;
  private readonly chunkSize: number;

  constructor(opts: GcsClientOptions) {
    this.bucketName = opts.bucket;
    this.root = opts.path;
    this.retry = opts.retry ?? {};
    this.chunkSize = opts.chunkSize ?? CHUNK_SIZE;
    this.stallMs = opts.stallMs ?? STALL_MS;
    const base: StorageOptions = {};
    if (opts.endpoint) {
      // A custom endpoint gets no credentials (the library skips auth for it), and an explicit
      // project id keeps google-auth-library from probing ADC or the metadata server.
      base.apiEndpoint = opts.endpoint;
      base.projectId = opts.projectId ?? 'lsinit';
      base.useAuthWithCustomEndpoint = isGoogleHost(opts.endpoint);
    }
    const noRetry = { autoRetry: false, idempotencyStrategy: IdempotencyStrategy.RetryNever };
    this.storage = newStorage({ ...base, timeout: REQUEST_TIMEOUT_MS, retryOptions: noRetry });
    // The other instances share the first one's auth client, so credentials load (and tokens refresh) once.
    const authClient = this.storage.authClient as NonNullable<StorageOptions['authClient']>;
    const downloads = newStorage({ ...base, authClient, retryOptions: noRetry });
    const uploads = newStorage({
      ...base,
      authClient,
      retryOptions: {
        autoRetry: true, maxRetries: 3, retryDelayMultiplier: 2, maxRetryDelay: 8, totalTimeout: 60,
        // Rewriting an object under the same name with the same bytes is idempotent for us.
        idempotencyStrategy: IdempotencyStrategy.RetryAlways,
        retryableErrorFn: libRetryable,
      },
    });
    this.bucket = this.storage.bucket(opts.bucket);
    this.downloadBucket = downloads.bucket(opts.bucket);
    this.uploadBucket = uploads.bucket(opts.bucket);
  }

  async generations(): Promise<string[]> {
    const { prefixes } = await this.list(paths.generationsDir(this.root) + '/', '/');
    return prefixes.map((p) => posix.basename(p)).filter(paths.isGenerationName).sort();
  }

  async deleteGeneration(generation: string): Promise<void> {
    const { items } = await this.list(paths.generationDir(this.root, generation) + '/');
    await this.deleteKeys(items.map((i) => i.name));
  }

  async snapshots(generation: string): Promise<SnapshotInfo[]> {
    const { items } = await this.list(paths.snapshotsDir(this.root, generation) + '/', '/');
    const out: SnapshotInfo[] = [];
    for (const it of items) {
      const index = paths.parseSnapshotName(posix.basename(it.name));
      if (index !== undefined) out.push({ generation, index, size: it.size, createdAt: it.createdAt });
    }
    return out.sort((a, b) => a.index - b.index);
  }

  async writeSnapshot(generation: string, index: number, body: Body): Promise<SnapshotInfo> {
    const r = await this.put(paths.snapshotPath(this.root, generation, index), body);
    return { generation, index, ...r };
  }

  async deleteSnapshot(generation: string, index: number): Promise<void> {
    await this.deleteKeys([paths.snapshotPath(this.root, generation, index)]);
  }

  async snapshotReader(generation: string, index: number): Promise<Readable> {
    return this.reader(paths.snapshotPath(this.root, generation, index), { generation, index });
  }

  async walSegments(generation: string): Promise<WALSegmentInfo[]> {
    const { items } = await this.list(paths.walDir(this.root, generation) + '/', '/');
    const out: WALSegmentInfo[] = [];
    for (const it of items) {
      const p = paths.parseWALSegmentName(posix.basename(it.name));
      if (p) out.push({ generation, index: p.index, offset: p.offset, size: it.size, createdAt: it.createdAt });
    }
    return out.sort((a, b) => a.index - b.index || a.offset - b.offset);
  }

  async writeWALSegment(pos: Pos, body: Body): Promise<WALSegmentInfo> {
    const r = await this.put(paths.walSegmentPath(this.root, pos.generation, pos.index, pos.offset), body);
    return { generation: pos.generation, index: pos.index, offset: pos.offset, ...r };
  }

  async deleteWALSegments(positions: Pos[]): Promise<void> {
    await this.deleteKeys(positions.map((p) => paths.walSegmentPath(this.root, p.generation, p.index, p.offset)));
  }

  async walSegmentReader(pos: Pos): Promise<Readable> {
    return this.reader(paths.walSegmentPath(this.root, pos.generation, pos.index, pos.offset), { ...pos });
  }

  async listObjects(dir: string): Promise<ObjectInfo[]> {
    const prefix = `${paths.objectPath(this.root, dir)}/`;
    const { items } = await this.list(prefix);
    return items
      .filter((it) => it.name.length > prefix.length)
      .map((it) => ({ key: `${dir}/${it.name.slice(prefix.length)}`, size: it.size, createdAt: it.createdAt }))
      .sort(byKey);
  }

  async objectReader(key: string): Promise<Readable> {
    return this.reader(paths.objectPath(this.root, key), { key });
  }

  async writeObject(key: string, body: Body): Promise<ObjectInfo> {
    return { key, ...(await this.put(paths.objectPath(this.root, key), body)) };
  }

  async close(): Promise<void> {}

  /** The library objects hold the loaded credentials (a key file's private_key): never print them. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `GcsReplicaClient { bucket: ${JSON.stringify(this.bucketName)}, path: ${JSON.stringify(this.root)} }`;
  }

  toJSON(): Record<string, string> {
    return { type: TYPE, bucket: this.bucketName, path: this.root };
  }

  /** All objects (and delimiter prefixes) under `prefix`, every page, one LIST per page. */
  private async list(prefix: string, delimiter?: string): Promise<{ items: ListedObject[]; prefixes: string[] }> {
    const items: ListedObject[] = [];
    const prefixes: string[] = [];
    let pageToken: string | undefined;
    do {
      const [files, next, resp] = await this.call('LIST', prefix, () =>
        this.bucket.getFiles({ prefix, autoPaginate: false, ...(delimiter ? { delimiter } : {}), ...(pageToken ? { pageToken } : {}) }));
      for (const f of files) items.push({ name: f.name, size: Number(f.metadata.size ?? 0), createdAt: timeNs(f.metadata.timeCreated) });
      prefixes.push(...(((resp as { prefixes?: string[] } | undefined)?.prefixes) ?? []));
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken);
    return { items, prefixes };
  }

  private async deleteKeys(keys: string[]): Promise<void> {
    // GCS has no multi-object delete in the JSON API; Litestream also deletes one object per request.
    let i = 0;
    const worker = async () => {
      while (i < keys.length) {
        const key = keys[i++]!;
        try {
          await this.call('DELETE', key, () => this.bucket.file(key).delete());
        } catch (err) {
          if (!(err instanceof LsinitError && err.code === 'LSINIT_ERR_NOT_FOUND')) throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, keys.length) }, worker));
  }

  private async put(key: string, body: Body): Promise<{ size: number; createdAt: bigint }> {
    let file: File;
    if (body instanceof Uint8Array) {
      const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      file = await withRetry(async () => {
        countOp(TYPE, 'PUT', buf.length);
        const f = this.bucket.file(key);
        // The library sends simple uploads with no timeout at all; allow 60 s plus 1 s per 256 KiB.
        const timeout = REQUEST_TIMEOUT_MS + Math.ceil(buf.length / 262_144) * 1000;
        const ws = f.createWriteStream({ resumable: false, validation: 'crc32c', contentType: CONTENT_TYPE, timeout });
        ws.end(buf);
        await finished(ws).catch((err: unknown) => {
          throw this.mapError(err, 'PUT', key, {});
        });
        return f;
      }, this.retry);
    } else {
      // No outer retry: the stream cannot be replayed. The resumable upload itself retries a chunk.
      file = this.uploadBucket.file(key);
      const ws = file.createWriteStream({ resumable: true, chunkSize: this.chunkSize, validation: 'crc32c', contentType: CONTENT_TYPE });
      let sent = 0;
      let counted = 0;
      ws.on('uri', () => countOp(TYPE, 'PUT', 0));
      ws.on('progress', (e: { bytesWritten?: number }) => (sent = e.bytesWritten ?? sent));
      ws.on('response', () => {
        countOp(TYPE, 'PUT', Math.max(0, sent - counted));
        counted = sent;
      });
      const guard = stallGuard(this.stallMs, () => ws.destroy(this.stalled('PUT', key)), 
        // Waiting on our own body (not yet ended, room in the upload's buffer) is not the store's stall.
        () => !ws.writableNeedDrain && !body.readableEnded);
      for (const ev of ['progress', 'response', 'uri']) ws.on(ev, guard.touch);
      body.on('data', guard.touch);
      try {
        await pipeline(body, ws);
      } catch (err) {
        throw this.mapError(err, 'PUT', key, {});
      } finally {
        guard.stop();
      }
    }
    return { size: Number(file.metadata.size ?? 0), createdAt: timeNs(file.metadata.timeCreated) };
  }

  /** Open a validated download; resolves once the response status is known, so 404 rejects here. */
  private reader(key: string, fields: Record<string, unknown>): Promise<Readable> {
    return withRetry(() => new Promise<Readable>((resolve, reject) => {
      const src = this.downloadBucket.file(key).createReadStream({ validation: 'crc32c' });
      const out = new PassThrough({ highWaterMark: 1 << 20 });
      let opened = false;
      // A paused source means the consumer is slow, not the store: that is not a stall.
      const guard = stallGuard(this.stallMs, () => src.destroy(this.stalled('GET', key)), () => src.isPaused());
      for (const ev of ['response', 'data', 'resume']) src.on(ev, guard.touch);
      src.on('close', guard.stop);
      src.on('response', (res: { statusCode?: number; status?: number; headers?: Record<string, unknown> }) => {
        const status = res.statusCode ?? res.status ?? 0;
        if (status < 200 || status >= 300) return; // the error event follows with the body
        opened = true;
        countOp(TYPE, 'GET', Number(header(res.headers, 'content-length') ?? 0));
        resolve(out);
      });
      src.on('error', (err: unknown) => {
        const e = this.mapError(err, 'GET', key, fields);
        if (opened) {
          out.destroy(e);
          return;
        }
        countOp(TYPE, 'GET', 0);
        out.destroy();
        reject(e);
      });
      // A consumer that gives up early (aborted restore) must not leave the download running.
      out.on('close', () => {
        guard.stop();
        src.destroy();
      });
      src.pipe(out);
    }), this.retry);
  }

  /** One counted request with retries; every failure comes out as an LsinitError. */
  private call<T>(op: 'LIST' | 'DELETE' | 'GET', key: string, fn: () => Promise<T>): Promise<T> {
    return withRetry(async () => {
      countOp(TYPE, op);
      try {
        return await fn();
      } catch (err) {
        throw this.mapError(err, op, key, {});
      }
    }, this.retry);
  }

  private stalled(op: string, key: string): LsinitError {
    return stalledError({ bucket: this.bucketName, op, key }, this.stallMs);
  }

  private mapError(err: unknown, op: string, key: string, fields: Record<string, unknown>): LsinitError {
    return gcsError(err, { bucket: this.bucketName, op, key, fields });
  }
}

interface ListedObject {
  name: string;
  size: number;
  createdAt: bigint;
}

/**
 * Calls `onStall` when `touch` has not been called for `ms`, except while `excused()` says the wait
 * is on our side (a paused consumer). A total timeout would abort large transfers that are healthy.
 */
function stallGuard(ms: number, onStall: () => void, excused: () => boolean): { touch: () => void; stop: () => void } {
  let last = Date.now();
  const timer = setInterval(() => {
    if (excused()) last = Date.now();
    else if (Date.now() - last > ms) {
      clearInterval(timer);
      onStall();
    }
  }, Math.max(10, Math.min(1000, ms / 4)));
  timer.unref();
  return { touch: () => void (last = Date.now()), stop: () => clearInterval(timer) };
}

function timeNs(t: unknown): bigint {
  const ms = typeof t === 'string' ? Date.parse(t) : NaN;
  return Number.isFinite(ms) ? BigInt(ms) * 1_000_000n : 0n;
}

function header(h: Record<string, unknown> | undefined, name: string): string | undefined {
  if (!h) return undefined;
  const v = typeof (h as { get?: unknown }).get === 'function' ? (h as unknown as Headers).get(name) : h[name];
  return v === null || v === undefined ? undefined : String(v);
}

function isGoogleHost(endpoint: string): boolean {
  // Private Service Connect / regional Google endpoints still want OAuth; emulators must get none.
  const host = new URL(endpoint).hostname;
  return host === 'googleapis.com' || host.endsWith('.googleapis.com');
}

/**
 * The library reads STORAGE_EMULATOR_HOST from process.env in its constructor: it then drops
 * `/storage/v1` from JSON URLs and captures "no auth" into its request function for good. Settings
 * are resolved once at the edge (the env var already became `endpoint` there), so construct with the
 * variable hidden; the constructor is synchronous, so nothing else can observe the gap.
 */
function newStorage(opts: StorageOptions): Storage {
  const saved = process.env['STORAGE_EMULATOR_HOST'];
  if (saved === undefined) return new Storage(opts);
  delete process.env['STORAGE_EMULATOR_HOST'];
  try {
    return new Storage(opts);
  } finally {
    process.env['STORAGE_EMULATOR_HOST'] = saved;
  }
}

export const gcsBackend: Backend<GcsSettings> = {
  type: TYPE,
  keys: GCS_KEYS,
  resolve: resolveGcs,
  create(settings) {
    return new GcsReplicaClient(settings);
  },
  secretEnv: ['GOOGLE_APPLICATION_CREDENTIALS'],
};
