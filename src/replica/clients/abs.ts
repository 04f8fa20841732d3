/**
 * `abs` replica client (Litestream 0.3's abs.ReplicaClient) on @azure/storage-blob with shared-key
 * auth. Object time = the blob's creation time (Properties.CreationTime, reference §3.4). Config
 * resolution lives in abs-config.ts.
 */
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import {
  BlobServiceClient,
  newPipeline,
  StorageSharedKeyCredential,
  type BlobItem,
  type ContainerClient,
  type HttpOperationResponse,
  type RequestPolicy,
  type RequestPolicyFactory,
  type WebResource,
} from '@azure/storage-blob';
import { LsinitError, notFound } from '../../errors.js';
import * as paths from '../../format/paths.js';
import { countOp, type Operation } from '../../metrics/ops.js';
import type { Backend } from '../backend.js';
import { byKey, type Body, type ObjectInfo, type Pos, type ReplicaClient, type SnapshotInfo, type WALSegmentInfo } from '../client.js';
import { splitBody } from '../body.js';
import { isTransient, withRetry, type RetryOptions } from '../retry.js';
import { ABS_KEYS, ABS_SECRET_ENV, absDisplay, resolveABS, type ABSSettings } from './abs-config.js';

export type { ABSSettings } from './abs-config.js';

/** Block size of streamed uploads; shorter streams go out as one Put Blob. */
export const ABS_BLOCK_SIZE = 4 * 1024 * 1024;
const DELETE_CONCURRENCY = 8;
/**
 * Client-side limit for one request without a streamed body (list, small put, delete): the SDK has
 * no socket timeout, and a store that accepts but never answers must fail a sync, not stall it.
 */
const REQUEST_TIMEOUT_MS = 120_000;

export interface ABSClientOptions {
  /** Retry policy of each request (tests shorten it). */
  retry?: RetryOptions;
  /** Listing page size (Azure's maximum and default is 5000; tests lower it to exercise paging). */
  listPageSize?: number;
  /** Limit per request without a streamed body (default 120 s). */
  requestTimeoutMs?: number;
}

function opOf(req: WebResource): Operation {
  if (new URL(req.url).searchParams.get('comp') === 'list') return 'LIST';
  if (req.method === 'PUT') return 'PUT';
  if (req.method === 'DELETE') return 'DELETE';
  return 'GET';
}

/** Counts every request the pipeline sends (ops.ts), by method and `comp`. */
const countingPolicy: RequestPolicyFactory = {
  create(next: RequestPolicy): RequestPolicy {
    return {
      async sendRequest(req: WebResource): Promise<HttpOperationResponse> {
        let res: HttpOperationResponse;
        try {
          res = await next.sendRequest(req);
        } catch (err) {
          // An answered request (4xx/5xx) was made and is billed; a refused connection was not.
          if (typeof (err as { statusCode?: unknown }).statusCode === 'number') countOp('abs', opOf(req), 0);
          throw err;
        }
        const comp = new URL(req.url).searchParams.get('comp');
        const op = opOf(req);
        let bytes = 0;
        // Block data and Put Blob bodies count, not the block-list XML; GET bytes are blob downloads.
        if (op === 'PUT' && (comp === null || comp === 'block')) bytes = Number(req.headers.get('content-length') ?? 0);
        else if (op === 'GET' && res.status < 300) bytes = Number(res.headers.get('content-length') ?? 0);
        countOp('abs', op, bytes);
        return res;
      },
    };
  },
};

function makeContainer(s: ABSSettings, maxTries: number): ContainerClient {
  const pipeline = newPipeline(new StorageSharedKeyCredential(s.accountName, s.accountKey), {
    retryOptions: { maxTries, retryDelayInMs: 200, maxRetryDelayInMs: 5000 },
  });
  pipeline.factories.push(countingPolicy);
  return new BlobServiceClient(s.endpoint, pipeline).getContainerClient(s.container);
}

interface RestErrorLike {
  statusCode?: number;
  code?: string;
  details?: { errorCode?: string };
  message?: string;
}

function absCode(err: unknown): string {
  const e = err as RestErrorLike | undefined;
  return e?.details?.errorCode ?? e?.code ?? '';
}

/** core-rest-pipeline reports a failed connection as REQUEST_SEND_ERROR; it is worth retrying. */
export function absTransient(err: unknown): boolean {
  // AbortError: only our own REQUEST_TIMEOUT_MS aborts requests.
  return absCode(err) === 'REQUEST_SEND_ERROR' || (err as Error | undefined)?.name === 'AbortError' || isTransient(err);
}

export class ABSReplicaClient implements ReplicaClient {
  readonly type = 'abs';
  readonly display: string;
  // ES-private fields: util.inspect of the client never walks into the shared key.
  readonly #s: ABSSettings;
  /** Single try per call: `withRetry` is the one retry layer for replayable requests. */
  readonly #container: ContainerClient;
  /** Streamed uploads cannot be replayed; the SDK retries each staged block itself (bounded). */
  readonly #uploadContainer: ContainerClient;
  readonly #retry: RetryOptions;
  readonly #pageSize: number;
  readonly #timeoutMs: number;

