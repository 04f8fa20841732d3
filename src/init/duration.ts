/** Go's time.ParseDuration subset used by flags: `9s`, `500ms`, `1m30s`, `1.5s`, `0`. Returns ms. */
import { LsinitError } from '../errors.js';

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(text: string, flag: string): number {
  const s = text.trim();
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let ms = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (m === null) break;
    ms += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    pos = re.lastIndex;
  }
  if (pos === 0 || pos !== s.length) {
    throw new LsinitError('LSINIT_ERR_USAGE', `${flag}: invalid duration "${text}" (use e.g. 9s, 500ms, 1m30s)`, {
      fields: { flag, value: text },
    });
  }
  return Math.round(ms);
}
