/**
 * One lease suite, run unchanged against every backend's real server (file, moto, azurite, the
 * GCS test server, sshd). Each test gets a fresh replica location; `open()` gives another store
 * on that location, as a second lsinit process would have.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LsinitError } from '../../src/errors.js';
import { opSnapshot } from '../../src/metrics/ops.js';
import { encodeLease, LEASE_VERSION, type Lease, type LeaseStore } from '../../src/replica/lease/index.js';
import { LeaseGuard, type LeaseGuardOptions } from '../../src/replicate/lease-guard.js';

export interface LeaseCtx {
  open(): LeaseStore;
  /** Write bytes at the lease object's name with the store's own SDK/fs, no preconditions. */
  rawWrite(data: Uint8Array): Promise<void>;
  cleanup?(): Promise<void>;
}

function isLeaseError(err: unknown): err is LsinitError {
  return err instanceof LsinitError && err.code === 'LSINIT_ERR_LEASE';
}

export function runLeaseSuite(name: string, setup: () => Promise<LeaseCtx>): void {
  describe(`lease: ${name}`, () => {
    async function withCtx(fn: (ctx: LeaseCtx, guard: (o?: Partial<LeaseGuardOptions>) => LeaseGuard) => Promise<void>): Promise<void> {
      const ctx = await setup();
      const guards: LeaseGuard[] = [];
      const stores: LeaseStore[] = [];
      const guard = (o: Partial<LeaseGuardOptions> = {}) => {
        const store = ctx.open();
        stores.push(store);
        const g = new LeaseGuard({ store, corruptGraceMs: 100, ...o });
        guards.push(g);
        return g;
      };
      try {
        await fn(ctx, guard);
      } finally {
        for (const g of guards) g.stop();
        await Promise.all(stores.map((s) => s.close()));
        await ctx.cleanup?.();
      }
    }

    it('every lease request is counted under the store\'s replica_type (what /metrics and the cost table show)', () =>
      withCtx(async (ctx, guard) => {
        const probe = ctx.open();
        const type = probe.type;
        await probe.close();
        const count = (op: string) => opSnapshot().find((o) => o.replicaType === type && o.operation === op)?.total ?? 0;
        const before = { PUT: count('PUT'), DELETE: count('DELETE') };
        const g = guard();
        await g.acquire();
        await g.renew();
        await g.release();
        assert.ok(count('PUT') - before.PUT >= 2, `${type}: create + renew are at least 2 PUTs, counted ${count('PUT') - before.PUT}`);
        assert.ok(count('DELETE') - before.DELETE >= 1, `${type}: release is a DELETE`);
      }));

    it('a second instance refuses a live lease naming its holder; after release it acquires', () =>
      withCtx(async (_ctx, guard) => {
        const a = guard({ hostname: 'web-1', pid: 4242 });
        await a.acquire();
        assert.equal(a.held, true);
        const b = guard({ hostname: 'web-2' });
        const err = await b.acquire().then(() => undefined, (e: unknown) => e);
        assert.ok(isLeaseError(err), `want LSINIT_ERR_LEASE, got ${String(err)}`);
        const holder = err.fields['holder'] as { hostname: string; pid: number; id: string; startedAt: string };
        assert.equal(holder.hostname, 'web-1');
        assert.equal(holder.pid, 4242);
        assert.equal(holder.id, a.holder.id);
        assert.equal(typeof err.fields['expiresAt'], 'string');
        // The one line a user sees names host, pid, start and expiry.
        assert.match(err.message, /web-1.*pid 4242.*started .*expires /);
        await a.release();
        const c = guard({ hostname: 'web-2' });
        await c.acquire();
        assert.equal(c.held, true);
        await c.release();
      }));

    it('an expired lease is taken over, and the old holder finds out at its next renew', () =>
      withCtx(async (_ctx, guard) => {
        const lost: LsinitError[] = [];
        const a = guard({ ttlMs: 600, renewIntervalMs: 200, hostname: 'old', onLost: (e) => lost.push(e) });
        await a.acquire();
        a.stop(); // a paused or partitioned holder: no renewals
        await sleep(700);
        const b = guard({ ttlMs: 5000, hostname: 'new' });
        await b.acquire();
        assert.equal(b.held, true);
        const err = await a.renew().then(() => undefined, (e: unknown) => e);
        assert.ok(isLeaseError(err), `want LSINIT_ERR_LEASE, got ${String(err)}`);
        assert.equal(a.state, 'lost');
        assert.equal(lost.length, 1);
        assert.match(lost[0]!.message, /now held by host new/);
        // The old holder's release must not delete the new holder's lease.
        await a.release();
        const c = guard();
        await assert.rejects(c.acquire(), (e: unknown) => isLeaseError(e) && (e.fields['holder'] as { id: string }).id === b.holder.id);
        await b.release();
      }));

    it('concurrent acquires race: exactly one wins, the others refuse', () =>
      withCtx(async (_ctx, guard) => {
        const gs = Array.from({ length: 5 }, (_, i) => guard({ hostname: `racer-${i}` }));
        const rs = await Promise.allSettled(gs.map((g) => g.acquire()));
        const won = rs.filter((r) => r.status === 'fulfilled');
        assert.equal(won.length, 1, `winners: ${won.length}; ${rs.map((r) => (r.status === 'rejected' ? String(r.reason) : 'won')).join(' | ')}`);
        for (const r of rs) if (r.status === 'rejected') assert.ok(isLeaseError(r.reason), String(r.reason));
        assert.equal(gs.filter((g) => g.held).length, 1);
        const winner = gs.find((g) => g.held)!;
        await winner.renew();
        await winner.release();
      }));

    it('renew after the lease object was replaced directly fails loudly', () =>
      withCtx(async (ctx, guard) => {
        const lost: LsinitError[] = [];
        const a = guard({ onLost: (e) => lost.push(e) });
        await a.acquire();
        const thief: Lease = { holder: { hostname: 'thief', pid: 7, id: 'f00d', startedAt: new Date().toISOString() }, expiresAt: new Date(Date.now() + 60_000).toISOString(), version: LEASE_VERSION };
        await ctx.rawWrite(encodeLease(thief));
        await assert.rejects(a.renew(), (e: unknown) => isLeaseError(e) && e.fields['lost'] === true && /thief/.test(e.message));
        assert.equal(a.held, false);
        assert.equal(lost.length, 1);
        // A later renew keeps failing with the same error instead of writing again.
        await assert.rejects(a.renew(), (e: unknown) => e === lost[0]);
        const rec = await ctx.open().read();
        assert.equal(rec?.lease.holder.id, 'f00d');
      }));

    it('an unreadable lease object is taken over once it stays unchanged for the grace period', () =>
      withCtx(async (ctx, guard) => {
        await ctx.rawWrite(new Uint8Array());
        const a = guard();
        await a.acquire();
        assert.equal(a.held, true);
        const store = ctx.open();
        try {
          const rec = await store.read();
          assert.equal(rec?.lease.holder.id, a.holder.id);
          assert.equal(rec?.corrupt, undefined);
        } finally {
          await store.close();
        }
        await a.release();
        const after = ctx.open();
        try {
          assert.equal(await after.read(), undefined);
        } finally {
          await after.close();
        }
      }));

    it('with wait: true a second instance acquires once the holder releases', () =>
      withCtx(async (_ctx, guard) => {
        const a = guard({ hostname: 'leaving' });
        await a.acquire();
        const b = guard({ wait: true, pollMs: 100, maxWaitMs: 10_000 });
        const t0 = Date.now();
        const pb = b.acquire();
        await sleep(300);
        assert.equal(b.held, false);
        await a.release();
        await pb;
        assert.equal(b.held, true);
        assert.ok(Date.now() - t0 < 5000);
        await b.release();
      }));

    it('store preconditions: create on an existing object and replace/delete with a stale token are conflicts', () =>
      withCtx(async (ctx) => {
        const s = ctx.open();
        try {
          const lease = { holder: { hostname: 'h', pid: 1, id: 'aa', startedAt: new Date().toISOString() }, expiresAt: new Date(Date.now() + 1000).toISOString(), version: LEASE_VERSION } as const;
          const t1 = await s.create(lease);
          await assert.rejects(s.create(lease), (e: unknown) => isLeaseError(e) && e.fields['op'] === 'create');
          const t2 = await s.replace({ ...lease, expiresAt: new Date(Date.now() + 2000).toISOString() }, t1);
          assert.notEqual(t2, t1);
          await assert.rejects(s.replace(lease, t1), (e: unknown) => isLeaseError(e) && e.fields['op'] === 'replace');
          await assert.rejects(s.delete(t1), (e: unknown) => isLeaseError(e) && e.fields['op'] === 'delete');
          const rec = await s.read();
          assert.equal(rec?.token, t2);
          await s.delete(t2);
          assert.equal(await s.read(), undefined);
          // Deleting what is already gone is fine; replacing it is a conflict.
          await s.delete(t2);
          await assert.rejects(s.replace(lease, t2), (e: unknown) => isLeaseError(e) && e.fields['op'] === 'replace');
        } finally {
          await s.close();
        }
      }));
  });
}
