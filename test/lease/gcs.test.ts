import { posix } from 'node:path';
import { after, before } from 'node:test';
import { Storage } from '@google-cloud/storage';
import { GcsLeaseStore } from '../../src/replica/lease/gcs.js';
import { LEASE_NAME } from '../../src/replica/lease/index.js';
import { startGcs, type RunningGcs } from '../servers/gcs.js';
import { runLeaseSuite } from './suite.js';

let gcs: RunningGcs;
before(async () => {
  gcs = await startGcs();
});
after(async () => {
  await gcs?.stop();
});

runLeaseSuite('gcs (test server)', async () => {
  const settings = { bucket: gcs.bucket, path: gcs.prefix(), endpoint: gcs.endpoint, projectId: 'test' };
  return {
    open: () => new GcsLeaseStore(settings),
    rawWrite: async (data) => {
      const storage = new Storage({ apiEndpoint: gcs.endpoint, projectId: 'test' });
      await storage.bucket(gcs.bucket).file(posix.join(settings.path, LEASE_NAME)).save(Buffer.from(data), { resumable: false });
    },
  };
});
