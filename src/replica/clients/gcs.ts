/** Placeholder until the gcs backend lands: configs naming it fail with a clear error. */
import { configError, type Backend } from '../backend.js';

export const gcsBackend: Backend<never> = {
  type: 'gcs',
  keys: [],
  resolve({ keyPath }) {
    throw configError(keyPath, 'replica type "gcs" is not supported by this build of lsinit yet');
  },
  create() {
    throw new Error('unreachable');
  },
};
