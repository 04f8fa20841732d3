/**
 * Which signals lsinit forwards, which it swallows, and how a child's end becomes an exit code.
 * The choices and their reasons are in docs/init.md (signal table); keep the two in sync.
 */
import { constants } from 'node:os';
import { LsinitError } from '../errors.js';

/**
 * Forwarded to the app, each exactly once. Everything catchable except:
 * - SIGCHLD (lsinit's own: zombie reaping),
 * - SIGTTIN/SIGTTOU (swallowed, below),
 * - SIGPIPE, SIGXFSZ, SIGXCPU: raised by the kernel about lsinit's *own* writes and CPU limit; forwarding
 *   them would kill the app because lsinit's stderr broke (Node already ignores SIGPIPE),
 * - SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS: fault signals (tini and catatonit leave them
 *   alone too; Node says JS listeners are unsafe for real faults),
 * - SIGKILL, SIGSTOP: cannot be caught.
 * SIGUSR1 is here on purpose: a listener is what stops Node from opening its inspector on port 9229.
 */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = [
  'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGCONT', 'SIGALRM',
  'SIGVTALRM', 'SIGPROF', 'SIGPWR', 'SIGURG', 'SIGIO', 'SIGSTKFLT', 'SIGTSTP',
];

/**
 * Caught and dropped, so lsinit itself is never stopped by terminal job control (tini and catatonit
 * ignore them for the same reason). Forwarding them would stop the app when lsinit writes to a tty.
 */
export const SWALLOWED_SIGNALS: readonly NodeJS.Signals[] = ['SIGTTIN', 'SIGTTOU'];

/**
 * Signals that start the shutdown budget. SIGINT is Fly.io's default kill_signal; SIGQUIT is accepted by
 * Fly too. A second one during shutdown skips retries and exits at once.
 */
export const STOP_SIGNALS: ReadonlySet<NodeJS.Signals> = new Set<NodeJS.Signals>(['SIGTERM', 'SIGINT', 'SIGQUIT']);

/** A rewrite target: a signal, or 0 to drop it (dumb-init's `-r s:0`). */
export type RewriteTarget = NodeJS.Signals | 0;
export type SignalRewrite = ReadonlyMap<NodeJS.Signals, RewriteTarget>;

const NUMBERS = constants.signals as Record<string, number | undefined>;

export function signalNumber(sig: NodeJS.Signals): number {
  const n = NUMBERS[sig];
  if (n === undefined) throw new LsinitError('LSINIT_ERR_USAGE', `unknown signal ${sig}`);
  return n;
}

/** Accepts `TERM`, `SIGTERM`, `sigterm` or `15`; `0` only when `allowZero`. */
export function parseSignal(text: string, allowZero = false): RewriteTarget {
  const t = text.trim().toUpperCase();
  if (allowZero && (t === '0' || t === 'SIG0')) return 0;
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    const name = Object.keys(NUMBERS).find((k) => NUMBERS[k] === n);
    if (name !== undefined) return name as NodeJS.Signals;
  } else {
    const name = t.startsWith('SIG') ? t : `SIG${t}`;
    if (NUMBERS[name] !== undefined) return name as NodeJS.Signals;
  }
  throw new LsinitError('LSINIT_ERR_USAGE', `unknown signal "${text}"`, { fields: { signal: text } });
}

/** Parses `INT:TERM` pairs (flags) and `{ SIGINT: 'SIGTERM' }` maps (config) into one rewrite table. */
export function parseRewrite(pairs: readonly string[], fromConfig: Record<string, string> = {}): Map<NodeJS.Signals, RewriteTarget> {
  const out = new Map<NodeJS.Signals, RewriteTarget>();
  const add = (from: string, to: string, origin: string, code: 'LSINIT_ERR_USAGE' | 'LSINIT_ERR_CONFIG') => {
    let f: RewriteTarget;
    let t: RewriteTarget;
    try {
      f = parseSignal(from);
      t = parseSignal(to, true);
    } catch (err) {
      throw new LsinitError(code, `${origin}: ${(err as Error).message}`, { fields: { value: `${from}:${to}` } });
    }
    if (f === 0 || !FORWARDED_SIGNALS.includes(f)) {
      throw new LsinitError(code, `${origin}: ${String(f)} is not forwarded, so it cannot be rewritten`, { fields: { signal: f } });
    }
    out.set(f, t);
  };
  for (const [from, to] of Object.entries(fromConfig)) add(from, String(to), `init.signal-rewrite.${from}`, 'LSINIT_ERR_CONFIG');
  for (const pair of pairs) {
    const m = /^([^:]+):([^:]+)$/.exec(pair);
    if (m === null) {
      throw new LsinitError('LSINIT_ERR_USAGE', `-signal-rewrite "${pair}": expected FROM:TO, e.g. INT:TERM`, { fields: { value: pair } });
    }
    add(m[1] as string, m[2] as string, `-signal-rewrite "${pair}"`, 'LSINIT_ERR_USAGE');
  }
  return out;
}

/** The shell convention every init emulates: the code, or 128 + signal number for a signalled child. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code & 0xff;
  if (signal !== null) return (128 + (NUMBERS[signal] ?? 0)) & 0xff;
  return 1;
}
