/**
 * Lease store for `gcs` replicas: generation preconditions. create = upload with
 * `ifGenerationMatch=0` (only if no live object), replace = upload with `ifGenerationMatch=<gen>`,
 * delete = delete with `ifGenerationMatch=<gen>`; 412 conditionNotMet is a conflict. The token is
 * the object's generation. A read is metadata (for the generation) then the bytes of exactly that
 * generation, so the token always matches the content returned with it.
 */
import { posix } from 'node:path';
import { IdempotencyStrategy, Storage, type File, type StorageOptions } from '@google-cloud/storage';
import { LsinitError } from '../../errors.js';
import { countOp } from '../../metrics/ops.js';
import type { GcsSettings } from '../clients/gcs-config.js';
import { gcsError } from '../clients/gcs-errors.js';
import { withRetry } from '../retry.js';
import { encodeLease, LEASE_NAME, leaseConflict, recordOf, type Lease, type LeaseRecord, type LeaseStore } from './types.js';

const REQUEST_TIMEOUT_MS = 10_000;
/** A read races a replace between its two requests at most this many times before giving up. */
const READ_ATTEMPTS = 3;

function statusOf(err: unknown): number | undefined {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; response?: { status?: number } };
  return typeof e.code === 'number' ? e.code : e.response?.status;
}

export class GcsLeaseStore implements LeaseStore {
  readonly type = 'gcs';
  readonly location: string;
  private readonly key: string;
  private readonly bucketName: string;
  private readonly storage: Storage;

  constructor(settings: GcsSettings) {
    this.bucketName = settings.bucket;
    this.key = posix.join(settings.path, LEASE_NAME);
    this.location = `gcs://${settings.bucket}/${this.key}`;
    const opts: StorageOptions = {
      timeout: REQUEST_TIMEOUT_MS,
      // Conditional requests are retried by `withRetry` for transient failures only.
      retryOptions: { autoRetry: false, idempotencyStrategy: IdempotencyStrategy.RetryNever },
    };
    if (settings.endpoint) {
      // As in clients/gcs.ts: no credentials for an emulator, an explicit project for no ADC probing.
      opts.apiEndpoint = settings.endpoint;
      opts.projectId = settings.projectId ?? 'lsinit';
      const host = new URL(settings.endpoint).hostname;
      opts.useAuthWithCustomEndpoint = host === 'googleapis.com' || host.endsWith('.googleapis.com');
    }
    // The library reads STORAGE_EMULATOR_HOST in its constructor; settings already resolved it.
    const saved = process.env['STORAGE_EMULATOR_HOST'];
    delete process.env['STORAGE_EMULATOR_HOST'];
    try {
      this.storage = new Storage(opts);
    } finally {
      if (saved !== undefined) process.env['STORAGE_EMULATOR_HOST'] = saved;
    }
  }

  private file(generation?: string): File {
    return this.storage.bucket(this.bucketName).file(this.key, generation !== undefined ? { generation: Number(generation) } : {});
  }

  async read(): Promise<LeaseRecord | undefined> {
    for (let i = 1; ; i++) {
      let generation: string;
      try {
        const [meta] = await this.call('GET', () => this.file().getMetadata());
        countOp('gcs', 'GET', 0);
        generation = String(meta.generation ?? '');
      } catch (err) {
        if (statusOf(err) === 404) return undefined;
        throw this.mapError(err, 'GET');
      }
      try {
        const [data] = await this.call('GET', () => this.file(generation).download({ validation: false }));
        countOp('gcs', 'GET', data.length);
        return recordOf(data, generation);
      } catch (err) {
        // Replaced or deleted between the two requests: look again.
        if (statusOf(err) === 404 && i < READ_ATTEMPTS) continue;
        if (statusOf(err) === 404) return undefined;
        throw this.mapError(err, 'GET');
      }
    }
  }

  async create(lease: Lease): Promise<string> {
    return this.put('create', lease, 0);
  }

  async replace(lease: Lease, token: string): Promise<string> {
    return this.put('replace', lease, Number(token));
  }

  async delete(token: string): Promise<void> {
    try {
      await this.call('DELETE', () => this.file().delete({ ifGenerationMatch: Number(token) }));
      countOp('gcs', 'DELETE', 0);
    } catch (err) {
      if (statusOf(err) === 404) return;
      if (statusOf(err) === 412) throw leaseConflict(this, 'delete', 'the lease object was replaced by another holder', err);
      throw this.mapError(err, 'DELETE');
    }
  }

  async close(): Promise<void> {}

  private async put(op: 'create' | 'replace', lease: Lease, ifGenerationMatch: number): Promise<string> {
    const body = encodeLease(lease);
    const f = this.file();
    try {
      await this.call('PUT', () =>
        f.save(body, { resumable: false, validation: 'crc32c', contentType: 'application/json', preconditionOpts: { ifGenerationMatch } }),
      );
      countOp('gcs', 'PUT', body.length);
    } catch (err) {
      // 404 on replace: the object is gone (GCS answers 412 for a mismatched generation).
      if (statusOf(err) === 412 || (op === 'replace' && statusOf(err) === 404)) {
        throw leaseConflict(this, op, op === 'create' ? 'a lease object already exists' : 'the lease object was replaced or deleted by another holder', err);
      }
      throw this.mapError(err, 'PUT');
    }
    const gen = f.metadata.generation;
    if (gen === undefined || gen === null) throw new LsinitError('LSINIT_ERR_REPLICA', `gcs: lease ${op} at ${this.location}: the response carried no generation`, { fields: { key: this.key } });
    return String(gen);
  }

  private call<T>(_op: string, fn: () => Promise<T>): Promise<T> {
    // 412/404 are answers, not failures: withRetry's isTransient leaves them alone.
    return withRetry(fn, { attempts: 3 });
  }

  private mapError(err: unknown, op: string): LsinitError {
    return gcsError(err, { bucket: this.bucketName, op: `lease ${op}`, key: this.key });
  }
}
