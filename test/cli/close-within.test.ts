/**
 * `lsinit replicate`'s stop is bounded whatever the engine does: closeWithin() returns the
 * controller's failures, or, when close() has not settled by its deadline plus the grace, a failure
 * saying so (the process then exits 1 instead of waiting).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { closeWithin } from '../../src/cli/replicate.js';
import type { Logger } from '../../src/log/logger.js';
import type { SyncFailure } from '../../src/replicate/types.js';

function recorder(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log: Logger = {
    debug: () => {},
    info: () => {},
    warn: () => {},
    error: (msg) => void lines.push(msg),
    child: () => log,
  };
  return { log, lines };
}

describe('closeWithin', () => {
  it('returns what close() reports when it ends in time', async () => {
    const { log, lines } = recorder();
    const f: SyncFailure = { db: '/data/app.db', replica: 'r', error: 'boom' };
    assert.deepEqual(await closeWithin({ close: async () => ({ failures: [f] }) }, Date.now() + 1000, log), [f]);
    assert.deepEqual(lines, []);
  });

  it('stops waiting for a close() that never settles at the deadline plus the grace', async () => {
    const { log, lines } = recorder();
    let asked: number | undefined;
    const t0 = Date.now();
    const failures = await closeWithin({ close: (o) => ((asked = o.deadline), new Promise(() => {})) }, t0 + 200, log, 100);
    const took = Date.now() - t0;
    assert.equal(asked, t0 + 200, 'close() is given the deadline');
    assert.ok(took >= 290 && took < 1000, `took ${took} ms`);
    assert.equal(failures.length, 1);
    assert.match(failures[0]!.error, /did not finish by the shutdown deadline/);
    assert.deepEqual(lines, ['shutdown did not finish by its deadline; exiting without waiting for it']);
  });
});
