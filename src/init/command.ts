/**
 * `lsinit [flags] -- CMD ARGS...`: parse Go-style flags (like Litestream's `flag` package: `-flag v`,
 * `-flag=v`, `--flag`), find the config, build the replication controller, and supervise the app.
 * Usage and config errors are thrown as LsinitError (LSINIT_ERR_USAGE / LSINIT_ERR_CONFIG) for the CLI
 * to print; everything after start-up is an exit code.
 */
import { existsSync } from 'node:fs';
import { applyLeaseFlags, type LeaseFlags } from '../config/lease-flags.js';
import { secretValues } from '../config/secrets.js';
import type { Config, InitConfig } from '../config/types.js';
import { LsinitError, errorMessage } from '../errors.js';
import { createLogger, type Logger } from '../log/logger.js';
import type { ControllerLike } from '../replicate/types.js';
import { defaultShutdownTimeout } from './budget.js';
import { parseDuration } from './duration.js';
import { stripCredentials } from './env.js';
import { SignalHub, type SignalSource } from './signal-hub.js';
import { parseRewrite } from './signals.js';
import { supervise } from './supervisor.js';
import { splitCommand } from './words.js';

export const DEFAULT_CONFIG_PATH = '/etc/litestream.yml';

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
                           from the command's environment
  -addr HOST:PORT          serve /metrics and /healthz (overrides addr: in the config)
  -no-lease                do not take the single-writer lease on the replicas
  -lease-wait              wait for another instance's lease to be released or expire
  -lease-max-wait DUR      longest wait with -lease-wait (default 5m)
  -h                       show this help

Exit code: the command's, or 128+N if a signal killed it; 127/126 if it cannot be started; 1 if the
restore failed (the command is not started); 70 if the command exited 0 but the final sync failed.
`;

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
}

const BOOL = new Set(['no-expand-env', 'process-group', 'strip-credentials', 'h', 'help', 'no-lease', 'lease-wait']);
const VALUE = new Set(['config', 'exec', 'shutdown-timeout', 'kill-grace', 'signal-rewrite', 'lease-max-wait', 'addr']);

function usage(message: string): LsinitError {
  return new LsinitError('LSINIT_ERR_USAGE', message);
}

function parseBool(name: string, v: string): boolean {
  if (/^(1|t|true)$/i.test(v)) return true;
  if (/^(0|f|false)$/i.test(v)) return false;
  throw usage(`invalid boolean value "${v}" for -${name}`);
}

export function parseInitArgs(args: readonly string[]): ParsedInitArgs {
  const out: ParsedInitArgs = { help: false, expandEnv: true, overrides: {}, leaseFlags: {} };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') {
      out.command = args.slice(i + 1);
      if (out.command.length === 0) throw usage('no command after --');
      break;
    }
    const m = /^--?([^=]+)(?:=(.*))?$/s.exec(arg);
    if (m === null) throw usage(`unexpected argument "${arg}": put the command after --, e.g. lsinit -- ${arg}`);
    const name = m[1] as string;
    let value = m[2];
    if (BOOL.has(name)) {
      const on = value === undefined ? true : parseBool(name, value);
      if (name === 'h' || name === 'help') out.help = on;
      else if (name === 'no-expand-env') out.expandEnv = !on;
      else if (name === 'no-lease' || name === 'lease-wait') out.leaseFlags[name] = on;
      else if (name === 'process-group') out.overrides.processGroup = on;
      else out.overrides.stripCredentials = on;
      continue;
    }
    if (!VALUE.has(name)) throw usage(`flag provided but not defined: -${name}`);
    if (value === undefined) {
      if (i + 1 >= args.length) throw usage(`flag needs an argument: -${name}`);
      value = args[++i] as string;
    }
    if (name === 'config') out.config = value;
    else if (name === 'exec') out.exec = value;
    else if (name === 'shutdown-timeout') out.overrides.shutdownTimeoutMs = parseDuration(value, '-shutdown-timeout');
    else if (name === 'kill-grace') out.overrides.killGraceMs = parseDuration(value, '-kill-grace');
    else if (name === 'lease-max-wait') out.leaseFlags[name] = value;
    else if (name === 'addr') out.addr = value;
    else (out.overrides.signalRewrite ??= []).push(value);
  }
  if (out.command !== undefined && out.exec !== undefined) throw usage('give the command either after -- or with -exec, not both');
  if (out.overrides.shutdownTimeoutMs === 0) throw usage('-shutdown-timeout must be greater than 0');
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
  const { loadConfig } = await import('../config/load.js');
  return loadConfig(opts);
}

async function defaultControllerFactory(): Promise<(config: Config, log: Logger) => ControllerLike> {
  const { Controller } = await import('../replicate/controller.js');
  return (config, log) => new Controller(config, log);
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
    }
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
    const stripped = stripCredentials(env);
    env = stripped.env;
    if (stripped.removed.length > 0) log.info('removed credentials from the app environment', { names: stripped.removed.join(',') });
  }
  for (const w of config?.warnings ?? []) log.warn(w);
  let controller: ControllerLike | null = null;
  if (config !== null) {
    const create = deps.createController ?? (await defaultControllerFactory());
    controller = create(config, log);
  }
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
  let metrics: { close(): Promise<void> } | undefined;
  if (config?.addr && controller !== null && 'entries' in controller) {
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
    onAppEnd: (code) => (lastExitCode = code),
  });
  } finally {
    await metrics?.close();
  }
}
