/**
 * `s3` replica client (Litestream 0.3's s3.ReplicaClient) on AWS SDK v3, for AWS and S3-compatible
 * stores. Object time = LastModified (1 s resolution, reference §3.4). Config resolution lives in
 * s3-config.ts, URL host forms in s3-url.ts, error mapping in s3-errors.ts.
 */
import { Agent as HttpsAgent } from 'node:https';
import { Agent as HttpAgent } from 'node:http';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type _Object,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { LsinitError } from '../../errors.js';
import * as paths from '../../format/paths.js';
import { countOp, type Operation } from '../../metrics/ops.js';
import type { Backend } from '../backend.js';
import { byKey, type Body, type ObjectInfo, type Pos, type ReplicaClient, type SnapshotInfo, type WALSegmentInfo } from '../client.js';
import { splitBody } from '../body.js';
import { withRetry, type RetryOptions } from '../retry.js';
import { resolveS3, s3Display, S3_KEYS, S3_SECRET_ENV, type S3Settings } from './s3-config.js';
import { mapS3Error } from './s3-errors.js';

export type { S3Settings } from './s3-config.js';

/** s3manager's default part size, also S3's minimum: bodies up to this size go out as one PutObject. */
export const S3_PART_SIZE = 5 * 1024 * 1024;
/** S3's DeleteObjects limit (Litestream's MaxKeys). */
const DELETE_BATCH = 1000;

export interface S3ClientOptions extends S3Settings {
  /** Retry policy of each request (tests shorten it). */
  retry?: RetryOptions;
  /** Socket idle limit per request (default 120 s): a store that stops answering fails the request. */
  requestTimeoutMs?: number;
}

// Every request the SDK sends is counted here, including each multipart part, by command name.
const COMMAND_OPS: Record<string, Operation> = {
  GetObjectCommand: 'GET', HeadObjectCommand: 'GET',
  PutObjectCommand: 'PUT', UploadPartCommand: 'PUT', CreateMultipartUploadCommand: 'PUT', CompleteMultipartUploadCommand: 'PUT',
  ListObjectsV2Command: 'LIST',
  DeleteObjectCommand: 'DELETE', DeleteObjectsCommand: 'DELETE', AbortMultipartUploadCommand: 'DELETE',
};
const BODY_COMMANDS = new Set(['PutObjectCommand', 'UploadPartCommand']);

export class S3ReplicaClient implements ReplicaClient {
  readonly type = 's3';
  readonly display: string;
  // ES-private fields: util.inspect of the client never walks into credentials.
  readonly #s: S3Settings;
  /** Single attempt per call: `withRetry` is the one retry layer for replayable requests. */
  readonly #client: S3Client;
  /**
   * Multipart uploads of streams cannot be replayed as a whole, but each part is a buffer: this
   * client lets the SDK retry parts itself (standard mode, bounded, backoff with jitter).
   */
  readonly #uploadClient: S3Client;
  private readonly retry: RetryOptions;
  readonly #secrets: string[];
  readonly #timeoutMs: number;

  constructor(opts: S3ClientOptions) {
    const { retry, requestTimeoutMs, ...settings } = opts;
    this.#s = settings;
    this.#timeoutMs = requestTimeoutMs ?? 120_000;
    this.retry = retry ?? {};
    this.display = s3Display(settings);
    this.#secrets = [settings.credentials?.secretAccessKey ?? '', settings.credentials?.sessionToken ?? ''].filter(Boolean);
    this.#client = this.makeClient(1);
    this.#uploadClient = this.makeClient(5);
  }

  #abort = new AbortController();

  abortInFlight(): void {
    this.#abort.abort(new Error('request aborted: the store did not answer in time'));
    this.#abort = new AbortController();
  }

