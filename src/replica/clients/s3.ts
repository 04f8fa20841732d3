/** Placeholder until the s3 backend lands: configs naming it fail with a clear error. */
import { configError, type Backend } from '../backend.js';

export const s3Backend: Backend<never> = {
  type: 's3',
  keys: [],
  resolve({ keyPath }) {
    throw configError(keyPath, 'replica type "s3" is not supported by this build of lsinit yet');
  },
  create() {
    throw new Error('unreachable');
  },
};
