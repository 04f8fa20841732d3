/**
 * LeaseGuard behaviour beyond the per-backend suite: renewal, bounded waits, loss on failed
 * renewals, lost responses and stores that ignore preconditions. Real files in a temp dir, with
 * a wrapper store injecting faults.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LsinitError } from '../../src/errors.js';
import { FileLeaseStore } from '../../src/replica/lease/file.js';
import { LEASE_VERSION, leaseConflict, type Lease, type LeaseStore } from '../../src/replica/lease/index.js';
import { LeaseGuard } from '../../src/replicate/lease-guard.js';

let root: string;
let n = 0;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'lsinit-lease-guard-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

function store(path = join(root, `r${++n}`)): FileLeaseStore {
  return new FileLeaseStore({ path });
}

/** A store whose methods can be overridden per test; everything else goes to `inner`. */
function faulty(inner: LeaseStore, over: Partial<Pick<LeaseStore, 'read' | 'create' | 'replace' | 'delete'>>): LeaseStore {
  return {
    type: inner.type,
    location: inner.location,
    read: over.read ?? (() => inner.read()),
    create: over.create ?? ((l) => inner.create(l)),
    replace: over.replace ?? ((l, t) => inner.replace(l, t)),
    delete: over.delete ?? ((t) => inner.delete(t)),
    close: () => inner.close(),
  };
}

const isCode = (code: string) => (e: unknown) => e instanceof LsinitError && e.code === code;

