/** Placeholder until the abs backend lands: configs naming it fail with a clear error. */
import { configError, type Backend } from '../backend.js';

export const absBackend: Backend<never> = {
  type: 'abs',
  keys: [],
  resolve({ keyPath }) {
    throw configError(keyPath, 'replica type "abs" is not supported by this build of lsinit yet');
  },
  create() {
    throw new Error('unreachable');
  },
};
