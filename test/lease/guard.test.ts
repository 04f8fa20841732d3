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
import { LsinitError } from '../../src/errors.js';
import { FileLeaseStore } from '../../src/replica/lease/file.js';
import { LEASE_VERSION, leaseConflict, type Lease, type LeaseStore } from '../../src/replica/lease/index.js';
import { LeaseGuard } from '../../src/replicate/lease-guard.js';
import { FakeClock } from '../helpers/fake-clock.js';

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

/**
 * `inner` with a count of its calls in flight, and `settle`, to pass to FakeClock.advance: after
 * each timer, the store calls it started (real files) finish and what follows them runs.
 */
function tracked(inner: LeaseStore): { store: LeaseStore; settle: () => Promise<void> } {
  let busy = 0;
  const track = <T>(p: Promise<T>): Promise<T> => {
    busy++;
    return p.finally(() => busy--);
  };
  const store = faulty(inner, {
    read: () => track(inner.read()),
    create: (l) => track(inner.create(l)),
    replace: (l, t) => track(inner.replace(l, t)),
    delete: (t) => track(inner.delete(t)),
  });
  const tick = () => new Promise((r) => setImmediate(r));
  const settle = async () => {
    do await tick();
    while (busy > 0);
    await tick();
  };
  return { store, settle };
}

