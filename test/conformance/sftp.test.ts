/**
 * The shared conformance suite against a real OpenSSH sshd on 127.0.0.1, twice: once with
 * password auth (URL form), once with key auth (config keys) and the host key pinned.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { sftpBackend } from '../../src/replica/clients/sftp.js';
import { startSshd, type Sshd } from '../servers/sshd.js';
import { runConformance } from './suite.js';

let sshd: Sshd;
let n = 0;

before(async () => {
  sshd = await startSshd({ name: 'conformance' });
});
after(async () => {
  await sshd?.cleanup();
});

function cleanupDir(dir: string) {
  // The server runs on this machine: remove the test's remote directory directly.
  return () => rm(dir, { recursive: true, force: true });
}

runConformance('sftp (password auth, url)', async () => {
  const dir = join(sshd.home, `pw-${++n}`);
  const { settings } = sftpBackend.resolve({ url: new URL(sshd.url(dir)), raw: {}, global: {}, env: {}, keyPath: 'test', cwd: '/' });
  return { client: sftpBackend.create(settings), cleanup: cleanupDir(dir) };
});

runConformance('sftp (key auth, pinned host key)', async () => {
  const dir = join(sshd.home, `key-${++n}`);
  const raw = { host: `127.0.0.1:${sshd.port}`, user: sshd.user, 'key-path': sshd.clientKeyPath, path: dir, 'host-key': sshd.hostKeyLine };
  const { settings, warnings } = sftpBackend.resolve({ raw, global: {}, env: {}, keyPath: 'test', cwd: '/' });
  if (warnings.length > 0) throw new Error(`unexpected warnings: ${warnings.join('; ')}`);
  return { client: sftpBackend.create(settings), cleanup: cleanupDir(dir) };
});
