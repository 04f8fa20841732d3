/** sftp replica config: URL and key forms, Litestream's merge rules, secrets, host-key parsing and known_hosts matching. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspect, promisify } from 'node:util';
import type { ResolveInput } from '../../src/replica/backend.js';
import { backendFor } from '../../src/replica/clients/registry.js';
import { HOST_KEY_WARNING, SFTP_PASSWORD_ENV, sftpBackend } from '../../src/replica/clients/sftp.js';
import { fingerprint, knownHostsKeys, knownHostsName, parseHostKey } from '../../src/replica/clients/sftp-hostkey.js';

const run = promisify(execFile);

function resolve(over: Partial<ResolveInput>) {
  return sftpBackend.resolve({ raw: {}, global: {}, env: {}, keyPath: 'dbs[0].replicas[0]', cwd: '/', ...over });
}
const url = (s: string) => new URL(s);

let dir: string;
let keyLine: string;
let keyFingerprint: string;
let otherKeyLine: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lsinit-sftp-config-'));
  for (const name of ['a', 'b']) await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `test-${name}`, '-f', join(dir, name)]);
  keyLine = (await readFile(join(dir, 'a.pub'), 'utf8')).trim();
  otherKeyLine = (await readFile(join(dir, 'b.pub'), 'utf8')).trim();
  keyFingerprint = (await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'a.pub')])).stdout.split(' ')[1]!;
});
after(() => rm(dir, { recursive: true, force: true }));

describe('sftp config', () => {
  it('is registered as the sftp backend and names its secret env var', () => {
    assert.equal(backendFor('sftp'), sftpBackend);
    assert.deepEqual(sftpBackend.secretEnv, [SFTP_PASSWORD_ENV]);
  });

  it('parses sftp://USER:PASSWORD@HOST:PORT/PATH keeping the leading slash and decoding userinfo', () => {
    const r = resolve({ url: url('sftp://ben%40corp:p%40ss%3Aw0rd@backup.example.com:2222/var/backups/db') });
    assert.deepEqual({ ...r.settings }, { host: 'backup.example.com', port: 2222, user: 'ben@corp', path: '/var/backups/db' });
    assert.equal(r.settings.password, 'p@ss:w0rd');
  });

  it('defaults the port to 22 and a missing path to the login directory', () => {
    const r = resolve({ url: url('sftp://u:p@h') });
    assert.equal(r.settings.port, 22);
    assert.equal(r.settings.path, '');
  });

  it('shows the URL with the password replaced, and never the password anywhere', () => {
    const r = resolve({ url: url('sftp://u:hunter2secret@h:2222/x') });
    assert.equal(r.display, 'sftp://u:xxxxx@h:2222/x');
    assert.ok(!JSON.stringify({ d: r.display, w: r.warnings }).includes('hunter2secret'));
    const k = resolve({ raw: { host: 'h', user: 'u', password: 'hunter2secret', path: '/x' } });
    assert.equal(k.display, 'sftp://u:xxxxx@h/x');
    // Resolved settings and the client end up in logs and `inspect` output: the password is not enumerable.
    for (const x of [r, k]) {
      const c = sftpBackend.create(x.settings);
      for (const shown of [JSON.stringify(x.settings), inspect(x.settings, { depth: 5 }), JSON.stringify(c), inspect(c, { depth: 5 })]) {
        assert.ok(!shown.includes('hunter2secret'), shown);
      }
    }
  });

  it('accepts the key form: host[:port], user, password, key-path, path', () => {
    const r = resolve({ raw: { host: 'h:2200', user: 'u', 'key-path': '/k/id_ed25519', path: '/data' } });
    assert.deepEqual(r.settings, { host: 'h', port: 2200, user: 'u', keyPath: '/k/id_ed25519', path: '/data' });
  });

  it('accepts IPv6 hosts in both forms', () => {
    assert.deepEqual(resolve({ url: url('sftp://u:p@[::1]:2222/x') }).settings.host, '::1');
    const r = resolve({ raw: { host: '[::1]:2222', user: 'u', password: 'p' } });
    assert.equal(r.settings.host, '::1');
    assert.equal(r.settings.port, 2222);
    assert.equal(r.display, 'sftp://u:xxxxx@[::1]:2222');
  });

  it('lets explicit user and password win over the URL (Litestream merge rule)', () => {
    const r = resolve({ url: url('sftp://urluser:urlpass@h/x'), raw: { user: 'cfguser', password: 'cfgpass' } });
    assert.equal(r.settings.user, 'cfguser');
    assert.equal(r.settings.password, 'cfgpass');
  });

  it(`reads the password from ${SFTP_PASSWORD_ENV} only when none is configured`, () => {
    assert.equal(resolve({ raw: { host: 'h', user: 'u' }, env: { [SFTP_PASSWORD_ENV]: 'fromenv' } }).settings.password, 'fromenv');
    assert.equal(resolve({ url: url('sftp://u:fromurl@h/x'), env: { [SFTP_PASSWORD_ENV]: 'fromenv' } }).settings.password, 'fromurl');
  });

  it('rejects url with path or host, and missing host, user or credentials, naming the key', () => {
    const bad: Array<[Partial<ResolveInput>, RegExp]> = [
      [{ url: url('sftp://u:p@h/x'), raw: { path: '/y' } }, /url & path/],
      [{ url: url('sftp://u:p@h/x'), raw: { host: 'h2' } }, /url & host/],
      [{ raw: { user: 'u', password: 'p' } }, /host required/],
      [{ raw: { host: 'h', password: 'p' } }, /user required/],
      [{ raw: { host: 'h', user: 'u' } }, /password or key-path/],
      [{ raw: { host: 'h:99999', user: 'u', password: 'p' } }, /invalid port/],
      [{ url: url('sftp://u:p@h/x?endpoint=y') }, /no query/],
    ];
    for (const [input, msg] of bad) {
      assert.throws(() => resolve(input), (err: Error & { code?: string; fields?: { key?: string } }) => {
        assert.equal(err.code, 'LSINIT_ERR_CONFIG');
        assert.match(err.message, msg);
        assert.match(err.fields?.key ?? '', /^dbs\[0\]\.replicas\[0\]/);
        return true;
      });
    }
  });

  it('warns loudly when no host key is pinned, and not when one is', () => {
    const r = resolve({ url: url('sftp://u:p@h/x') });
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /host key not verified; set host-key/);
    assert.ok(r.warnings[0]!.includes(HOST_KEY_WARNING));
    assert.deepEqual(resolve({ url: url('sftp://u:p@h/x'), raw: { 'host-key': keyLine } }).warnings, []);
    assert.deepEqual(resolve({ url: url('sftp://u:p@h/x'), raw: { 'known-hosts-path': '/k' } }).warnings, []);
  });

  it('takes host-key as a key line, a known_hosts line, a SHA256 fingerprint or a list of them', () => {
    const blob = keyLine.split(' ')[1]!;
    const r = resolve({ url: url('sftp://u:p@h/x'), raw: { 'host-key': [keyLine, `[h]:22 ${otherKeyLine}`, keyFingerprint] } });
    assert.deepEqual(r.settings.hostKey, { blobs: [blob, otherKeyLine.split(' ')[1]], fingerprints: [keyFingerprint] });
  });

  it('rejects a malformed host-key naming the list item', () => {
    assert.throws(() => resolve({ url: url('sftp://u:p@h/x'), raw: { 'host-key': 'ssh-ed25519 bm90IGEga2V5' } }), { code: 'LSINIT_ERR_CONFIG', message: /host-key: the ssh-ed25519 key data/ });
    assert.throws(() => resolve({ url: url('sftp://u:p@h/x'), raw: { 'host-key': [keyLine, 'SHA256:short'] } }), (err: Error & { fields?: { key?: string } }) =>
      err.fields?.key === 'dbs[0].replicas[0].host-key[1]');
  });
});

describe('sftp host keys', () => {
  it('computes the fingerprint ssh-keygen -l prints', () => {
    assert.equal(fingerprint(Buffer.from(keyLine.split(' ')[1]!, 'base64')), keyFingerprint);
    assert.deepEqual(parseHostKey(keyFingerprint), { fingerprint: keyFingerprint });
  });

  it('matches plain, [host]:port, glob, negated and hashed known_hosts entries', async () => {
    const blobA = Buffer.from(keyLine.split(' ')[1]!, 'base64');
    const blobB = Buffer.from(otherKeyLine.split(' ')[1]!, 'base64');
    const [typeA, b64A] = keyLine.split(' ');
    const [typeB, b64B] = otherKeyLine.split(' ');
    const text = [
      '# comment',
      `plain.example ${typeA} ${b64A}`,
      `[ported.example]:2222 ${typeA} ${b64A}`,
      `*.glob.example,!bad.glob.example ${typeB} ${b64B}`,
      `@revoked revoked.example ${typeA} ${b64A}`,
      `@cert-authority *.example ${typeB} ${b64B}`,
    ].join('\n');
    assert.deepEqual(knownHostsKeys(text, 'plain.example').trusted, [blobA]);
    assert.deepEqual(knownHostsKeys(text, knownHostsName('ported.example', 2222)).trusted, [blobA]);
    assert.deepEqual(knownHostsKeys(text, 'ported.example').trusted, []);
    assert.deepEqual(knownHostsKeys(text, 'x.glob.example').trusted, [blobB]);
    assert.deepEqual(knownHostsKeys(text, 'bad.glob.example').trusted, []);
    assert.deepEqual(knownHostsKeys(text, 'revoked.example').revoked, [blobA]);
    // ssh-keygen -H hashes the names the way ssh(1) looks them up.
    const kh = join(dir, 'known_hosts');
    await writeFile(kh, `[127.0.0.1]:2222 ${keyLine}\n`);
    await run('ssh-keygen', ['-H', '-f', kh]);
    const hashed = await readFile(kh, 'utf8');
    assert.match(hashed, /^\|1\|/);
    assert.deepEqual(knownHostsKeys(hashed, '[127.0.0.1]:2222').trusted, [blobA]);
    assert.deepEqual(knownHostsKeys(hashed, '[127.0.0.1]:2223').trusted, []);
  });
});