describe('LeaseGuard', () => {
  it('renewals keep the lease alive well past its ttl, one every renew interval (fake clock, no sleeping)', async () => {
    const dir = join(root, `r${++n}`);
    const clock = new FakeClock();
    const inner = store(dir);
    const { store: files, settle } = tracked(inner);
    const renewedAt: number[] = [];
    let hang = false;
    const s = faulty(files, {
      replace: (l, t) => {
        renewedAt.push(clock.now());
        return hang ? new Promise<string>(() => {}) : files.replace(l, t);
      },
    });
    const fake = { now: clock.now, mono: clock.now, timers: clock };
    let unsureAt: number | undefined;
    const a = new LeaseGuard({ store: s, ...fake, onUnsure: () => (unsureAt = clock.now()) }); // default ttl 30 s, renewals every 10 s
    await a.acquire();
    const t0 = clock.now();
    await clock.advance(a.renewIntervalMs - 1, settle);
    assert.deepEqual(renewedAt, [], 'no renewal before the renew interval');
    await clock.advance(5 * a.ttlMs - a.renewIntervalMs + 1, settle);
    assert.deepEqual(renewedAt.map((t) => t - t0), Array.from({ length: 15 }, (_, i) => (i + 1) * a.renewIntervalMs), 'one renewal every renew interval');
    assert.equal(a.held, true);
    assert.equal(a.remainingMs, a.ttlMs, 'the deadline counts from the last renewal');
    assert.equal(Date.parse((await inner.read())!.lease.expiresAt), clock.now() + a.ttlMs, 'stored expiry pushed by the last renewal');
    await assert.rejects(new LeaseGuard({ store: store(dir), hostname: 'other', ...fake }).acquire(), isCode('LSINIT_ERR_LEASE'));
    // A store that stops answering: each renewal gives up after the request timeout and is retried;
    // the watchdog stops shipping a safety margin (ttl / 6) before the stored expiry.
    hang = true;
    const last = clock.now();
    await clock.advance(a.ttlMs - Math.floor(a.ttlMs / 6) - 1, settle);
    assert.equal(unsureAt, undefined);
    assert.equal(a.held, true);
    assert.ok(renewedAt.length > 16, 'renewals were retried meanwhile');
    await clock.advance(1, settle);
    assert.equal(unsureAt, last + a.ttlMs - Math.floor(a.ttlMs / 6));
    assert.equal(a.held, false);
    a.stop();
  });

  it('wait: true gives up after maxWaitMs with a message naming the holder', async () => {
    const dir = join(root, `r${++n}`);
    const { store: files, settle } = tracked(store(dir));
    const clock = new FakeClock();
    const fake = { now: clock.now, mono: clock.now, timers: clock, sleep: (ms: number) => new Promise<void>((r) => clock.setTimeout(r, ms)) };
    const a = new LeaseGuard({ store: files, hostname: 'busy-host', ttlMs: 1500, renewIntervalMs: 300, ...fake });
    await a.acquire();
    let over = false;
    const p = new LeaseGuard({ store: files, hostname: 'other', wait: true, maxWaitMs: 500, pollMs: 100, ...fake }).acquire().then(() => undefined, (e: unknown) => e).finally(() => (over = true));
    const isOver = () => over;
    await settle();
    await clock.advance(499, settle);
    assert.equal(isOver(), false, 'it waits (re-reading every pollMs) until maxWaitMs');
    await clock.advance(1, settle);
    assert.equal(isOver(), true, 'and gives up at maxWaitMs');
    const err = await p;
    assert.ok(isCode('LSINIT_ERR_LEASE')(err), String(err));
    const e = err as LsinitError;
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

  it('renewals failing with transient errors stop shipping before the lease can expire, and the lease is taken back once the store answers', async () => {
    const inner = store();
    const { store: files, settle } = tracked(inner);
    const clock = new FakeClock();
    let failing = false;
    const down = () => Promise.reject(new LsinitError('LSINIT_ERR_REPLICA', 'store unreachable', { transient: true }));
    const s = faulty(files, {
      read: () => (failing ? down() : files.read()),
      replace: (l, t) => (failing ? down() : files.replace(l, t)),
    });
    let unsureAt = 0;
    let unsureErr: LsinitError | undefined;
    const regained: { relearn: boolean }[] = [];
    let lost = false;
    const g = new LeaseGuard({ store: s, ttlMs: 1500, renewIntervalMs: 300, recheckMs: 100, now: clock.now, mono: clock.now, timers: clock, onUnsure: (e) => ((unsureAt = clock.now()), (unsureErr = e)), onRegained: (i) => regained.push(i), onLost: () => (lost = true) });
    await g.acquire();
    const expires = Date.parse((await inner.read())!.lease.expiresAt);
    failing = true;
    // Longer than the ttl (fake clock): the stored lease expires meanwhile.
    await clock.advance(2200, settle);
    assert.ok(unsureErr, 'onUnsure was called');
    assert.equal(g.state, 'unsure');
    assert.equal(g.held, false, 'nothing may be shipped while unconfirmed');
    assert.match(unsureErr.message, /could not be renewed before it expired .*store unreachable/);
    assert.equal(unsureErr.code, 'LSINIT_ERR_LEASE');
    // A later renewal (at most every renew interval) could have pushed the expiry; the guard must
    // have stopped before the last expiry anyone else could have read.
    // No renewal landed, so the watchdog stopped shipping exactly ttl / 6 before the stored expiry.
    assert.equal(unsureAt, expires - Math.floor(g.ttlMs / 6), `unsure ${expires - unsureAt} ms before the stored expiry`);
    assert.equal(Date.parse((await inner.read())!.lease.expiresAt), expires, 'no renewal landed');
    failing = false;
    // The next re-read (every recheckMs) takes it back.
    await clock.advance(g.recheckMs, settle);
    assert.equal(g.held, true);
    assert.deepEqual(regained, [{ relearn: false }], 'still ours (same holder id): nobody wrote in between');
    assert.equal(lost, false);
    const rec = (await inner.read())!;
    assert.equal(rec.lease.holder.id, g.holder.id);
    assert.ok(Date.parse(rec.lease.expiresAt) > clock.now(), 'renewed again');
    await g.renew();
    await g.release();
    assert.equal(await inner.read(), undefined);
  });

  it('an unconfirmed lease that another live instance took over is lost for good', async () => {
    const dir = join(root, `r${++n}`);
    const inner = store(dir);
    const { store: files, settle } = tracked(inner);
    const clock = new FakeClock();
    const fake = { now: clock.now, mono: clock.now, timers: clock };
    let failing = false;
    const down = () => Promise.reject(new LsinitError('LSINIT_ERR_REPLICA', 'store unreachable', { transient: true }));
    const s = faulty(files, { read: () => (failing ? down() : files.read()), replace: (l, t) => (failing ? down() : files.replace(l, t)) });
    let lostErr: LsinitError | undefined;
    const g = new LeaseGuard({ store: s, ttlMs: 1000, renewIntervalMs: 200, recheckMs: 100, ...fake, onLost: (e) => (lostErr = e) });
    await g.acquire();
    failing = true;
    await clock.advance(1100, settle); // expired
    assert.equal(g.state, 'unsure');
    const other = new LeaseGuard({ store: store(dir), hostname: 'other-host', ttlMs: 5000, ...fake });
    await other.acquire();
    failing = false;
    await clock.advance(g.recheckMs, settle); // the next re-read
    assert.equal(g.state, 'lost');
    assert.match(lostErr!.message, /another instance holds it now; now held by host other-host/);
    assert.equal((await inner.read())!.lease.holder.id, other.holder.id, 'the live holder keeps it');
    await g.release();
    assert.ok(await inner.read(), 'release leaves a lease that is not ours in place');
    await other.release();
  });

  it('an unconfirmed lease found free (released by an instance that took it meanwhile) is taken back, and the replica position relearned', async () => {
    const dir = join(root, `r${++n}`);
    const inner = store(dir);
    const { store: files, settle } = tracked(inner);
    const clock = new FakeClock();
    const fake = { now: clock.now, mono: clock.now, timers: clock };
    let failing = false;
    const down = () => Promise.reject(new LsinitError('LSINIT_ERR_REPLICA', 'store unreachable', { transient: true }));
    const s = faulty(files, { read: () => (failing ? down() : files.read()), replace: (l, t) => (failing ? down() : files.replace(l, t)) });
    const regained: { relearn: boolean }[] = [];
    const g = new LeaseGuard({ store: s, ttlMs: 1000, renewIntervalMs: 200, recheckMs: 100, ...fake, onRegained: (i) => regained.push(i) });
    await g.acquire();
    failing = true;
    await clock.advance(1100, settle); // expired
    assert.equal(g.state, 'unsure');
    const other = new LeaseGuard({ store: store(dir), hostname: 'other-host', ...fake });
    await other.acquire();
    await other.release();
    failing = false;
    await clock.advance(g.recheckMs, settle); // the next re-read
    assert.equal(g.held, true);
    assert.deepEqual(regained, [{ relearn: true }]);
    assert.equal((await inner.read())!.lease.holder.id, g.holder.id);
    await g.release();
  });

  it('a renewal whose answer was lost (its retry refused with a precondition failure) keeps the lease', async () => {
    const inner = store();
    let lose = false;
    const s = faulty(inner, {
      replace: async (l, t) => {
        if (!lose) return inner.replace(l, t);
        lose = false;
        await inner.replace(l, t);
        // The write landed; the retry of the lost response fails its If-Match.
        throw leaseConflict(inner, 'replace', 'the lease object was replaced or deleted by another holder');
      },
    });
    const events: string[] = [];
    const g = new LeaseGuard({ store: s, ttlMs: 3000, onUnsure: () => events.push('unsure'), onLost: () => events.push('lost') });
    await g.acquire();
    lose = true;
    await g.renew();
    assert.equal(g.state, 'held');
    assert.deepEqual(events, [], 'neither lost nor unconfirmed');
    assert.equal((await inner.read())!.lease.holder.id, g.holder.id);
    await g.renew(); // the token it renews with is the landed write's
    await g.release();
    assert.equal(await inner.read(), undefined);
  });

  it('a renewal that never answers is timed out; shipping stops before the lease expires, and release hands the lease back', async () => {
    const inner = store();
    const { store: files, settle } = tracked(inner);
    const clock = new FakeClock();
    let hang = false;
    const s = faulty(files, { replace: (l, t) => (hang ? new Promise<string>(() => {}) : files.replace(l, t)) });
    let unsureAt = 0;
    const g = new LeaseGuard({ store: s, ttlMs: 1500, renewIntervalMs: 300, requestTimeoutMs: 200, recheckMs: 100, now: clock.now, mono: clock.now, timers: clock, onUnsure: () => (unsureAt = clock.now()) });
    await g.acquire();
    hang = true;
    await clock.advance(1800, settle);
    const expires = Date.parse((await inner.read())!.lease.expiresAt);
    assert.equal(unsureAt, expires - Math.floor(g.ttlMs / 6), `unsure ${expires - unsureAt} ms before the stored expiry`);
    assert.match(g.unsureError!.message, /could not be renewed before it expired .*did not answer within 200 ms/);
    // Released without the clock moving: it waits neither for the hung renewal nor for a timeout.
    let released = false;
    const p = g.release().then(() => (released = true));
    await settle();
    assert.equal(released ? 'released' : 'waiting', 'released');
    await p;
    // The object still named us: deleted, so the next instance need not wait for the expiry.
    assert.equal(await inner.read(), undefined);
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
  it('the lease another thread wrote under our holder id is adopted without a write while the store holds exactly it, else renewed at once', async () => {
    const dir = join(root, `r${++n}`);
    const first = new LeaseGuard({ store: store(dir), holderId: 'shared-id', ttlMs: 60_000 });
    await first.acquire();
    first.stop();
    const handover = first.handover();
    assert.ok(handover);
    let writes = 0;
    const counting = (s: LeaseStore) => faulty(s, { replace: (l, t) => (writes++, s.replace(l, t)), create: (l) => (writes++, s.create(l)) });
    const before = await store(dir).read();
    // The other thread wrote it 10 s ago (monotonic): the deadline counts from then (the first
    // renewal too: due 20 s after that write, not yet).
    const adopted = new LeaseGuard({ store: counting(store(dir)), holderId: 'shared-id', ttlMs: 60_000, handedOver: () => ({ ...handover, writtenAtNs: handover.writtenAtNs - 10_000_000_000n }) });
    await adopted.acquire();
    assert.equal(writes, 0);
    assert.equal(adopted.held, true);
    assert.ok(adopted.remainingMs > 45_000 && adopted.remainingMs <= 50_000, String(adopted.remainingMs));
    assert.deepEqual((await store(dir).read())?.lease, before?.lease);
    adopted.stop();
    assert.equal(writes, 0);
    // Changed since (another write under our id): renewed at once, as without a handover.
    const renewed = new LeaseGuard({ store: counting(store(dir)), holderId: 'shared-id', ttlMs: 60_000, handedOver: () => ({ ...handover, token: 'not-the-current-token' }) });
    await renewed.acquire();
    assert.equal(writes, 1);
    assert.ok(renewed.remainingMs > 55_000);
    await renewed.release();
    assert.equal(await store(dir).read(), undefined);
  });
});
