/**
 * What the init's main thread and the replication worker (worker.ts) send each other: calls of the
 * ControllerLike methods with their results, log records, and the app's exit code for /healthz.
 *
 * Messages are structured clones, which drop non-enumerable properties — exactly where the resolved
 * config keeps its secrets (S3 secret keys, Azure account keys, SFTP passwords, age identities), so
 * `pack`/`unpack` carry them across explicitly and make them non-enumerable again on the other side.
 * Nothing here leaves the process.
 */
import { LsinitError, errorMessage, type ErrorCode } from '../errors.js';
import type { Fields, Level } from '../log/logger.js';

export type CallOp = 'restoreMissing' | 'start' | 'close' | 'shutdown';

export type ToWorker =
  | { t: 'init'; data: unknown }
  | { t: 'call'; id: number; op: CallOp; args?: unknown }
  | { t: 'appEnd'; code: number };

export interface PackedError {
  name: string;
  message: string;
  code?: string;
  fields?: Record<string, unknown>;
}

export type FromWorker =
  | { t: 'result'; id: number; ok: true; value: unknown }
  | { t: 'result'; id: number; ok: false; error: PackedError }
  | { t: 'log'; level: Level; msg: string; fields: Fields };

/** Key under which `pack` lists an object's non-enumerable property names (never a config key). */
const HIDDEN = '\u0000hidden';

/** A deep copy of plain objects and arrays in which non-enumerable own properties survive cloning. */
export function pack(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(pack);
  if (!isPlain(v)) return v;
  const out: Record<string, unknown> = {};
  const hidden: string[] = [];
  for (const k of Object.getOwnPropertyNames(v)) {
    const d = Object.getOwnPropertyDescriptor(v, k)!;
    if (!('value' in d)) continue;
    out[k] = pack(d.value);
    if (!d.enumerable) hidden.push(k);
  }
  if (hidden.length > 0) out[HIDDEN] = hidden;
  return out;
}

export function unpack(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(unpack);
  if (!isPlain(v)) return v;
  const src = v as Record<string, unknown>;
  const hidden = new Set((src[HIDDEN] as string[] | undefined) ?? []);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(src)) {
    if (k === HIDDEN) continue;
    if (hidden.has(k)) Object.defineProperty(out, k, { value: unpack(x), enumerable: false, writable: true, configurable: true });
    else out[k] = unpack(x);
  }
  return out;
}

function isPlain(v: unknown): v is object {
  if (v === null || typeof v !== 'object') return false;
  const p = Object.getPrototypeOf(v) as unknown;
  return p === Object.prototype || p === null;
}

export function packError(err: unknown): PackedError {
  if (err instanceof LsinitError) return { name: err.name, message: err.message, code: err.code, fields: cloneableFields(err.fields) };
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: 'Error', message: errorMessage(err) };
}

/** The same error class, code and fields on this side (the supervisor and CLI match on `code` and `name`). */
export function unpackError(e: PackedError): Error {
  if (e.code !== undefined) return new LsinitError(e.code as ErrorCode, e.message, { fields: e.fields ?? {} });
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

/** Log fields and error fields as clonable values: errors by message, anything odd as a string. */
export function cloneableFields(f: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(f)) {
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    out[k] = v instanceof Error ? v.message : v !== null && typeof v === 'object' && !Array.isArray(v) && !isPlain(v) ? String(v) : v;
  }
  return out;
}