  constructor(settings: ABSSettings, opts: ABSClientOptions = {}) {
    this.#s = settings;
    this.display = absDisplay(settings);
    this.#retry = { isTransient: absTransient, ...opts.retry };
    this.#pageSize = opts.listPageSize ?? 5000;
    this.#timeoutMs = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS;
    this.#container = makeContainer(settings, 1);
    this.#uploadContainer = makeContainer(settings, 5);
  }

  private mapError(err: unknown, what: string, blob?: string): LsinitError {
    if (err instanceof LsinitError) return err;
    const code = absCode(err);
    const status = (err as RestErrorLike | undefined)?.statusCode;
    const where = `abs replica ${this.display}`;
    const fields = { replica: this.display, container: this.#s.container, ...(blob !== undefined ? { blob } : {}), ...(status ? { status } : {}), ...(code ? { absCode: code } : {}) };
    if (blob !== undefined && (code === 'BlobNotFound' || (status === 404 && code !== 'ContainerNotFound'))) {
      return notFound(`abs blob ${this.#s.container}/${blob}`, fields);
    }
    // Azure error texts quote the string-to-sign at most, never the key; keep only the first line.
    const detail = `${code || 'Error'}: ${((err as RestErrorLike | undefined)?.message ?? String(err)).split('\n')[0]}`;
    if (code === 'ContainerNotFound') {
      return new LsinitError('LSINIT_ERR_REPLICA', `${where}: container "${this.#s.container}" does not exist (${what})`, { fields, cause: err, transient: false });
    }
    if (status === 401 || status === 403 || /^(AuthenticationFailed|AuthorizationFailure|AuthorizationPermissionMismatch|InvalidAuthenticationInfo)$/.test(code)) {
      return new LsinitError('LSINIT_ERR_AUTH', `${where}: account "${this.#s.accountName}" rejected the shared key for container "${this.#s.container}" (${what}): ${detail}`, { fields, cause: err, transient: false });
    }
    return new LsinitError('LSINIT_ERR_REPLICA', `${where}: ${what}: ${detail}`, { fields, cause: err, transient: absTransient(err) });
  }

  private async call<T>(what: string, blob: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await withRetry(fn, this.#retry);
    } catch (err) {
      throw this.mapError(err, what, blob);
    }
  }

  /** Flat listing of every blob under `prefix`, one retried request per page. */
  private async listFlat(prefix: string): Promise<BlobItem[]> {
    const out: BlobItem[] = [];
    let token: string | undefined;
    do {
      const page = await this.call(`LIST ${prefix}`, undefined, async () => {
        const r = await this.#container.listBlobsFlat({ prefix, abortSignal: AbortSignal.timeout(this.#timeoutMs) }).byPage({ maxPageSize: this.#pageSize, ...(token ? { continuationToken: token } : {}) }).next();
        return r.done ? undefined : r.value;
      });
      out.push(...(page?.segment.blobItems ?? []));
      token = page?.continuationToken || undefined;
    } while (token);
    return out;
  }

  async generations(): Promise<string[]> {
    const prefix = `${paths.generationsDir(this.#s.path)}/`;
    const names: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.call(`LIST ${prefix}`, undefined, async () => {
        const r = await this.#container.listBlobsByHierarchy('/', { prefix, abortSignal: AbortSignal.timeout(this.#timeoutMs) }).byPage({ maxPageSize: this.#pageSize, ...(token ? { continuationToken: token } : {}) }).next();
        return r.done ? undefined : r.value;
      });
      for (const p of page?.segment.blobPrefixes ?? []) names.push(p.name.slice(prefix.length).replace(/\/$/, ''));
      token = page?.continuationToken || undefined;
    } while (token);
    return names.filter(paths.isGenerationName).sort();
  }

  async deleteGeneration(generation: string): Promise<void> {
    const blobs = await this.listFlat(`${paths.generationDir(this.#s.path, generation)}/`);
    await this.deleteBlobs(blobs.map((b) => b.name));
  }

