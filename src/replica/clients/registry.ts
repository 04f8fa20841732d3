/** Every replica backend, by type. One file per backend in this folder. */
import type { Backend } from '../backend.js';
import { absBackend } from './abs.js';
import { fileBackend } from './file-backend.js';
import { gcsBackend } from './gcs.js';
import { s3Backend } from './s3.js';
import { sftpBackend } from './sftp.js';

export const backends: Readonly<Record<string, Backend<any>>> = {
  file: fileBackend,
  s3: s3Backend,
  abs: absBackend,
  gcs: gcsBackend,
  sftp: sftpBackend,
};

export function backendFor(type: string): Backend<any> | undefined {
  return Object.hasOwn(backends, type) ? backends[type] : undefined;
}