describe('LeaseGuard', () => {
  it('renewals keep the lease alive well past its ttl', async () => {
    const dir = join(root, `r${++n}`);
    // Generous margins: a loaded machine delays timers by hundreds of ms.
    const a = new LeaseGuard({ store: store(dir), ttlMs: 1500, renewIntervalMs: 200 });
    await a.acquire();
    await sleep(2500);
    await assert.rejects(new LeaseGuard({ store: store(dir), hostname: 'other' }).acquire(), isCode('LSINIT_ERR_LEASE'));
    const rec = await store(dir).read();
    assert.ok(Date.parse(rec!.lease.expiresAt) > Date.now(), 'stored lease is still in the future');
    assert.equal(a.held, true);
    await a.release();
  });

  it('wait: true gives up after maxWaitMs with a message naming the holder', async () => {
    const dir = join(root, `r${++n}`);
    const a = new LeaseGuard({ store: store(dir), hostname: 'busy-host', ttlMs: 1500, renewIntervalMs: 300 });
    await a.acquire();
    const t0 = Date.now();
    const err = await new LeaseGuard({ store: store(dir), hostname: 'other', wait: true, maxWaitMs: 500, pollMs: 100 }).acquire().then(() => undefined, (e: unknown) => e);
    assert.ok(isCode('LSINIT_ERR_LEASE')(err), String(err));
    const e = err as LsinitError;
    assert.ok(Date.now() - t0 >= 450, 'it waited');
    assert.ok(Date.now() - t0 < 3000, 'and gave up in bounded time');
    assert.equal(typeof e.fields['waitedMs'], 'number');
    assert.match(e.message, /gave up after waiting .*busy-host/);
    await a.release();
  });

  it('wait: true takes the lease over once an abandoned holder lets it expire', async () => {
    const dir = join(root, `r${++n}`);
    const a = new LeaseGuard({ store: store(dir), hostname: 'gone', ttlMs: 400, renewIntervalMs: 100 });
    await a.acquire();
    a.stop(); // crashed on another host: no renewals, no release
    const t0 = Date.now();
    const b = new LeaseGuard({ store: store(dir), hostname: 'here', wait: true, maxWaitMs: 5000, pollMs: 1000 });
    await b.acquire();
    // Woken at the expiry, not at the next poll.
    assert.ok(Date.now() - t0 < 900, `took ${Date.now() - t0} ms`);
    await b.release();
  });

  it('an aborted wait stops at once', async () => {
    const dir = join(root, `r${++n}`);
    const a = new LeaseGuard({ store: store(dir) });
    await a.acquire();
    const ac = new AbortController();
    const p = new LeaseGuard({ store: store(dir), hostname: 'other', wait: true, signal: ac.signal }).acquire();
    setTimeout(() => ac.abort(), 100);
    await assert.rejects(p, (e: unknown) => (e as Error).name === 'AbortError');
    await a.release();
  });

  it('renewals failing with transient errors give the lease up before it can expire', async () => {
    const inner = store();
    let failing = false;
    const s = faulty(inner, {
      replace: (l, t) => (failing ? Promise.reject(new LsinitError('LSINIT_ERR_REPLICA', 'store unreachable', { transient: true })) : inner.replace(l, t)),
    });
    let lostAt = 0;
    let lostErr: LsinitError | undefined;
    const g = new LeaseGuard({ store: s, ttlMs: 1500, renewIntervalMs: 300, onLost: (e) => ((lostAt = Date.now()), (lostErr = e)) });
    await g.acquire();
    const expires = Date.parse((await inner.read())!.lease.expiresAt);
    failing = true;
    await sleep(1800);
    assert.ok(lostErr, 'onLost was called');
    assert.equal(g.state, 'lost');
    assert.match(lostErr.message, /could not be renewed before it expired .*store unreachable/);
    // A later renewal (at most every renew interval) could have pushed the expiry; the guard must
    // have stopped before the last expiry anyone else could have read.
    assert.ok(lostAt < expires + 300, `lost at ${lostAt - expires} ms after the first stored expiry`);
    const last = Date.parse((await inner.read())!.lease.expiresAt);
    assert.ok(lostAt < last, `lost ${last - lostAt} ms before the stored expiry`);
  });

  it('a renewal that never answers gives the lease up before it expires, and release does not wait for it', async () => {
    const inner = store();
    let hang = false;
    const s = faulty(inner, { replace: (l, t) => (hang ? new Promise<string>(() => {}) : inner.replace(l, t)) });
    let lostAt = 0;
    const g = new LeaseGuard({ store: s, ttlMs: 1500, renewIntervalMs: 300, onLost: () => (lostAt = Date.now()) });
    await g.acquire();
    hang = true;
    await sleep(1800);
    const expires = Date.parse((await inner.read())!.lease.expiresAt);
    assert.ok(lostAt > 0, 'onLost was called');
    assert.ok(lostAt < expires, `lost ${expires - lostAt} ms before the stored expiry`);
    assert.match(g.lostError!.message, /could not be renewed before it expired/);
    const t0 = Date.now();
    await g.release();
    assert.ok(Date.now() - t0 < 100);
    // Left for the next holder to take over once expired: it is not ours any more.
    assert.ok(await inner.read());
  });

  it('a create whose answer was lost is recognised as our own lease', async () => {
    const inner = store();
    const s = faulty(inner, {
      create: async (l) => {
        await inner.create(l);
        // The write landed; the retry of a lost response then meets its own object.
        throw leaseConflict(inner, 'create', 'a lease object already exists');
      },
    });
    const g = new LeaseGuard({ store: s });
    await g.acquire();
    assert.equal(g.held, true);
    await g.renew();
    await g.release();
    assert.equal(await inner.read(), undefined);
  });

  it('a store that ignores preconditions is caught by the read-back after acquiring', async () => {
    const inner = store();
    const other: Lease = { holder: { hostname: 'sneaky', pid: 9, id: 'beef', startedAt: new Date().toISOString() }, expiresAt: new Date(Date.now() + 60_000).toISOString(), version: LEASE_VERSION };
    const s = faulty(inner, {
      create: async (l) => {
        const t = await inner.create(l);
        // Another instance's unconditional write lands right after ours.
        await inner.replace(other, (await inner.read())!.token);
        return t;
      },
    });
    const err = await new LeaseGuard({ store: s }).acquire().then(() => undefined, (e: unknown) => e);
    assert.ok(isCode('LSINIT_ERR_LEASE')(err), String(err));
    assert.equal(((err as LsinitError).fields['holder'] as { id: string }).id, 'beef');
  });

  it('a lease left on this host by a process that is gone (or had our pid) is taken over at once', async () => {
    const dir = join(root, `r${++n}`);
    const crashed = new LeaseGuard({ store: store(dir), hostname: 'box', pid: 1234 });
    await crashed.acquire();
    crashed.stop(); // kill -9: no release, 30 s left on the lease
    // Another host: refused.
    await assert.rejects(new LeaseGuard({ store: store(dir), hostname: 'other' }).acquire(), isCode('LSINIT_ERR_LEASE'));
    // Same host, the old pid still running (another lsinit here): refused.
    await assert.rejects(new LeaseGuard({ store: store(dir), hostname: 'box', pid: 99, pidAlive: () => true }).acquire(), isCode('LSINIT_ERR_LEASE'));
    // Opt-out honoured.
    await assert.rejects(new LeaseGuard({ store: store(dir), hostname: 'box', pid: 1234, sameHostTakeover: false }).acquire(), isCode('LSINIT_ERR_LEASE'));
    // Same host and pid (a restarted container's PID 1): taken over.
    const again = new LeaseGuard({ store: store(dir), hostname: 'box', pid: 1234 });
    await again.acquire();
    again.stop();
    // Same host, the old pid gone (real check: a pid that cannot exist).
    const next = new LeaseGuard({ store: store(dir), hostname: 'box', pid: 4321, pidAlive: (pid) => pid !== 1234 });
    await next.acquire();
    assert.equal(next.held, true);
    await next.release();
  });

  it('a live lease of another guard in this same process is not mistaken for a stale one', async () => {
    const dir = join(root, `r${++n}`);
    const a = new LeaseGuard({ store: store(dir) });
    await a.acquire();
    await assert.rejects(new LeaseGuard({ store: store(dir) }).acquire(), isCode('LSINIT_ERR_LEASE'));
    await a.release();
  });

  it('rejects a renew interval that is not shorter than the ttl', () => {
    assert.throws(() => new LeaseGuard({ store: store(), ttlMs: 1000, renewIntervalMs: 1000 }), isCode('LSINIT_ERR_CONFIG'));
  });

  it('a guard is single use; release without acquire is a no-op', async () => {
    const g = new LeaseGuard({ store: store() });
    await g.release();
    await assert.rejects(g.acquire(), isCode('LSINIT_ERR_LEASE'));
  });
});
