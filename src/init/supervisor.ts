/**
 * The container init: restore → start replication → run the app → forward signals → on the app's end,
 * clean up leftovers → final WAL sync → return the exit code. See docs/init.md for the tables.
 *
 * Order matters (Litestream #364, LiteFS #419): the app starts only after restore finished and
 * replication holds its position, so its first write is replicated.
 */
import { errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { ControllerLike, SyncFailure } from '../replicate/types.js';
import { startApp, type App, type AppEnd } from './app.js';
import { DEFAULT_KILL_GRACE_MS, DEFAULT_SHUTDOWN_TIMEOUT_MS, fmtMs, planBudget } from './budget.js';
import { stopLeftovers } from './leftovers.js';
import { listenFdCount } from './listen.js';
import { disabledReaper, startReaper, trackNodeChildren, type Reaper } from './reaper.js';
import { SignalHub, type SignalSource } from './signal-hub.js';
import { STOP_SIGNALS, SWALLOWED_SIGNALS, signalNumber, type SignalRewrite } from './signals.js';

/** Exit code when the app exited 0 but the final sync failed (EX_SOFTWARE). */
export const DEFAULT_SYNC_FAILURE_EXIT_CODE = 70;
/** Exit code when restore or replication start-up failed and the app was not started. */
export const STARTUP_FAILURE_EXIT_CODE = 1;

export interface SuperviseOptions {
  /** The app's argv; argv[0] is looked up in env.PATH. */
  argv: readonly string[];
  /** null: pure init (like tini), no restore and no final sync. */
  controller: ControllerLike | null;
  log: Logger;
  /** Total budget from the first stop signal to our exit (default 9 s: Docker's 10 s minus a margin). */
  shutdownTimeoutMs?: number;
  /** Grace for leftover descendants between SIGTERM and SIGKILL (default 2 s; shortened to fit). */
  killGraceMs?: number;
  signalRewrite?: SignalRewrite;
  /** Run the app in its own session/process group and send every forwarded signal to the group. */
  processGroup?: boolean;
  /** The app's environment, already stripped by the caller if asked (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Used when the app exited 0 but the final sync failed (default 70); a non-zero app code wins. */
  syncFailureExitCode?: number;
  cwd?: string;
  /** Injected: signal intake (default a new SignalHub), reaper (false: none), clock, fast-close bound. */
  signals?: SignalSource;
  reaper?: Reaper | false;
  now?: () => number;
  fastCloseMs?: number;
  /** Called once with the app's exit code (128+N for signal N) when it ends (metrics). */
  onAppEnd?: (exitCode: number) => void;
}

type Phase = 'starting' | 'running' | 'stopping' | 'syncing';

/**
 * Races `promises` against a timeout. The timer stays referenced while the race is open (a final sync
 * waiting on an unref'd socket must not let the event loop drain, nodejs/node#28502) and is cleared after.
 */
async function within<T>(ms: number, promises: Promise<T>[]): Promise<T | 'timeout'> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((r) => (t = setTimeout(() => r('timeout'), Math.max(0, ms))));
  try {
    return await Promise.race([...promises, timeout]);
  } finally {
    clearTimeout(t);
  }
}

/**
 * Our log lines go to stdout/stderr, which may be a pipe whose reader is gone (a log shipper that
 * died, `| head`). Node ignores SIGPIPE and reports EPIPE as an 'error' event, which, unhandled,
 * would crash the init and take the app down with it. Losing log lines is the lesser evil.
 */
let stdioGuarded = false;
function guardStdio(): void {
  if (stdioGuarded) return;
  stdioGuarded = true;
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
}

