/**
 * How a replica type plugs into config parsing and client creation. Each backend file
 * (`clients/<type>.ts`) exports one `Backend`; `clients/registry.ts` lists them. The config layer
 * calls `resolve` once at the edge; nothing below re-parses strings.
 */
import { LsinitError } from '../errors.js';
import type { ReplicaClient } from './client.js';

export interface ResolveInput {
  /** Parsed `url` key (or CLI argument), when given. Its scheme equals the backend type. */
  url?: URL;
  /** The replica's YAML mapping (all keys, including the common ones). */
  raw: Record<string, unknown>;
  /** Top-level `access-key-id` / `secret-access-key` (Litestream propagates them into s3 replicas). */
  global: { accessKeyId?: string; secretAccessKey?: string };
  /** Environment to read credentials from (process.env in production). */
  env: NodeJS.ProcessEnv;
  /** Key path of this replica for error messages, e.g. `dbs[0].replicas[1]`. */
  keyPath: string;
  /** Directory that relative `path`s are resolved against (file replicas). */
  cwd: string;
}

export interface Resolved<S> {
  settings: S;
  /** How to show this replica in logs and `lsinit databases`: a URL with any password replaced by `xxxxx`. */
  display: string;
  /** Non-fatal remarks for the log (e.g. "no host-key given: server key not verified"). */
  warnings: string[];
}

export interface Backend<S = unknown> {
  readonly type: string;
  /** Replica keys this backend understands besides the common ones; others get an "unknown key" warning. */
  readonly keys: readonly string[];
  resolve(input: ResolveInput): Resolved<S>;
  create(settings: S): ReplicaClient;
  /** Environment variables holding this backend's secrets, stripped from the child's env on request. */
  readonly secretEnv?: readonly string[];
}

export function configError(keyPath: string, message: string, fields: Record<string, unknown> = {}): LsinitError {
  return new LsinitError('LSINIT_ERR_CONFIG', `${keyPath}: ${message}`, { fields: { key: keyPath, ...fields } });
}

/** Read an optional string key; anything else is a config error naming the key. */
export function optString(raw: Record<string, unknown>, key: string, keyPath: string): string | undefined {
  const v = raw[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v !== 'string') throw configError(`${keyPath}.${key}`, `must be a string, got ${typeof v}`);
  return v;
}

export function optBool(raw: Record<string, unknown>, key: string, keyPath: string): boolean | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  if (v === 'true') return true;
  if (v === 'false') return false;
  throw configError(`${keyPath}.${key}`, `must be true or false, got ${JSON.stringify(v)}`);
}

/** A URL with its password (and any secret query values) replaced, for display. */
export function redactURL(u: URL): string {
  const c = new URL(u.href);
  if (c.password) c.password = 'xxxxx';
  return c.href;
}
