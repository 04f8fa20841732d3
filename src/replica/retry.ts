/**
 * Bounded retry with exponential backoff and full jitter for transient store errors.
 * Permanent errors (auth, missing bucket, not found) are thrown at once.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { LsinitError } from '../errors.js';

export interface RetryOptions {
  attempts?: number;
  baseMs?: number;
  maxMs?: number;
  signal?: AbortSignal;
  /** Decides whether an error is worth retrying; default: `isTransient`. */
  isTransient?: (err: unknown) => boolean;
}

const TRANSIENT_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED',
  'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'ERR_SOCKET_CLOSED',
]);

/** Best-effort classification across SDKs: network errno codes, HTTP 5xx/429, throttling names. */
export function isTransient(err: unknown): boolean {
  if (err instanceof LsinitError) return err.transient;
  if (typeof err !== 'object' || err === null) return false;
  const e = err as Record<string, unknown> & { $metadata?: { httpStatusCode?: number }; cause?: unknown };
  const code = typeof e['code'] === 'string' ? (e['code'] as string) : undefined;
  if (code && TRANSIENT_CODES.has(code)) return true;
  const status = (e['statusCode'] ?? e['status'] ?? e.$metadata?.httpStatusCode) as number | undefined;
  if (typeof status === 'number' && (status >= 500 || status === 429 || status === 408)) return true;
  const name = typeof e['name'] === 'string' ? (e['name'] as string) : '';
  if (/Throttl|SlowDown|Timeout|RequestTimeTooSkewed|InternalError|ServiceUnavailable/.test(name)) return true;
  if (e.cause !== undefined && e.cause !== err) return isTransient(e.cause);
  return false;
}

export async function withRetry<T>(fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 5;
  const base = opts.baseMs ?? 100;
  const max = opts.maxMs ?? 5000;
  const transient = opts.isTransient ?? isTransient;
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || !transient(err) || opts.signal?.aborted) throw err;
      const delay = Math.random() * Math.min(max, base * 2 ** (i - 1));
      await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : undefined);
    }
  }
}