  async snapshots(generation: string): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    for (const b of await this.listFlat(`${paths.snapshotsDir(this.#s.path, generation)}/`)) {
      const index = paths.parseSnapshotName(posix.basename(b.name));
      if (index === undefined) continue;
      out.push({ generation, index, size: b.properties.contentLength ?? 0, createdAt: createdAt(b) });
    }
    return out.sort((a, b) => a.index - b.index);
  }

  async writeSnapshot(generation: string, index: number, body: Body): Promise<SnapshotInfo> {
    // Litestream returns the upload start time; readers re-list and use the creation time.
    const at = BigInt(Date.now()) * 1_000_000n;
    const size = await this.writeBlob(paths.snapshotPath(this.#s.path, generation, index), body);
    return { generation, index, size, createdAt: at };
  }

  async deleteSnapshot(generation: string, index: number): Promise<void> {
    await this.deleteBlobs([paths.snapshotPath(this.#s.path, generation, index)]);
  }

  async snapshotReader(generation: string, index: number): Promise<Readable> {
    return this.reader(paths.snapshotPath(this.#s.path, generation, index));
  }

  async walSegments(generation: string): Promise<WALSegmentInfo[]> {
    const out: WALSegmentInfo[] = [];
    for (const b of await this.listFlat(`${paths.walDir(this.#s.path, generation)}/`)) {
      const p = paths.parseWALSegmentName(posix.basename(b.name));
      if (!p) continue;
      out.push({ generation, index: p.index, offset: p.offset, size: b.properties.contentLength ?? 0, createdAt: createdAt(b) });
    }
    return out.sort((a, b) => a.index - b.index || a.offset - b.offset);
  }

  async writeWALSegment(pos: Pos, body: Body): Promise<WALSegmentInfo> {
    const at = BigInt(Date.now()) * 1_000_000n;
    const size = await this.writeBlob(paths.walSegmentPath(this.#s.path, pos.generation, pos.index, pos.offset), body);
    return { generation: pos.generation, index: pos.index, offset: pos.offset, size, createdAt: at };
  }

  async deleteWALSegments(positions: Pos[]): Promise<void> {
    await this.deleteBlobs(positions.map((p) => paths.walSegmentPath(this.#s.path, p.generation, p.index, p.offset)));
  }

  async walSegmentReader(pos: Pos): Promise<Readable> {
    return this.reader(paths.walSegmentPath(this.#s.path, pos.generation, pos.index, pos.offset));
  }

  async listObjects(dir: string): Promise<ObjectInfo[]> {
    const prefix = `${paths.objectPath(this.#s.path, dir)}/`;
    return (await this.listFlat(prefix))
      .filter((b) => b.name.length > prefix.length)
      .map((b) => ({ key: `${dir}/${b.name.slice(prefix.length)}`, size: b.properties.contentLength ?? 0, createdAt: createdAt(b) }))
      .sort(byKey);
  }

  async objectReader(key: string): Promise<Readable> {
    return this.reader(paths.objectPath(this.#s.path, key));
  }

  async writeObject(key: string, body: Body): Promise<ObjectInfo> {
    const at = BigInt(Date.now()) * 1_000_000n;
    const size = await this.writeBlob(paths.objectPath(this.#s.path, key), body);
    return { key, size, createdAt: at };
  }

  async close(): Promise<void> {
    // The SDK shares one keep-alive HTTP client per process; there is nothing per-client to release.
  }

  private async reader(name: string): Promise<Readable> {
    const res = await this.call(`GET ${name}`, name, () => this.#container.getBlobClient(name).download(0, undefined, { maxRetryRequests: 3 }));
    const body = res.readableStreamBody;
    if (!(body instanceof Readable)) throw new LsinitError('LSINIT_ERR_REPLICA', `abs replica ${this.display}: GET ${name}: response has no body stream`, { fields: { blob: name } });
    return body;
  }

  /** One Delete per blob, as Litestream does; a blob already gone is not an error. */
  private async deleteBlobs(names: string[]): Promise<void> {
    let i = 0;
    await Promise.all(Array.from({ length: Math.min(DELETE_CONCURRENCY, names.length) }, async () => {
      while (i < names.length) {
        const name = names[i++]!;
        await this.call(`DELETE ${name}`, undefined, async () => {
          try {
            await this.#container.getBlobClient(name).delete({ abortSignal: AbortSignal.timeout(this.#timeoutMs) });
          } catch (err) {
            if (absCode(err) !== 'BlobNotFound') throw err;
          }
        });
      }
    }));
  }

  /** Buffers (and short streams) go out as one retried Put Blob; longer streams as staged blocks. */
  private async writeBlob(name: string, body: Body): Promise<number> {
    const headers = { blobHTTPHeaders: { blobContentType: 'application/octet-stream' } };
    const putBuffer = async (data: Uint8Array) => {
      await this.call(`PUT ${name}`, undefined, () => this.#container.getBlockBlobClient(name).upload(data, data.byteLength, { ...headers, abortSignal: AbortSignal.timeout(this.#timeoutMs) }));
      return data.byteLength;
    };
    if (body instanceof Uint8Array) return putBuffer(body);
    const split = await splitBody(body, ABS_BLOCK_SIZE);
    if (split.kind === 'buffer') return putBuffer(split.data);
    try {
      await this.#uploadContainer.getBlockBlobClient(name).uploadStream(split.stream, ABS_BLOCK_SIZE, 5, headers);
    } catch (err) {
      body.destroy();
      const src = split.sourceError();
      if (src) throw src.error;
      throw this.mapError(err, `PUT ${name} (blocks)`);
    }
    return split.size();
  }
}

function createdAt(b: BlobItem): bigint {
  const d = b.properties.createdOn ?? b.properties.lastModified;
  return BigInt(d.getTime()) * 1_000_000n;
}

export const absBackend: Backend<ABSSettings> = {
  type: 'abs',
  keys: ABS_KEYS,
  resolve: resolveABS,
  create(settings) {
    return new ABSReplicaClient(settings);
  },
  secretEnv: ABS_SECRET_ENV,
};