export async function supervise(opts: SuperviseOptions): Promise<number> {
  guardStdio();
  const log = opts.log;
  const now = opts.now ?? Date.now;
  const controller = opts.controller;
  const processGroup = opts.processGroup ?? false;
  const rewrite: SignalRewrite = opts.signalRewrite ?? new Map();
  const budget = planBudget(opts.shutdownTimeoutMs ?? DEFAULT_SHUTDOWN_TIMEOUT_MS);
  const killGraceMs = opts.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  const fastCloseMs = opts.fastCloseMs ?? 1000;
  const signals = opts.signals ?? new SignalHub();
  trackNodeChildren(); // leftovers must never include a child Node spawned, reaper or not
  const reaper = opts.reaper === false ? disabledReaper('disabled') : (opts.reaper ?? startReaper({ log }));

  let phase: Phase = 'starting';
  let app: App | undefined;
  let stopAt: number | undefined; // start of the shutdown budget
  let stopSignal: NodeJS.Signals | undefined;
  let stopsReceived = 0;
  let fast = false;
  let onFast: () => void = () => {};
  const fastAbort = new Promise<'fast'>((r) => (onFast = () => r('fast')));
  // A stop before the app started must not wait for a restore or a lease on a store that hangs.
  let onStop: () => void = () => {};
  const stopRequested = new Promise<'stop'>((r) => (onStop = () => r('stop')));
  let appKillTimer: NodeJS.Timeout | undefined;
  // Resolves if the app outlives its SIGKILL (uninterruptible sleep on a dead NFS mount, say): the
  // final sync must not wait on it.
  let onStuck: () => void = () => {};
  const stuck = new Promise<'stuck'>((r) => (onStuck = () => r('stuck')));

  const forward = (sig: NodeJS.Signals) => {
    const target = rewrite.get(sig) ?? sig;
    if (target === 0 || app === undefined) {
      log.debug('signal dropped', { signal: sig });
      return;
    }
    const sent = app.kill(target, processGroup);
    const fields = { signal: sig, ...(target === sig ? {} : { as: target }), to: processGroup ? 'group' : 'app' };
    if (STOP_SIGNALS.has(sig)) log.info(sent ? 'forwarded stop signal' : 'app already gone', fields);
    else log.debug(sent ? 'forwarded signal' : 'app already gone', fields);
  };

  const killApp = (why: string) => {
    if (app?.alive() !== true) return;
    log.warn(why, { pid: app.pid, to: processGroup ? 'group' : 'app' });
    app.kill('SIGKILL', processGroup);
    setTimeout(onStuck, Math.min(1000, budget.syncReserveMs / 2)).unref();
  };

  signals.subscribe((sig) => {
    if (SWALLOWED_SIGNALS.includes(sig)) return log.debug('signal ignored', { signal: sig });
    const isStop = STOP_SIGNALS.has(sig);
    if (isStop) stopsReceived++;
    if (isStop && stopsReceived >= 2) {
      fast = true;
      log.warn('second stop signal: killing the app and skipping final-sync retries, exiting now', { signal: sig, phase });
      killApp('killing the app now (second stop signal)');
      onFast();
      return;
    }
    if (isStop && stopAt === undefined) {
      stopAt = now();
      onStop();
      stopSignal = sig;
      const appLeft = budget.appMs;
      log.info('stop signal received, shutting down', { signal: sig, app_budget: fmtMs(appLeft), total_budget: fmtMs(budget.totalMs) });
      if (app?.alive() === true) {
        appKillTimer = setTimeout(() => killApp(`app still running ${fmtMs(appLeft)} after ${sig}: sending SIGKILL`), appLeft);
      }
    } else if (isStop) {
      log.info('stop signal received during shutdown; send another to skip final-sync retries', { signal: sig, phase });
    }
    if (phase === 'running' && app?.alive() === true) forward(sig);
    else if (phase === 'starting') log.info('signal received before the app started', { signal: sig });
  });

  const startedAt = now();
  try {
    const describe = controller?.describe() ?? [];
    log.info('lsinit supervising', {
      pid: process.pid,
      mode: process.pid === 1 ? 'pid1' : reaper.mode === 'subreaper' ? 'subreaper' : 'child',
      reaper: reaper.mode,
      command: opts.argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' '),
      shutdown_timeout: fmtMs(budget.totalMs),
      app_budget: fmtMs(budget.appMs),
      sync_reserve: fmtMs(budget.syncReserveMs),
      kill_grace: fmtMs(killGraceMs),
      process_group: processGroup,
      dbs: describe.length,
    });
    for (const d of describe) log.info('replicating database', { db: d.db, replicas: d.replicas.join(', ') });
    if (reaper.mode === 'none' && reaper.reason !== 'disabled') log.warn('zombie reaping unavailable', { reason: reaper.reason });

    // 1. Restore and start replication; a failure here means the app never starts.
    const early = await startReplication();
    if (early !== undefined) return early;

    // 2. Run the app.
    const env = opts.env ?? process.env;
    const listenFds = listenFdCount(env, process.pid);
    if (listenFds > 0) log.info('socket activation: passing fds on and setting LISTEN_PID to the app', { fds: listenFds });
    app = startApp(opts.argv, { env, processGroup, listenFds, ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }) });
    phase = 'running';
    if (app.pid !== undefined) log.info('app started', { pid: app.pid, startup_ms: now() - startedAt });
    let end: AppEnd | 'stuck' = await Promise.race([app.ended, stuck]);
    if (end === 'stuck') {
      log.error('app still not gone after SIGKILL; going on with the final sync', { pid: app.pid });
      end = { kind: 'exit', code: null, signal: 'SIGKILL', exitCode: 137 };
    }
    phase = 'stopping';
    if (appKillTimer !== undefined) clearTimeout(appKillTimer);
    stopAt ??= now();
    const appCode = end.exitCode;
    opts.onAppEnd?.(appCode);
    if (end.kind === 'spawn-error') log.error(end.message, { errno: end.errno, exit_code: appCode });
    else log.info('app exited', { code: end.code ?? undefined, signal: end.signal ?? undefined, exit_code: appCode, after_stop_ms: stopSignal === undefined ? undefined : now() - stopAt });

    // 3. Leftover descendants: TERM → grace (never past the app budget) → KILL, reaped before the sync.
    const graceMs = fast ? 0 : Math.max(0, Math.min(killGraceMs, stopAt + budget.appMs - now()));
    await stopLeftovers({
      log,
      graceMs,
      hurry: () => fast,
      reap: () => reaper.scan(),
      ...(processGroup && app.pid !== undefined ? { pgrp: app.pid } : {}),
    });

    // 4. Final sync until the end of the budget: at least the reserved slot, more if the app was quick.
    if (controller === null) return done(appCode, []);
    phase = 'syncing';
    // The reserve normally holds; only processes stuck past SIGKILL can eat into it.
    const deadline = Math.max(stopAt + budget.totalMs, now() + 250);
    const failures = await closeController(fast, deadline);
    return done(appCode, failures);
  } finally {
    if (appKillTimer !== undefined) clearTimeout(appKillTimer);
    signals.dispose();
    reaper.stop();
  }

  /** Restore, then start replication. Returns an exit code when the app must not be started. */
  async function startReplication(): Promise<number | undefined> {
    const stopCode = () => 128 + signalNumber(stopSignal ?? 'SIGTERM');
    if (stopAt !== undefined || controller === null) {
      if (stopAt !== undefined) log.info('stop requested before the app started; not starting it', { signal: stopSignal });
      return stopAt === undefined ? undefined : stopCode();
    }
    const steps = [
      ['restore', () => controller.restoreMissing()],
      ['start replication', () => controller.start()],
    ] as const;
    for (const [step, run] of steps) {
      let outcome: 'ok' | 'fast' | 'stop';
      try {
        outcome = await Promise.race([run().then(() => 'ok' as const), fastAbort, stopRequested]);
      } catch (err) {
        log.error(`${step} failed; not starting the app`, { error: errorMessage(err), code: (err as { code?: unknown }).code });
        if (step === 'start replication') await closeController(true, now() + budget.syncReserveMs);
        return STARTUP_FAILURE_EXIT_CODE;
      }
      if (outcome === 'fast') return stopCode();
      if (stopAt !== undefined) {
        log.info('stop requested before the app started; not starting it', { signal: stopSignal, ...(outcome === 'stop' ? { during: step } : { after: step }) });
        // Interrupted (a store that does not answer, say), the step is left running: the process exits.
        if (step === 'start replication' || outcome === 'stop') await closeController(false, stopAt + budget.totalMs);
        return stopCode();
      }
    }
    return undefined;
  }

  function done(appCode: number, failures: SyncFailure[]): number {
    let code = appCode;
    if (failures.length > 0) {
      for (const f of failures) log.error('final sync failed', { db: f.db, replica: f.replica, error: f.error });
      code = appCode !== 0 ? appCode : (opts.syncFailureExitCode ?? DEFAULT_SYNC_FAILURE_EXIT_CODE);
    }
    log.info('lsinit exiting', { exit_code: code, shutdown_ms: stopAt === undefined ? undefined : now() - stopAt, zombies_reaped: reaper.reaped });
    return code;
  }

  /** controller.close() bounded by its deadline; a second stop signal re-issues it with fast: true. */
  async function closeController(isFast: boolean, deadline: number): Promise<SyncFailure[]> {
    if (controller === null) return [];
    const t0 = now();
    const run = (f: boolean, d: number) =>
      controller.close({ deadline: d, fast: f }).then(
        (r) => r.failures,
        (err: unknown): SyncFailure[] => [{ db: '*', replica: '*', error: errorMessage(err) }],
      );
    const late = (d: number): SyncFailure[] => [{ db: '*', replica: '*', error: `final sync did not finish by the deadline (${fmtMs(d - t0)})` }];
    let result: SyncFailure[] | 'timeout' | 'fast';
    if (isFast) {
      const d = Math.min(deadline, now() + fastCloseMs);
      result = await within(d - now() + 100, [run(true, d)]);
      if (result === 'timeout') return late(d);
      if (result.length === 0) log.info('final sync complete', { duration_ms: now() - t0, fast: true });
      return result;
    }
    const first = run(false, deadline);
    result = await within<SyncFailure[] | 'fast'>(deadline - now() + 200, [first, fastAbort]);
    if (result === 'fast') {
      // The contract allows close() to be called again while the first call runs: skip retries now.
      const d = Math.min(deadline, now() + fastCloseMs);
      result = await within(d - now() + 100, [first, run(true, d)]);
      if (result === 'timeout') return late(d);
    }
    if (result === 'timeout') return late(deadline);
    if (result.length === 0) log.info('final sync complete', { duration_ms: now() - t0 });
    return result;
  }
}
