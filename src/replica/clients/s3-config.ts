/**
 * Config resolution for `s3` replicas, Litestream 0.3's newS3ReplicaClientFromConfig (main.go:476):
 * the URL's host through `parseS3Host`, explicit keys winning over URL-derived values, and the
 * credential order of reference §1.4.
 */
import { configError, optBool, optString, type ResolveInput, type Resolved } from '../backend.js';
import { cleanURLPath, normalizeEndpoint, parseS3Host } from './s3-url.js';

/** Where the static credentials came from; `default-chain` means the SDK's provider chain. */
export type S3CredentialSource = 'replica' | 'global' | 'env' | 'default-chain';

export interface S3Credentials {
  readonly accessKeyId: string;
  /** Non-enumerable: JSON.stringify / util.inspect of settings never print it. */
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface S3Settings {
  bucket: string;
  /** Key prefix, used with posix joins (a leading '/' is kept, as Litestream does). */
  path: string;
  region: string;
  /** Full URL, or undefined for AWS itself. */
  endpoint?: string;
  forcePathStyle: boolean;
  skipVerify: boolean;
  /**
   * True when the region is only a guess (no `region`, no endpoint, no region in the URL).
   * Litestream asks GetBucketLocation via us-east-1; lsinit instead starts from AWS_REGION (or
   * us-east-1) and lets the SDK follow S3's region redirect (301/400 naming the bucket's region),
   * which needs no s3:GetBucketLocation permission and costs one request only on a wrong guess.
   */
  followRegionRedirects: boolean;
  /** Undefined: the SDK's default chain (profile, web identity, ECS/EC2 metadata). */
  credentials?: S3Credentials;
  credentialSource: S3CredentialSource;
}

export const S3_KEYS = ['bucket', 'region', 'endpoint', 'force-path-style', 'skip-verify', 'access-key-id', 'secret-access-key'] as const;

export const S3_SECRET_ENV = [
  'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
  'LITESTREAM_ACCESS_KEY_ID', 'LITESTREAM_SECRET_ACCESS_KEY',
] as const;

export function makeCredentials(accessKeyId: string, secretAccessKey: string, sessionToken?: string): S3Credentials {
  const c = { accessKeyId } as { accessKeyId: string; sessionToken?: string };
  Object.defineProperty(c, 'secretAccessKey', { value: secretAccessKey, enumerable: false });
  if (sessionToken) Object.defineProperty(c, 'sessionToken', { value: sessionToken, enumerable: false });
  return c as S3Credentials;
}

export function resolveS3({ url, raw, global, env, keyPath }: ResolveInput): Resolved<S3Settings> {
  const warnings: string[] = [];
  let bucket = optString(raw, 'bucket', keyPath);
  let path = optString(raw, 'path', keyPath);
  let region = optString(raw, 'region', keyPath);
  let endpoint = optString(raw, 'endpoint', keyPath);
  const skipVerify = optBool(raw, 'skip-verify', keyPath) ?? false;
  // Litestream: path style defaults to "an endpoint is set" (config endpoint only, before the URL
  // merge), an explicit value overrides it, and then a URL host match can still turn it on.
  let forcePathStyle = optBool(raw, 'force-path-style', keyPath) ?? endpoint !== undefined;

  if (url) {
    if (bucket !== undefined) throw configError(`${keyPath}.bucket`, 'cannot be combined with url: the bucket is the URL host (s3://BUCKET/PATH)');
    if (path !== undefined) throw configError(`${keyPath}.path`, 'cannot be combined with url: the path is the URL path (s3://BUCKET/PATH)');
    if (url.username || url.password) warnings.push(`${keyPath}.url: credentials in an s3 URL are ignored; use access-key-id / secret-access-key`);
    const host = parseS3Host(url.host);
    bucket = host.bucket || undefined;
    path = cleanURLPath(safeDecode(url.pathname));
    region ??= host.region || undefined;
    endpoint ??= host.endpoint || undefined;
    if (!forcePathStyle) forcePathStyle = host.forcePathStyle;
  }
  if (!bucket) throw configError(keyPath, 's3 replica needs a bucket: set `url: s3://BUCKET/PATH` or `bucket:`');
  if (endpoint !== undefined) {
    endpoint = normalizeEndpoint(endpoint);
    try {
      new URL(endpoint);
    } catch {
      throw configError(`${keyPath}.endpoint`, `not a valid URL: ${JSON.stringify(endpoint)}`);
    }
  }

  let followRegionRedirects = false;
  if (!region) {
    if (endpoint !== undefined) region = 'us-east-1'; // Litestream: DefaultRegion when an endpoint is set.
    else {
      region = env['AWS_REGION'] || env['AWS_DEFAULT_REGION'] || 'us-east-1';
      followRegionRedirects = true;
    }
  }

  const { credentials, source } = resolveCredentials(raw, global, env, keyPath);
  const settings: S3Settings = {
    bucket,
    path: path ?? '',
    region,
    forcePathStyle,
    skipVerify,
    followRegionRedirects,
    credentialSource: source,
    ...(endpoint !== undefined ? { endpoint } : {}),
    ...(credentials ? { credentials } : {}),
  };
  if (skipVerify) warnings.push(`${keyPath}: skip-verify is set: the TLS certificate of ${endpoint ?? 'S3'} is not verified`);
  return { settings, display: s3Display(settings), warnings };
}

/** `s3://bucket/path`: never credentials, whatever the source. */
export function s3Display(s: Pick<S3Settings, 'bucket' | 'path'>): string {
  const p = s.path.replace(/^\/+/, '');
  return `s3://${s.bucket}${p ? `/${p}` : ''}`;
}

/**
 * Litestream's order: replica keys → top-level keys (propagated per field into empty replica
 * fields) → AWS_* env → LITESTREAM_* env (copied into each AWS_* variable that is unset, so per
 * variable) → the SDK default chain.
 */
function resolveCredentials(
  raw: Record<string, unknown>,
  global: ResolveInput['global'],
  env: NodeJS.ProcessEnv,
  keyPath: string,
): { credentials?: S3Credentials; source: S3CredentialSource } {
  const rId = optString(raw, 'access-key-id', keyPath);
  const rSecret = optString(raw, 'secret-access-key', keyPath);
  const id = rId ?? (global.accessKeyId || undefined);
  const secret = rSecret ?? (global.secretAccessKey || undefined);
  if (id !== undefined || secret !== undefined) {
    // Litestream would sign with an empty half and fail at the first request; say so up front.
    if (id === undefined) throw configError(`${keyPath}.access-key-id`, 'is required when secret-access-key is set');
    if (secret === undefined) throw configError(`${keyPath}.secret-access-key`, 'is required when access-key-id is set');
    return { credentials: makeCredentials(id, secret), source: rId !== undefined || rSecret !== undefined ? 'replica' : 'global' };
  }
  const envId = env['AWS_ACCESS_KEY_ID'] || env['LITESTREAM_ACCESS_KEY_ID'];
  const envSecret = env['AWS_SECRET_ACCESS_KEY'] || env['LITESTREAM_SECRET_ACCESS_KEY'];
  if (envId && envSecret) {
    // A session token only belongs with AWS_* keys (LITESTREAM_* has no token variable).
    const token = env['AWS_ACCESS_KEY_ID'] ? env['AWS_SESSION_TOKEN'] : undefined;
    return { credentials: makeCredentials(envId, envSecret, token || undefined), source: 'env' };
  }
  return { source: 'default-chain' };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
