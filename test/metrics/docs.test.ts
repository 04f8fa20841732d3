/** docs/metrics.md lists every metric /metrics exports, and exports nothing it does not list. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/cli.js';

test('every metric name registered in src/metrics/registry.ts has a row in docs/metrics.md, and every row is registered', () => {
  const src = readFileSync(join(ROOT, 'src/metrics/registry.ts'), 'utf8');
  const registered = new Set([...src.matchAll(/'((?:litestream|lsinit)_[a-z_]+)'/g)].map((m) => m[1]!));
  const doc = readFileSync(join(ROOT, 'docs/metrics.md'), 'utf8');
  const rows = new Set([...doc.matchAll(/^\| `((?:litestream|lsinit)_[a-z_]+)` \|/gm)].map((m) => m[1]!));
  assert.deepEqual([...registered].filter((n) => !rows.has(n)).sort(), [], 'registered but not documented');
  assert.deepEqual([...rows].filter((n) => !registered.has(n)).sort(), [], 'documented but not registered');
});
