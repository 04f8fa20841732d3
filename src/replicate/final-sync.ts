/**
 * The final sync of one replica at shutdown, within the deadline. Shutdown is when a store
 * outage hurts most (the next start may be elsewhere), so it tries as hard as the budget allows:
 *  - a lease left unconfirmed by store trouble is re-read and taken back if nobody else holds it;
 *  - an attempt that has not finished after half the time left (a request hung on a store that
 *    accepts connections and never answers) has the client's requests aborted and starts again:
 *    waiting on the hung request would spend the whole budget on one socket;
 *  - a failed attempt is tried again (up to 3 attempts) while time is left, except with `fast`
 *    (second stop signal).
 */
import { errorMessage, LsinitError } from '../errors.js';
import type { Replica } from '../replica/replica.js';
import { realTimers, type TimerHandle, type Timers } from '../util/timers.js';
import type { LeaseGuard } from './lease-guard.js';

export interface FinalSyncOptions {
  /** Epoch ms by which it must be over. */
  deadline: number;
  fast?: boolean;
  /** Take the lease if start-up could not (throws when held elsewhere). */
  ensureLease: () => Promise<void>;
  now?: () => number;
  /** The attempts' bounds and the pauses between them (default Node's). */
  timers?: Timers;
}

/** Shortest attempt before in-flight requests are aborted, and the pause between attempts. */
const MIN_ATTEMPT_MS = 1000;
const RETRY_PAUSE_MS = 300;
/**
 * Attempts that fail outright (the clients already retried each request): a store that refuses
 * must not hold the shutdown for the whole budget, one that answers 5xx for a moment gets a chance.
 */
const FAILED_ATTEMPTS = 3;

/**
 * Resolves once the replica holds everything the shadow WAL held when it began. Returns whether
 * nothing of ours is still in flight (only then may the lease be handed over).
 */
export async function finalSync(r: Replica, guard: LeaseGuard | undefined, opts: FinalSyncOptions): Promise<{ settled: boolean; error?: unknown }> {
  const now = opts.now ?? Date.now;
  const timers = opts.timers ?? realTimers;
  const sleep = (ms: number) => new Promise<void>((res) => timers.setTimeout(res, ms));
  const left = () => opts.deadline - now();
  // The goal is fixed now: another replica's snapshot may still copy newer commits to the shadow
  // WAL while this one ships (torture seed 600015), and those are not this stop's to wait for.
  const goal = r.localPos();
  if (guard?.state === 'lost') return { settled: true, error: new Error(guard.lostError?.message ?? 'replica lease lost') };
  // Unconfirmed (store trouble): re-read it and take it back if nobody else holds it. A re-read
  // may wait up to three request timeouts (10 s each with a long ttl): never past the deadline.
  while (guard?.state === 'unsure') {
    const confirmed = await within(guard.confirm(), left(), timers);
    if (confirmed !== false || guard.state !== 'unsure' || left() <= guard.recheckMs) break;
    await sleep(Math.min(500, guard.recheckMs));
  }
  let error: unknown;
  let failed = 0;
  for (;;) {
    const budget = left();
    if (budget <= 0) return { settled: true, error: error ?? deadlineError(r) };
    const run = r.idle().then(opts.ensureLease).then(() => r.sync(opts.fast ? { fast: true } : {}));
    const slot = opts.fast ? budget : Math.max(Math.min(MIN_ATTEMPT_MS, budget), Math.floor(budget / 2));
    const out = await settle(run, slot, timers);
    if (out.state === 'ok') {
      if (r.behind(goal)) return { settled: true, error: new Error(r.stats.lastError ?? 'replica is behind after the final sync') };
      return { settled: true };
    }
    if (out.state === 'timeout') {
      if (!r.client.abortInFlight) {
        // Nothing to abort with: wait for it (its own request timeout bounds it) until the deadline.
        const rest = await settle(run, Math.max(0, left()), timers);
        if (rest.state === 'ok') return { settled: true };
        return { settled: rest.state !== 'timeout', error: rest.state === 'error' ? rest.error : deadlineError(r) };
      }
      r.client.abortInFlight();
      const gone = await settle(run, Math.min(MIN_ATTEMPT_MS, Math.max(0, left())), timers);
      if (gone.state === 'timeout') return { settled: false, error: deadlineError(r) };
      if (gone.state === 'ok') return { settled: true };
      error = new Error(`an upload did not answer within ${slot} ms; aborted it (${errorMessage(gone.error)})`);
    } else {
      error = out.error;
      if (opts.fast || isPermanent(out.error) || ++failed >= FAILED_ATTEMPTS) return { settled: true, error };
    }
    if (left() <= RETRY_PAUSE_MS) return { settled: true, error };
    await sleep(RETRY_PAUSE_MS);
  }
}

function isPermanent(err: unknown): boolean {
  return err instanceof LsinitError && err.code === 'LSINIT_ERR_LEASE' && !err.transient;
}

function deadlineError(r: Replica): Error {
  return new Error(`final sync of replica ${r.name} did not finish before the shutdown deadline`);
}

/** `p`'s value, or undefined when it has not settled within `ms`. */
function within<T>(p: Promise<T>, ms: number, timers: Timers): Promise<T | undefined> {
  let t: TimerHandle | undefined;
  return Promise.race([p, new Promise<undefined>((res) => (t = timers.setTimeout(() => res(undefined), Math.max(0, ms))))]).finally(() => t && timers.clearTimeout(t));
}

type Settled = { state: 'ok' } | { state: 'error'; error: unknown } | { state: 'timeout' };

function settle(p: Promise<unknown>, ms: number, timers: Timers): Promise<Settled> {
  let t: TimerHandle | undefined;
  return Promise.race([
    p.then((): Settled => ({ state: 'ok' }), (error: unknown): Settled => ({ state: 'error', error })),
    new Promise<Settled>((res) => (t = timers.setTimeout(() => res({ state: 'timeout' }), ms))),
  ]).finally(() => t && timers.clearTimeout(t));
}
