/** Duration flags of init mode (`-shutdown-timeout 9s`): the shared Go-style parser, with a usage error naming the flag. Returns ms. */
import { LsinitError } from '../errors.js';
import { parseDuration as parseGoDuration } from '../util/time.js';

export function parseDuration(text: string, flag: string): number {
  const ms = /^\s*-?\d+\s*$/.test(text) && text.trim() !== '0' ? undefined : parseGoDuration(text);
  if (ms === undefined || ms < 0) {
    throw new LsinitError('LSINIT_ERR_USAGE', `${flag}: invalid duration "${text}" (use e.g. 9s, 500ms, 1m30s)`, {
      fields: { flag, value: text },
    });
  }
  return Math.round(ms);
}
