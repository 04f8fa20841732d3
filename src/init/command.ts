/**
 * `lsinit [flags] -- CMD ARGS...`: parse Go-style flags (like Litestream's `flag` package: `-flag v`,
 * `-flag=v`, `--flag`), find the config, build the replication controller, and supervise the app.
 * Usage and config errors are thrown as LsinitError (LSINIT_ERR_USAGE / LSINIT_ERR_CONFIG) for the CLI
 * to print; everything after start-up is an exit code.
 */
import { existsSync } from 'node:fs';
import { DEFAULT_CONFIG_PATH } from '../config/default-path.js';
import { applyLeaseFlags, type LeaseFlags } from '../config/lease-flags.js';
import { secretValues } from '../config/secrets.js';
import type { Config, InitConfig } from '../config/types.js';
import { LsinitError, errorMessage } from '../errors.js';
import { createLogger, type Logger } from '../log/logger.js';
import { bool, parseFlags, str, type FlagSpec } from '../util/flags.js';
import { requireDuration } from '../util/time.js';
import type { ControllerLike } from '../replicate/types.js';
import { dropEarlyWorker } from '../replicate/worker-start.js';
import { defaultShutdownTimeout } from './budget.js';
import { stripCredentials } from './env.js';
import { SignalHub, type SignalSource } from './signal-hub.js';
import { parseRewrite } from './signals.js';
import { supervise } from './supervisor.js';
import { splitCommand } from './words.js';

export { DEFAULT_CONFIG_PATH };

export const USAGE = `lsinit runs a command as a container init (PID 1): it restores missing databases, replicates
them while the command runs, forwards signals, reaps zombies, and runs a final sync on exit.

Usage:
  lsinit [flags] -- COMMAND [ARGS...]
  lsinit [flags] -exec "COMMAND ARGS"

Flags:
  -config PATH             config file (default $LITESTREAM_CONFIG, else ${DEFAULT_CONFIG_PATH} if it exists;
                           without one lsinit is a plain init and replicates nothing)
  -no-expand-env           do not expand $VAR / \${VAR} in the config file
  -exec CMD                command line to run (split like a shell, no shell); overrides config exec:
  -shutdown-timeout DUR    total budget from the first stop signal to exit (default 9s; 4s on Fly.io)
  -kill-grace DUR          grace for leftover processes between SIGTERM and SIGKILL (default 2s)
  -signal-rewrite FROM:TO  rewrite a forwarded signal, e.g. INT:TERM; TO=0 drops it (repeatable)
  -process-group           run the command in its own process group and signal the whole group
  -strip-credentials       remove AWS_*, LITESTREAM_*, AZURE_STORAGE_*, GOOGLE_APPLICATION_CREDENTIALS
                           and any variable holding a configured age identity
                           from the command's environment
  -addr HOST:PORT          serve /metrics and /healthz (overrides addr: in the config)
  -follow                  read node: restore every database, keep applying its replica's new WAL and
                           run the command against the copy read-only (docs/follow.md)
  -no-lease                do not take the single-writer lease on the replicas
  -lease-wait              wait for another instance's lease to be released or expire
  -lease-max-wait DUR      longest wait with -lease-wait (default 5m)
  -h                       show this help

Exit code: the command's, or 128+N if a signal killed it; 127/126 if it cannot be started; 1 if the
restore failed (the command is not started); 70 if the command exited 0 but the final sync failed.
`;

/** What the worker controller adds to ControllerLike (replicate/worker-controller.ts). */
interface WorkerLike {
  appEnded(code: number): void;
  dispose(): Promise<void>;
}

/** Flag values that override the config's `init:` mapping. */
export interface InitOverrides {
  shutdownTimeoutMs?: number;
  killGraceMs?: number;
  signalRewrite?: string[];
  processGroup?: boolean;
  stripCredentials?: boolean;
}

