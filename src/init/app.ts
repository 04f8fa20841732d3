/**
 * Starts the app with raw child_process.spawn (not execa: its cleanup and forceKillAfterDelay rely on
 * signal-exit's re-raise, which does nothing at PID 1, and do not apply to kill(sig) anyway).
 * stdio is inherited: no pipes, so a grandchild holding stdout can never hold up shutdown, and we wait
 * on 'exit', never 'close'.
 */
import { spawn } from 'node:child_process';
import { errorMessage } from '../errors.js';
import { activationSpawn } from './listen.js';
import { exitCodeOf } from './signals.js';

export type AppEnd =
  | { kind: 'exit'; code: number | null; signal: NodeJS.Signals | null; exitCode: number }
  | { kind: 'spawn-error'; errno: string; message: string; exitCode: number };

export interface App {
  readonly pid: number | undefined;
  readonly ended: Promise<AppEnd>;
  alive(): boolean;
  /** Sends `sig` to the app, or to its whole process group. False if it was already gone. */
  kill(sig: NodeJS.Signals, group: boolean): boolean;
}

export interface StartAppOptions {
  env: NodeJS.ProcessEnv;
  /** detached: libuv calls setsid(), so the app leads its own session and process group. */
  processGroup: boolean;
  cwd?: string;
  /** Socket-activation fds to pass on (see listen.ts); 0 for none. */
  listenFds?: number;
}

/** tini's codes: 127 command not found, 126 found but not executable, 1 anything else. */
function spawnErrorCode(errno: string): number {
  if (errno === 'ENOENT') return 127;
  if (errno === 'EACCES' || errno === 'EISDIR' || errno === 'ENOEXEC') return 126;
  return 1;
}

function spawnErrorMessage(cmd: string, errno: string, err: unknown): string {
  if (errno === 'ENOENT') return `cannot start ${JSON.stringify(cmd)}: command not found (or its interpreter is missing)`;
  if (errno === 'EACCES') return `cannot start ${JSON.stringify(cmd)}: permission denied (not executable?)`;
  return `cannot start ${JSON.stringify(cmd)}: ${errorMessage(err)}`;
}

export function startApp(argv: readonly string[], opts: StartAppOptions): App {
  const [cmd, ...args] = argv as [string, ...string[]];
  const activation = opts.listenFds !== undefined && opts.listenFds > 0 ? activationSpawn(argv, opts.listenFds) : undefined;
  const child = spawn(activation?.file ?? cmd, activation?.args ?? args, {
    stdio: activation?.stdio ?? 'inherit',
    env: opts.env,
    detached: opts.processGroup,
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
  });
  let done = false;
  const ended = new Promise<AppEnd>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolve({ kind: 'exit', code, signal, exitCode: exitCodeOf(code, signal) });
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      // 'error' also fires for a failed kill(); only a spawn failure (no pid) ends the app.
      if (child.pid !== undefined) return;
      done = true;
      const errno = err.code ?? 'UNKNOWN';
      resolve({ kind: 'spawn-error', errno, message: spawnErrorMessage(cmd, errno, err), exitCode: spawnErrorCode(errno) });
    });
  });
  return {
    pid: child.pid,
    ended,
    // child.killed means "a signal was sent", not "it died": check the exit fields instead.
    alive: () => !done && child.exitCode === null && child.signalCode === null && child.pid !== undefined,
    kill(sig, group) {
      const pid = child.pid;
      if (pid === undefined || done) return false;
      try {
        process.kill(group ? -pid : pid, sig);
        return true;
      } catch {
        return false; // ESRCH: it exited between our check and the kill
      }
    },
  };
}
