/** Shared fuzz settings: FUZZ_RUNS scales every property (CI default 1), and a per-run timeout. */
import { LsinitError } from '../../src/errors.js';

export const SCALE = Math.max(0.01, Number(process.env['FUZZ_RUNS'] ?? '1') || 1);

/** numRuns for a property: base × FUZZ_RUNS (FUZZ_RUNS=20 for a long run). */
export function runs(base: number): number {
  return Math.max(1, Math.round(base * SCALE));
}

/** Seed from FUZZ_SEED to replay a failure fast-check reported. */
export const SEED = process.env['FUZZ_SEED'] !== undefined ? Number(process.env['FUZZ_SEED']) : undefined;

export function params(base: number): { numRuns: number; seed?: number } {
  return SEED === undefined ? { numRuns: runs(base) } : { numRuns: runs(base), seed: SEED };
}

/** Resolve fn within ms or fail: a parser must never hang on its input. */
export async function withinMs<T>(ms: number, fn: () => Promise<T> | T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      Promise.resolve().then(fn),
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`no answer within ${ms} ms (hang)`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Run fn; a thrown value must be an LsinitError (returned as such), anything else fails the property. */
export async function onlyLsinitErrors<T>(fn: () => Promise<T> | T, ms = 5000): Promise<T | LsinitError> {
  try {
    return await withinMs(ms, fn);
  } catch (err) {
    if (err instanceof LsinitError) return err;
    throw new Error(`threw a ${(err as Error)?.constructor?.name ?? typeof err} instead of an LsinitError: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
}
