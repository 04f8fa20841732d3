/**
 * The CLI's error contract: one line `lsinit: CODE: message`, an exit code per error class as
 * docs/errors.md documents it, and process.exit only in the CLI entry.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { EXIT_CODES, errorLine, exitCodeOf } from '../../src/cli/exit-codes.js';
import { LsinitError } from '../../src/errors.js';
import { ROOT, lsinit } from '../helpers/cli.js';

test('docs/errors.md lists every error code with the exit code the CLI uses', () => {
  const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
  const rows = new Map([...doc.matchAll(/^\| `(LSINIT_ERR_[A-Z_]+)` \| (\d+) \|/gm)].map((m) => [m[1]!, Number(m[2])]));
  assert.deepEqual(Object.fromEntries(rows), EXIT_CODES);
  // And every code the source throws is in the table.
  const src = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
  for (const f of src) {
    for (const m of readFileSync(join(ROOT, 'src', f), 'utf8').matchAll(/'(LSINIT_ERR_[A-Z_]+)'/g)) assert.ok(rows.has(m[1]!), `${f}: ${m[1]} is not in docs/errors.md`);
  }
});

test('an LsinitError prints as one line with its code and exits with its class code; anything else exits 1', () => {
  const e = new LsinitError('LSINIT_ERR_CONFIG', 'dbs: missing');
  assert.equal(errorLine(e), 'lsinit: LSINIT_ERR_CONFIG: dbs: missing');
  assert.equal(exitCodeOf(e), 78);
  assert.equal(exitCodeOf(new LsinitError('LSINIT_ERR_USAGE', 'x')), 2);
  assert.equal(exitCodeOf(new Error('bug')), 1);
  assert.equal(errorLine(new Error('bug')), 'lsinit: bug');
});

test('only the CLI entry (src/cli/main.ts) calls process.exit', () => {
  const offenders = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && f !== join('cli', 'main.ts'))
    .filter((f) => /process\.exit\(/.test(readFileSync(join(ROOT, 'src', f), 'utf8').replace(/^\s*(\/\/|\*).*$/gm, '')));
  assert.deepEqual(offenders, []);
});

test('the CLI prints the stable code and exits with the documented code (usage 2, config 78)', async () => {
  let r = await lsinit(['restore', '-nope', 'x']);
  assert.equal(r.exitCode, 2, r.stderr);
  assert.match(r.stderr, /^lsinit: LSINIT_ERR_USAGE: restore: flag provided but not defined: -nope/);
  r = await lsinit(['databases', '-config', join(ROOT, 'no-such-config.yml')]);
  assert.equal(r.exitCode, 78, r.stderr);
  assert.match(r.stderr, /^lsinit: LSINIT_ERR_CONFIG: config file not found: /);
  r = await lsinit(['frobnicate']);
  assert.equal(r.exitCode, 2);
  assert.match(r.stderr, /^lsinit: LSINIT_ERR_USAGE: unknown command "frobnicate"/);
});
