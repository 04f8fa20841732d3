import { after, before } from 'node:test';
import { GcsReplicaClient } from '../../src/replica/clients/gcs.js';
import { startGcs, type RunningGcs } from '../servers/gcs.js';
import { runConformance } from './suite.js';

let gcs: RunningGcs;
before(async () => {
  gcs = await startGcs();
});
after(async () => {
  await gcs.stop();
});

runConformance('gcs', async () => ({
  client: new GcsReplicaClient({ bucket: gcs.bucket, path: gcs.prefix(), endpoint: gcs.endpoint, projectId: 'test' }),
}));
