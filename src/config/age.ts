/**
 * The per-replica `age:` key, as Litestream 0.3.10+ reads it (reference §1.2, `main.go`
 * NewReplicaFromConfig): `identities` and `recipients` are lists of strings, and each string is
 * parsed like an age key file by Go's `age.ParseIdentities` / `age.ParseRecipients`: one key per
 * line, blank lines and lines starting with `#` ignored (so the whole output of `age-keygen` may be
 * pasted, or given through `$VAR`), and only X25519 keys (`AGE-SECRET-KEY-1…`, `age1…`).
 *
 * Two passes: `parseAge` (sync, part of parseConfig) checks the shape of every line without
 * loading the age library (~160 ms to import, which `lsinit -- app` without age should not pay);
 * `verifyAgeKeys` (async, run by loadConfig only when some replica has `age:`) decodes every key
 * with the library and checks that lsinit can read back what it writes.
 *
 * Secret keys never appear in an error, a log line or a serialized config: errors name the key
 * path and the line number only (the library's own bech32 errors quote the input, so they are
 * never passed on), and `identities` is a non-enumerable property.
 */
import { configError } from '../replica/backend.js';
import type { Config } from './types.js';

export interface AgeKeys {
  /** X25519 recipients (`age1…`): every object written is encrypted to all of them. */
  readonly recipients: readonly string[];
  /** X25519 identities (`AGE-SECRET-KEY-1…`), tried in order to decrypt. Non-enumerable. */
  readonly identities: readonly string[];
  /** Key path of the `age:` mapping, e.g. `dbs[0].replicas[1].age`, for messages. */
  readonly keyPath: string;
  /** Where each key was written, e.g. `identities[0] line 3`, for messages (parallel arrays). */
  readonly at: { readonly identities: readonly string[]; readonly recipients: readonly string[] };
}

const AGE_KEYS = ['identities', 'recipients'];
// Bech32 data characters; an X25519 key is 32 bytes = 52 characters plus a 6-character checksum.
const IDENTITY_RE = /^AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}$/;
const RECIPIENT_RE = /^age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$/;

/** `age:` of one replica; undefined when absent or empty (Litestream: no encryption). */
export function parseAge(raw: unknown, keyPath: string, warnings: string[]): AgeKeys | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw configError(keyPath, 'must be a mapping with identities: and recipients: lists (X25519 keys from age-keygen)');
  }
  const map = raw as Record<string, unknown>;
  for (const k of Object.keys(map)) if (!AGE_KEYS.includes(k)) warnings.push(`${keyPath}.${k}: unknown key, ignored (age: takes identities: and recipients:)`);
  const { keys: identities, at: idAt } = keyLines(map['identities'], keyPath, 'identities');
  const { keys: recipients, at: rcAt } = keyLines(map['recipients'], keyPath, 'recipients');
  if (identities.length === 0 && recipients.length === 0) return undefined;
  if (recipients.length > 0 && identities.length === 0) {
    // Litestream accepts this and then fails at its next start: it decrypts the newest WAL
    // segment to learn where the replica ends (replica.go calcPos). So does lsinit, and restore.
    throw configError(`${keyPath}.identities`, 'is required with recipients: lsinit reads the newest WAL segment back after every restart (as Litestream does), and restore needs it; add the AGE-SECRET-KEY-1... line that age-keygen printed');
  }
  const keys: Omit<AgeKeys, 'identities'> = { recipients, keyPath, at: { identities: idAt, recipients: rcAt } };
  return Object.defineProperty(keys, 'identities', { value: identities, enumerable: false }) as AgeKeys;
}

