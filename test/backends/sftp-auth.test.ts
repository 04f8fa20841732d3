/** sftp authentication and host-key pinning against a real sshd: what connects, what fails, and that secrets stay out of errors. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspect, promisify } from 'node:util';
import { LsinitError } from '../../src/errors.js';
import type { ReplicaClient } from '../../src/replica/client.js';
import { sftpBackend } from '../../src/replica/clients/sftp.js';
import { isTransient } from '../../src/replica/retry.js';
import { startSshd, type Sshd } from '../servers/sshd.js';

const run = promisify(execFile);
let sshd: Sshd;
let dir: string;
let wrongKeyLine: string;
let wrongClientKey: string;

before(async () => {
  sshd = await startSshd({ name: 'auth' });
  dir = await mkdtemp(join(tmpdir(), 'lsinit-sftp-auth-'));
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'wrong')]);
  wrongKeyLine = (await readFile(join(dir, 'wrong.pub'), 'utf8')).trim();
  wrongClientKey = join(dir, 'wrong');
});
after(async () => {
  await sshd?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

function client(raw: Record<string, unknown>, withUrl = true): ReplicaClient {
  const r = sftpBackend.resolve({
    ...(withUrl ? { url: new URL(sshd.url(join(sshd.home, 'auth'))) } : {}),
    raw,
    global: {},
    env: {},
    keyPath: 'test',
    cwd: '/',
  });
  return sftpBackend.create(r.settings);
}

async function connects(c: ReplicaClient) {
  try {
    assert.deepEqual(await c.generations(), []);
  } finally {
    await c.close();
  }
}

async function fails(c: ReplicaClient): Promise<LsinitError> {
  try {
    await c.generations();
  } catch (err) {
    assert.ok(err instanceof LsinitError, `want LsinitError, got ${inspect(err)}`);
    return err;
  } finally {
    await c.close();
  }
  assert.fail('connected, want a failure');
}

/** Everything an error carries that could end up in a log line. */
function everything(err: unknown): string {
  return `${inspect(err, { depth: 10, showHidden: true })} ${JSON.stringify(err)}`;
}

describe('sftp host-key pinning', () => {
  it('connects when host-key is the server key line', () => connects(client({ 'host-key': sshd.hostKeyLine })));

  it('connects when host-key is the server key fingerprint', () => connects(client({ 'host-key': sshd.hostKeyFingerprint })));

  it('connects when a known_hosts file lists the server, plain or hashed', async () => {
    const kh = join(dir, 'known_hosts');
    await writeFile(kh, `[127.0.0.1]:${sshd.port} ${sshd.hostKeyLine}\n`);
    await connects(client({ 'known-hosts-path': kh }));
    await run('ssh-keygen', ['-H', '-f', kh]);
    await connects(client({ 'known-hosts-path': kh }));
  });

  it('refuses a server whose key differs from the pinned one: LSINIT_ERR_AUTH naming both fingerprints', async () => {
    const err = await fails(client({ 'host-key': wrongKeyLine }));
    assert.equal(err.code, 'LSINIT_ERR_AUTH');
    assert.equal(err.transient, false);
    assert.equal(isTransient(err), false);
    assert.match(err.message, /host key mismatch/);
    assert.ok(err.message.includes(`${sshd.user}@127.0.0.1:${sshd.port}`), err.message);
    assert.ok(err.message.includes(sshd.hostKeyFingerprint), err.message);
    assert.equal(err.fields['presented'], sshd.hostKeyFingerprint);
    assert.ok(!everything(err).includes(sshd.password));
  });

  it('refuses a server missing from known_hosts, and one whose key is @revoked there', async () => {
    const kh = join(dir, 'known_hosts_other');
    await writeFile(kh, `[127.0.0.1]:${sshd.port + 1} ${sshd.hostKeyLine}\n@revoked [127.0.0.1]:${sshd.port} ${sshd.hostKeyLine}\n[127.0.0.1]:${sshd.port} ${sshd.hostKeyLine}\n`);
    const revoked = await fails(client({ 'known-hosts-path': kh }));
    assert.equal(revoked.code, 'LSINIT_ERR_AUTH');
    await writeFile(kh, `[127.0.0.1]:${sshd.port + 1} ${sshd.hostKeyLine}\n`);
    const missing = await fails(client({ 'known-hosts-path': kh }));
    assert.equal(missing.code, 'LSINIT_ERR_AUTH');
    assert.match(missing.message, /no key for \[127\.0\.0\.1\]:\d+ in /);
  });

  it('connects without a pin, and resolve says so in a warning', async () => {
    const r = sftpBackend.resolve({ url: new URL(sshd.url('/tmp')), raw: {}, global: {}, env: {}, keyPath: 'test', cwd: '/' });
    assert.match(r.warnings.join('\n'), /host key not verified; set host-key/);
    await connects(sftpBackend.create(r.settings));
  });
});

