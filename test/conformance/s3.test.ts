import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { S3ReplicaClient } from '../../src/replica/clients/s3.js';
import { startMoto, type MotoServer } from '../servers/moto.js';
import { runConformance } from './suite.js';

const BUCKET = 'lsinit-conformance';
let moto: MotoServer;

before(async () => {
  moto = await startMoto();
  await moto.createBucket(BUCKET);
});
after(async () => {
  await moto?.stop();
});

runConformance('s3 (moto)', async () => ({
  // A fresh prefix per test: the tests share one bucket.
  client: new S3ReplicaClient(moto.settings(BUCKET, `conf/${randomBytes(6).toString('hex')}`)),
}), { requests: { replicaType: 's3', deletes: 1 } }); // DeleteObjects: one batch
