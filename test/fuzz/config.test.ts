/**
 * Property-based fuzzing of the text parsers: parseConfig on YAML-ish text, expandEnv,
 * parseDuration, parseRFC3339. They return a value or throw an LsinitError, never hang.
 * FUZZ_RUNS=N scales the number of runs, FUZZ_SEED=S replays a failure.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LsinitError } from '../../src/errors.js';
import { expandEnv } from '../../src/config/expand.js';
import { parseConfig } from '../../src/config/file.js';
import { formatRFC3339, parseDuration, parseRFC3339 } from '../../src/util/time.js';
import { onlyLsinitErrors, params } from './fuzz.js';

const KEYS = ['dbs', 'path', 'replicas', 'url', 'type', 'name', 'sync-interval', 'retention', 'snapshot-interval', 'monitor-interval', 'min-checkpoint-page-count', 'max-checkpoint-page-count', 'checkpoint-interval', 'meta-path', 'exec', 'addr', 'logging', 'level', 'bucket', 'endpoint', 'region', 'access-key-id', 'secret-access-key', 'account-name', 'host', 'user', 'key-path', 'init', 'shutdown-timeout', 'age', 'skip-verify', 'force-path-style', 'retention-check-interval', 'validation-interval', 'signal-rewrite', 'process-group'];
const VALUES = ['/data/app.db', 'app.db', '~/x.db', 's3://bucket/path', 's3://', 's3:///nobucket', 'abs://acct@container/p', 'abs://', 'gcs://b/p', 'sftp://u@h:22/p', 'file:///tmp/r', 'ftp://x', '1s', '250ms', '1h30m', '-1s', '0', '1d', 'fast', '1e400h', '99999999999h', '100', '-5', '3.5', 'true', 'false', 'null', '~', '[]', '{}', '[a, b]', '{a: 1}', '"quoted"', "'single'", '|', '>', '&anchor x', '*anchor', '!!binary aGk=', '$HOME', '${UNSET_VAR}', '${', '$', ':9090', 'INT:TERM', 'x'.repeat(300), '\u00e9\u4e2d', '@', '%', '`'];

/** YAML-ish text: real keys and values at random depths, list markers, comments and junk. */
const yamlish = fc
  .array(
    fc.record({
      indent: fc.integer({ min: 0, max: 10 }),
      dash: fc.boolean(),
      key: fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 8 })),
      sep: fc.constantFrom(': ', ':', ' : ', ':\t', ''),
      value: fc.oneof(fc.constantFrom(...VALUES), fc.string({ maxLength: 12 }), fc.constant('')),
      junk: fc.constantFrom('', '', '', ' # c', '\t', ' ---', '\r', ' ...', ' ?'),
    }),
    { maxLength: 14 },
  )
  .map((lines) => lines.map((l) => `${' '.repeat(l.indent)}${l.dash ? '- ' : ''}${l.key}${l.sep}${l.value}${l.junk}`).join('\n'));

/** Text built from a valid config by cutting, duplicating and swapping lines. */
const BASE = `dbs:
  - path: /data/app.db
    monitor-interval: 100ms
    replicas:
      - url: s3://bucket/app
        sync-interval: 1s
      - type: file
        path: /backup/app
        retention: 24h
`;
const mangled = fc.array(fc.tuple(fc.nat(), fc.nat(), fc.constantFrom('swap', 'drop', 'dup', 'dedent', 'indent')), { maxLength: 4 }).map((ops) => {
  const lines = BASE.split('\n');
  for (const [a, b, op] of ops) {
    const i = a % lines.length;
    const j = b % lines.length;
    if (op === 'swap') [lines[i], lines[j]] = [lines[j]!, lines[i]!];
    else if (op === 'drop') lines.splice(i, 1);
    else if (op === 'dup') lines.splice(i, 0, lines[j]!);
    else if (op === 'dedent') lines[i] = lines[i]!.replace(/^ {1,2}/, '');
    else lines[i] = `  ${lines[i]}`;
  }
  return lines.join('\n');
});

describe('fuzz: parseConfig', () => {
  const env = { HOME: '/root', DB: '/env.db', EMPTY: '' };
  const check = async (bytes: Uint8Array, expand: boolean) => {
    const c = await onlyLsinitErrors(() => parseConfig(bytes, { file: '/fuzz.yml', expandEnv: expand, env, cwd: '/work' }));
    if (c instanceof LsinitError) {
      assert.equal(c.code, 'LSINIT_ERR_CONFIG', `${c.code}: ${c.message}`);
      assert.ok(c.message.length > 0 && c.message.length < 2000);
      return;
    }
    assert.ok(Array.isArray(c.dbs) && Array.isArray(c.warnings));
    for (const db of c.dbs) {
      assert.ok(db.path.startsWith('/'), `relative path survived: ${db.path}`);
      for (const r of db.replicas) {
        for (const k of ['syncIntervalMs', 'retentionMs', 'snapshotIntervalMs', 'retentionCheckIntervalMs'] as const) {
          const v = r[k];
          assert.ok(typeof v === 'number' && Number.isFinite(v) && v >= 0, `${k} = ${v} from:\n${Buffer.from(bytes).toString()}`);
        }
      }
      assert.ok(Number.isFinite(db.monitorIntervalMs) && db.monitorIntervalMs >= 0, `monitor-interval ${db.monitorIntervalMs}`);
    }
  };
  it('YAML-ish text: a config or an LSINIT_ERR_CONFIG, with finite non-negative durations', async () => {
    await fc.assert(fc.asyncProperty(yamlish, fc.boolean(), async (t, e) => check(Buffer.from(t), e)), params(1500));
  });
  it('mangled valid configs: a config or an LSINIT_ERR_CONFIG', async () => {
    await fc.assert(fc.asyncProperty(mangled, async (t) => check(Buffer.from(t), true)), params(500));
  });
  it('arbitrary bytes (not UTF-8, NULs, BOMs): a config or an LSINIT_ERR_CONFIG', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), async (b) => check(b, true)), params(800));
  });
});