export interface ParsedInitArgs {
  help: boolean;
  config?: string;
  expandEnv: boolean;
  exec?: string;
  /** Everything after `--`. */
  command?: string[];
  overrides: InitOverrides;
  /** -no-lease, -lease-wait, -lease-max-wait (applied to the config's replicas). */
  leaseFlags: LeaseFlags;
  /** -addr HOST:PORT: the metrics server (overrides addr:). */
  addr?: string;
  /** -follow: this is a read node; every database follows its first replica (docs/follow.md). */
  follow?: boolean;
}

const SPECS: Record<string, FlagSpec> = {
  config: { type: 'string', help: 'config file' },
  'no-expand-env': { type: 'bool', help: 'do not expand $VAR' },
  exec: { type: 'string', help: 'command line to run' },
  'shutdown-timeout': { type: 'string', help: 'total shutdown budget' },
  'kill-grace': { type: 'string', help: 'grace for leftover processes' },
  'signal-rewrite': { type: 'string', multi: true, help: 'rewrite a forwarded signal' },
  'process-group': { type: 'bool', help: 'signal the whole process group' },
  'strip-credentials': { type: 'bool', help: 'remove credentials from the environment' },
  addr: { type: 'string', help: 'metrics address' },
  'no-lease': { type: 'bool', help: 'no single-writer lease' },
  'lease-wait': { type: 'bool', help: 'wait for a lease' },
  'lease-max-wait': { type: 'string', help: 'longest lease wait' },
  follow: { type: 'bool', help: 'read node: follow every database' },
};

function usage(message: string): LsinitError {
  return new LsinitError('LSINIT_ERR_USAGE', message);
}

/** Init mode's flags, through the same Go-style parser as every other command (util/flags.ts). */
export function parseInitArgs(args: readonly string[]): ParsedInitArgs {
  const p = parseFlags([...args], SPECS, 'init');
  const out: ParsedInitArgs = { help: p.help, expandEnv: !bool(p.flags, 'no-expand-env'), overrides: {}, leaseFlags: {} };
  if (p.args.length > 0) throw usage(`init: unexpected argument "${p.args[0]}": put the command after --, e.g. lsinit -- ${p.args.join(' ')}`);
  if (p.rest !== undefined) {
    if (p.rest.length === 0) throw usage('init: no command after --');
    out.command = p.rest;
  }
  const f = p.flags;
  const config = str(f, 'config');
  if (config !== undefined) out.config = config;
  const exec = str(f, 'exec');
  if (exec !== undefined) out.exec = exec;
  const addr = str(f, 'addr');
  if (addr !== undefined) out.addr = addr;
  const st = str(f, 'shutdown-timeout');
  if (st !== undefined) out.overrides.shutdownTimeoutMs = Math.round(requireDuration(st, '-shutdown-timeout', { min: 0 }));
  const kg = str(f, 'kill-grace');
  if (kg !== undefined) out.overrides.killGraceMs = Math.round(requireDuration(kg, '-kill-grace', { min: 0 }));
  const rw = f['signal-rewrite'];
  if (Array.isArray(rw)) out.overrides.signalRewrite = rw;
  for (const name of ['process-group', 'strip-credentials'] as const) {
    if (typeof f[name] === 'boolean') out.overrides[name === 'process-group' ? 'processGroup' : 'stripCredentials'] = f[name];
  }
  for (const name of ['no-lease', 'lease-wait', 'lease-max-wait'] as const) {
    if (f[name] !== undefined) out.leaseFlags[name] = f[name];
  }
  if (bool(f, 'follow')) out.follow = true;
  if (out.command !== undefined && out.exec !== undefined) throw usage('init: give the command either after -- or with -exec, not both');
  if (out.overrides.shutdownTimeoutMs === 0) throw usage('init: -shutdown-timeout must be greater than 0');
  return out;
}

export interface InitDeps {
  log?: Logger;
  env?: NodeJS.ProcessEnv;
  stdout?: (text: string) => void;
  /** Where to look when neither -config nor $LITESTREAM_CONFIG is given. */
  defaultConfigPath?: string;
  loadConfig?: (opts: { path?: string; expandEnv: boolean; env?: NodeJS.ProcessEnv }) => Promise<Config>;
  createController?: (config: Config, log: Logger) => ControllerLike;
  signals?: SignalSource;
  /** false disables zombie reaping (negative-control tests only). */
  reap?: boolean;
}

