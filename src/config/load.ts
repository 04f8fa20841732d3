/**
 * Config file → fully resolved `Config`, validated once at the edge (reference §1.2).
 * Errors name the key path (`dbs[0].replicas[1].sync-interval`); unknown keys are warnings
 * (Litestream silently ignores them). Reading and parsing the file itself is in file.ts, imported
 * only by the commands that read one: `replicate DB URL` resolves its config without loading YAML.
 */
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { LsinitError } from '../errors.js';
import type { Level } from '../log/logger.js';
import { configError } from '../replica/backend.js';
import { backendFor, backends } from '../replica/clients/registry.js';
import { requireDuration } from '../util/time.js';
import { parseAge } from './age.js';
import { missingList, unknownKeyWarnings } from './keys.js';
import type { Config, DBConfig, FollowConfig, InitConfig, LeaseConfig, ReplicaConfig } from './types.js';

export const DEFAULTS = {
  monitorIntervalMs: 1000,
  checkpointIntervalMs: 60_000,
  minCheckpointPageCount: 1000,
  maxCheckpointPageCount: 10_000,
  checkpointBusyTimeoutMs: 100,
  syncIntervalMs: 1000,
  retentionMs: 24 * 3_600_000,
  retentionCheckIntervalMs: 3_600_000,
  restoreParallelism: 8,
  followIntervalMs: 1000,
  followMaxLagMs: 10_000,
} as const;

/** On unless `lease: false`: two writers on one replica corrupt it silently (Litestream #422, #1119). */
export const DEFAULT_LEASE: LeaseConfig = { ttlMs: 30_000, wait: false, maxWaitMs: 5 * 60_000 };
const LEASE_KEYS = ['enabled', 'ttl', 'wait', 'max-wait'];

const TOP_KEYS = ['dbs', 'exec', 'addr', 'logging', 'access-key-id', 'secret-access-key', 'init', 'lease'];
const DB_KEYS = ['path', 'meta-path', 'monitor-interval', 'checkpoint-interval', 'min-checkpoint-page-count', 'max-checkpoint-page-count', 'checkpoint-busy-timeout', 'replicas', 'exec', 'follow', 'follow-interval', 'follow-max-lag'];
const REPLICA_COMMON = ['type', 'name', 'url', 'path', 'retention', 'retention-check-interval', 'snapshot-interval', 'validation-interval', 'sync-interval', 'lease', 'age'];
const INIT_KEYS = ['shutdown-timeout', 'kill-grace', 'signal-rewrite', 'process-group', 'strip-credentials', 'sync-failure-exit-code'];

export interface LoadOptions {
  /** Explicit -config path; else $LITESTREAM_CONFIG, else /etc/litestream.yml. */
  path?: string;
  expandEnv: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env['LITESTREAM_CONFIG'] || '/etc/litestream.yml';
}

export interface Ctx {
  env: NodeJS.ProcessEnv;
  cwd: string;
  file?: string;
  warnings: string[];
  /** The top-level `lease:` (undefined: disabled there), inherited by replicas without their own. */
  lease?: LeaseConfig | undefined;
}

/**
 * `lease: false | true | { enabled, ttl, wait, max-wait }`; a mapping overrides `base` key by key.
 * Returns undefined when disabled.
 */
