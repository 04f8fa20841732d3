import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { after, before } from 'node:test';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { S3Settings } from '../../src/replica/clients/s3-config.js';
import { LEASE_NAME } from '../../src/replica/lease/index.js';
import { S3LeaseStore } from '../../src/replica/lease/s3.js';
import { MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY, startMoto, type MotoServer } from '../servers/moto.js';
import { runLeaseSuite } from './suite.js';

const BUCKET = 'lsinit-lease';
let moto: MotoServer;
let raw: S3Client;

before(async () => {
  moto = await startMoto();
  await moto.createBucket(BUCKET);
  raw = new S3Client({ region: 'us-east-1', endpoint: moto.endpoint, forcePathStyle: true, credentials: { accessKeyId: MOTO_ACCESS_KEY_ID, secretAccessKey: MOTO_SECRET_ACCESS_KEY } });
});
after(async () => {
  raw?.destroy();
  await moto?.stop();
});

runLeaseSuite('s3 (moto)', async () => {
  const settings: S3Settings = moto.settings(BUCKET, `lease/${randomBytes(6).toString('hex')}`);
  return {
    open: () => new S3LeaseStore(settings),
    rawWrite: async (data) => {
      await raw.send(new PutObjectCommand({ Bucket: BUCKET, Key: posix.join(settings.path, LEASE_NAME), Body: data }));
    },
  };
});
