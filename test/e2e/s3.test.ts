/** End to end through the CLI with an s3 replica on moto (scenarios in s3-abs-e2e.ts). */

import { S3ReplicaClient } from '../../src/replica/clients/s3.js';
import { MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY, startMoto } from '../servers/moto.js';
import { defineE2E } from './s3-abs-e2e.js';

const BUCKET = 'lsinit-e2e';

defineE2E('s3 (moto)', async () => {
  const moto = await startMoto();
  await moto.createBucket(BUCKET);
  return {
    type: 's3',
    port: moto.port,
    replicaYaml: (endpoint, prefix) => ['type: s3', `bucket: ${BUCKET}`, `path: ${prefix}`, `endpoint: ${endpoint}`, 'region: us-east-1'],
    // Credentials come from the environment, as in most deployments.
    env: { AWS_ACCESS_KEY_ID: MOTO_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: MOTO_SECRET_ACCESS_KEY },
    secret: MOTO_SECRET_ACCESS_KEY,
    client: (prefix) => new S3ReplicaClient(moto.settings(BUCKET, prefix)),
    classify: (r) => {
      if (r.method === 'GET' && r.query.get('list-type') === '2') return 'LIST';
      if (r.method === 'POST' && r.query.has('delete')) return 'DELETE';
      if (r.method === 'DELETE') return 'DELETE';
      if (r.method === 'PUT' || r.method === 'POST') return 'PUT';
      return 'GET';
    },
    stop: () => moto.stop(),
  };
});