describe('sftp host-key pinning on a server with several host keys', () => {
  let multi: Sshd;
  before(async () => {
    multi = await startSshd({ name: 'multikey', extraHostKeyTypes: ['rsa', 'ecdsa'] });
  });
  after(() => multi?.cleanup());
  const pinned = (line: string) => {
    const r = sftpBackend.resolve({ url: new URL(multi.url('/tmp')), raw: { 'host-key': line }, global: {}, env: {}, keyPath: 't', cwd: '/' });
    return sftpBackend.create(r.settings);
  };

  // SSH uses the client's first host-key algorithm the server also has: pinning the RSA key must
  // make the client ask for RSA, or the server would present its ed25519 key and be refused.
  it('connects with the RSA key pinned', () => connects(pinned(multi.extraHostKeys['rsa']!)));
  it('connects with the ECDSA key pinned', () => connects(pinned(multi.extraHostKeys['ecdsa']!)));
  it('connects with the ed25519 key pinned', () => connects(pinned(multi.hostKeyLine)));
  it('refuses when only another server\'s RSA key is pinned', async () => {
    const other = sshd.extraHostKeys['rsa'] ?? (await readFile(join(dir, 'wrong_rsa.pub'), 'utf8').catch(async () => {
      await run('ssh-keygen', ['-q', '-t', 'rsa', '-N', '', '-f', join(dir, 'wrong_rsa')]);
      return readFile(join(dir, 'wrong_rsa.pub'), 'utf8');
    }));
    const err = await fails(pinned(other.trim()));
    assert.equal(err.code, 'LSINIT_ERR_AUTH');
    assert.match(err.message, /host key mismatch/);
  });
});

describe('sftp authentication', () => {
  it('a wrong password is a permanent LSINIT_ERR_AUTH naming user@host, without the password', async () => {
    const wrong = 'wrong-pa55word-xyzzy';
    const err = await fails(client({ host: `127.0.0.1:${sshd.port}`, user: sshd.user, password: wrong, path: '/tmp' }, false));
    assert.equal(err.code, 'LSINIT_ERR_AUTH');
    assert.equal(err.transient, false);
    assert.equal(isTransient(err), false);
    assert.ok(err.message.includes(`${sshd.user}@127.0.0.1:${sshd.port}`), err.message);
    assert.ok(!everything(err).includes(wrong), 'password leaked into the error');
  });

  it('a key the server does not know is LSINIT_ERR_AUTH', async () => {
    const err = await fails(client({ host: `127.0.0.1:${sshd.port}`, user: sshd.user, 'key-path': wrongClientKey, path: '/tmp' }, false));
    assert.equal(err.code, 'LSINIT_ERR_AUTH');
    assert.match(err.message, /publickey/);
  });

  it('key auth works, and so does password auth from the environment', async () => {
    await connects(client({ host: `127.0.0.1:${sshd.port}`, user: sshd.user, 'key-path': sshd.clientKeyPath, path: join(sshd.home, 'k') }, false));
    const r = sftpBackend.resolve({ raw: { host: `127.0.0.1:${sshd.port}`, user: sshd.user, path: '/tmp' }, global: {}, env: { LITESTREAM_SFTP_PASSWORD: sshd.password }, keyPath: 't', cwd: '/' });
    await connects(sftpBackend.create(r.settings));
  });

  it('an unreadable key-path is LSINIT_ERR_CONFIG naming the file', async () => {
    const err = await fails(client({ host: `127.0.0.1:${sshd.port}`, user: sshd.user, 'key-path': join(dir, 'nope'), path: '/tmp' }, false));
    assert.equal(err.code, 'LSINIT_ERR_CONFIG');
    assert.ok(err.message.includes(join(dir, 'nope')));
  });

  it('a closed port is a transient LSINIT_ERR_REPLICA', async () => {
    const r = sftpBackend.resolve({ url: new URL(`sftp://u:secretpw@127.0.0.1:1/x`), raw: {}, global: {}, env: {}, keyPath: 't', cwd: '/' });
    const err = await fails(sftpBackend.create(r.settings));
    assert.equal(err.code, 'LSINIT_ERR_REPLICA');
    assert.equal(isTransient(err), true);
    assert.ok(!everything(err).includes('secretpw'));
  });
});