function buildLease(raw: unknown, kp: string, base: LeaseConfig | undefined, ctx: Ctx): LeaseConfig | undefined {
  if (raw === undefined || raw === null) return base;
  if (raw === false) return undefined;
  if (raw === true) return base ?? DEFAULT_LEASE;
  if (!isMap(raw)) throw configError(kp, `must be true, false or a mapping (enabled, ttl, wait, max-wait), got ${JSON.stringify(raw)}`);
  warnUnknown(raw, LEASE_KEYS, kp, ctx);
  if (bool(raw, 'enabled', kp) === false) return undefined;
  const from = base ?? DEFAULT_LEASE;
  const ttlMs = duration(raw, 'ttl', kp, from.ttlMs, { min: 3000 });
  return { ttlMs, wait: bool(raw, 'wait', kp) ?? from.wait, maxWaitMs: duration(raw, 'max-wait', kp, from.maxWaitMs, { min: 0 }) };
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function warnUnknown(raw: Record<string, unknown>, allowed: readonly string[], keyPath: string, ctx: Ctx) {
  ctx.warnings.push(...unknownKeyWarnings(raw, allowed, keyPath));
}

function str(raw: Record<string, unknown>, key: string, keyPath: string): string | undefined {
  const v = raw[key];
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw configError(`${keyPath}.${key}`, `must be a string, got ${Array.isArray(v) ? 'a list' : typeof v}`);
}

function duration(raw: Record<string, unknown>, key: string, keyPath: string, dflt: number, opts: { min?: number } = {}): number {
  const v = raw[key];
  if (v === undefined || v === null || v === '') return dflt;
  if (typeof v !== 'string' && typeof v !== 'number') throw configError(`${keyPath}.${key}`, `must be a duration like "1s" or "500ms", got ${typeof v}`);
  return requireDuration(v, `${keyPath}.${key}`, { code: 'LSINIT_ERR_CONFIG', ...opts });
}

function optDuration(raw: Record<string, unknown>, key: string, keyPath: string): number | undefined {
  if (raw[key] === undefined || raw[key] === null) return undefined;
  return duration(raw, key, keyPath, 0, { min: 0 });
}

function int(raw: Record<string, unknown>, key: string, keyPath: string, dflt: number, min: number): number {
  const v = raw[key];
  if (v === undefined || v === null) return dflt;
  const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw configError(`${keyPath}.${key}`, `must be an integer, got ${JSON.stringify(v)}`);
  if (n < min) throw configError(`${keyPath}.${key}`, `must be at least ${min}, got ${n}`);
  return n;
}

function bool(raw: Record<string, unknown>, key: string, keyPath: string): boolean | undefined {
  const v = raw[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'boolean') return v;
  throw configError(`${keyPath}.${key}`, `must be true or false, got ${JSON.stringify(v)}`);
}

export function expandHome(p: string): string {
  return p === '~' ? homedir() : p.startsWith('~/') ? join(homedir(), p.slice(2)) : p;
}

export function absPath(p: string, cwd: string): string {
  const e = expandHome(p);
  return isAbsolute(e) ? resolve(e) : resolve(cwd, e);
}

export function buildConfig(doc: unknown, ctx: Ctx): Config {
  if (!isMap(doc)) throw configError('(top level)', `config must be a YAML mapping with a dbs: list, got ${Array.isArray(doc) ? 'a list' : typeof doc}`);
  warnUnknown(doc, TOP_KEYS, '', ctx);
  const global: { accessKeyId?: string; secretAccessKey?: string } = {};
  const ak = str(doc, 'access-key-id', '');
  const sk = str(doc, 'secret-access-key', '');
  if (ak) global.accessKeyId = ak;
  if (sk) global.secretAccessKey = sk;
  const logging = buildLogging(doc['logging']);
  ctx.lease = buildLease(doc['lease'], 'lease', DEFAULT_LEASE, ctx);
  const dbsRaw = doc['dbs'];
  if (dbsRaw === undefined || dbsRaw === null) throw missingList(doc, 'dbs', TOP_KEYS, '', 'the config lists no databases (dbs: with a path: and replicas: for each)');
  if (!Array.isArray(dbsRaw)) throw configError('dbs', 'must be a list of databases (each with a path: and replicas:)');
  let exec = str(doc, 'exec', '');
  const dbs: DBConfig[] = [];
  const seen = new Set<string>();
  dbsRaw.forEach((raw, i) => {
    const kp = `dbs[${i}]`;
    if (!isMap(raw)) throw configError(kp, 'must be a mapping with path: and replicas:');
    const dbExec = str(raw, 'exec', kp);
    if (dbExec) {
      // The Litestream 0.3.5 blog shows exec under a db; accept it there too.
      if (exec && exec !== dbExec) throw configError(`${kp}.exec`, 'exec is set both at the top level and under a database; keep one');
      exec = dbExec;
    }
    const db = buildDB(raw, kp, global, ctx);
    if (seen.has(db.path)) throw configError(`${kp}.path`, `database ${db.path} is listed twice`);
    seen.add(db.path);
    dbs.push(db);
  });
  if (dbs.length === 0) ctx.warnings.push('dbs: no databases configured; nothing will be replicated');
  const cfg: Config = { dbs, logging, init: buildInit(doc['init']), warnings: ctx.warnings };
  if (ctx.file) cfg.file = ctx.file;
  if (exec) cfg.exec = exec;
  const addr = str(doc, 'addr', '');
  if (addr) {
    if (!/:\d+$/.test(addr)) throw configError('addr', `must be host:port like ":9090" or "127.0.0.1:9090", got ${JSON.stringify(addr)}`);
    cfg.addr = addr;
  }
  return cfg;
}

function buildLogging(raw: unknown): Config['logging'] {
  const out: Config['logging'] = { level: 'info', type: 'text', stderr: false };
  if (raw === undefined || raw === null) return out;
  if (!isMap(raw)) throw configError('logging', 'must be a mapping (level, type, stderr)');
  const level = str(raw, 'level', 'logging')?.toLowerCase();
  if (level !== undefined) {
    const l = level === 'warning' ? 'warn' : level;
    if (!['debug', 'info', 'warn', 'error'].includes(l)) throw configError('logging.level', `must be debug, info, warn or error, got ${JSON.stringify(level)}`);
    out.level = l as Level;
  }
  const type = str(raw, 'type', 'logging')?.toLowerCase();
  if (type !== undefined) {
    if (type !== 'text' && type !== 'json') throw configError('logging.type', `must be text or json, got ${JSON.stringify(type)}`);
    out.type = type;
  }
  out.stderr = bool(raw, 'stderr', 'logging') ?? false;
  return out;
}

function buildInit(raw: unknown): InitConfig {
  const out: InitConfig = {};
  if (raw === undefined || raw === null) return out;
  if (!isMap(raw)) throw configError('init', 'must be a mapping');
  const st = optDuration(raw, 'shutdown-timeout', 'init');
  if (st !== undefined) out.shutdownTimeoutMs = st;
  const kg = optDuration(raw, 'kill-grace', 'init');
  if (kg !== undefined) out.killGraceMs = kg;
  const pg = bool(raw, 'process-group', 'init');
  if (pg !== undefined) out.processGroup = pg;
  const sc = bool(raw, 'strip-credentials', 'init');
  if (sc !== undefined) out.stripCredentials = sc;
  if (raw['sync-failure-exit-code'] !== undefined) out.syncFailureExitCode = int(raw, 'sync-failure-exit-code', 'init', 70, 1);
  const rw = raw['signal-rewrite'];
  if (rw !== undefined && rw !== null) {
    if (!isMap(rw)) throw configError('init.signal-rewrite', 'must be a mapping like { SIGINT: SIGTERM }');
    out.signalRewrite = {};
    for (const [k, v] of Object.entries(rw)) {
      const from = normSignal(k);
      const to = typeof v === 'string' ? normSignal(v) : undefined;
      if (!from || !to) throw configError(`init.signal-rewrite.${k}`, `must map a signal name to a signal name, got ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
      out.signalRewrite[from] = to;
    }
  }
  return out;
}

function normSignal(s: string): string | undefined {
  const n = s.toUpperCase().startsWith('SIG') ? s.toUpperCase() : `SIG${s.toUpperCase()}`;
  return /^SIG[A-Z0-9]+$/.test(n) ? n : undefined;
}

/** A read node's settings (lsinit extension: `follow: true` under a db, or the init flag -follow). */
export function followConfig(intervalMs: number | undefined, maxLagMs: number | undefined, kp: string): FollowConfig {
  if (intervalMs === 0) throw configError(`${kp}.follow-interval`, 'must be greater than 0');
  return { intervalMs: intervalMs ?? DEFAULTS.followIntervalMs, maxLagMs: maxLagMs || DEFAULTS.followMaxLagMs };
}

export function defaultMetaPath(dbPath: string): string {
  return join(dirname(dbPath), `.${basename(dbPath)}-litestream`);
}

function buildDB(raw: Record<string, unknown>, kp: string, global: { accessKeyId?: string; secretAccessKey?: string }, ctx: Ctx): DBConfig {
  warnUnknown(raw, DB_KEYS, kp, ctx);
  const p = str(raw, 'path', kp);
  if (!p) throw configError(`${kp}.path`, 'is required: the absolute path of the SQLite database file');
  const path = absPath(p, ctx.cwd);
  const meta = str(raw, 'meta-path', kp);
  const replicasRaw = raw['replicas'];
  const noReplicas = 'the database has no replicas; add at least one, e.g. replicas: [{url: file:///backups/app}]';
  if (replicasRaw === undefined || replicasRaw === null) throw missingList(raw, 'replicas', DB_KEYS, kp, noReplicas);
  if (!Array.isArray(replicasRaw)) throw configError(`${kp}.replicas`, 'must be a list of replicas');
  if (replicasRaw.length === 0) throw configError(`${kp}.replicas`, `is empty: ${noReplicas}`);
  const db: DBConfig = {
    path,
    metaPath: meta ? absPath(meta, ctx.cwd) : defaultMetaPath(path),
    monitorIntervalMs: duration(raw, 'monitor-interval', kp, DEFAULTS.monitorIntervalMs, { min: 0 }),
    checkpointIntervalMs: duration(raw, 'checkpoint-interval', kp, DEFAULTS.checkpointIntervalMs, { min: 0 }),
    minCheckpointPageCount: int(raw, 'min-checkpoint-page-count', kp, DEFAULTS.minCheckpointPageCount, 1),
    maxCheckpointPageCount: int(raw, 'max-checkpoint-page-count', kp, DEFAULTS.maxCheckpointPageCount, 0),
    checkpointBusyTimeoutMs: duration(raw, 'checkpoint-busy-timeout', kp, DEFAULTS.checkpointBusyTimeoutMs, { min: 0 }),
    replicas: [],
    keyPath: kp,
  };
  const follow = bool(raw, 'follow', kp);
  const fi = optDuration(raw, 'follow-interval', kp);
  const fl = optDuration(raw, 'follow-max-lag', kp);
  if (follow) db.follow = followConfig(fi, fl, kp);
  else if (fi !== undefined || fl !== undefined) ctx.warnings.push(`${kp}: follow-interval/follow-max-lag only apply with follow: true, ignored`);
  const names = new Set<string>();
  replicasRaw.forEach((r, j) => {
    const rkp = `${kp}.replicas[${j}]`;
    if (!isMap(r)) throw configError(rkp, 'must be a mapping (url: or type: plus its keys)');
    const rc = buildReplica(r, rkp, global, ctx);
    if (names.has(rc.name)) throw configError(`${rkp}.name`, `replica name "${rc.name}" is used twice in this database; give each replica a unique name:`);
    names.add(rc.name);
    db.replicas.push(rc);
  });
  return db;
}

const URL_RE = /^\w+:\/\//;

export function isURL(s: string): boolean {
  return URL_RE.test(s);
}

function parseURL(s: string, kp: string): URL {
  try {
    return new URL(s);
  } catch {
    throw configError(kp, `invalid replica URL: ${redactForError(s)}`);
  }
}

/** Never echo a password from a malformed URL back into an error message. */
function redactForError(s: string): string {
  return s.replace(/^(\w+:\/\/[^:/@]*:)[^@/]*@/, '$1xxxxx@');
}

export function buildReplica(raw: Record<string, unknown>, kp: string, global: { accessKeyId?: string; secretAccessKey?: string }, ctx: Ctx): ReplicaConfig {
  const urlStr = str(raw, 'url', kp);
  let url: URL | undefined;
  let type: string;
  if (urlStr) {
    if (!isURL(urlStr)) throw configError(`${kp}.url`, `replica url scheme required, e.g. s3://bucket/path or file:///dir (got ${JSON.stringify(redactForError(urlStr))})`);
    url = parseURL(urlStr, `${kp}.url`);
    type = url.protocol.replace(/:$/, '');
    const explicit = str(raw, 'type', kp);
    if (explicit && explicit !== type) throw configError(`${kp}.type`, `type "${explicit}" contradicts the url scheme "${type}"`);
    if (raw['path'] !== undefined) throw configError(`${kp}.path`, 'cannot be combined with url; put the path in the URL');
  } else {
    type = str(raw, 'type', kp) ?? 'file';
    const p = str(raw, 'path', kp);
    if (p && isURL(p)) throw configError(`${kp}.path`, `looks like a URL (${redactForError(p)}); use the url: key instead`);
  }
  const backend = backendFor(type);
  if (!backend) {
    throw configError(url ? `${kp}.url` : `${kp}.type`, `unknown replica type "${type}": use one of ${Object.keys(backends).join(', ')}`);
  }
  warnUnknown(raw, [...REPLICA_COMMON, ...backend.keys], kp, ctx);
  const input: Parameters<typeof backend.resolve>[0] = { raw, global, env: ctx.env, keyPath: kp, cwd: ctx.cwd };
  if (url) input.url = url;
  const resolved = backend.resolve(input);
  for (const w of resolved.warnings) ctx.warnings.push(w.startsWith(kp) ? w : `${kp}: ${w}`);
  const retentionMs = duration(raw, 'retention', kp, DEFAULTS.retentionMs);
  const checkMs = duration(raw, 'retention-check-interval', kp, DEFAULTS.retentionCheckIntervalMs);
  const age = parseAge(raw['age'], `${kp}.age`, ctx.warnings);
  return {
    name: str(raw, 'name', kp) ?? type,
    type,
    settings: resolved.settings,
    display: resolved.display,
    retentionMs,
    // Litestream clamps the check interval to at most the retention.
    retentionCheckIntervalMs: retentionMs > 0 ? Math.min(checkMs, retentionMs) : checkMs,
    snapshotIntervalMs: duration(raw, 'snapshot-interval', kp, 0, { min: 0 }),
    validationIntervalMs: duration(raw, 'validation-interval', kp, 0, { min: 0 }),
    syncIntervalMs: duration(raw, 'sync-interval', kp, DEFAULTS.syncIntervalMs, { min: 1 }),
    keyPath: kp,
    ...(age ? { age } : {}),
    ...leaseField(buildLease(raw['lease'], `${kp}.lease`, 'lease' in ctx ? ctx.lease : DEFAULT_LEASE, ctx)),
  };
}

function leaseField(lease: LeaseConfig | undefined): { lease?: LeaseConfig } {
  return lease ? { lease } : {};
}

/** One replica from a URL given on the command line. */
export function replicaFromURL(u: string, label: string, ctx: Ctx = { env: process.env, cwd: process.cwd(), warnings: [] }): ReplicaConfig {
  if (!isURL(u)) throw configError(label, `replica url scheme required, e.g. s3://bucket/path or file:///dir (got ${JSON.stringify(redactForError(u))})`);
  try {
    return buildReplica({ url: u }, label, {}, ctx);
  } catch (err) {
    // `replica URL.url: ...` is the config's key-path wording; on the command line, name the URL itself.
    if (err instanceof LsinitError && err.message.startsWith(`${label}.url: `)) {
      throw new LsinitError(err.code, `${label} "${redactForError(u)}": ${err.message.slice(label.length + 6)}`, { fields: err.fields, cause: err });
    }
    throw err;
  }
}

/** `lsinit replicate DB_PATH URL...` / a URL argument to restore & co: a config without a file. */
export function configFromArgs(dbPath: string | undefined, urls: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Config {
  const ctx: Ctx = { env: opts.env ?? process.env, cwd: opts.cwd ?? process.cwd(), warnings: [] };
  const replicas = urls.map((u, j) => replicaFromURL(u, `replica URL #${j + 1}`, ctx));
  const dbs: DBConfig[] = [];
  if (dbPath !== undefined) {
    const path = absPath(dbPath, ctx.cwd);
    dbs.push({
      path,
      metaPath: defaultMetaPath(path),
      monitorIntervalMs: DEFAULTS.monitorIntervalMs,
      checkpointIntervalMs: DEFAULTS.checkpointIntervalMs,
      minCheckpointPageCount: DEFAULTS.minCheckpointPageCount,
      maxCheckpointPageCount: DEFAULTS.maxCheckpointPageCount,
      checkpointBusyTimeoutMs: DEFAULTS.checkpointBusyTimeoutMs,
      replicas,
      keyPath: 'dbs[0]',
    });
  }
  return { dbs, logging: { level: 'info', type: 'text', stderr: true }, init: {}, warnings: ctx.warnings };
}
