/**
 * Turning `@google-cloud/storage` failures into LsinitErrors: 404 bucket vs object, 401/403 and
 * credential-loading failures as AUTH, 5xx/429/dropped connections as transient. Messages name the
 * bucket and key, never a token: the raw error (whose request config holds the Authorization
 * header) is not chained.
 */
import { errorMessage, LsinitError, notFound } from '../../errors.js';
import { isTransient } from '../retry.js';

/** google-auth-library failures: no ADC, an unreadable key file, a refused token exchange. */
const CREDENTIALS_RE = /default credentials|The file at .* does not exist|invalid_grant|unauthorized_client|Could not refresh access token|No key or keyFile set/i;

function statusOf(err: unknown): number | undefined {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown; response?: { status?: number }; status?: number };
  // ApiError puts the HTTP status in a numeric `code`; gaxios errors in `response.status`/`status`.
  return typeof e.code === 'number' ? e.code : e.response?.status ?? e.status;
}

export function gcsError(err: unknown, ctx: { bucket: string; op: string; key: string; fields?: Record<string, unknown> }): LsinitError {
  if (err instanceof LsinitError) return err;
  const status = statusOf(err);
  const code = (err as { code?: unknown } | null)?.code;
  const msg = redact(errorMessage(err));
  const where = `gcs bucket "${ctx.bucket}"`;
  const f = { ...ctx.fields, bucket: ctx.bucket, key: ctx.key, op: ctx.op, ...(status ? { status } : {}) };
  const cause = new Error(msg);
  if (status === 404) {
    if (/bucket does not exist/i.test(msg)) {
      return new LsinitError('LSINIT_ERR_REPLICA', `${where} does not exist`, { fields: f, cause, transient: false });
    }
    return notFound(`gcs object gs://${ctx.bucket}/${ctx.key}`, f);
  }
  if (status === 401 || status === 403 || CREDENTIALS_RE.test(msg)) {
    return new LsinitError('LSINIT_ERR_AUTH', `${where}: not authorized for ${ctx.op} ${ctx.key} (credentials come from GOOGLE_APPLICATION_CREDENTIALS or ADC; check the account's roles): ${msg}`, { fields: f, cause, transient: false });
  }
  if (code === 'FILE_NO_UPLOAD' || code === 'CONTENT_DOWNLOAD_MISMATCH') {
    // A hash mismatch is corruption in transit: a new attempt sends or fetches the bytes again.
    return new LsinitError('LSINIT_ERR_CHECKSUM', `${where}: ${ctx.op} ${ctx.key}: checksum mismatch: ${msg}`, { fields: f, cause, transient: true });
  }
  const transient = isTransient(err) || (status !== undefined && isRetryableStatus(status)) || /^Retry (total time )?limit exceeded/.test(msg);
  return new LsinitError('LSINIT_ERR_REPLICA', `${where}: ${ctx.op} ${ctx.key}: ${msg}`, { fields: f, cause, transient });
}

export function stalledError(ctx: { bucket: string; op: string; key: string }, ms: number): LsinitError {
  return new LsinitError('LSINIT_ERR_REPLICA', `gcs bucket "${ctx.bucket}": ${ctx.op} ${ctx.key}: no progress for ${ms} ms`, {
    fields: { ...ctx }, transient: true,
  });
}

function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

/**
 * Retry test for the library's resumable-upload loop. It passes `{code: httpStatus}` for responses
 * and `{errors: [{reason: errno}]}` for dropped connections (ECONNREFUSED is not in its default list).
 */
export function libRetryable(e: { code?: unknown; errors?: { reason?: unknown }[] }): boolean {
  if (typeof e.code === 'number') return isRetryableStatus(e.code);
  return isTransient(e) || (e.errors ?? []).some((x) => typeof x.reason === 'string' && isTransient({ code: x.reason }));
}

function redact(s: string): string {
  return s
    .replace(/(Bearer\s+)[A-Za-z0-9._~+/=-]+/gi, '$1xxxxx')
    .replace(/((?:access_token|upload_id|private_key|client_secret)["'=:\s]+)[^&"',\s]+/gi, '$1xxxxx')
    .slice(0, 500);
}
