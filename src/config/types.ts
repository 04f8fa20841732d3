/** The fully resolved, typed configuration: durations in ms, replicas resolved by their backend. */
import type { Level } from '../log/logger.js';
import type { AgeKeys } from './age.js';

export interface ReplicaConfig {
  /** Unique per database; defaults to the replica type (Litestream's Replica.Name). */
  name: string;
  type: string;
  /** Backend-specific settings from `Backend.resolve`; opaque above the registry. */
  settings: unknown;
  /** URL-ish display string with credentials redacted. */
  display: string;
  retentionMs: number;
  retentionCheckIntervalMs: number;
  snapshotIntervalMs: number;
  validationIntervalMs: number;
  syncIntervalMs: number;
  /** Key path for messages, e.g. `dbs[0].replicas[1]`. */
  keyPath: string;
  /** Single-writer lease on the replica (lsinit extension); absent when disabled with `lease: false`. */
  lease?: LeaseConfig;
  /** `age:` encryption (Litestream 0.3.10+); absent when not configured. */
  age?: AgeKeys;
}

/** `lease:` at the top level (defaults for every replica) or per replica (lsinit extension). */
export interface LeaseConfig {
  /** Lease lifetime; renewed every ttl / 3. */
  ttlMs: number;
  /** Wait for a live lease held elsewhere instead of refusing to start. */
  wait: boolean;
  /** Longest wait with `wait` before start-up fails. */
  maxWaitMs: number;
}

export interface DBConfig {
  /** Absolute path of the database file. */
  path: string;
  /** Absolute path of the shadow WAL directory (default `<dir>/.<file>-litestream`). */
  metaPath: string;
  monitorIntervalMs: number;
  checkpointIntervalMs: number;
  minCheckpointPageCount: number;
  maxCheckpointPageCount: number;
  /** Longest a forced (RESTART) checkpoint may block the app's writers, ms (lsinit extension). */
  checkpointBusyTimeoutMs: number;
  replicas: ReplicaConfig[];
  keyPath: string;
  /** Set on a read node: the database is restored from and follows its first replica (lsinit extension). */
  follow?: FollowConfig;
}

/** `follow: true` (plus `follow-interval`, `follow-max-lag`) under a db, or init's -follow flag. */
export interface FollowConfig {
  /** How often the replica is polled. */
  intervalMs: number;
  /** /healthz fails when the copy is further behind than this. */
  maxLagMs: number;
}

/** Init-mode settings (lsinit extension, top-level `init:` mapping; flags override). */
export interface InitConfig {
  /** Total shutdown budget from the first stop signal to lsinit's exit. */
  shutdownTimeoutMs?: number;
  /** Grace given to leftover descendants after TERM before KILL. */
  killGraceMs?: number;
  /** e.g. { SIGINT: 'SIGTERM' }: rewrite a received signal before forwarding. */
  signalRewrite?: Record<string, string>;
  /** Send forwarded signals to the child's whole process group. */
  processGroup?: boolean;
  /** Remove replica credentials (AWS_*, LITESTREAM_*, ...) from the child's environment. */
  stripCredentials?: boolean;
  /** Exit code when the child exited 0 but the final sync failed. */
  syncFailureExitCode?: number;
}

export interface LoggingConfig {
  level: Level;
  type: 'text' | 'json';
  stderr: boolean;
}

export interface Config {
  /** Path of the file it came from, or undefined for CLI-argument mode. */
  file?: string;
  dbs: DBConfig[];
  exec?: string;
  addr?: string;
  logging: LoggingConfig;
  init: InitConfig;
  warnings: string[];
}
