/**
 * Timers as an injectable side effect (STYLE.md §5): schedulers take a `Timers` so that tests drive
 * their intervals and delays with a fake clock (test/helpers/fake-clock.ts) instead of sleeping.
 * Production wiring uses `realTimers`, Node's own.
 */

/** An opaque handle returned by `setTimeout`/`setInterval`. */
export type TimerHandle = object;

export interface Timers {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(h: TimerHandle): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(h: TimerHandle): void;
}

export const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
};

/**
 * Let `h` not keep the process alive, when it is a Node timer (a fake clock's handles have no
 * `unref` and need none): for timers that must never hold a process open on their own.
 */
export function unrefTimer<H extends TimerHandle>(h: H): H {
  (h as { unref?: () => void }).unref?.();
  return h;
}

/** `p`, or a rejection with `msg` once `ms` have passed first (at once when `ms` <= 0). */
export function withDeadline<T>(p: Promise<T>, ms: number, msg: string, timers: Timers = realTimers): Promise<T> {
  if (ms <= 0) return Promise.reject(new Error(msg));
  let t: TimerHandle | undefined;
  return Promise.race([p, new Promise<T>((_, rej) => (t = timers.setTimeout(() => rej(new Error(msg)), ms)))]).finally(() => timers.clearTimeout(t!));
}

/** Whether `p` settled (either way) within `ms`. */
export function settledWithin(p: Promise<unknown>, ms: number, timers: Timers = realTimers): Promise<boolean> {
  let t: TimerHandle | undefined;
  const done = p.then(() => true, () => true);
  return Promise.race([done, new Promise<boolean>((res) => (t = timers.setTimeout(() => res(false), Math.max(0, ms))))]).finally(() => timers.clearTimeout(t!));
}
