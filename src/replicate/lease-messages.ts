/** Errors and log fields of the lease guard (lease-guard.ts): who holds a lease, and for how long. */
import { LsinitError } from '../errors.js';
import type { Lease, LeaseRecord, LeaseStore } from '../replica/lease/types.js';

export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function describeHolder(lease: Lease, now: number): Record<string, unknown> {
  const h = lease.holder;
  return { holderHost: h.hostname, holderPid: h.pid, holderId: h.id, holderStartedAt: h.startedAt, expiresAt: lease.expiresAt, expiresInMs: Date.parse(lease.expiresAt) - now };
}

function holderText(lease: Lease, now: number): string {
  const h = lease.holder;
  const left = Math.max(0, Math.ceil((Date.parse(lease.expiresAt) - now) / 1000));
  return `host ${h.hostname}, pid ${h.pid}, started ${h.startedAt}, lease expires ${lease.expiresAt} (in ${left} s)`;
}

function where(store: LeaseStore, replica: string | undefined): string {
  return replica ? `replica ${replica} (${store.location})` : store.location;
}

export function heldError(store: LeaseStore, lease: Lease, now: number, replica: string | undefined, waitedMs: number | undefined): LsinitError {
  const waited = waitedMs !== undefined ? `gave up after waiting ${Math.round(waitedMs / 1000)} s: ` : '';
  const hint = waitedMs !== undefined
    ? 'the other instance is still renewing it; stop it, or raise the wait limit'
    : 'two writers corrupt each other\'s replica history (Litestream #422); stop the other instance, or let this one wait for the lease (lease: { wait: true } or -lease-wait)';
  return new LsinitError('LSINIT_ERR_LEASE', `${waited}${where(store, replica)} is in use by another lsinit: ${holderText(lease, now)}; ${hint}`, {
    fields: { ...(replica ? { replica } : {}), location: store.location, holder: lease.holder, expiresAt: lease.expiresAt, ...(waitedMs !== undefined ? { waitedMs } : {}) },
  });
}

/** The lease is held by another live instance: replication to this replica stops for good. */
export function lostError(store: LeaseStore, replica: string | undefined, why: string, cur: LeaseRecord | undefined, now: number, cause: unknown): LsinitError {
  const by = cur && !cur.corrupt ? `; now held by ${holderText(cur.lease, now)}` : '';
  return new LsinitError('LSINIT_ERR_LEASE', `lost the lease of ${where(store, replica)}: ${why}${by}; replication to it stopped`, {
    cause,
    fields: { ...(replica ? { replica } : {}), location: store.location, lost: true, ...(cur && !cur.corrupt ? { holder: cur.lease.holder, expiresAt: cur.lease.expiresAt } : {}) },
  });
}

/** The lease could not be confirmed in time: nothing is shipped until the guard reads it back. */
export function unsureError(store: LeaseStore, replica: string | undefined, why: string, cause: unknown): LsinitError {
  return new LsinitError('LSINIT_ERR_LEASE', `lease of ${where(store, replica)} not confirmed: ${why}; not shipping to it until the lease is read back (replication resumes by itself)`, {
    ...(cause !== undefined ? { cause } : {}),
    transient: true,
    fields: { ...(replica ? { replica } : {}), location: store.location, unsure: true },
  });
}

/** A store call that did not answer within the guard's request timeout. */
export function timeoutError(store: LeaseStore, op: string, ms: number): LsinitError {
  return new LsinitError('LSINIT_ERR_REPLICA', `lease ${op} at ${store.location} did not answer within ${ms} ms`, {
    transient: true,
    fields: { op, location: store.location, timeoutMs: ms },
  });
}