// Imported lazily: `lsinit -- cmd` without a config never loads the replication stack.
async function defaultLoadConfig(opts: { path?: string; expandEnv: boolean; env?: NodeJS.ProcessEnv }): Promise<Config> {
  const { loadConfig } = await import('../config/file.js');
  return loadConfig(opts);
}

/** Replication in a worker thread: the main thread stays free to forward signals (worker-controller.ts). */
async function defaultControllerFactory(): Promise<(config: Config, log: Logger) => ControllerLike> {
  const { WorkerController } = await import('../replicate/worker-controller.js');
  return (config, log) => new WorkerController(config, log);
}

function loggerFor(config: Config | null, env: NodeJS.ProcessEnv): Logger {
  if (config === null) {
    // No config: stderr, at $LSINIT_LOG_LEVEL like the rest of the CLI.
    const level = env.LSINIT_LOG_LEVEL;
    return createLogger(level === 'debug' || level === 'info' || level === 'warn' || level === 'error' ? { level } : {});
  }
  // Litestream logs to stdout unless `logging.stderr: true`.
  const stream = config.logging.stderr ? process.stderr : process.stdout;
  return createLogger({ level: config.logging.level, type: config.logging.type, write: (l) => void stream.write(l), redact: secretValues(config, env) });
}

/** `lsinit [flags] -- cmd`: returns the exit code; throws LsinitError on usage or config errors. */
export async function runInit(args: readonly string[], deps: InitDeps = {}): Promise<number> {
  // First, before anything async: queue stop signals that arrive while the config loads, and keep a
  // SIGUSR1 from opening the inspector.
  const signals = deps.signals ?? new SignalHub();
  try {
    const parsed = parseInitArgs(args);
    if (parsed.help) {
      (deps.stdout ?? ((t) => void process.stdout.write(t)))(USAGE);
      return 0;
    }
    const env = deps.env ?? process.env;
    const defaultPath = deps.defaultConfigPath ?? DEFAULT_CONFIG_PATH;
    const path = parsed.config ?? (env.LITESTREAM_CONFIG || undefined) ?? (existsSync(defaultPath) ? defaultPath : undefined);
    let config: Config | null = null;
    if (path !== undefined) {
      config = await (deps.loadConfig ?? defaultLoadConfig)({ path, expandEnv: parsed.expandEnv, env });
    }
    const argv = parsed.command ?? (parsed.exec !== undefined ? splitCommand(parsed.exec) : config?.exec !== undefined ? splitCommand(config.exec) : undefined);
    if (argv === undefined || argv.length === 0) {
      throw usage('no command to run: give it after --, with -exec, or as exec: in the config');
    }
    if (config !== null) {
      applyLeaseFlags(config, parsed.leaseFlags);
      if (parsed.addr !== undefined) config.addr = parsed.addr;
      if (parsed.follow) {
        const { followConfig } = await import('../config/load.js');
        for (const d of config.dbs) d.follow ??= followConfig(undefined, undefined, d.keyPath);
      }
    } else if (parsed.follow) throw usage('init: -follow needs a config (-config or $LITESTREAM_CONFIG) naming the databases and their replicas');
    return await superviseWithConfig(config, argv, parsed.overrides, { ...deps, env, signals });
  } finally {
    signals.dispose(); // supervise() already did unless we failed before it started; twice is harmless
  }
}

/**
 * The shared path for `lsinit -- cmd` and `lsinit replicate -exec CMD`: builds the controller from a
 * resolved config (null: pure init), merges config `init:` with flag overrides, and supervises.
 */
