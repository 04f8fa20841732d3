/**
 * Config resolution for `gcs` replicas (reference §1.2–1.4): `gcs://BUCKET/PATH` or `bucket`/`path`
 * keys. Beyond Litestream: an `endpoint` key, or STORAGE_EMULATOR_HOST, for emulators and
 * GCS-compatible stores. Credentials are never configured here: they come from ADC
 * (GOOGLE_APPLICATION_CREDENTIALS, gcloud, the metadata server), as in Litestream.
 */
import { posix } from 'node:path';
import { errorMessage } from '../../errors.js';
import { configError, optString, type ResolveInput, type Resolved } from '../backend.js';

export interface GcsSettings {
  bucket: string;
  /** Key prefix, used as given (keys are built with posix joins like Litestream's path.Join). */
  path: string;
  /** Custom JSON-API endpoint (emulator, GCS-compatible store); absent for Google's service + ADC. */
  endpoint?: string;
  /** Project for endpoint mode; Google's service needs none for object calls. */
  projectId?: string;
}

export const GCS_KEYS = ['bucket', 'endpoint'] as const;

/**
 * An endpoint as a URL without a trailing slash. A bare `host:port` gets `defaultScheme`:
 * https for the `endpoint` key (like Litestream's S3 endpoint), http for STORAGE_EMULATOR_HOST
 * (emulators speak plain http; Go's storage client reads the variable the same way).
 */
export function normalizeEndpoint(raw: string, defaultScheme: 'http' | 'https'): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `${defaultScheme}://${raw}`;
  const u = new URL(withScheme);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`endpoint scheme must be http or https, got ${u.protocol}`);
  return withScheme.replace(/\/+$/, '');
}

export function resolveGcs({ url, raw, env, keyPath }: ResolveInput): Resolved<GcsSettings> {
  let bucket = optString(raw, 'bucket', keyPath);
  let path = optString(raw, 'path', keyPath);
  if (url) {
    if (bucket !== undefined) throw configError(`${keyPath}.bucket`, 'cannot be combined with `url`: the URL host is the bucket');
    if (path !== undefined) throw configError(`${keyPath}.path`, 'cannot be combined with `url`: the URL path is the key prefix');
    bucket = url.hostname;
    // Litestream: strings.TrimPrefix(path.Clean(u.Path), "/"); path.Clean("") is "." which joins away.
    path = posix.normalize(decodeURIComponent(url.pathname) || '.').replace(/^\/+/, '').replace(/\/+$/, '');
    if (path === '.') path = '';
  }
  if (!bucket) throw configError(keyPath, 'gcs replica needs a bucket: set `url: gcs://BUCKET/PATH` or `bucket: NAME`');
  const settings: GcsSettings = { bucket, path: path ?? '' };
  const rawEndpoint = optString(raw, 'endpoint', keyPath);
  const envEndpoint = env['STORAGE_EMULATOR_HOST'];
  try {
    if (rawEndpoint) settings.endpoint = normalizeEndpoint(rawEndpoint, 'https');
    else if (envEndpoint) settings.endpoint = normalizeEndpoint(envEndpoint, 'http');
  } catch (err) {
    const key = rawEndpoint ? `${keyPath}.endpoint` : 'STORAGE_EMULATOR_HOST';
    throw configError(key, `invalid endpoint ${JSON.stringify(rawEndpoint ?? envEndpoint)}: ${errorMessage(err)}`);
  }
  // An explicit project keeps google-auth-library from looking one up (ADC files, metadata server).
  if (settings.endpoint) settings.projectId = env['GOOGLE_CLOUD_PROJECT'] || 'lsinit';
  return { settings, display: `gcs://${bucket}/${settings.path}`, warnings: [] };
}
