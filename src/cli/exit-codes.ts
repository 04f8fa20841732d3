/**
 * The exit code of each error class, printed with its stable code by the CLI entry (main.ts) as
 * `lsinit: LSINIT_ERR_CONFIG: dbs[0].path: ...`. The table is docs/errors.md; keep the two in sync
 * (test/cli/errors.test.ts checks it). Litestream 0.3 exits 1 for every error; lsinit keeps 1 for
 * runtime failures and gives the errors a script can act on their own codes, after BSD sysexits(3)
 * where one fits and Go's flag package (2) for usage.
 */
import { LsinitError, errorMessage, type ErrorCode } from '../errors.js';

export const EXIT_USAGE = 2;
export const EXIT_CONFIG = 78; // EX_CONFIG
export const EXIT_AUTH = 77; // EX_NOPERM
export const EXIT_LEASE = 75; // EX_TEMPFAIL: another instance holds the replica; try again later

export const EXIT_CODES: Record<ErrorCode, number> = {
  LSINIT_ERR_USAGE: EXIT_USAGE,
  LSINIT_ERR_CONFIG: EXIT_CONFIG,
  LSINIT_ERR_URL: EXIT_CONFIG,
  LSINIT_ERR_AUTH: EXIT_AUTH,
  LSINIT_ERR_LEASE: EXIT_LEASE,
  LSINIT_ERR_NOT_FOUND: 1,
  LSINIT_ERR_NO_BACKUPS: 1,
  LSINIT_ERR_EXISTS: 1,
  LSINIT_ERR_FORMAT: 1,
  LSINIT_ERR_CHECKSUM: 1,
  LSINIT_ERR_DECRYPT: 1,
  LSINIT_ERR_INTEGRITY: 1,
  LSINIT_ERR_REPLICA: 1,
  LSINIT_ERR_DB: 1,
  LSINIT_ERR_INIT: 1,
  LSINIT_ERR_ABORTED: 1,
};

/** The exit code for an error that ended a command; 1 for anything that is not an LsinitError (a bug). */
export function exitCodeOf(err: unknown): number {
  return err instanceof LsinitError ? EXIT_CODES[err.code] : 1;
}

/** The one line the CLI prints for an error: `lsinit: CODE: message` (no code for an unexpected error). */
export function errorLine(err: unknown): string {
  return err instanceof LsinitError ? `lsinit: ${err.code}: ${err.message}` : `lsinit: ${errorMessage(err)}`;
}
