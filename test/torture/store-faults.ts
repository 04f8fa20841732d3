/**
 * Store-side fault kinds of the torture (they need `--s3`): the trial's S3 replica goes through
 * the fault-injecting proxy (test/servers/fault-proxy.ts) in front of moto, with a 3 s lease ttl,
 * and the store misbehaves for a while. Replication must pause at most, never stop: the final
 * S3 restore must equal the source, and no lease may be declared lost.
 *
 * | kind | what the store does |
 * |---|---|
 * | `store-slow` | every request waits 1–5 s before it reaches the store, for 3–8 s |
 * | `store-5xx` | every request gets `503 SlowDown`, for 3–8 s |
 * | `store-lost-response` | 2–8 PUTs (WAL segments, snapshots, lease renewals) are applied, then their answer is dropped |
 * | `store-down` | connections refused for longer than the lease ttl (4–8 s) |
 */
import { startFaultProxy, type FaultProxy } from '../servers/fault-proxy.js';
import { setTimeout as sleep } from 'node:timers/promises';

export const STORE_FAULTS = ['store-slow', 'store-5xx', 'store-lost-response', 'store-down'] as const;
export type StoreFault = (typeof STORE_FAULTS)[number];

export function isStoreFault(kind: string): kind is StoreFault {
  return (STORE_FAULTS as readonly string[]).includes(kind);
}

/** Seeded draws of a store fault: how long, how slow, how many. */
export interface StoreFaultParams {
  /** Length of the slow or 5xx period. */
  stormMs: number;
  /** Delay added to each request while slow. */
  delayMs: number;
  /** Responses dropped. */
  drops: number;
  /** Length of the outage (past the 3 s lease ttl). */
  downMs: number;
}

export function drawStoreParams(between: (a: number, b: number) => number): StoreFaultParams {
  return { stormMs: between(3000, 8000), delayMs: between(1000, 5000), drops: between(2, 8), downMs: between(4000, 8000) };
}

/** A proxy in front of the run's moto for one trial; its endpoint goes into the trial's config. */
export function proxyFor(s3Endpoint: string): Promise<FaultProxy> {
  return startFaultProxy(Number(new URL(s3Endpoint).port));
}

/** Strike: returns once the store behaves again (the lost responses are spent, or 10 s passed). */
export async function strike(kind: StoreFault, proxy: FaultProxy, p: StoreFaultParams, note: (s: string) => void): Promise<void> {
  switch (kind) {
    case 'store-slow':
    case 'store-5xx': {
      const stop = proxy.inject({ fault: kind === 'store-slow' ? { kind: 'delay', ms: p.delayMs } : { kind: 'status', status: 503 } });
      await sleep(p.stormMs);
      stop();
      note(kind === 'store-slow' ? `store slow (+${p.delayMs} ms per request) for ${p.stormMs} ms` : `503 SlowDown for ${p.stormMs} ms`);
      return;
    }
    case 'store-lost-response': {
      const before = proxy.requests.filter((r) => r.fault === 'drop').length;
      const stop = proxy.inject({ fault: { kind: 'drop' }, match: (r) => r.method === 'PUT', times: p.drops });
      const end = Date.now() + 10_000;
      while (proxy.requests.filter((r) => r.fault === 'drop').length < before + p.drops && Date.now() < end) await sleep(50);
      stop();
      const dropped = proxy.requests.filter((r) => r.fault === 'drop');
      note(`dropped the answers of ${dropped.length - before} PUTs: ${dropped.slice(before).map((r) => r.path.split('/').slice(-2).join('/')).join(', ')}`);
      return;
    }
    case 'store-down': {
      await proxy.down();
      await sleep(p.downMs);
      await proxy.up();
      note(`store down for ${p.downMs} ms (lease ttl 3 s)`);
      return;
    }
  }
}
