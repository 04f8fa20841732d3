/**
 * Lease store for `abs` replicas: Azure conditional headers on one block blob. create = Put Blob
 * `If-None-Match: *` (Azure answers 409 BlobAlreadyExists, azurite the same), replace = Put Blob
 * `If-Match: <etag>` (412 ConditionNotMet), delete = Delete Blob `If-Match: <etag>`.
 *
 * Azure blob leases (acquire/renew/break) were the other option; they cap a finite lease at 60 s,
 * tie it to a lease id that the next instance must break, and would block lsinit's own writes of
 * nothing (the lease object is the only blob involved). Conditional headers give the same
 * compare-and-swap as S3 and GCS with one code path in the guard.
 */
import { posix } from 'node:path';
import { BlobServiceClient, newPipeline, StorageSharedKeyCredential, type BlockBlobClient } from '@azure/storage-blob';
import { LsinitError } from '../../errors.js';
import { countOp } from '../../metrics/ops.js';
import { absDisplay, type ABSSettings } from '../clients/abs-config.js';
import { absTransient } from '../clients/abs.js';
import { withRetry } from '../retry.js';
import { encodeLease, LEASE_NAME, leaseConflict, recordOf, type Lease, type LeaseRecord, type LeaseStore } from './types.js';

const REQUEST_TIMEOUT_MS = 10_000;

interface RestErrorLike {
  statusCode?: number;
  code?: string;
  details?: { errorCode?: string };
  message?: string;
}

function codeOf(err: unknown): string {
  const e = err as RestErrorLike | undefined;
  return e?.details?.errorCode ?? e?.code ?? '';
}
function statusOf(err: unknown): number | undefined {
  return (err as RestErrorLike | undefined)?.statusCode;
}
function isMissing(err: unknown): boolean {
  return codeOf(err) === 'BlobNotFound' || (statusOf(err) === 404 && codeOf(err) !== 'ContainerNotFound');
}
function isConflict(err: unknown): boolean {
  const code = codeOf(err);
  return statusOf(err) === 412 || code === 'ConditionNotMet' || code === 'BlobAlreadyExists' || (statusOf(err) === 409 && code !== 'ContainerNotFound');
}

export class ABSLeaseStore implements LeaseStore {
  readonly type = 'abs';
  readonly location: string;
  readonly #s: ABSSettings;
  readonly #blob: BlockBlobClient;
  readonly #name: string;

  constructor(settings: ABSSettings) {
    this.#s = settings;
    this.#name = posix.join(settings.path, LEASE_NAME);
    this.location = `${absDisplay(settings)}/${LEASE_NAME}`;
    // One try per request in the SDK: `withRetry` below retries transient failures only.
    const pipeline = newPipeline(new StorageSharedKeyCredential(settings.accountName, settings.accountKey), { retryOptions: { maxTries: 1 } });
    this.#blob = new BlobServiceClient(settings.endpoint, pipeline).getContainerClient(settings.container).getBlockBlobClient(this.#name);
  }

  async read(): Promise<LeaseRecord | undefined> {
    try {
      return await this.retry('GET', async () => {
        const res = await this.#blob.download(0, undefined, { abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
        const chunks: Buffer[] = [];
        for await (const c of res.readableStreamBody ?? []) chunks.push(Buffer.from(c as Uint8Array));
        const data = Buffer.concat(chunks);
        countOp('abs', 'GET', data.length);
        return recordOf(data, res.etag ?? '');
      });
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw this.mapError(err, 'GET');
    }
  }

  async create(lease: Lease): Promise<string> {
    return this.put('create', lease, { ifNoneMatch: '*' });
  }

  async replace(lease: Lease, token: string): Promise<string> {
    return this.put('replace', lease, { ifMatch: token });
  }

  async delete(token: string): Promise<void> {
    try {
      await this.retry('DELETE', () => this.#blob.delete({ conditions: { ifMatch: token }, abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }));
    } catch (err) {
      if (isMissing(err)) return;
      if (isConflict(err)) {
        // azurite answers If-Match on a missing blob with 412: gone already is fine.
        if ((await this.read()) === undefined) return;
        throw leaseConflict(this, 'delete', 'the lease object was replaced by another holder', err);
      }
      throw this.mapError(err, 'DELETE');
    }
  }

  async close(): Promise<void> {}

  private async put(op: 'create' | 'replace', lease: Lease, conditions: { ifNoneMatch: string } | { ifMatch: string }): Promise<string> {
    const body = encodeLease(lease);
    try {
      const res = await this.retry('PUT', () =>
        this.#blob.upload(body, body.length, { conditions, blobHTTPHeaders: { blobContentType: 'application/json' }, abortSignal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }),
      body.length);
      return res.etag ?? '';
    } catch (err) {
      if (isConflict(err) || (op === 'replace' && isMissing(err))) {
        throw leaseConflict(this, op, op === 'create' ? 'a lease object already exists' : 'the lease object was replaced or deleted by another holder', err);
      }
      throw this.mapError(err, 'PUT');
    }
  }

  private async retry<T>(op: 'GET' | 'PUT' | 'DELETE', fn: () => Promise<T>, bytes = 0): Promise<T> {
    return withRetry(async () => {
      try {
        const out = await fn();
        if (op !== 'GET') countOp('abs', op, bytes);
        return out;
      } catch (err) {
        if (typeof statusOf(err) === 'number') countOp('abs', op, 0);
        throw err;
      }
    }, { attempts: 3, isTransient: absTransient });
  }

  private mapError(err: unknown, what: string): LsinitError {
    if (err instanceof LsinitError) return err;
    const code = codeOf(err);
    const status = statusOf(err);
    const display = absDisplay(this.#s);
    const fields = { replica: display, container: this.#s.container, blob: this.#name, ...(status ? { status } : {}), ...(code ? { absCode: code } : {}) };
    const detail = `${code || 'Error'}: ${((err as RestErrorLike | undefined)?.message ?? String(err)).split('\n')[0]}`;
    const auth = status === 401 || status === 403;
    return new LsinitError(auth ? 'LSINIT_ERR_AUTH' : 'LSINIT_ERR_REPLICA', `abs replica ${display}: lease ${what} ${this.#name}: ${detail}`, {
      fields,
      cause: err,
      transient: !auth && absTransient(err),
    });
  }
}