  private makeClient(maxAttempts: number): S3Client {
    const s = this.#s;
    const agentOpts = { keepAlive: true, maxSockets: 50 };
    const cfg: S3ClientConfig = {
      region: s.region,
      forcePathStyle: s.forcePathStyle,
      followRegionRedirects: s.followRegionRedirects,
      maxAttempts,
      // SDK ≥ 3.729 sends CRC trailers / aws-chunked bodies by default, which S3-compatible stores
      // reject or store verbatim (test-servers.md "S3 traps"); only send checksums S3 requires.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        connectionTimeout: 10_000,
        // Socket idle limit, not a total (large bodies may take long): a stalled store fails the
        // request with a TimeoutError instead of hanging a sync. `requestTimeout` is a total that
        // only warns unless throwOnRequestTimeout is set, so it is not the knob for this.
        socketTimeout: this.#timeoutMs,
        httpAgent: new HttpAgent(agentOpts),
        httpsAgent: new HttpsAgent({ ...agentOpts, rejectUnauthorized: !s.skipVerify }),
      },
      ...(s.endpoint !== undefined ? { endpoint: s.endpoint } : {}),
      ...(s.credentials ? { credentials: { ...s.credentials, secretAccessKey: s.credentials.secretAccessKey, ...(s.credentials.sessionToken ? { sessionToken: s.credentials.sessionToken } : {}) } } : {}),
    };
    const client = quietClient(cfg);
    // Every request of this client (multipart parts included) also listens to `#abort`, which
    // `abortInFlight()` fires: the SDK takes an abort signal per send() call only, and the
    // multipart uploader sends its parts itself.
    const handler = client.config.requestHandler as unknown as { handle(req: unknown, opts?: { abortSignal?: AbortSignal }): Promise<unknown> };
    const handle = handler.handle.bind(handler);
    handler.handle = (req, opts = {}) => handle(req, { ...opts, abortSignal: opts.abortSignal ? AbortSignal.any([opts.abortSignal, this.#abort.signal]) : this.#abort.signal });
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const command = context.commandName ?? '';
        const req = args.request as { method?: string; headers?: Record<string, string> };
        const op = COMMAND_OPS[command] ?? methodOp(req.method);
        try {
          const out = await next(args);
          const res = out.response as { headers?: Record<string, string> };
          const len = BODY_COMMANDS.has(command) ? req.headers?.['content-length'] : command === 'GetObjectCommand' ? res.headers?.['content-length'] : undefined;
          countOp('s3', op, len ? Number(len) : 0);
          return out;
        } catch (err) {
          // A request the store answered (even with an error) was made; a refused connection was not.
          if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode) countOp('s3', op, 0);
          throw err;
        }
      },
      { step: 'finalizeRequest', priority: 'low', name: 'lsinitCountOps' },
    );
    return client;
  }

