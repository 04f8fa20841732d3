/**
 * Lease store for `s3` replicas: S3 conditional writes (AWS since Aug 2024 / Nov 2024).
 * create = PutObject `If-None-Match: *`, replace = PutObject `If-Match: <etag>`, delete =
 * DeleteObject `If-Match: <etag>`. 412 PreconditionFailed, 409 ConditionalRequestConflict (two
 * conditional writes in flight) and 404 on If-Match are conflicts.
 *
 * moto 5.2.1 (the test server) honours all three and lets exactly one of six concurrent creates
 * win (measured: 50 rounds). Some S3-compatible stores silently ignore the headers; the guard
 * therefore reads the object back after acquiring and checks its own holder id (lease-guard.ts).
 * A store that answers a conditional DeleteObject with 501 NotImplemented gets a read, compare
 * and plain delete instead.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { posix } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { LsinitError } from '../../errors.js';
import { countOp } from '../../metrics/ops.js';
import { withRetry } from '../retry.js';
import { s3Display, type S3Settings } from '../clients/s3-config.js';
import { isS3NotFound, mapS3Error, s3ErrorName, s3Status } from '../clients/s3-errors.js';
import { encodeLease, LEASE_NAME, leaseConflict, recordOf, type Lease, type LeaseRecord, type LeaseStore } from './types.js';

const QUIET_ENV = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';
const REQUEST_TIMEOUT_MS = 10_000;

export class S3LeaseStore implements LeaseStore {
  readonly type = 's3';
  readonly location: string;
  readonly #s: S3Settings;
  readonly #client: S3Client;
  readonly #key: string;
  readonly #secrets: string[];

  constructor(settings: S3Settings) {
    this.#s = settings;
    this.#key = posix.join(settings.path, LEASE_NAME);
    this.location = `${s3Display(settings)}/${LEASE_NAME}`;
    this.#secrets = [settings.credentials?.secretAccessKey ?? '', settings.credentials?.sessionToken ?? ''].filter(Boolean);
    this.#client = makeClient(settings);
  }

  async read(): Promise<LeaseRecord | undefined> {
    try {
      return await this.call('GET', async () => {
        const out = await this.#client.send(new GetObjectCommand({ Bucket: this.#s.bucket, Key: this.#key }));
        const data = await out.Body!.transformToByteArray();
        countOp('s3', 'GET', data.length);
        return recordOf(data, out.ETag ?? '');
      });
    } catch (err) {
      if (isS3NotFound(err) || (err instanceof LsinitError && err.code === 'LSINIT_ERR_NOT_FOUND')) return undefined;
      throw err;
    }
  }

  async create(lease: Lease): Promise<string> {
    return this.put('create', lease, { IfNoneMatch: '*' });
  }

  async replace(lease: Lease, token: string): Promise<string> {
    return this.put('replace', lease, { IfMatch: token });
  }

  async delete(token: string): Promise<void> {
    try {
      await this.send('DELETE', () => this.#client.send(new DeleteObjectCommand({ Bucket: this.#s.bucket, Key: this.#key, IfMatch: token })));
    } catch (err) {
      if (isS3NotFound(err)) return; // already gone
      if (isConflict(err)) throw leaseConflict(this, 'delete', 'the lease object was replaced by another holder', err);
      if (s3Status(err) === 501 || s3ErrorName(err) === 'NotImplemented') return this.deleteUnconditionally(token);
      throw this.mapError(err, 'DELETE');
    }
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  private async deleteUnconditionally(token: string): Promise<void> {
    const cur = await this.read();
    if (!cur) return;
    if (cur.token !== token) throw leaseConflict(this, 'delete', 'the lease object was replaced by another holder');
    await this.call('DELETE', () => this.#client.send(new DeleteObjectCommand({ Bucket: this.#s.bucket, Key: this.#key })));
  }

  private async put(op: 'create' | 'replace', lease: Lease, cond: { IfNoneMatch: string } | { IfMatch: string }): Promise<string> {
    const body = encodeLease(lease);
    try {
      const out = await this.send('PUT', () =>
        this.#client.send(new PutObjectCommand({ Bucket: this.#s.bucket, Key: this.#key, Body: body, ContentType: 'application/json', ...cond })),
      body.length);
      return out.ETag ?? '';
    } catch (err) {
      if (isConflict(err) || (op === 'replace' && isS3NotFound(err))) {
        throw leaseConflict(this, op, op === 'create' ? 'a lease object already exists' : 'the lease object was replaced or deleted by another holder', err);
      }
      throw this.mapError(err, 'PUT');
    }
  }

  /** One request with bounded retries of transient failures; preconditions are never retried (they are not transient). */
  private async send<T>(op: 'PUT' | 'DELETE', fn: () => Promise<T>, bytes = 0): Promise<T> {
    return withRetry(async () => {
      try {
        const out = await fn();
        countOp('s3', op, bytes);
        return out;
      } catch (err) {
        if (s3Status(err)) countOp('s3', op, 0);
        throw err;
      }
    }, { attempts: 3 });
  }

  private async call<T>(what: 'GET' | 'DELETE', fn: () => Promise<T>): Promise<T> {
    try {
      return await withRetry(fn, { attempts: 3 });
    } catch (err) {
      if (what === 'GET' && s3Status(err)) countOp('s3', 'GET', 0);
      if (isS3NotFound(err)) throw err;
      throw this.mapError(err, what);
    }
  }

  private mapError(err: unknown, what: string): LsinitError {
    return mapS3Error(err, { display: s3Display(this.#s), bucket: this.#s.bucket, what: `${what} ${this.#key}`, key: this.#key, secrets: this.#secrets });
  }
}

function isConflict(err: unknown): boolean {
  const name = s3ErrorName(err);
  const status = s3Status(err);
  return status === 412 || name === 'PreconditionFailed' || name === 'ConditionalRequestConflict' || (status === 409 && name !== 'BucketAlreadyExists');
}

/** The same SDK settings as the replica client (s3.ts), minus multipart and metrics middleware. */
function makeClient(s: S3Settings): S3Client {
  const agentOpts = { keepAlive: true, maxSockets: 4 };
  const cfg: S3ClientConfig = {
    region: s.region,
    forcePathStyle: s.forcePathStyle,
    followRegionRedirects: s.followRegionRedirects,
    maxAttempts: 1,
    // test-servers.md "S3 traps": S3-compatible stores reject or store aws-chunked bodies.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: {
      connectionTimeout: REQUEST_TIMEOUT_MS,
      // A lease request that hangs longer than this is useless: the lease expires meanwhile.
      socketTimeout: REQUEST_TIMEOUT_MS,
      httpAgent: new HttpAgent(agentOpts),
      httpsAgent: new HttpsAgent({ ...agentOpts, rejectUnauthorized: !s.skipVerify }),
    },
    ...(s.endpoint !== undefined ? { endpoint: s.endpoint } : {}),
    ...(s.credentials
      ? { credentials: { accessKeyId: s.credentials.accessKeyId, secretAccessKey: s.credentials.secretAccessKey, ...(s.credentials.sessionToken ? { sessionToken: s.credentials.sessionToken } : {}) } }
      : {}),
  };
  const prev = process.env[QUIET_ENV];
  process.env[QUIET_ENV] = 'true';
  try {
    return new S3Client(cfg);
  } finally {
    if (prev === undefined) delete process.env[QUIET_ENV];
    else process.env[QUIET_ENV] = prev;
  }
}
