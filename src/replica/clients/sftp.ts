/** Placeholder until the sftp backend lands: configs naming it fail with a clear error. */
import { configError, type Backend } from '../backend.js';

export const sftpBackend: Backend<never> = {
  type: 'sftp',
  keys: [],
  resolve({ keyPath }) {
    throw configError(keyPath, 'replica type "sftp" is not supported by this build of lsinit yet');
  },
  create() {
    throw new Error('unreachable');
  },
};
