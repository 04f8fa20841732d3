import { chown, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { sftpBackend } from '../../src/replica/clients/sftp.js';
import { LEASE_NAME } from '../../src/replica/lease/index.js';
import { SFTPLeaseStore } from '../../src/replica/lease/sftp.js';
import { startSshd, type Sshd } from '../servers/sshd.js';
import { runLeaseSuite } from './suite.js';

let sshd: Sshd;
let n = 0;

before(async () => {
  sshd = await startSshd({ name: 'lease' });
});
after(async () => {
  await sshd?.cleanup();
});

runLeaseSuite('sftp (sshd)', async () => {
  // A directory that does not exist yet: create() makes the parents.
  const dir = join(sshd.home, `lease-${++n}`, 'replica');
  const raw = { host: `127.0.0.1:${sshd.port}`, user: sshd.user, 'key-path': sshd.clientKeyPath, path: dir, 'host-key': sshd.hostKeyLine };
  const { settings } = sftpBackend.resolve({ raw, global: {}, env: {}, keyPath: 'test', cwd: '/' });
  return {
    open: () => new SFTPLeaseStore(settings),
    // The server runs on this machine: write straight to its disk, as another process would.
    rawWrite: async (data) => {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, LEASE_NAME), data);
      // Owned by the sftp user, as if another lsinit had written it over SFTP.
      const { uid, gid } = await stat(sshd.home);
      for (const p of [join(dir, '..'), dir, join(dir, LEASE_NAME)]) await chown(p, uid, gid);
    },
    cleanup: () => rm(join(sshd.home, `lease-${n}`), { recursive: true, force: true }),
  };
});
