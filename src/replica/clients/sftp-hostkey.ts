/**
 * SSH host-key pinning for the sftp backend. Litestream 0.3 accepts any host key
 * (`ssh.InsecureIgnoreHostKey`, reference §1.2); lsinit checks the server's key against a pinned
 * `host-key` (an OpenSSH public-key line or a `SHA256:` fingerprint) and/or an OpenSSH
 * `known_hosts` file. Pure functions on key blobs (the SSH wire encoding ssh2's hostVerifier
 * receives); the only I/O is reading the known_hosts file at connect time.
 */
import { createHash, createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { LsinitError } from '../../errors.js';

/** What the config layer keeps: base64 blobs and fingerprints, so settings stay plain data. */
export interface HostKeyPin {
  /** Base64 of the key blobs from `ssh-xxx AAAA...` lines. */
  blobs: string[];
  /** `SHA256:<unpadded base64>` fingerprints. */
  fingerprints: string[];
}

/** The OpenSSH fingerprint: `SHA256:` + unpadded base64 of sha256(blob) (ssh-keygen -l). */
export function fingerprint(blob: Uint8Array): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside a blob (first SSH string), or undefined for garbage. */
export function blobKeyType(blob: Uint8Array): string | undefined {
  if (blob.length < 4) return undefined;
  const len = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength).readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > blob.length) return undefined;
  return Buffer.from(blob.subarray(4, 4 + len)).toString('latin1');
}

const KEY_TYPE_RE = /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+)$/;
const FINGERPRINT_RE = /^SHA256:[A-Za-z0-9+/]{43}=?$/;

/**
 * Parse one `host-key` value. Accepts `ssh-ed25519 AAAA... [comment]`, a known_hosts line
 * (`host ssh-ed25519 AAAA...`, the host part is ignored) or `SHA256:...`. Throws a plain message
 * that the caller wraps into a config error naming the key.
 */
export function parseHostKey(value: string): { blob?: string; fingerprint?: string } {
  const v = value.trim();
  if (v.startsWith('SHA256:')) {
    if (!FINGERPRINT_RE.test(v)) throw new Error(`"${v}" is not a SHA256 fingerprint (SHA256: followed by 43 base64 characters, as ssh-keygen -lf prints)`);
    return { fingerprint: v.replace(/=$/, '') };
  }
  const tokens = v.split(/\s+/);
  const at = tokens.findIndex((t) => KEY_TYPE_RE.test(t));
  const type = at >= 0 ? tokens[at] : undefined;
  const b64 = at >= 0 ? tokens[at + 1] : undefined;
  if (!type || !b64) throw new Error('want an OpenSSH public key line ("ssh-ed25519 AAAA...", from ssh-keyscan or the server\'s /etc/ssh/ssh_host_*_key.pub) or a SHA256:... fingerprint');
  const blob = Buffer.from(b64, 'base64');
  const inner = blobKeyType(blob);
  if (inner !== type) throw new Error(`the ${type} key data is not a valid ${type} public key`);
  return { blob: blob.toString('base64') };
}

/** The name OpenSSH looks up in known_hosts: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(name);
}

/** One host-pattern field of known_hosts (comma list; `!neg`, globs, `|1|salt|hash` hashed names). */
function hostFieldMatches(field: string, name: string): boolean {
  let matched = false;
  for (const raw of field.split(',')) {
    const negated = raw.startsWith('!');
    const pat = negated ? raw.slice(1) : raw;
    let hit: boolean;
    if (pat.startsWith('|1|')) {
      // Hashed entry (HashKnownHosts yes): base64(HMAC-SHA1(key = salt, name)), see sshd(8) SSH_KNOWN_HOSTS.
      const [, , salt, hash] = pat.split('|');
      hit = !!salt && !!hash && createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
    } else {
      hit = globMatch(pat, name);
    }
    if (hit && negated) return false;
    if (hit) matched = true;
  }
  return matched;
}

/** Keys a known_hosts text trusts for `name`, and the ones it marks @revoked. `@cert-authority` lines are skipped (no certificate support). */
export function knownHostsKeys(text: string, name: string): { trusted: Buffer[]; revoked: Buffer[] } {
  const trusted: Buffer[] = [];
  const revoked: Buffer[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const fields = t.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]?.startsWith('@')) marker = fields.shift();
    const [hosts, type, b64] = fields;
    if (!hosts || !type || !b64 || marker === '@cert-authority') continue;
    if (!hostFieldMatches(hosts, name)) continue;
    const blob = Buffer.from(b64, 'base64');
    if (blobKeyType(blob) !== type) continue;
    (marker === '@revoked' ? revoked : trusted).push(blob);
  }
  return { trusted, revoked };
}

export interface HostKeyCheck {
  /** For ssh2's `hostVerifier`: true when the presented blob is trusted. Remembers what it saw. */
  verify(blob: Buffer): boolean;
  /** After a failed handshake: the fingerprint the server presented, if it got that far. */
  presented(): string | undefined;
  /** Human list of what was expected, for the error message. */
  expected(): string;
  /**
   * Host-key algorithms to offer, when every trusted entry is a full key: SSH picks the client's
   * first algorithm the server also has, so a server with ed25519 and RSA keys would present its
   * ed25519 key to a client that pinned the RSA one. Undefined = ssh2's default list.
   */
  algorithms?: string[];
}

export interface HostKeySource {
  pin?: HostKeyPin;
  knownHostsPath?: string;
  host: string;
  port: number;
}

/** Build the verifier for one connection attempt; reads known_hosts now so an edited file takes effect on reconnect. */
export async function hostKeyCheck(src: HostKeySource): Promise<HostKeyCheck | undefined> {
  if (!src.pin && !src.knownHostsPath) return undefined;
  const blobs: Buffer[] = (src.pin?.blobs ?? []).map((b) => Buffer.from(b, 'base64'));
  const fps = new Set(src.pin?.fingerprints ?? []);
  let revoked: Buffer[] = [];
  if (src.knownHostsPath) {
    let text: string;
    try {
      text = await readFile(src.knownHostsPath, 'utf8');
    } catch (err) {
      throw new LsinitError('LSINIT_ERR_CONFIG', `sftp: cannot read known-hosts-path ${src.knownHostsPath}: ${(err as Error).message}`, {
        cause: err,
        fields: { path: src.knownHostsPath },
      });
    }
    const found = knownHostsKeys(text, knownHostsName(src.host, src.port));
    blobs.push(...found.trusted);
    revoked = found.revoked;
  }
  const algorithms = fps.size === 0 && blobs.length > 0 ? [...new Set(blobs.flatMap((b) => algorithmsFor(blobKeyType(b) ?? '')))] : undefined;
  for (const b of blobs) fps.add(fingerprint(b));
  let seen: string | undefined;
  return {
    ...(algorithms ? { algorithms } : {}),
    verify(blob) {
      seen = fingerprint(blob);
      if (revoked.some((r) => r.equals(blob))) return false;
      return fps.has(seen);
    },
    presented: () => seen,
    expected: () => {
      const list = [...fps];
      if (list.length === 0) return `no key for ${knownHostsName(src.host, src.port)} in ${src.knownHostsPath}`;
      return list.join(' or ');
    },
  };
}

/** An `ssh-rsa` key is also presented under the SHA-2 signature names (RFC 8332). */
function algorithmsFor(type: string): string[] {
  return type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type];
}
