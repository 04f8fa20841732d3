/**
 * Turning AWS SDK v3 errors into LsinitErrors: missing object → NOT_FOUND, bad credentials → AUTH,
 * missing bucket → REPLICA (permanent), everything else → REPLICA with `transient` from
 * `isTransient`. Messages name the replica and the operation, never a secret.
 */
import { LsinitError, notFound } from '../../errors.js';
import { isTransient } from '../retry.js';

const AUTH_NAMES = new Set([
  'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'InvalidToken', 'ExpiredToken',
  'TokenRefreshRequired', 'CredentialsProviderError', 'AllAccessDisabled', 'AccountProblem',
]);

export interface S3ErrorContext {
  display: string;
  bucket: string;
  /** e.g. "GET generations/…/snapshots/00000001.snapshot.lz4". */
  what: string;
  key?: string;
  /** Strings to blank out of any message (the secret key, a session token). */
  secrets: readonly string[];
}

interface SdkErrorLike {
  name?: string;
  message?: string;
  Code?: string;
  $metadata?: { httpStatusCode?: number };
}

export function s3ErrorName(err: unknown): string {
  const e = err as SdkErrorLike | undefined;
  return (typeof e?.Code === 'string' && e.Code) || (typeof e?.name === 'string' ? e.name : '');
}

export function s3Status(err: unknown): number | undefined {
  return (err as SdkErrorLike | undefined)?.$metadata?.httpStatusCode;
}

export function isS3NotFound(err: unknown): boolean {
  const name = s3ErrorName(err);
  return name === 'NoSuchKey' || name === 'NotFound' || (s3Status(err) === 404 && name !== 'NoSuchBucket');
}

export function redact(s: string, secrets: readonly string[]): string {
  let out = s;
  for (const secret of secrets) if (secret) out = out.split(secret).join('xxxxx');
  return out;
}

export function mapS3Error(err: unknown, ctx: S3ErrorContext): LsinitError {
  // Errors we raised ourselves (or a body stream's own LsinitError) keep their code.
  if (err instanceof LsinitError) return err;
  const name = s3ErrorName(err);
  const status = s3Status(err);
  const fields = { replica: ctx.display, bucket: ctx.bucket, ...(ctx.key !== undefined ? { key: ctx.key } : {}), ...(status ? { status } : {}), ...(name ? { s3Code: name } : {}) };
  if (isS3NotFound(err) && ctx.key !== undefined) return notFound(`s3 object s3://${ctx.bucket}/${ctx.key}`, fields);
  // Network failures come as plain Errors with an errno code (ECONNREFUSED): show the code.
  const errno = (err as { code?: unknown } | undefined)?.code;
  const label = name && name !== 'Error' ? name : typeof errno === 'string' ? errno : 'Error';
  const msg = (err as SdkErrorLike | undefined)?.message ?? String(err);
  const detail = redact(msg.startsWith(label) ? msg : `${label}: ${msg}`, ctx.secrets);
  const cause = err;
  if (name === 'NoSuchBucket') {
    return new LsinitError('LSINIT_ERR_REPLICA', `s3 replica ${ctx.display}: bucket "${ctx.bucket}" does not exist (${ctx.what})`, { fields, cause, transient: false });
  }
  if (typeof errno === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(errno)) {
    return new LsinitError('LSINIT_ERR_REPLICA', `s3 replica ${ctx.display}: ${ctx.what}: TLS certificate of the endpoint is not trusted (${errno}); fix the certificate, or set skip-verify: true for a test store`, { fields, cause, transient: false });
  }
  if (AUTH_NAMES.has(name) || status === 401 || status === 403) {
    return new LsinitError('LSINIT_ERR_AUTH', `s3 replica ${ctx.display}: access denied for bucket "${ctx.bucket}" (${ctx.what}): ${detail}`, { fields, cause, transient: false });
  }
  return new LsinitError('LSINIT_ERR_REPLICA', `s3 replica ${ctx.display}: ${ctx.what}: ${detail}`, { fields, cause, transient: isTransient(err) });
}
