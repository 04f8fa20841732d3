/**
 * The Prometheus registry behind `addr:` (reference §1.6). Litestream 0.3's metric names, help
 * texts and labels, plus a few lsinit_* gauges users asked for (lag, last sync, up, the init
 * child). Every value is read from the controller at scrape time through collect() callbacks:
 * nothing here runs between scrapes, and the replication hot path never touches prom-client.
 *
 * Labels are the database path and the replica name only: never a URL, which may carry
 * credentials (Litestream labels the same way).
 */
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { Controller } from '../replicate/controller.js';
import { processClock } from '../util/clock.js';
import { opSnapshot } from './ops.js';

/** What the registry and /healthz read: the controller's databases and replicas. */
export type MetricsSource = Pick<Controller, 'entries'>;
type Entry = Controller['entries'][number];
type ReplicaOf = Entry['replicas'][number];

/** Init-mode child counters (src/init/supervisor.ts), when lsinit supervises an app. */
export interface ChildStats {
  restarts(): number;
  lastExitCode(): number | undefined;
}

export interface RegistryOptions {
  source: MetricsSource;
  init?: ChildStats | undefined;
  /** Add process_* and nodejs_* metrics (default true). */
  defaultMetrics?: boolean;
  now?: () => number;
}

/**
 * How far behind a replica is, in ms: 0 when it holds everything the shadow WAL has, else the age
 * of the oldest data it lacks. `pendingSince` is set by the controller when it first sees data the
 * replica lacks; a replica that has been behind since before that (its first sync failed, or it
 * lost its position) counts from its last successful sync, else from `since` (start-up).
 */
export function replicaLagMs(r: ReplicaOf, now: number, since: number): number {
  if (!r.behind()) return 0;
  const from = r.stats.pendingSince ?? r.stats.lastSyncAt ?? since;
  return Math.max(0, now - from);
}

/** Sum of the shadow WAL files of the current generation (Litestream's litestream_shadow_wal_size). */
function shadowWALSize(e: Entry): number | undefined {
  const gen = e.db.generation;
  if (!gen) return undefined;
  const dir = dirname(e.db.shadowPath(gen, 0));
  let total = 0;
  try {
    for (const name of readdirSync(dir)) {
      if (!name.endsWith('.wal')) continue;
      try {
        total += statSync(join(dir, name)).size;
      } catch {
        // removed by shadow cleanup between readdir and stat
      }
    }
  } catch {
    return undefined; // generation directory replaced mid-scrape; the next scrape sees the new one
  }
  return total;
}

