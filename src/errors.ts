/**
 * Typed errors with stable codes. The CLI turns them into one line and an exit code;
 * tests match on `code`, never on message text.
 */
export type ErrorCode =
  | 'LSINIT_ERR_USAGE'
  | 'LSINIT_ERR_CONFIG'
  | 'LSINIT_ERR_URL'
  | 'LSINIT_ERR_NOT_FOUND'
  | 'LSINIT_ERR_NO_BACKUPS'
  | 'LSINIT_ERR_EXISTS'
  | 'LSINIT_ERR_FORMAT'
  | 'LSINIT_ERR_CHECKSUM'
  /** age: an object the configured keys cannot open (other recipients, no identity, or not encrypted). */
  | 'LSINIT_ERR_DECRYPT'
  | 'LSINIT_ERR_INTEGRITY'
  | 'LSINIT_ERR_REPLICA'
  | 'LSINIT_ERR_AUTH'
  | 'LSINIT_ERR_DB'
  | 'LSINIT_ERR_LEASE'
  | 'LSINIT_ERR_INIT'
  | 'LSINIT_ERR_ABORTED';

export interface ErrorFields {
  [key: string]: unknown;
}

export class LsinitError extends Error {
  readonly code: ErrorCode;
  readonly fields: ErrorFields;
  /** True when retrying the same operation may succeed (timeouts, 5xx, dropped connections). */
  readonly transient: boolean;

  constructor(code: ErrorCode, message: string, options: { fields?: ErrorFields; cause?: unknown; transient?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LsinitError';
    this.code = code;
    this.fields = options.fields ?? {};
    this.transient = options.transient ?? false;
  }
}

export function isNotFound(err: unknown): boolean {
  return err instanceof LsinitError && err.code === 'LSINIT_ERR_NOT_FOUND';
}

export function notFound(what: string, fields: ErrorFields = {}): LsinitError {
  return new LsinitError('LSINIT_ERR_NOT_FOUND', `${what} not found`, { fields });
}

/** Message of any thrown value, for logs. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
