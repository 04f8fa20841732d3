/**
 * Config resolution for `sftp` replicas (Litestream `newSFTPReplicaClientFromConfig`, reference
 * §1.2-1.3): `url: sftp://USER:PASSWORD@HOST:PORT/PATH` (the path keeps its leading `/`, an
 * absolute remote directory) or the keys `host` (host[:port], port 22 by default), `user`,
 * `password`, `key-path`, `path`. As in Litestream, `url` cannot be combined with `host` or
 * `path`, and explicit `user`/`password` win over the URL's.
 *
 * lsinit additions:
 * - `host-key`: the server's public key (`ssh-ed25519 AAAA...`, e.g. a line of
 *   `ssh-keyscan -p PORT HOST`, or a list of them) or its `SHA256:...` fingerprint
 *   (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`); and/or `known-hosts-path`, an OpenSSH
 *   known_hosts file. A key matching any of them is accepted. Without either, any key is accepted
 *   like Litestream does, with a warning.
 * - `LITESTREAM_SFTP_PASSWORD`: the password when neither the config nor the URL gives one
 *   (keeps it out of the config file and the process list). Listed in `secretEnv`.
 */
import { configError, optString, redactURL, type Backend } from '../backend.js';
import { LazyClient } from '../lazy.js';
import type { SFTPSettings } from './sftp-conn.js';
import { parseHostKey, type HostKeyPin } from './sftp-hostkey.js';

export type { SFTPSettings } from './sftp-conn.js';

export const SFTP_PASSWORD_ENV = 'LITESTREAM_SFTP_PASSWORD';
export const HOST_KEY_WARNING = 'host key not verified; set host-key (or known-hosts-path): anyone who can intercept the connection can read and alter the replica';

/** `host`, `host:port`, `[v6]`, `[v6]:port`. */
export function parseHostPort(value: string, keyPath: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(value) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(value);
  // A bare IPv6 address has several colons and no brackets.
  const v6 = !m && value.split(':').length > 2 ? [value, value, undefined] : undefined;
  const mm = m ?? v6;
  if (!mm || !mm[1]) throw configError(keyPath, `invalid host ${JSON.stringify(value)}: want HOST or HOST:PORT`);
  const port = mm[2] === undefined ? 22 : Number(mm[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw configError(keyPath, `invalid port in ${JSON.stringify(value)}`);
  return { host: mm[1], port };
}

function hostKeys(raw: Record<string, unknown>, keyPath: string): HostKeyPin | undefined {
  const v = raw['host-key'];
  if (v === undefined || v === null || v === '') return undefined;
  const list = Array.isArray(v) ? v : [v];
  const pin: HostKeyPin = { blobs: [], fingerprints: [] };
  list.forEach((item, i) => {
    const kp = Array.isArray(v) ? `${keyPath}.host-key[${i}]` : `${keyPath}.host-key`;
    if (typeof item !== 'string') throw configError(kp, `must be a string, got ${typeof item}`);
    try {
      const k = parseHostKey(item);
      if (k.blob) pin.blobs.push(k.blob);
      if (k.fingerprint) pin.fingerprints.push(k.fingerprint);
    } catch (err) {
      throw configError(kp, (err as Error).message);
    }
  });
  return pin;
}

export const sftpBackend: Backend<SFTPSettings> = {
  type: 'sftp',
  keys: ['host', 'user', 'password', 'key-path', 'host-key', 'known-hosts-path'],
  secretEnv: [SFTP_PASSWORD_ENV],
  resolve({ url, raw, env, keyPath }) {
    const hostValue = optString(raw, 'host', keyPath);
    let user = optString(raw, 'user', keyPath);
    let password = optString(raw, 'password', keyPath);
    let path = optString(raw, 'path', keyPath);
    let fromURL: { host: string; port: number } | undefined;
    if (url) {
      if (path !== undefined) throw configError(keyPath, 'cannot specify url & path for sftp replica');
      if (hostValue !== undefined) throw configError(keyPath, 'cannot specify url & host for sftp replica');
      if (url.search || url.hash) throw configError(`${keyPath}.url`, 'sftp URL takes no query or fragment');
      if (!url.hostname) throw configError(`${keyPath}.url`, 'sftp URL needs a host: sftp://USER@HOST[:PORT]/PATH');
      fromURL = { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port ? Number(url.port) : 22 };
      // WHATWG URL keeps userinfo percent-encoded; Go's url.Parse decodes it.
      if (user === undefined && url.username) user = decodeURIComponent(url.username);
      if (password === undefined && url.password) password = decodeURIComponent(url.password);
      path = decodeURIComponent(url.pathname);
    }
    const hp = fromURL ?? (hostValue !== undefined ? parseHostPort(hostValue, `${keyPath}.host`) : undefined);
    if (!hp) throw configError(keyPath, 'host required for sftp replica: set `host: HOST[:PORT]` or `url: sftp://USER@HOST/PATH`');
    if (!user) throw configError(keyPath, 'user required for sftp replica: set `user:` or put it in the url (sftp://USER@HOST/PATH)');
    password ??= env[SFTP_PASSWORD_ENV] || undefined;
    const keyFile = optString(raw, 'key-path', keyPath);
    if (password === undefined && keyFile === undefined) {
      throw configError(keyPath, `sftp replica needs a password or key-path (password: in the url, \`password:\`, or $${SFTP_PASSWORD_ENV})`);
    }
    const hostKey = hostKeys(raw, keyPath);
    const knownHostsPath = optString(raw, 'known-hosts-path', keyPath);
    const settings: SFTPSettings = {
      host: hp.host,
      port: hp.port,
      user,
      path: path ?? '',
      ...(keyFile !== undefined ? { keyPath: keyFile } : {}),
      ...(hostKey ? { hostKey } : {}),
      ...(knownHostsPath !== undefined ? { knownHostsPath } : {}),
    };
    // Non-enumerable: JSON.stringify / util.inspect of the resolved config never print it.
    if (password !== undefined) Object.defineProperty(settings, 'password', { value: password, enumerable: false });
    const warnings: string[] = [];
    if (!hostKey && !knownHostsPath) warnings.push(`${keyPath}: ${HOST_KEY_WARNING}`);
    return { settings, display: displayURL(settings, url), warnings };
  },
  create(settings) {
    // ssh2 is loaded only when an sftp replica is first used (start-up time and memory).
    return new LazyClient('sftp', async () => new (await import('./sftp-client.js')).SFTPReplicaClient(settings));
  },
};

/** The URL form with the password (if any) shown as `xxxxx`. */
function displayURL(s: SFTPSettings, url: URL | undefined): string {
  if (url) return redactURL(url);
  const u = new URL('sftp://host');
  u.hostname = s.host.includes(':') ? `[${s.host}]` : s.host;
  if (s.port !== 22) u.port = String(s.port);
  u.username = encodeURIComponent(s.user);
  if (s.password !== undefined) u.password = 'xxxxx';
  u.pathname = s.path;
  return u.href;
}
