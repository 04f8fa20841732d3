import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileReplicaClient } from '../../src/replica/clients/file.js';
import { runConformance } from './suite.js';

runConformance('file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lsinit-conf-file-'));
  return { client: new FileReplicaClient({ path: join(dir, 'replica') }), cleanup: () => rm(dir, { recursive: true, force: true }) };
}, { requests: { replicaType: 'file', deletes: 2 } });
