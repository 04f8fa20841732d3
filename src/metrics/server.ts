/**
 * The HTTP server behind `addr:` (Litestream 0.3 `replicate.go`): GET /metrics in the Prometheus
 * text format and GET /healthz (lsinit addition); everything else is 404. Litestream 0.3 also
 * served Go's /debug/pprof on this port through the default mux; lsinit does not, so the port can
 * be exposed to a scraper without exposing profiling.
 *
 * `addr` keeps Litestream's meaning: ":9090" listens on every interface (Go's net.Listen with an
 * empty host), "127.0.0.1:9090" or "[::1]:9090" on one address.
 */
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { LsinitError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { Controller } from '../replicate/controller.js';
import { processClock } from '../util/clock.js';
import { createRegistry, replicaLagMs, type ChildStats, type MetricsSource } from './registry.js';

/** A replica is healthy while caught up or behind by at most this many sync intervals. */
export const HEALTH_SYNC_INTERVALS = 3;
/**
 * Floor of the allowance: with a 100 ms sync interval a normal upload to a remote store already
 * takes longer than 3 intervals, and /healthz must not flap on every write burst.
 */
export const HEALTH_MIN_ALLOWANCE_MS = 1000;

export interface MetricsServerOptions {
  addr: string;
  controller: Controller;
  log: Logger;
  init?: ChildStats | undefined;
}

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export interface ReplicaHealth {
  db: string;
  name: string;
  type: string;
  status: 'ok' | 'behind';
  lag_seconds: number;
  allowed_lag_seconds: number;
  last_sync: string | null;
  /** Why it is behind: the last error (already redacted by the replica), else a description. */
  reason?: string;
}

export interface DBHealth {
  db: string;
  /** `failing`: shadow WAL syncs only failed during the last window, so nothing new reaches any replica. */
  status: 'ok' | 'failing';
  reason?: string;
}

export interface Health {
  status: 'ok' | 'behind';
  dbs: DBHealth[];
  replicas: ReplicaHealth[];
  child?: { restarts: number; last_exit_code: number | null };
}

/** Parse Litestream's `addr`: `:PORT`, `HOST:PORT`, `[V6]:PORT`. Host undefined = every interface. */
export function parseAddr(addr: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new LsinitError('LSINIT_ERR_CONFIG', `addr: must be host:port like ":9090", "127.0.0.1:9090" or "[::1]:9090", got ${JSON.stringify(addr)}`, { fields: { addr } });
  }
  const host = m[1] ?? m[2];
  return { host: host === '' || host === undefined ? undefined : host, port };
}

/**
 * The /healthz verdict, computed when asked (no timers).
 *
 * Replicas: ok while caught up or behind by at most max(3 sync intervals, 1 s).
 * Databases: a replica can look caught up while the local shadow WAL sync fails on every tick
 * (missing directory, full disk, WAL deleted): it has everything the shadow has, and the shadow
 * stopped. So a database is `failing` once every sync for at least max(3 monitor intervals, 1 s)
 * failed (the controller records when the failures began), and at once when its file was deleted
 * under us: SQLite (the app's and ours) then writes to an inode no longer on disk, and the next
 * start finds nothing.
 */
