/** Unknown and missing config keys: the warnings and errors that name them and the key that was likely meant. */
import type { LsinitError } from '../errors.js';
import { configError } from '../replica/backend.js';

/** One warning per key not in `allowed` (Litestream ignores them silently), with the likely intended key. */
export function unknownKeyWarnings(raw: Record<string, unknown>, allowed: readonly string[], keyPath: string): string[] {
  return unknownKeys(raw, allowed).map((k) => {
    const near = nearestKey(k, allowed);
    return `${keyPath ? `${keyPath}.` : ''}${k}: unknown key, ignored (${near ? `did you mean ${near}?` : 'check the spelling'})`;
  });
}

function unknownKeys(raw: Record<string, unknown>, allowed: readonly string[]): string[] {
  return Object.keys(raw).filter((k) => !allowed.includes(k));
}

/** The allowed key a misspelt one most likely meant (`db` → `dbs`, `replica` → `replicas`): edit distance ≤ 2. */
function nearestKey(k: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const a of allowed) {
    const d = editDistance(k.toLowerCase(), a);
    if (d < bestD) [best, bestD] = [a, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * A required list that is missing: the error names it and the unknown keys found in its place, so
 * `db:` for `dbs:` or `replica:` for `replicas:` is a config error, not a silent no-op.
 */
export function missingList(raw: Record<string, unknown>, key: string, allowed: readonly string[], keyPath: string, what: string): LsinitError {
  const unknown = unknownKeys(raw, allowed);
  const named = unknown.map((k) => `"${k}"${nearestKey(k, allowed) === key ? ` (did you mean ${key}?)` : ''}`);
  const found = named.length ? `; found unknown key${named.length > 1 ? 's' : ''} ${named.join(', ')}` : '';
  return configError(keyPath ? `${keyPath}.${key}` : key, `missing: ${what}${found}`);
}

