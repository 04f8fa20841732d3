/**
 * Owns lsinit's signal listeners. A listener is what makes a Node PID 1 react at all (the kernel drops
 * default-disposition signals sent to a namespace's init), what keeps SIGUSR1 from opening the
 * inspector, and what replaces Node's SIGINT/SIGTERM "re-raise and die" default (a no-op at PID 1).
 * Signals that arrive before the supervisor subscribes (while the config loads) are queued, not lost.
 */
import { FORWARDED_SIGNALS, SWALLOWED_SIGNALS } from './signals.js';

export interface SignalSource {
  /** Subscribe; queued signals are delivered at once, in arrival order. */
  subscribe(handler: (sig: NodeJS.Signals) => void): void;
  dispose(): void;
}

export class SignalHub implements SignalSource {
  private handler: ((sig: NodeJS.Signals) => void) | undefined;
  private queue: NodeJS.Signals[] = [];
  private readonly listeners = new Map<NodeJS.Signals, () => void>();

  constructor(signals: readonly NodeJS.Signals[] = [...FORWARDED_SIGNALS, ...SWALLOWED_SIGNALS]) {
    for (const sig of signals) {
      const listener = () => {
        if (this.handler === undefined) this.queue.push(sig);
        else this.handler(sig);
      };
      this.listeners.set(sig, listener);
      process.on(sig, listener);
    }
  }

  subscribe(handler: (sig: NodeJS.Signals) => void): void {
    this.handler = handler;
    const queued = this.queue;
    this.queue = [];
    for (const sig of queued) handler(sig);
  }

  dispose(): void {
    for (const [sig, listener] of this.listeners) process.off(sig, listener);
    this.listeners.clear();
    this.handler = undefined;
  }
}
