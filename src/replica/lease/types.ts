/**
 * The single-writer lease: one small JSON object per replica, `<replica path>/lsinit-lease.json`.
 * It sits outside `generations/`, and Litestream 0.3 (and lsinit's restore) only ever list names
 * under `generations/` (reference §3.1), so the object is invisible to every reader of the format.
 *
 * A `LeaseStore` is a compare-and-swap register over that one object. The `token` is whatever the
 * store uses to make a write conditional: an S3/Azure ETag, a GCS generation, or a content hash for
 * `file`/`sftp`. Every precondition failure is `LSINIT_ERR_LEASE`; anything else (network, auth)
 * keeps the code of the store's own error mapping.
 */
import { createHash } from 'node:crypto';
import { LsinitError, type ErrorFields } from '../../errors.js';

export const LEASE_NAME = 'lsinit-lease.json';
export const LEASE_VERSION = 1;

export interface LeaseHolder {
  hostname: string;
  pid: number;
  /** Random per LeaseGuard: two processes never share it, even with the same hostname and pid (containers). */
  id: string;
  /** ISO-8601, when this holder first acquired the lease. */
  startedAt: string;
}

export interface Lease {
  holder: LeaseHolder;
  /** ISO-8601 wall-clock expiry; renewed every interval by the holder. */
  expiresAt: string;
  version: 1;
}

export interface LeaseRecord {
  lease: Lease;
  token: string;
  /**
   * Set when the stored bytes are not a valid lease (a creator that died between open and write
   * on file/sftp, or a foreign object). `lease` is then a placeholder that expired at the epoch;
   * the guard re-reads once after a grace period before it takes such an object over.
   */
  corrupt?: string;
}

export interface LeaseStore {
  /** Backend type: `file`, `s3`, `abs`, `gcs`, `sftp`. */
  readonly type: string;
  /** Where the lease object lives, for messages (no credentials). */
  readonly location: string;
  read(): Promise<LeaseRecord | undefined>;
  /** Create the object only if none exists; LSINIT_ERR_LEASE if one does. Returns the new token. */
  create(lease: Lease): Promise<string>;
  /** Overwrite the object only if it still has `token`; LSINIT_ERR_LEASE otherwise (also when gone). */
  replace(lease: Lease, token: string): Promise<string>;
  /** Delete the object only if it still has `token`; LSINIT_ERR_LEASE otherwise; gone already is fine. */
  delete(token: string): Promise<void>;
  /** Release connections; the store may not be used afterwards. */
  close(): Promise<void>;
}

export function encodeLease(lease: Lease): Buffer {
  return Buffer.from(`${JSON.stringify(lease)}\n`);
}

/** Parse stored bytes; throws a plain Error naming what is wrong (callers turn it into `corrupt`). */
export function parseLease(data: Uint8Array): Lease {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    throw new Error(data.length === 0 ? 'empty lease object' : 'lease object is not JSON');
  }
  const o = v as Partial<Lease> | null;
  const h = o?.holder as Partial<LeaseHolder> | undefined;
  if (o?.version !== LEASE_VERSION) throw new Error(`unsupported lease version ${JSON.stringify(o?.version)}`);
  if (!h || typeof h.hostname !== 'string' || typeof h.pid !== 'number' || typeof h.id !== 'string' || typeof h.startedAt !== 'string') {
    throw new Error('lease object has no valid holder');
  }
  if (typeof o.expiresAt !== 'string' || Number.isNaN(Date.parse(o.expiresAt))) throw new Error('lease object has no valid expiresAt');
  return { holder: { hostname: h.hostname, pid: h.pid, id: h.id, startedAt: h.startedAt }, expiresAt: o.expiresAt, version: LEASE_VERSION };
}

const EPOCH = new Date(0).toISOString();

/** A record for bytes that are not a lease: expired at the epoch, held by nobody known. */
export function recordOf(data: Uint8Array, token: string): LeaseRecord {
  try {
    return { lease: parseLease(data), token };
  } catch (err) {
    return {
      lease: { holder: { hostname: '(unknown)', pid: 0, id: '', startedAt: EPOCH }, expiresAt: EPOCH, version: LEASE_VERSION },
      token,
      corrupt: (err as Error).message,
    };
  }
}

/** Token of stores without ETags (file, sftp): a hash of the exact stored bytes. */
export function contentToken(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex').slice(0, 32);
}

/** A precondition failed: someone else created, replaced or deleted the lease object. */
export function leaseConflict(store: Pick<LeaseStore, 'type' | 'location'>, op: 'create' | 'replace' | 'delete', detail: string, cause?: unknown): LsinitError {
  const fields: ErrorFields = { op, replicaType: store.type, location: store.location, conflict: true };
  return new LsinitError('LSINIT_ERR_LEASE', `lease ${op} at ${store.location} refused: ${detail}`, {
    fields,
    transient: false,
    ...(cause !== undefined ? { cause } : {}),
  });
}

export function isLeaseConflict(err: unknown): boolean {
  return err instanceof LsinitError && err.code === 'LSINIT_ERR_LEASE' && err.fields['conflict'] === true;
}
