/**
 * The `lease:` config key (top level and per replica). Skipped until config/load.ts parses it
 * (the wiring patch in the lease report), so it turns itself on when the patch lands.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/file.js';
import type { Config } from '../../src/config/types.js';
import { LsinitError } from '../../src/errors.js';

function parse(yaml: string): Config {
  return parseConfig(Buffer.from(yaml), { expandEnv: false, env: {}, cwd: '/', file: '/test.yml' });
}

const DB = (replicaExtra = '', top = '') => `${top}dbs:
  - path: /data/app.db
    replicas:
      - path: /backup/a
${replicaExtra}      - path: /backup/b
        name: b
`;

type LeaseOf = { ttlMs: number; wait: boolean; maxWaitMs: number } | undefined;
const leaseOf = (c: Config, i: number): LeaseOf => (c.dbs[0]!.replicas[i] as unknown as { lease?: LeaseOf }).lease;
const wired = leaseOf(parse(DB()), 0) !== undefined;

describe('lease config', { skip: wired ? false : 'config parsing of lease: not applied yet' }, () => {
  it('is on by default: ttl 30 s, no wait, 5 min max wait', () => {
    assert.deepEqual(leaseOf(parse(DB()), 0), { ttlMs: 30_000, wait: false, maxWaitMs: 300_000 });
  });

  it('top-level lease: sets every replica; a replica overrides key by key or turns it off', () => {
    const c = parse(DB('        lease: false\n', 'lease: { ttl: 1m, wait: true }\n'));
    assert.equal(leaseOf(c, 0), undefined);
    assert.deepEqual(leaseOf(c, 1), { ttlMs: 60_000, wait: true, maxWaitMs: 300_000 });
    const d = parse(DB('        lease: { max-wait: 30s }\n', 'lease: false\n'));
    assert.deepEqual(leaseOf(d, 0), { ttlMs: 30_000, wait: false, maxWaitMs: 30_000 });
    assert.equal(leaseOf(d, 1), undefined);
  });

  it('a ttl under 3 s is a config error naming the key; unknown keys warn', () => {
    assert.throws(() => parse(DB('        lease: { ttl: 1s }\n')), (e: unknown) => e instanceof LsinitError && e.code === 'LSINIT_ERR_CONFIG' && /dbs\[0\]\.replicas\[0\]\.lease\.ttl/.test(e.message));
    const c = parse(DB('        lease: { wiat: true }\n'));
    assert.ok(c.warnings.some((w) => /lease\.wiat: unknown key/.test(w)), c.warnings.join('\n'));
  });
});