export function createRegistry(opts: RegistryOptions): Registry {
  const registry = new Registry();
  const registers = [registry];
  const now = opts.now ?? processClock;
  const since = now();
  const entries = (): readonly Entry[] => opts.source.entries;
  const replicas = function* (): Generator<[Entry, ReplicaOf]> {
    for (const e of entries()) for (const r of e.replicas) yield [e, r];
  };

  // prom-client counters cannot be set; at scrape time each collect() resets and re-adds the
  // controller's cumulative value, which keeps the exported series monotonic.
  const dbCounter = (name: string, help: string, value: (e: Entry) => number) =>
    new Counter({
      name, help, labelNames: ['db'] as const, registers,
      collect() {
        this.reset();
        for (const e of entries()) this.inc({ db: e.cfg.path }, value(e));
      },
    });
  const dbGauge = (name: string, help: string, value: (e: Entry) => number | undefined) =>
    new Gauge({
      name, help, labelNames: ['db'] as const, registers,
      collect() {
        this.reset();
        for (const e of entries()) {
          const v = value(e);
          if (v !== undefined) this.set({ db: e.cfg.path }, v);
        }
      },
    });
  const checkpointCounter = (name: string, help: string, field: 'count' | 'errors' | 'seconds') =>
    new Counter({
      name, help, labelNames: ['db', 'mode'] as const, registers,
      collect() {
        this.reset();
        for (const e of entries()) {
          for (const [mode, st] of Object.entries(e.db.stats.checkpoints)) this.inc({ db: e.cfg.path, mode }, st[field]);
        }
      },
    });
  const replicaGauge = (name: string, help: string, value: (r: ReplicaOf, e: Entry) => number | undefined) =>
    new Gauge({
      name, help, labelNames: ['db', 'name'] as const, registers,
      collect() {
        this.reset();
        for (const [e, r] of replicas()) {
          const v = value(r, e);
          if (v !== undefined) this.set({ db: e.cfg.path, name: r.name }, v);
        }
      },
    });

  // Database metrics (db.go).
  dbGauge('litestream_db_size', 'The current size of the real DB', (e) => e.db.sizes().db);
  dbGauge('litestream_wal_size', 'The current size of the real WAL', (e) => e.db.sizes().wal);
  dbCounter('litestream_total_wal_bytes', 'Total number of bytes written to shadow WAL', (e) => e.db.stats.totalWALBytes);
  dbGauge('litestream_shadow_wal_index', 'The current index of the shadow WAL', (e) => (e.db.generation ? e.db.index : undefined));
  dbGauge('litestream_shadow_wal_size', 'Current size of shadow WAL, in bytes', shadowWALSize);
  dbCounter('litestream_sync_count', 'Number of sync operations performed', (e) => e.db.stats.syncs);
  dbCounter('litestream_sync_error_count', 'Number of sync errors that have occurred', (e) => e.db.stats.syncErrors);
  dbCounter('litestream_sync_seconds', 'Time spent syncing shadow WAL, in seconds', (e) => e.db.stats.syncSeconds);
  checkpointCounter('litestream_checkpoint_count', 'Number of checkpoint operations performed', 'count');
  checkpointCounter('litestream_checkpoint_error_count', 'Number of checkpoint errors that have occurred', 'errors');
  checkpointCounter('litestream_checkpoint_seconds', 'Time spent checkpointing WAL, in seconds', 'seconds');

  // Replica metrics (replica.go). Index and offset only once the replica knows its position.
  new Counter({
    name: 'litestream_replica_wal_bytes', help: 'The number wal bytes written by a replica', labelNames: ['db', 'name'] as const, registers,
    collect() {
      this.reset();
      for (const [e, r] of replicas()) this.inc({ db: e.cfg.path, name: r.name }, r.stats.walBytes);
    },
  });
  replicaGauge('litestream_replica_wal_index', 'The current WAL index', (r) => r.pos?.index);
  replicaGauge('litestream_replica_wal_offset', 'The current WAL offset', (r) => r.pos?.offset);
  // Litestream pre-initialises both statuses at 0 (replica.go validator), so both are always present.
  new Counter({
    name: 'litestream_replica_validation_total', help: 'The number of validations performed', labelNames: ['db', 'name', 'status'] as const, registers,
    collect() {
      this.reset();
      for (const [e, r] of replicas()) for (const status of ['ok', 'error'] as const) this.inc({ db: e.cfg.path, name: r.name, status }, r.stats.validations[status]);
    },
  });

  // Storage requests (internal/internal.go, 0.3.5+), process-wide like Litestream's.
  new Counter({
    name: 'litestream_replica_operation_total', help: 'The number of replica operations performed', labelNames: ['replica_type', 'operation'] as const, registers,
    collect() {
      this.reset();
      for (const o of opSnapshot()) this.inc({ replica_type: o.replicaType, operation: o.operation }, o.total);
    },
  });
  new Counter({
    name: 'litestream_replica_operation_bytes', help: 'The number of bytes used by replica operations', labelNames: ['replica_type', 'operation'] as const, registers,
    collect() {
      this.reset();
      for (const o of opSnapshot()) this.inc({ replica_type: o.replicaType, operation: o.operation }, o.bytes);
    },
  });

  // lsinit additions.
  replicaGauge('lsinit_replica_lag_seconds', 'Age of the oldest committed data not yet on the replica, in seconds (0 when caught up)', (r) => replicaLagMs(r, now(), since) / 1000);
  replicaGauge('lsinit_replica_last_sync_timestamp_seconds', 'Unix time of the last successful sync to the replica (0 before the first)', (r) => (r.stats.lastSyncAt ?? 0) / 1000);
  replicaGauge('lsinit_replica_up', '1 when the last sync attempt to the replica succeeded, 0 when it failed or the replica lease was lost', (r, e) => (r.stats.lastError === undefined && e.leases.get(r)?.state !== 'lost' ? 1 : 0));
  // Absent for replicas with `lease: false`.
  replicaGauge('lsinit_replica_lease_held', '1 while this instance holds the replica single-writer lease (lsinit-lease.json), else 0', (r, e) => {
    const g = e.leases.get(r);
    return g === undefined ? undefined : g.held ? 1 : 0;
  });
  replicaGauge('lsinit_replica_lease_lost', '1 once the replica lease was lost to another instance or not renewed in time: replication to the replica stopped', (r, e) => {
    const g = e.leases.get(r);
    return g === undefined ? undefined : g.state === 'lost' ? 1 : 0;
  });

  const init = opts.init;
  if (init) {
    new Counter({
      name: 'lsinit_child_restarts_total', help: 'Times the supervised app was restarted', registers,
      collect() {
        this.reset();
        this.inc(init.restarts());
      },
    });
    new Gauge({
      name: 'lsinit_child_last_exit_code', help: 'Exit code of the last run of the supervised app (128+N for signal N); 0 until it has exited', registers,
      collect() {
        this.reset();
        const code = init.lastExitCode();
        if (code !== undefined) this.set(code);
      },
    });
  }

  // The event-loop-delay histogram samples on a libuv timer: at prom-client's default 10 ms it
  // cost an idle lsinit ~4 ms CPU per second (measured 63 vs 23 ms over 10 s); at 100 ms, ~0.3.
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 });
  return registry;
}
