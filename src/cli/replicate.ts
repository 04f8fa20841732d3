/** `lsinit replicate [-config PATH] [-exec CMD] [-no-expand-env]` and `lsinit replicate DB_PATH URL...`. */
import { configFromArgs } from '../config/load.js';
import { applyLeaseFlags } from '../config/lease-flags.js';
import { secretValues } from '../config/secrets.js';
import type { Config } from '../config/types.js';
import type { ControllerLike, SyncFailure } from '../replicate/types.js';
import { LsinitError, errorMessage } from '../errors.js';
import { createLogger, type Logger } from '../log/logger.js';
import { requireDuration } from '../util/time.js';
import { noLateFlags, parseFlags, str, usage, type FlagSpec } from '../util/flags.js';
import { CONFIG_FLAGS, readConfigFromFlags } from './sources.js';

const SPECS: Record<string, FlagSpec> = {
  ...CONFIG_FLAGS,
  exec: { type: 'string', help: 'run this command as a supervised child; replication stops when it exits' },
  'shutdown-timeout': { type: 'string', help: 'total budget for the final sync after a stop signal (default 9s)' },
  addr: { type: 'string', help: 'serve /metrics and /healthz on HOST:PORT (overrides addr:; ":9090" = every interface)' },
  'lease-wait': { type: 'bool', help: 'when another instance holds a replica lease, wait for it (up to -lease-max-wait) instead of exiting' },
  'lease-max-wait': { type: 'string', help: 'longest wait for a replica lease with -lease-wait (default 5m)' },
  'no-lease': { type: 'bool', help: 'do not take the single-writer lease (lsinit-lease.json) on any replica' },
};

export function loggerFor(config: Config): Logger {
  const stream = config.logging.stderr ? process.stderr : process.stdout;
  return createLogger({ level: config.logging.level, type: config.logging.type, write: (l) => void stream.write(l), redact: secretValues(config) });
}

/** What close() may run past its deadline (its last lease release, a store close) before the stop stops waiting. */
export const CLOSE_GRACE_MS = 1000;

/**
 * controller.close() bounded by its deadline plus a grace: whatever the engine is doing (a call
 * with no timeout, a store that never answers), a stop ends. What is cut off stays as after a
 * second stop signal: leases expire at their ttl, the next start ships what was not shipped.
 */
export async function closeWithin(controller: Pick<ControllerLike, 'close'>, deadline: number, log: Logger, graceMs = CLOSE_GRACE_MS): Promise<SyncFailure[]> {
  let t: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (t = setTimeout(() => r('late'), Math.max(0, deadline - Date.now()) + graceMs)));
  const out = await Promise.race([controller.close({ deadline }), late]).finally(() => clearTimeout(t));
  if (out !== 'late') return out.failures;
  log.error('shutdown did not finish by its deadline; exiting without waiting for it', { grace_ms: graceMs });
  return [{ db: '*', replica: '*', error: 'final sync did not finish by the shutdown deadline' }];
}

