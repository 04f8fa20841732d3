/**
 * Host parsing of `s3://HOST/PATH` replica URLs, Litestream 0.3's `s3.ParseHost`
 * (s3/replica_client.go:696, reference §1.3), plus two lsinit extensions (Cloudflare R2, Tigris).
 * Pure functions, no I/O.
 */

export interface ParsedS3Host {
  /** '' when the host names only a provider endpoint (e.g. `s3://localhost:9000/x`). */
  bucket: string;
  /** '' when the provider form carries no region (Filebase, AWS). */
  region: string;
  /** Full URL with scheme (and the URL's port), or '' for plain AWS. */
  endpoint: string;
  forcePathStyle: boolean;
}

interface Provider {
  re: RegExp;
  /** Given the regex match: region and endpoint host (without scheme/port). */
  map(m: RegExpExecArray): { region: string; host: string; scheme?: 'http' };
}

// The regexes are Litestream's, including the unescaped dots in `s3.` and `.com` (faithful to the
// source: `s3://foo.s3xus-west-000.backblazeb2xcom/` matches there too). First match wins.
const PROVIDERS: readonly Provider[] = [
  { re: /^(?:(.+)\.)?localhost$/, map: () => ({ region: 'us-east-1', host: 'localhost', scheme: 'http' }) },
  { re: /^(?:(.+)\.)?s3.([^.]+)\.backblazeb2.com$/, map: (m) => ({ region: m[2]!, host: `s3.${m[2]}.backblazeb2.com` }) },
  { re: /^(?:(.+)\.)?s3.filebase.com$/, map: () => ({ region: '', host: 's3.filebase.com' }) },
  { re: /^(?:(.+)\.)?([^.]+)\.digitaloceanspaces.com$/, map: (m) => ({ region: m[2]!, host: `${m[2]}.digitaloceanspaces.com` }) },
  { re: /^(?:(.+)\.)?s3.([^.]+)\.scw\.cloud$/, map: (m) => ({ region: m[2]!, host: `s3.${m[2]}.scw.cloud` }) },
  { re: /^(?:(.+)\.)?([^.]+)\.linodeobjects.com$/, map: (m) => ({ region: m[2]!, host: `${m[2]}.linodeobjects.com` }) },
  // lsinit extensions (Litestream 0.3 needs `endpoint:` for these, issue #372). R2 wants region
  // "auto" and the account-specific endpoint; Tigris serves every bucket from one global endpoint.
  { re: /^(?:(.+)\.)?([^.]+)\.r2\.cloudflarestorage\.com$/, map: (m) => ({ region: 'auto', host: `${m[2]}.r2.cloudflarestorage.com` }) },
  { re: /^(?:(.+)\.)?fly\.storage\.tigris\.dev$/, map: () => ({ region: 'auto', host: 'fly.storage.tigris.dev' }) },
  { re: /^(?:(.+)\.)?t3\.storage\.dev$/, map: () => ({ region: 'auto', host: 'fly.storage.tigris.dev' }) },
];

/** Split `host[:port]` like Go's net.SplitHostPort; no port (or a malformed one) keeps the whole host. */
function splitHostPort(s: string): { host: string; port: string } {
  const m = /^(.*):(\d+)$/.exec(s);
  if (!m || m[1] === '') return { host: s, port: '' };
  return { host: m[1]!, port: m[2]! };
}

/**
 * `s3.ParseHost`: every provider form is path-style ("the only service to not use path style is
 * AWS"); anything unrecognised is an AWS bucket name (dots allowed), with no endpoint.
 */
export function parseS3Host(hostAndPort: string): ParsedS3Host {
  const { host, port } = splitHostPort(hostAndPort);
  for (const p of PROVIDERS) {
    const m = p.re.exec(host);
    if (!m) continue;
    const { region, host: epHost, scheme = 'https' } = p.map(m);
    const endpoint = `${scheme}://${epHost}${port ? `:${port}` : ''}`;
    return { bucket: m[1] ?? '', region, endpoint, forcePathStyle: true };
  }
  return { bucket: host, region: '', endpoint: '', forcePathStyle: false };
}

/**
 * Litestream: `strings.TrimPrefix(path.Clean(u.Path), "/")`. Go's Clean of "" is "." which acts as
 * the root under path.Join; lsinit stores '' for it (same keys, cleaner display).
 */
export function cleanURLPath(p: string): string {
  const segs: string[] = [];
  for (const s of p.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') segs.pop();
    else segs.push(s);
  }
  return segs.join('/');
}

/** Add `https://` to an endpoint given without a scheme, as aws-sdk-go v1 does. */
export function normalizeEndpoint(endpoint: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `https://${endpoint}`;
}
