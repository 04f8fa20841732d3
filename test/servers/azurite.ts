/**
 * A real Azure Blob server for tests: azurite-blob (npm devDependency) on 127.0.0.1, in memory.
 * The port is read from its stdout ("successfully listens on http://127.0.0.1:PORT"), printed even
 * with --silent. `--skipApiVersionCheck` is required (the SDK is newer than azurite's API list).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';

/** Azurite's well-known development account (public, documented by Microsoft). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface AzuriteServer {
  /** Service URL with the account as its path, e.g. http://127.0.0.1:PORT/devstoreaccount1. */
  endpoint: string;
  port: number;
  accountName: string;
  accountKey: string;
  stop(): Promise<void>;
  /** Start again on the same port (empty: in-memory persistence). */
  restart(): Promise<void>;
  createContainer(name: string): Promise<void>;
}

const BIN = resolve(fileURLToPath(new URL('../../node_modules/.bin/azurite-blob', import.meta.url)));

export async function startAzurite(): Promise<AzuriteServer> {
  // Run in a temp dir so nothing azurite writes lands in the working tree (--location cannot be
  // combined with --inMemoryPersistence).
  const location = await mkdtemp(join(tmpdir(), 'lsinit-azurite-'));
  let child: ChildProcess | undefined;
  let port = 0;

  const start = async () => {
    await mkdir(location, { recursive: true }); // stop() removed it
    const c = spawn(BIN, [
      '--blobHost', '127.0.0.1', '--blobPort', String(port), '--inMemoryPersistence', '--skipApiVersionCheck',
      '--silent', '--disableTelemetry',
    ], { stdio: ['ignore', 'pipe', 'pipe'], cwd: location });
    child = c;
    let out = '';
    port = await new Promise<number>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`azurite did not start within 20 s: ${out}`)), 20_000);
      const onData = (d: Buffer) => {
        out += d.toString();
        const m = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          c.stdout!.off('data', onData);
          res(Number(m[1]));
        }
      };
      c.stdout!.on('data', onData);
      c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      c.once('exit', (code) => {
        clearTimeout(timer);
        rej(new Error(`azurite exited with ${code}: ${out}`));
      });
    });
    c.stdout!.resume();
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
  const endpoint = () => `http://127.0.0.1:${port}/${AZURITE_ACCOUNT}`;
  return {
    get endpoint() {
      return endpoint();
    },
    get port() {
      return port;
    },
    accountName: AZURITE_ACCOUNT,
    accountKey: AZURITE_KEY,
    async stop() {
      await stop();
      await rm(location, { recursive: true, force: true });
    },
    async restart() {
      await stop();
      await start();
    },
    async createContainer(name: string) {
      const svc = new BlobServiceClient(endpoint(), new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY));
      await svc.getContainerClient(name).createIfNotExists();
    },
  };
}