  private key(...parts: string[]): string {
    return posix.join(this.#s.path, ...parts);
  }

  /** One SDK call under `withRetry`, its failure mapped to an LsinitError naming `what`. */
  private async call<T>(what: string, key: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await withRetry(fn, this.retry);
    } catch (err) {
      throw mapS3Error(err, { display: this.display, bucket: this.#s.bucket, what, secrets: this.#secrets, ...(key !== undefined ? { key } : {}) });
    }
  }

  /** Every page of a listing; S3 returns at most 1000 keys per page, lexicographically. */
  private async list(prefix: string, delimiter?: string): Promise<{ objects: _Object[]; prefixes: string[] }> {
    const objects: _Object[] = [];
    const prefixes: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.call(`LIST ${prefix}`, undefined, () =>
        this.#client.send(new ListObjectsV2Command({
          Bucket: this.#s.bucket,
          Prefix: prefix,
          ...(delimiter ? { Delimiter: delimiter } : {}),
          ...(token ? { ContinuationToken: token } : {}),
        })));
      objects.push(...(page.Contents ?? []));
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) prefixes.push(p.Prefix);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return { objects, prefixes };
  }

  async generations(): Promise<string[]> {
    const prefix = `${paths.generationsDir(this.#s.path)}/`;
    const { prefixes } = await this.list(prefix, '/');
    return prefixes.map((p) => p.slice(prefix.length).replace(/\/$/, '')).filter(paths.isGenerationName).sort();
  }

  async deleteGeneration(generation: string): Promise<void> {
    const { objects } = await this.list(`${paths.generationDir(this.#s.path, generation)}/`);
    await this.deleteKeys(objects.map((o) => o.Key).filter((k): k is string => k !== undefined));
  }

  async snapshots(generation: string): Promise<SnapshotInfo[]> {
    const { objects } = await this.list(`${paths.snapshotsDir(this.#s.path, generation)}/`);
    const out: SnapshotInfo[] = [];
    for (const o of objects) {
      const index = paths.parseSnapshotName(posix.basename(o.Key ?? ''));
      if (index === undefined) continue;
      out.push({ generation, index, size: o.Size ?? 0, createdAt: timeNs(o.LastModified) });
    }
    return out.sort((a, b) => a.index - b.index);
  }

  async writeSnapshot(generation: string, index: number, body: Body): Promise<SnapshotInfo> {
    // Litestream returns the upload start time; readers re-list and use LastModified.
    const createdAt = BigInt(Date.now()) * 1_000_000n;
    const size = await this.putObject(paths.snapshotPath(this.#s.path, generation, index), body);
    return { generation, index, size, createdAt };
  }

  async deleteSnapshot(generation: string, index: number): Promise<void> {
    const key = paths.snapshotPath(this.#s.path, generation, index);
    // S3 answers 204 for a missing key, so deleting twice is not an error.
    await this.call(`DELETE ${key}`, undefined, () => this.#client.send(new DeleteObjectCommand({ Bucket: this.#s.bucket, Key: key })));
  }

  async snapshotReader(generation: string, index: number): Promise<Readable> {
    return this.reader(paths.snapshotPath(this.#s.path, generation, index));
  }

  async walSegments(generation: string): Promise<WALSegmentInfo[]> {
    const { objects } = await this.list(`${paths.walDir(this.#s.path, generation)}/`);
    const out: WALSegmentInfo[] = [];
    for (const o of objects) {
      const p = paths.parseWALSegmentName(posix.basename(o.Key ?? ''));
      if (!p) continue;
      out.push({ generation, index: p.index, offset: p.offset, size: o.Size ?? 0, createdAt: timeNs(o.LastModified) });
    }
    // Lexicographic order already matches for 8-digit names; 9+ digit offsets (≥ 4 GiB) need this.
    return out.sort((a, b) => a.index - b.index || a.offset - b.offset);
  }

  async writeWALSegment(pos: Pos, body: Body): Promise<WALSegmentInfo> {
    const createdAt = BigInt(Date.now()) * 1_000_000n;
    const size = await this.putObject(paths.walSegmentPath(this.#s.path, pos.generation, pos.index, pos.offset), body);
    return { generation: pos.generation, index: pos.index, offset: pos.offset, size, createdAt };
  }

  async deleteWALSegments(positions: Pos[]): Promise<void> {
    await this.deleteKeys(positions.map((p) => paths.walSegmentPath(this.#s.path, p.generation, p.index, p.offset)));
  }

  async walSegmentReader(pos: Pos): Promise<Readable> {
    return this.reader(paths.walSegmentPath(this.#s.path, pos.generation, pos.index, pos.offset));
  }

  async listObjects(dir: string): Promise<ObjectInfo[]> {
    const prefix = `${paths.objectPath(this.#s.path, dir)}/`;
    const { objects } = await this.list(prefix);
    return objects
      .filter((o) => o.Key !== undefined && o.Key.length > prefix.length)
      .map((o) => ({ key: `${dir}/${o.Key!.slice(prefix.length)}`, size: o.Size ?? 0, createdAt: timeNs(o.LastModified) }))
      .sort(byKey);
  }

  async objectReader(key: string): Promise<Readable> {
    return this.reader(paths.objectPath(this.#s.path, key));
  }

  async writeObject(key: string, body: Body): Promise<ObjectInfo> {
    const createdAt = BigInt(Date.now()) * 1_000_000n;
    const size = await this.putObject(paths.objectPath(this.#s.path, key), body);
    return { key, size, createdAt };
  }

  async close(): Promise<void> {
    this.#client.destroy();
    this.#uploadClient.destroy();
  }

  private async reader(key: string): Promise<Readable> {
    const out = await this.call(`GET ${key}`, key, () => this.#client.send(new GetObjectCommand({ Bucket: this.#s.bucket, Key: key })));
    if (!(out.Body instanceof Readable)) throw new LsinitError('LSINIT_ERR_REPLICA', `s3 replica ${this.display}: GET ${key}: response has no body stream`, { fields: { key } });
    return out.Body;
  }

  /** DeleteObjects in batches of 1000, Quiet, surfacing per-key errors (Litestream 0.3.10, #236). */
  private async deleteKeys(keys: string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      const what = `DELETE ${batch.length} objects under ${posix.dirname(batch[0]!)}`;
      const out = await this.call(what, undefined, () =>
        // ChecksumAlgorithm MD5 makes the SDK send Content-MD5 (as aws-sdk-go v1 did) instead of a
        // CRC32 header: MinIO and other S3-compatible stores reject DeleteObjects without it
        // (MissingContentMD5, aws-sdk-js-v3#6920).
        this.#client.send(new DeleteObjectsCommand({ Bucket: this.#s.bucket, Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true }, ChecksumAlgorithm: 'MD5' })));
      const failed = out.Errors ?? [];
      if (failed.length > 0) {
        const first = failed[0]!;
        const code = first.Code === 'AccessDenied' ? 'LSINIT_ERR_AUTH' : 'LSINIT_ERR_REPLICA';
        throw new LsinitError(code, `s3 replica ${this.display}: ${what}: ${failed.length} not deleted, first ${first.Key}: ${first.Code ?? 'Error'}: ${first.Message ?? ''}`, {
          fields: { bucket: this.#s.bucket, key: first.Key, s3Code: first.Code, failed: failed.length },
          transient: first.Code === 'InternalError' || first.Code === 'SlowDown',
        });
      }
    }
  }

  /** Buffers (and short streams) go out as one retried PutObject; longer streams as a multipart upload. */
  private async putObject(key: string, body: Body): Promise<number> {
    if (body instanceof Uint8Array) return this.putBuffer(key, body);
    const split = await splitBody(body, S3_PART_SIZE);
    if (split.kind === 'buffer') return this.putBuffer(key, split.data);
    const upload = new Upload({
      client: this.#uploadClient,
      params: { Bucket: this.#s.bucket, Key: key, Body: split.stream, ContentType: 'application/octet-stream' },
      partSize: S3_PART_SIZE,
      queueSize: 5, // s3manager's default concurrency
      leavePartsOnError: false,
    });
    try {
      await upload.done();
    } catch (err) {
      body.destroy();
      const src = split.sourceError();
      if (src) throw src.error;
      throw mapS3Error(err, { display: this.display, bucket: this.#s.bucket, what: `PUT ${key} (multipart)`, secrets: this.#secrets });
    }
    return split.size();
  }

  private async putBuffer(key: string, data: Uint8Array): Promise<number> {
    await this.call(`PUT ${key}`, undefined, () =>
      this.#client.send(new PutObjectCommand({ Bucket: this.#s.bucket, Key: key, Body: data, ContentLength: data.byteLength, ContentType: 'application/octet-stream' })));
    return data.byteLength;
  }
}

const QUIET_ENV = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

/**
 * The SDK prints a multi-line "NodeVersionSupportWarning" on Node < 22 at the first client it
 * builds. lsinit pins the SDK version and supports Node 20, so the warning only adds noise to an
 * init's stderr. Set the SDK's opt-out just around the constructor, so the app lsinit supervises
 * never inherits the variable.
 */
function quietClient(cfg: S3ClientConfig): S3Client {
  const prev = process.env[QUIET_ENV];
  process.env[QUIET_ENV] = 'true';
  try {
    return new S3Client(cfg);
  } finally {
    if (prev === undefined) delete process.env[QUIET_ENV];
    else process.env[QUIET_ENV] = prev;
  }
}

function methodOp(method: string | undefined): Operation {
  if (method === 'DELETE') return 'DELETE';
  if (method === 'PUT' || method === 'POST') return 'PUT';
  return 'GET';
}

function timeNs(d: Date | undefined): bigint {
  return BigInt(d?.getTime() ?? 0) * 1_000_000n;
}

export const s3Backend: Backend<S3Settings> = {
  type: 's3',
  keys: S3_KEYS,
  resolve: resolveS3,
  create(settings) {
    return new S3ReplicaClient(settings);
  },
  secretEnv: S3_SECRET_ENV,
};
