/**
 * The shutdown budget: one deadline G from the first stop signal (or from the app's own exit) to
 * lsinit's exit, split so the final WAL sync always keeps its slot:
 *
 *   [ app drains ........ | SIGKILL app, leftovers, reap | final sync ........ ] ≤ G
 *   0                  appMs                         (appMs)              G
 *
 * The sync reserve is max(1 s, 25 % of G), capped at G. Docker's 10 s grace → G = 9 s (1 s margin)
 * → app 6.75 s, sync 2.25 s. Fly's 5 s → G = 4 s → app 3 s, sync 1 s.
 */
export interface Budget {
  totalMs: number;
  /** The app is SIGKILLed this long after the first stop signal. */
  appMs: number;
  /** Reserved at the end for the final sync. */
  syncReserveMs: number;
}

export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 9000;
/** Fly.io's default kill_timeout is 5 s (fly.io/docs, "Graceful VM exits"), minus a margin. */
export const FLY_SHUTDOWN_TIMEOUT_MS = 4000;

/**
 * G when neither the flag nor the config sets it. On Fly.io (FLY_MACHINE_ID is set in every Machine,
 * fly.io/docs/runtime-environment) Docker's 9 s would outlive the default 5 s kill_timeout and the
 * final sync would be SIGKILLed, the one thing G exists to prevent. Elsewhere (Docker 10 s, K8s and
 * Render 30 s) 9 s fits.
 */
export function defaultShutdownTimeout(env: NodeJS.ProcessEnv): { ms: number; platform?: string } {
  if (env.FLY_MACHINE_ID) return { ms: FLY_SHUTDOWN_TIMEOUT_MS, platform: 'fly.io' };
  return { ms: DEFAULT_SHUTDOWN_TIMEOUT_MS };
}
export const DEFAULT_KILL_GRACE_MS = 2000;

export function planBudget(totalMs: number): Budget {
  const syncReserveMs = Math.min(totalMs, Math.max(1000, Math.round(totalMs * 0.25)));
  return { totalMs, appMs: totalMs - syncReserveMs, syncReserveMs };
}

export function fmtMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : ms >= 1000 ? `${(ms / 1000).toFixed(2).replace(/0+$/, '')}s` : `${ms}ms`;
}