export async function superviseWithConfig(config: Config | null, argv: readonly string[], overrides: InitOverrides = {}, deps: InitDeps = {}): Promise<number> {
  const log = deps.log ?? loggerFor(config, deps.env ?? process.env);
  const init: InitConfig = config?.init ?? {};
  const rewrite = parseRewrite(overrides.signalRewrite ?? [], init.signalRewrite ?? {});
  let env = deps.env ?? process.env;
  if (overrides.stripCredentials ?? init.stripCredentials ?? false) {
    const stripped = stripCredentials(env, config?.dbs.flatMap((d) => d.replicas.flatMap((r) => r.age?.identities ?? [])));
    env = stripped.env;
    if (stripped.removed.length > 0) log.info('removed credentials from the app environment', { names: stripped.removed.join(',') });
  }
  for (const w of config?.warnings ?? []) log.warn(w);
  let controller: ControllerLike | null = null;
  let followMetrics: (() => Promise<{ close(): Promise<void> }>) | undefined;
  if (config !== null && config.dbs.some((d) => d.follow)) {
    // A read node: followers in this thread (their work is file I/O between polls, and the lock
    // wait is bounded at 1 s), metrics from here.
    const { FollowController } = await import('../follow/controller.js');
    const fc = new FollowController(config, log);
    controller = fc;
    if (config.addr) {
      const addr = config.addr;
      followMetrics = async () => {
        const [{ serveMetrics }, { followHealth, followRegistry }] = await Promise.all([import('../metrics/server.js'), import('../follow/metrics.js')]);
        return serveMetrics(addr, log, { registry: followRegistry(() => fc.entries), health: () => followHealth(fc.entries) });
      };
    }
  } else if (config !== null) {
    const create = deps.createController ?? (await defaultControllerFactory());
    controller = create(config, log);
  }
  dropEarlyWorker(); // started by main.ts for `replicate -exec`; not needed by a read node (nor without a config)
  let shutdownTimeoutMs = overrides.shutdownTimeoutMs ?? init.shutdownTimeoutMs;
  if (shutdownTimeoutMs === undefined) {
    const d = defaultShutdownTimeout(deps.env ?? process.env);
    shutdownTimeoutMs = d.ms;
    if (d.platform === 'fly.io') {
      log.info('Fly.io detected (FLY_MACHINE_ID): shutdown-timeout defaults to 4s to fit the default kill_timeout of 5s; set -shutdown-timeout to match a longer kill_timeout');
    }
  }
  const killGraceMs = overrides.killGraceMs ?? init.killGraceMs;
  const processGroup = overrides.processGroup ?? init.processGroup;
  let lastExitCode: number | undefined;
  // Init mode serves metrics from before restore until lsinit exits, so the final sync is observable.
  // The worker controller serves them from its thread; an in-process controller (tests) from here.
  let metrics: { close(): Promise<void> } | undefined;
  if (followMetrics) {
    metrics = await followMetrics().catch((err: unknown) => {
      log.error('cannot start metrics server', { error: errorMessage(err) });
      return undefined;
    });
  } else if (config?.addr && controller !== null && 'entries' in controller) {
    const { startMetricsServer } = await import('../metrics/server.js');
    const init = { restarts: () => 0, lastExitCode: () => lastExitCode };
    metrics = await startMetricsServer({ addr: config.addr, controller: controller as import('../replicate/controller.js').Controller, log, init }).catch((err: unknown) => {
      log.error('cannot start metrics server', { error: errorMessage(err) });
      return undefined;
    });
  }
  try {
    return await supervise({
    argv,
    controller,
    log,
    env,
    signalRewrite: rewrite,
    shutdownTimeoutMs,
    ...(killGraceMs === undefined ? {} : { killGraceMs }),
    ...(processGroup === undefined ? {} : { processGroup }),
    ...(init.syncFailureExitCode === undefined ? {} : { syncFailureExitCode: init.syncFailureExitCode }),
    ...(deps.signals === undefined ? {} : { signals: deps.signals }),
    ...(deps.reap === false ? { reaper: false as const } : {}),
    onAppEnd: (code) => {
      lastExitCode = code;
      (controller as Partial<WorkerLike> | null)?.appEnded?.(code);
    },
  });
  } finally {
    await metrics?.close();
    await (controller as Partial<WorkerLike> | null)?.dispose?.();
  }
}
