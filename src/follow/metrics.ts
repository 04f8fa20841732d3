/**
 * /metrics and /healthz of a read node (lsinit extension). Gauges are read from the followers at
 * scrape time. /healthz is 503 while a copy is further behind than its `follow-max-lag` or its
 * follower stopped on a fatal error; lag is the time since the follower last saw that it had
 * everything the replica had, so it grows through a store outage.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { FollowEntry } from './controller.js';

export interface FollowerHealth {
  db: string;
  status: 'ok' | 'behind' | 'stopped';
  lag_seconds: number | null;
  allowed_lag_seconds: number;
  position: string;
  reason?: string;
}

export function followHealth(entries: readonly FollowEntry[]): { code: 200 | 503; body: { status: 'ok' | 'behind'; followers: FollowerHealth[] } } {
  const followers = entries.map((e): FollowerHealth => {
    const lag = e.follower.lagMs();
    const allowed = e.cfg.follow!.maxLagMs;
    const h: FollowerHealth = { db: e.cfg.path, status: 'ok', lag_seconds: Number.isFinite(lag) ? lag / 1000 : null, allowed_lag_seconds: allowed / 1000, position: e.follower.stats.position };
    if (e.fatal) Object.assign(h, { status: 'stopped', reason: e.fatal });
    else if (!(lag <= allowed)) Object.assign(h, { status: 'behind', reason: e.follower.stats.lastError ?? 'no successful poll yet' });
    return h;
  });
  const ok = followers.every((f) => f.status === 'ok');
  return { code: ok ? 200 : 503, body: { status: ok ? 'ok' : 'behind', followers } };
}

export function followRegistry(entries: () => readonly FollowEntry[]): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const gauge = (name: string, help: string, value: (e: FollowEntry) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['db'],
      registers: [registry],
      collect() {
        this.reset();
        for (const e of entries()) this.set({ db: e.cfg.path }, value(e));
      },
    });
  const counter = (name: string, help: string, value: (e: FollowEntry) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['db'],
      registers: [registry],
      collect() {
        this.reset();
        for (const e of entries()) this.inc({ db: e.cfg.path }, value(e));
      },
    });
  gauge('lsinit_follow_lag_seconds', 'Seconds since the follower last had everything its replica had (-1 before the first poll).', (e) => {
    const lag = e.follower.lagMs();
    return Number.isFinite(lag) ? lag / 1000 : -1;
  });
  gauge('lsinit_follow_wal_index', 'WAL index of the last applied position.', (e) => e.follower.stats.index);
  gauge('lsinit_follow_wal_offset', 'Byte offset in that WAL index of the last applied position.', (e) => e.follower.stats.offset);
  gauge('lsinit_follow_up', '1 while the follower runs, 0 after it stopped on a fatal error.', (e) => (e.fatal ? 0 : 1));
  gauge('lsinit_follow_last_applied_timestamp_seconds', 'When the last transaction was applied (0 if none since start).', (e) => (e.follower.stats.lastAppliedAt ?? 0) / 1000);
  counter('lsinit_follow_transactions_total', 'Transactions (batches of WAL segments or new images) applied to the copy.', (e) => e.follower.stats.transactions);
  counter('lsinit_follow_generation_switches_total', 'Moves to a new generation or past a WAL gap.', (e) => e.follower.stats.generationSwitches);
  counter('lsinit_follow_poll_errors_total', 'Polls that failed (store unreachable); the copy kept its last state.', (e) => e.follower.stats.pollErrors);
  counter('lsinit_follow_busy_retries_total', 'Transactions postponed because readers held the database past the lock wait.', (e) => e.follower.stats.busyRetries);
  new Gauge({
    name: 'lsinit_follow_info',
    help: 'The generation the copy follows (value 1).',
    labelNames: ['db', 'generation'],
    registers: [registry],
    collect() {
      this.reset();
      for (const e of entries()) this.set({ db: e.cfg.path, generation: e.follower.stats.generation }, 1);
    },
  });
  return registry;
}
