import { LsinitError } from '../errors.js';
import type { Logger } from '../log/logger.js';
export async function replicateCommand(_argv: string[], _log: Logger): Promise<number> {
  throw new LsinitError('LSINIT_ERR_USAGE', 'replicate: not implemented yet');
}
