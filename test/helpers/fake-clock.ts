/**
 * A fake clock and timers (src/util/timers.ts) for schedulers under test: time moves only when
 * the test calls `advance()`, which runs every timer due on the way, in order, with the clock
 * set to each one's time. Nothing sleeps.
 */
import type { TimerHandle, Timers } from '../../src/util/timers.js';

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
  every: number | undefined;
}

export class FakeClock implements Timers {
  private t: number;
  private seq = 0;
  private readonly pending = new Set<Pending>();

  constructor(start = 1_000_000) {
    this.t = start;
  }

  /** The clock (ms); pass as `now` (and `wallNow`). */
  readonly now = (): number => this.t;

  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, undefined);
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    return this.add(fn, ms, Math.max(1, ms));
  }

  clearTimeout(h: TimerHandle): void {
    this.pending.delete(h as Pending);
  }

  clearInterval(h: TimerHandle): void {
    this.pending.delete(h as Pending);
  }

  /** Timers waiting to run. */
  get size(): number {
    return this.pending.size;
  }

  /**
   * Move the clock `ms` forward, running each timer due on the way at its own time (intervals as
   * often as they fall due). `between` runs after each timer, e.g. to let promises it started settle.
   */
  async advance(ms: number, between: () => Promise<void> = () => new Promise((r) => setImmediate(r))): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      let next: Pending | undefined;
      for (const p of this.pending) if (p.at <= end && (!next || p.at < next.at || (p.at === next.at && p.seq < next.seq))) next = p;
      if (!next) break;
      this.t = Math.max(this.t, next.at);
      if (next.every === undefined) this.pending.delete(next);
      else {
        next.at += next.every;
        next.seq = this.seq++;
      }
      next.fn();
      await between();
    }
    this.t = end;
  }

  private add(fn: () => void, ms: number, every: number | undefined): Pending {
    const p: Pending = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, every };
    this.pending.add(p);
    return p;
  }
}