function keyLines(v: unknown, agePath: string, key: 'identities' | 'recipients'): { keys: string[]; at: string[] } {
  const kind = key === 'identities' ? 'identity' : 'recipient';
  const keyPath = `${agePath}.${key}`;
  const out: string[] = [];
  const at: string[] = [];
  if (v === undefined || v === null) return { keys: out, at };
  if (!Array.isArray(v)) throw configError(keyPath, `must be a list of strings (one entry per key or key file text), got ${typeof v === 'string' ? 'a string: write it as a list item, "- ..."' : typeof v}`);
  v.forEach((entry, i) => {
    const kp = `${keyPath}[${i}]`;
    if (typeof entry !== 'string') throw configError(kp, `must be a string, got ${typeof entry}`);
    let found = 0;
    // Go's bufio.ScanLines: split on \n and drop one trailing \r; no other trimming.
    entry.split('\n').forEach((l, n) => {
      const line = l.endsWith('\r') ? l.slice(0, -1) : l;
      if (line === '' || line.startsWith('#')) return;
      checkLine(line, kp, n + 1, kind);
      out.push(line);
      at.push(`${key}[${i}] line ${n + 1}`);
      found++;
    });
    if (found === 0) throw configError(kp, `holds no ${kind} (only blank or # lines); is an environment variable unset?`);
  });
  return { keys: out, at };
}

function checkLine(line: string, keyPath: string, n: number, kind: 'identity' | 'recipient'): void {
  const where = `line ${n}`;
  if (kind === 'identity') {
    if (IDENTITY_RE.test(line)) return;
    if (line.startsWith('AGE-SECRET-KEY-PQ-1')) throw configError(keyPath, `${where} is a post-quantum identity; Litestream 0.3 and lsinit use X25519 identities only (AGE-SECRET-KEY-1...)`);
    if (line.startsWith('AGE-PLUGIN-')) throw configError(keyPath, `${where} is an age plugin identity; only X25519 identities (AGE-SECRET-KEY-1...) are supported`);
    if (/^age1/i.test(line)) throw configError(keyPath, `${where} is a recipient (public key); identities are the secret keys, AGE-SECRET-KEY-1...`);
    throw configError(keyPath, `${where} is not an X25519 identity: want AGE-SECRET-KEY-1 followed by 58 characters, as age-keygen prints it`);
  }
  if (RECIPIENT_RE.test(line)) return;
  if (/^age1(pq|tag)/.test(line)) throw configError(keyPath, `${where} is a post-quantum or tag recipient; Litestream 0.3 and lsinit use X25519 recipients only (age1...)`);
  if (line.startsWith('AGE-SECRET-KEY-')) throw configError(keyPath, `${where} is a secret key; recipients are public keys (age1...; age-keygen -y prints it). Keep the secret key under identities`);
  if (/^ssh-/.test(line)) throw configError(keyPath, `${where} is an SSH key; only X25519 recipients (age1...) are supported, as in Litestream 0.3`);
  throw configError(keyPath, `${where} is not an X25519 recipient: want age1 followed by 58 lowercase characters, as age-keygen prints it`);
}

/**
 * Decode every key with the age library, and refuse a replica whose recipients none of its
 * identities can open: lsinit would write objects it cannot read back at its next start.
 */
export async function verifyAgeKeys(config: Config): Promise<void> {
  const all = config.dbs.flatMap((d) => d.replicas.flatMap((r) => (r.age ? [r.age] : [])));
  if (all.length === 0) return;
  const age = await import('age-encryption');
  for (const keys of all) {
    const own = new Set<string>();
    for (const [i, id] of keys.identities.entries()) {
      try {
        own.add(await age.identityToRecipient(id));
      } catch {
        throw configError(`${keys.keyPath}.${keys.at.identities[i]}`, 'is not a valid X25519 identity (bad checksum): copy it again from the age-keygen output');
      }
    }
    for (const [i, r] of keys.recipients.entries()) {
      try {
        new age.Encrypter().addRecipient(r);
      } catch {
        throw configError(`${keys.keyPath}.${keys.at.recipients[i]}`, 'is not a valid X25519 recipient (bad checksum): copy it again from age-keygen -y');
      }
    }
    if (keys.recipients.length > 0 && !keys.recipients.some((r) => own.has(r))) {
      throw configError(`${keys.keyPath}.recipients`, 'none of these recipients belongs to an identity under identities: lsinit could not read back what it writes (after a restart, or to restore); add the matching identity');
    }
  }
}

/** Writing needs recipients: with identities alone, objects would go out unencrypted into a replica read with age. */
export function assertAgeWritable(keys: AgeKeys): void {
  if (keys.recipients.length === 0) {
    throw configError(`${keys.keyPath}.recipients`, 'is required to replicate: with identities alone lsinit would write unencrypted objects that it then reads with age (identities alone are enough for restore and listing); add the age1... public key (age-keygen -y)');
  }
}