describe('fuzz: expandEnv (Go os.ExpandEnv)', () => {
  const name = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,6}$/);
  it('never throws; text without $ is unchanged; unset names are exactly the missing ones', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), fc.dictionary(name, fc.string({ maxLength: 6 }), { maxKeys: 4 }), (text, env) => {
        const r = expandEnv(text, env);
        assert.equal(typeof r.text, 'string');
        if (!text.includes('$')) assert.equal(r.text, text);
        for (const u of r.unset) assert.equal(env[u], undefined);
      }),
      params(3000),
    );
  });
  it('$NAME and ${NAME} expand to the value, wherever they sit', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[^$]{0,10}$/), name, fc.string({ maxLength: 8 }), fc.boolean(), fc.stringMatching(/^([^$A-Za-z0-9_{}][^$]{0,5})?$/), (pre, n, v, braces, post) => {
        const r = expandEnv(`${pre}${braces ? `\${${n}}` : `$${n}`}${post}`, { [n]: v });
        assert.equal(r.text, `${pre}${v}${post}`);
        assert.deepEqual(r.unset, []);
      }),
      params(2000),
    );
  });
});

describe('fuzz: parseDuration (Go time.ParseDuration)', () => {
  it('arbitrary text: a finite number of ms or undefined, never a throw', () => {
    const dur = fc.oneof(fc.string({ maxLength: 20 }), fc.array(fc.tuple(fc.stringMatching(/^\d{0,4}(\.\d{0,3})?$/), fc.constantFrom('ns', 'us', 'µs', 'ms', 's', 'm', 'h', 'd', '')), { maxLength: 4 }).map((ps) => ps.map((p) => p.join('')).join('')));
    fc.assert(
      fc.property(dur, (s) => {
        const v = parseDuration(s);
        if (v !== undefined) assert.ok(Number.isFinite(v), `${JSON.stringify(s)} → ${v}`);
      }),
      params(3000),
    );
  });
  it('sums of unit terms parse to their value', () => {
    const UNIT = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 } as const;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 9999 }), fc.constantFrom(...(Object.keys(UNIT) as (keyof typeof UNIT)[]))), { minLength: 1, maxLength: 4 }), (terms) => {
        const s = terms.map(([n, u]) => `${n}${u}`).join('');
        assert.equal(parseDuration(s), terms.reduce((a, [n, u]) => a + n * UNIT[u], 0));
      }),
      params(2000),
    );
  });
  it('a duration too large to be a number is refused, not Infinity', () => {
    assert.equal(parseDuration(`1${'0'.repeat(400)}h`), undefined, 'Go refuses it: "invalid duration"');
  });
});

describe('fuzz: parseRFC3339', () => {
  it('arbitrary text: a bigint or an LSINIT_ERR_USAGE', async () => {
    const ts = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.tuple(fc.integer({ min: 0, max: 99999 }), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 }), fc.stringMatching(/^(\.\d{0,12})?$/), fc.constantFrom('Z', 'z', '+05:30', '-00:00', '+99:99', '', 'UTC')).map(
        ([y, mo, d, h, mi, s, f, z]) => `${String(y).padStart(4, '0')}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}T${String(h).padStart(2, '0')}:${String(mi).padStart(2, '0')}:${String(s).padStart(2, '0')}${f}${z}`,
      ),
    );
    await fc.assert(
      fc.asyncProperty(ts, async (s) => {
        const v = await onlyLsinitErrors(() => parseRFC3339(s));
        if (v instanceof LsinitError) assert.equal(v.code, 'LSINIT_ERR_USAGE');
        else assert.equal(typeof v, 'bigint');
      }),
      params(3000),
    );
  });
  it('formatRFC3339 → parseRFC3339 round-trips every nanosecond from 1970 to 9999', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 253402300799999999999n }), (ns) => {
        assert.equal(parseRFC3339(formatRFC3339(ns)), ns);
      }),
      params(2000),
    );
  });
  it('dates Go refuses are refused, never silently moved to another day or century', () => {
    // Found while fuzzing: Date.UTC normalizes instead of validating, so a typo in -timestamp
    // restores to a different point in time without a word. Go's time.Parse refuses all three.
    const moved: string[] = [];
    for (const s of ['2024-02-31T00:00:00Z', '2023-04-31T12:00:00Z', '2024-01-01T00:00:60Z']) {
      try {
        moved.push(`${s} → ${formatRFC3339(parseRFC3339(s))}`);
      } catch (err) {
        assert.equal((err as LsinitError).code, 'LSINIT_ERR_USAGE');
      }
    }
    // Years below 100 are valid and must stay themselves (Date.UTC maps 0..99 to 1900..1999).
    for (const s of ['0050-01-01T00:00:00Z', '0001-12-31T23:59:59Z']) {
      const back = formatRFC3339(parseRFC3339(s));
      if (back !== s) moved.push(`${s} → ${back}`);
    }
    assert.deepEqual(moved, []);
  });
});