export function createHealthCheck(source: MetricsSource, opts: { init?: ChildStats | undefined; now?: () => number } = {}): () => { code: 200 | 503; body: Health } {
  const now = opts.now ?? processClock;
  const since = now();

  return () => {
    const t = now();
    const dbs: DBHealth[] = [];
    const replicas: ReplicaHealth[] = [];
    for (const e of source.entries) {
      dbs.push(dbHealth(e, t));
      for (const r of e.replicas) {
        const lag = replicaLagMs(r, t, since);
        const allowed = Math.max(HEALTH_SYNC_INTERVALS * r.cfg.syncIntervalMs, HEALTH_MIN_ALLOWANCE_MS);
        // A replica whose lease was lost is never written again, and one whose lease is unconfirmed
        // is not written until it is read back: unhealthy whatever its lag.
        const g = e.leases.get(r);
        const lost = g?.lostError ?? (g?.state === 'unsure' ? g.unsureError : undefined);
        const h: ReplicaHealth = {
          db: e.cfg.path,
          name: r.name,
          type: r.cfg.type,
          status: lag <= allowed && !lost ? 'ok' : 'behind',
          lag_seconds: lag / 1000,
          allowed_lag_seconds: allowed / 1000,
          last_sync: r.stats.lastSyncAt === undefined ? null : new Date(r.stats.lastSyncAt).toISOString(),
        };
        if (h.status === 'behind') {
          h.reason = lost?.message ?? r.stats.lastError ?? (r.stats.lastSyncAt === undefined ? 'no successful sync yet' : `upload still in progress after ${(lag / 1000).toFixed(1)}s`);
        }
        replicas.push(h);
      }
    }
    const ok = replicas.every((r) => r.status === 'ok') && dbs.every((d) => d.status === 'ok');
    const body: Health = { status: ok ? 'ok' : 'behind', dbs, replicas };
    if (opts.init) body.child = { restarts: opts.init.restarts(), last_exit_code: opts.init.lastExitCode() ?? null };
    return { code: ok ? 200 : 503, body };
  };
}

function dbHealth(e: MetricsSource['entries'][number], t: number): DBHealth {
  if (e.db.opened && !existsSync(e.cfg.path)) {
    return { db: e.cfg.path, status: 'failing', reason: `database file deleted: ${e.cfg.path} is gone while the app and lsinit still write to the deleted file; nothing new is replicated (restart the app, or restore it)` };
  }
  const failing = e.syncFailingSince;
  if (failing !== undefined && t - failing >= Math.max(HEALTH_SYNC_INTERVALS * e.cfg.monitorIntervalMs, HEALTH_MIN_ALLOWANCE_MS)) {
    return { db: e.cfg.path, status: 'failing', reason: `all shadow WAL syncs in the last ${((t - failing) / 1000).toFixed(1)}s failed: ${e.syncError ?? 'unknown error'}` };
  }
  return { db: e.cfg.path, status: 'ok' };
}

export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const registry = createRegistry({ source: opts.controller, init: opts.init });
  const health = createHealthCheck(opts.controller, { init: opts.init });
  return serveMetrics(opts.addr, opts.log, { registry, health });
}

/** The HTTP side shared by replication and read nodes (follow/metrics.ts): GET /metrics and /healthz. */
export async function serveMetrics(addr: string, log: Logger, src: { registry: { contentType: string; metrics(): Promise<string> }; health: () => { code: number; body: unknown } }): Promise<MetricsServer> {
  const { host, port } = parseAddr(addr);
  const { registry, health } = src;
  const opts = { addr, log };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' && path !== '/healthz') {
      send(res, 404, 'text/plain; charset=utf-8', '404 page not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    if (path === '/metrics') {
      send(res, 200, registry.contentType, await registry.metrics(), req.method === 'HEAD');
      return;
    }
    const h = health();
    send(res, h.code, 'application/json', `${JSON.stringify(h.body)}\n`, req.method === 'HEAD');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      opts.log.error('metrics request failed', { path: req.url, error: err instanceof Error ? err.message : String(err) });
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  // A scraper that opens a connection and never sends a request must not pin a socket forever.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new LsinitError('LSINIT_ERR_CONFIG', `addr: cannot listen on ${opts.addr}: ${err.code ?? err.message}`, { cause: err, fields: { addr: opts.addr } }));
    };
    server.once('error', onError);
    server.listen({ port, ...(host === undefined ? {} : { host }) }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => opts.log.error('metrics server error', { error: err.message }));
  const bound = (server.address() as AddressInfo).port;
  // Litestream 0.3 logs the URL with "localhost" for an empty host.
  const shown = host === undefined ? 'localhost' : host.includes(':') ? `[${host}]` : host;
  opts.log.info('serving metrics', { url: `http://${shown}:${bound}/metrics` });

  let closed: Promise<void> | undefined;
  return {
    port: bound,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

function send(res: ServerResponse, code: number, type: string, body: string, headOnly = false): void {
  res.writeHead(code, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  res.end(headOnly ? undefined : body);
}
