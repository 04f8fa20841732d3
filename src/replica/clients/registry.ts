/**
 * Every replica backend, by type. Config resolution is cheap and loaded here; each backend's
 * client module (and its cloud SDK) is imported only when a client of that type is first used
 * (see ../lazy.ts). One file per backend in this folder.
 */
import type { Backend } from '../backend.js';
import { LazyClient } from '../lazy.js';
import { ABS_KEYS, ABS_SECRET_ENV, resolveABS, type ABSSettings } from './abs-config.js';
import { fileBackend } from './file-backend.js';
import { GCS_KEYS, resolveGcs, type GcsSettings } from './gcs-config.js';
import { S3_KEYS, S3_SECRET_ENV, resolveS3, type S3Settings } from './s3-config.js';
import { sftpBackend } from './sftp.js';

const s3: Backend<S3Settings> = {
  type: 's3',
  keys: S3_KEYS,
  resolve: resolveS3,
  secretEnv: S3_SECRET_ENV,
  create: (s) => new LazyClient('s3', async () => (await import('./s3.js')).s3Backend.create(s)),
};

const abs: Backend<ABSSettings> = {
  type: 'abs',
  keys: ABS_KEYS,
  resolve: resolveABS,
  secretEnv: ABS_SECRET_ENV,
  create: (s) => new LazyClient('abs', async () => (await import('./abs.js')).absBackend.create(s)),
};

const gcs: Backend<GcsSettings> = {
  type: 'gcs',
  keys: GCS_KEYS,
  resolve: resolveGcs,
  secretEnv: ['GOOGLE_APPLICATION_CREDENTIALS'],
  create: (s) => new LazyClient('gcs', async () => (await import('./gcs.js')).gcsBackend.create(s)),
};

export const backends: Readonly<Record<string, Backend<any>>> = {
  file: fileBackend,
  s3,
  abs,
  gcs,
  sftp: sftpBackend,
};

export function backendFor(type: string): Backend<any> | undefined {
  return Object.hasOwn(backends, type) ? backends[type] : undefined;
}
