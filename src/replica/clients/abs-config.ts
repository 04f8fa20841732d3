/**
 * Config resolution for `abs` (Azure Blob Storage) replicas, Litestream 0.3's
 * newABSReplicaClientFromConfig (main.go:578): `abs://ACCOUNT@CONTAINER/PATH`, explicit keys win
 * over the URL, the key comes from `account-key` or LITESTREAM_AZURE_ACCOUNT_KEY (shared-key auth only).
 */
import { configError, optString, type ResolveInput, type Resolved } from '../backend.js';
import { cleanURLPath, normalizeEndpoint } from './s3-url.js';

export interface ABSSettings {
  accountName: string;
  /** Non-enumerable: JSON.stringify / util.inspect of settings never print it. */
  readonly accountKey: string;
  container: string;
  /** Blob name prefix, joined with posix joins. */
  path: string;
  /** Service URL; may carry the account as its path (azurite: http://127.0.0.1:PORT/devstoreaccount1). */
  endpoint: string;
}

export const ABS_KEYS = ['account-name', 'account-key', 'bucket', 'endpoint'] as const;
export const ABS_SECRET_ENV = ['LITESTREAM_AZURE_ACCOUNT_KEY'] as const;

export function makeABSSettings(s: Omit<ABSSettings, 'accountKey'>, accountKey: string): ABSSettings {
  const out = { ...s } as ABSSettings;
  Object.defineProperty(out, 'accountKey', { value: accountKey, enumerable: false });
  return out;
}

export function absDisplay(s: Pick<ABSSettings, 'accountName' | 'container' | 'path'>): string {
  const p = s.path.replace(/^\/+/, '');
  return `abs://${s.accountName}@${s.container}${p ? `/${p}` : ''}`;
}

// A shared key is base64 of 64 bytes; anything else can only fail every request later.
const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

export function resolveABS({ url, raw, env, keyPath }: ResolveInput): Resolved<ABSSettings> {
  const warnings: string[] = [];
  let account = optString(raw, 'account-name', keyPath);
  let container = optString(raw, 'bucket', keyPath);
  let path = optString(raw, 'path', keyPath);
  if (url) {
    if (container !== undefined) throw configError(`${keyPath}.bucket`, 'cannot be combined with url: the container is the URL host (abs://ACCOUNT@CONTAINER/PATH)');
    if (path !== undefined) throw configError(`${keyPath}.path`, 'cannot be combined with url: the path is the URL path (abs://ACCOUNT@CONTAINER/PATH)');
    if (url.password) warnings.push(`${keyPath}.url: a password in an abs URL is ignored; use account-key or LITESTREAM_AZURE_ACCOUNT_KEY`);
    account ??= url.username ? decodeURIComponent(url.username) : undefined;
    container = url.hostname || undefined;
    path = cleanURLPath(decodeURIComponent(url.pathname));
  }
  if (!account) throw configError(`${keyPath}.account-name`, 'abs replica needs an account: set `account-name:` or `url: abs://ACCOUNT@CONTAINER/PATH`');
  if (!container) throw configError(`${keyPath}.bucket`, 'abs replica needs a container: set `bucket:` or `url: abs://ACCOUNT@CONTAINER/PATH`');

  const configKey = optString(raw, 'account-key', keyPath);
  const key = configKey ?? (env['LITESTREAM_AZURE_ACCOUNT_KEY'] || undefined);
  const keyName = configKey !== undefined ? `${keyPath}.account-key` : 'LITESTREAM_AZURE_ACCOUNT_KEY';
  if (!key) throw configError(`${keyPath}.account-key`, 'abs replica needs a shared key: set `account-key:` or LITESTREAM_AZURE_ACCOUNT_KEY');
  // The message names where the key came from, never the key itself.
  if (!BASE64_RE.test(key.trim())) throw configError(keyName, 'is not a base64 Azure storage account key');

  let endpoint = optString(raw, 'endpoint', keyPath) ?? `https://${account}.blob.core.windows.net`;
  endpoint = normalizeEndpoint(endpoint).replace(/\/+$/, '');
  try {
    new URL(endpoint);
  } catch {
    throw configError(`${keyPath}.endpoint`, `not a valid URL: ${JSON.stringify(endpoint)}`);
  }
  const settings = makeABSSettings({ accountName: account, container, path: path ?? '', endpoint }, key.trim());
  return { settings, display: absDisplay(settings), warnings };
}