export async function replicateCommand(argv: string[], _log: Logger): Promise<number> {
  const p = parseFlags(argv, SPECS, 'replicate');
  if (p.help) {
    process.stdout.write(usage('replicate', '[flags] | DB_PATH REPLICA_URL [REPLICA_URL...]', SPECS));
    return 0;
  }
  let config: Config;
  if (p.args.length > 0) {
    noLateFlags(p.args, 'replicate', 'DB_PATH REPLICA_URL...');
    if (str(p.flags, 'config')) throw new LsinitError('LSINIT_ERR_USAGE', 'replicate: cannot specify a replica URL and -config together');
    if (p.args.length === 1) throw new LsinitError('LSINIT_ERR_USAGE', 'replicate: must specify at least one replica URL for the database');
    config = configFromArgs(p.args[0], p.args.slice(1));
  } else {
    config = await readConfigFromFlags(p.flags);
  }
  applyLeaseFlags(config, p.flags);
  const exec = str(p.flags, 'exec') ?? config.exec;
  const addr = str(p.flags, 'addr') ?? config.addr;
  const st = str(p.flags, 'shutdown-timeout');
  let shutdownMs: number | undefined = config.init.shutdownTimeoutMs;
  if (st !== undefined) {
    shutdownMs = requireDuration(st, '-shutdown-timeout', { min: 1 });
  }
  if (exec) {
    const { superviseWithConfig } = await import('../init/command.js');
    const { splitCommand } = await import('../init/words.js');
    if (addr) config.addr = addr;
    return superviseWithConfig(config, splitCommand(exec), shutdownMs === undefined ? {} : { shutdownTimeoutMs: shutdownMs });
  }
  const followed = config.dbs.find((d) => d.follow);
  if (followed) throw new LsinitError('LSINIT_ERR_CONFIG', `replicate: ${followed.keyPath} (${followed.path}) is a read node's copy (follow: true): replicating it would write a copy back over its source; follow it with \`lsinit restore -f -config ${config.file ?? 'CONFIG'} ${followed.path}\` or in init mode`, { fields: { key: followed.keyPath } });
  const log = loggerFor(config);
  for (const w of config.warnings) log.warn(w);
  if (config.dbs.length === 0) throw new LsinitError('LSINIT_ERR_CONFIG', `replicate: no databases specified in configuration${config.file ? ` ${config.file}` : ''}; list them under dbs:`);
  // Imported here: with -exec the replication engine runs in a worker thread and this thread never loads it.
  const { Controller } = await import('../replicate/controller.js');
  const controller = new Controller(config, log);
  for (const d of controller.describe()) log.info('initialized db', { path: d.db, replicas: d.replicas.join(' ') });
  // The first SIGINT/SIGTERM starts the final sync; a second one ends the command at once (main.ts
  // exits with 1 without waiting for the sync still running).
  let signals = 0;
  let firstSignal!: (sig: NodeJS.Signals) => void;
  let secondSignal!: () => void;
  const stopped = new Promise<NodeJS.Signals>((resolve) => (firstSignal = resolve));
  const abandoned = new Promise<number>((resolve) => (secondSignal = () => resolve(1)));
  const on = (sig: NodeJS.Signals) => {
    if (++signals === 1) return firstSignal(sig);
    log.warn('second signal received, exiting without waiting for the final sync', { signal: sig });
    secondSignal();
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  // Everything from here runs in a race with the second signal: a start-up or a final sync that hangs
  // on an unreachable replica must not keep lsinit alive after it.
  const shutDown = async (metrics?: { close(): Promise<void> }): Promise<number> => {
    const failures = await closeWithin(controller, Date.now() + (shutdownMs ?? 9000), log);
    await metrics?.close();
    for (const f of failures) log.error('final sync failed', { db: f.db, replica: f.replica, error: f.error });
    log.info('lsinit shut down');
    return failures.length ? 1 : 0;
  };
  const serve = async (): Promise<number> => {
    // A stop during start-up (a -lease-wait, another process's database lock, a store slow to
    // answer) must not wait for the start to end: close() aborts its waits and lets it settle.
    const early = await Promise.race([controller.start().then(() => undefined), stopped]);
    if (early !== undefined) {
      log.info('signal received during start-up, lsinit shutting down', { signal: early });
      return shutDown();
    }
    // Litestream 0.3 starts the metrics server after opening the databases; a bind failure is
    // logged and replication goes on (replicate.go: "cannot start metrics server").
    let metrics: { close(): Promise<void> } | undefined;
    if (addr) {
      const { startMetricsServer } = await import('../metrics/server.js');
      metrics = await startMetricsServer({ addr, controller, log }).catch((err: unknown) => {
        log.error('cannot start metrics server', { error: errorMessage(err) });
        return undefined;
      });
    }
    log.info('replicating', { dbs: config.dbs.length });
    const sig = await stopped;
    // lsinit's own name, not Litestream's "litestream shutting down": docs/migrating.md (log lines).
    log.info('signal received, lsinit shutting down', { signal: sig });
    return shutDown(metrics);
  };
  return Promise.race([serve(), abandoned]);
}
