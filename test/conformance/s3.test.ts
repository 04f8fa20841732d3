import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { makeCredentials } from '../../src/replica/clients/s3-config.js';
import { S3ReplicaClient } from '../../src/replica/clients/s3.js';
import { MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY, startMoto, type MotoServer } from '../servers/moto.js';
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
  client: new S3ReplicaClient({
    bucket: BUCKET,
    // A fresh prefix per test: the tests share one bucket.
    path: `conf/${randomBytes(6).toString('hex')}`,
    region: 'us-east-1',
    endpoint: moto.endpoint,
    forcePathStyle: true,
    skipVerify: false,
    followRegionRedirects: false,
    credentials: makeCredentials(MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY),
    credentialSource: 'replica',
  }),
}));
