/**
 * Start/stop helper for the in-repo GCS JSON-API server (test/servers/gcs-server.ts).
 * One server per test file; each test takes a unique key prefix so tests never see each other's objects.
 */
import { randomBytes } from 'node:crypto';
import { GcsTestServer } from './gcs-server.js';

export interface RunningGcs {
  server: GcsTestServer;
  /** `http://127.0.0.1:PORT`, for the replica's `endpoint` key. */
  endpoint: string;
  bucket: string;
  /** A fresh, unique key prefix. */
  prefix(): string;
  stop(): Promise<void>;
}

export async function startGcs(opts: { bucket?: string } = {}): Promise<RunningGcs> {
  const server = new GcsTestServer();
  await server.start();
  const bucket = opts.bucket ?? 'lsinit-test';
  server.createBucket(bucket);
  return {
    server,
    endpoint: server.endpoint,
    bucket,
    prefix: () => `t-${randomBytes(8).toString('hex')}`,
    stop: () => server.stop(),
  };
}
