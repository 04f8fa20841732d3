/**
 * A real S3 server for tests: `moto_server` (Python moto, preinstalled) on 127.0.0.1 and a free
 * port. moto keeps everything in memory and accepts any access key, so `restart()` comes back
 * empty: callers recreate their bucket (see `createBucket`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from 'node:https';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { makeCredentials, type S3Settings } from '../../src/replica/clients/s3-config.js';

export const MOTO_ACCESS_KEY_ID = 'AKIAMOTOTESTKEY00001';
/** Test secret: tests assert it never shows up in messages or display strings. */
export const MOTO_SECRET_ACCESS_KEY = 'moto-secret-DO-NOT-LEAK-7f3a9c1e5b';

export interface MotoServer {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
  /** Start again on the same port (empty: moto is in-memory). */
  restart(): Promise<void>;
  /** Create a bucket through the SDK (path style, any credentials). */
  createBucket(bucket: string): Promise<void>;
  /** Client settings for `bucket`/`path` on this server (path style, the test keys), plus overrides. */
  settings(bucket: string, path: string, over?: Partial<S3Settings>): S3Settings;
}

export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

async function waitReady(endpoint: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}: ${stderr()}`);
    // A TCP connect is enough: werkzeug binds only once the app is loaded (and it works for TLS).
    const { port } = new URL(endpoint);
    const ok = await new Promise<boolean>((res) => {
      const sock = connect(Number(port), '127.0.0.1', () => {
        sock.destroy();
        res(true);
      });
      sock.on('error', () => res(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`moto_server did not answer on ${endpoint} within 20 s: ${stderr()}`);
}

/**
 * `env` is passed to moto_server; `{ INITIAL_NO_AUTH_ACTION_COUNT: '0' }` makes moto check
 * signatures and access keys (unknown keys get 403 InvalidAccessKeyId). `tls` serves HTTPS with
 * moto's self-signed ad-hoc certificate (for skip-verify tests).
 */
export async function startMoto(opts: { port?: number; env?: Record<string, string>; tls?: boolean } = {}): Promise<MotoServer> {
  const port = opts.port ?? (await freePort());
  const endpoint = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  const start = async () => {
    let err = '';
    const c = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port), ...(opts.tls ? ['-s'] : [])], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...opts.env } });
    c.stderr!.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    child = c;
    await waitReady(endpoint, c, () => err);
  };

  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = once(c, 'exit');
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  };

  await start();
  return {
    endpoint,
    port,
    stop,
    async restart() {
      await stop();
      await start();
    },
    settings(bucket: string, path: string, over: Partial<S3Settings> = {}): S3Settings {
      return {
        bucket, path, region: 'us-east-1', endpoint, forcePathStyle: true, skipVerify: false, followRegionRedirects: false,
        credentials: makeCredentials(MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY), credentialSource: 'replica', ...over,
      };
    },
    async createBucket(bucket: string) {
      const s3 = new S3Client({
        region: 'us-east-1',
        endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: MOTO_ACCESS_KEY_ID, secretAccessKey: MOTO_SECRET_ACCESS_KEY },
        ...(opts.tls ? { requestHandler: { httpsAgent: new Agent({ rejectUnauthorized: false }) } } : {}),
      });
      try {
        await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      } finally {
        s3.destroy();
      }
    },
  };
}
