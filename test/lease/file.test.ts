import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileLeaseStore } from '../../src/replica/lease/file.js';
import { LEASE_NAME } from '../../src/replica/lease/index.js';
import { runLeaseSuite } from './suite.js';

runLeaseSuite('file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lsinit-lease-file-'));
  const path = join(dir, 'replica');
  return {
    open: () => new FileLeaseStore({ path }),
    rawWrite: async (data) => {
      await mkdir(path, { recursive: true });
      await writeFile(join(path, LEASE_NAME), data);
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
});
