/** Time helpers with nanosecond precision (object mtimes and -timestamp need it; Date has ms only). */
import { LsinitError } from '../errors.js';
import type { TimeNs } from '../replica/client.js';

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|([+-])(\d{2}):(\d{2}))$/;

/** Parse an RFC 3339 timestamp (as Go's time.RFC3339 accepts it, fractional seconds allowed) to ns. */
export function parseRFC3339(s: string): TimeNs {
  const m = RFC3339.exec(s);
  if (!m) {
    throw new LsinitError('LSINIT_ERR_USAGE', `invalid timestamp ${JSON.stringify(s)}: want RFC 3339, e.g. 2024-01-02T15:04:05Z`);
  }
  const [, y, mo, d, h, mi, se, frac, , sign, oh, om] = m;
  // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear does not.
  const dt = new Date(0);
  dt.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  dt.setUTCHours(Number(h), Number(mi), Number(se), 0);
  const ms = dt.getTime();
  // Go's time.Parse refuses out-of-range fields (Feb 31, second 60) instead of rolling them over.
  const back = new Date(ms);
  if (Number.isNaN(ms) || Number(mo) < 1 || Number(mo) > 12 || back.getUTCDate() !== Number(d) || back.getUTCMonth() !== Number(mo) - 1 || Number(h) > 23 || Number(mi) > 59 || Number(se) > 59 || (sign && (Number(oh) > 23 || Number(om) > 59))) {
    throw new LsinitError('LSINIT_ERR_USAGE', `invalid timestamp ${JSON.stringify(s)}: date or time out of range`);
  }
  let ns = BigInt(ms) * 1_000_000n + BigInt((frac ?? '').padEnd(9, '0') || '0');
  if (sign) {
    const off = BigInt(Number(oh) * 3600 + Number(om) * 60) * 1_000_000_000n;
    ns = sign === '+' ? ns - off : ns + off;
  }
  return ns;
}

/** RFC 3339 in UTC with the fractional digits Go's RFC3339Nano would print (trailing zeros trimmed). */
export function formatRFC3339(ns: TimeNs): string {
  const ms = Number(ns / 1_000_000n);
  const base = new Date(ms).toISOString().slice(0, 19);
  const frac = (((ns % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${base}${frac ? `.${frac}` : ''}Z`;
}

/** Seconds-resolution RFC 3339 like Go's time.RFC3339 (list commands). */
export function formatRFC3339Sec(ns: TimeNs): string {
  return `${new Date(Number(ns / 1_000_000n)).toISOString().slice(0, 19)}Z`;
}

export function nowNs(): TimeNs {
  return BigInt(Date.now()) * 1_000_000n;
}

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Go's time.ParseDuration ("1s", "1m30s", "500ms", "-1h"), in ms; undefined on bad input. The one
 * duration parser of lsinit: flags and config keys alike. A bare number other than 0 is refused, as
 * Go's ParseDuration refuses it ("missing unit"): Litestream would read `sync-interval: 9` from YAML
 * as 9 nanoseconds, which nobody means (docs/configuration.md).
 */
export function parseDuration(v: string | number): number | undefined {
  if (typeof v === 'number') return v === 0 ? 0 : undefined;
  let s = v.trim();
  if (/^[-+]?0$/.test(s)) return 0;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '') return undefined;
  let total = 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) return undefined;
    total += Number(m[1]) * UNITS[m[2]!]!;
    pos = re.lastIndex;
  }
  // Go's ParseDuration rejects anything past int64 nanoseconds (~292 years); so do we.
  if (!Number.isFinite(total) || total > 9.2e12) return undefined;
  return sign * total;
}

/** Why `v` is not a duration, for an error message that names the flag or key. */
export function durationHint(v: string | number): string {
  const bare = typeof v === 'number' || /^\s*[-+]?\d+(\.\d*)?\s*$/.test(v);
  return `${bare ? `a number needs a unit, e.g. "${String(v).trim()}s"` : 'use Go duration syntax'} (500ms, 9s, 1m30s, 24h; no days)`;
}

/**
 * parseDuration for a flag or key: a usage error (flags) or config error (keys) naming `what`,
 * or when `min` is not met.
 */
export function requireDuration(v: string | number, what: string, opts: { code?: 'LSINIT_ERR_USAGE' | 'LSINIT_ERR_CONFIG'; min?: number } = {}): number {
  const ms = parseDuration(v);
  const code = opts.code ?? 'LSINIT_ERR_USAGE';
  const fields = { key: what, value: String(v) };
  if (ms === undefined) throw new LsinitError(code, `${what}: invalid duration ${JSON.stringify(v)}: ${durationHint(v)}`, { fields });
  if (opts.min !== undefined && ms < opts.min) throw new LsinitError(code, `${what}: ${opts.min <= 1 ? `must be greater than ${opts.min === 1 ? 0 : -1}` : `must be at least ${formatDuration(opts.min)}`}, got ${JSON.stringify(v)}`, { fields });
  return ms;
}

export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let rest = Math.abs(ms);
  const h = Math.floor(rest / 3_600_000);
  rest -= h * 3_600_000;
  const m = Math.floor(rest / 60_000);
  rest -= m * 60_000;
  if (h) parts.push(`${h}h`);
  if (h || m) parts.push(`${m}m`);
  parts.push(`${+(rest / 1000).toFixed(3)}s`);
  return (ms < 0 ? '-' : '') + parts.join('');
}
