import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { expandEnv } from '../../src/config/expand.js';
import { parseConfig } from '../../src/config/file.js';
import { parseFlags } from '../../src/util/flags.js';
import { parseDuration, parseRFC3339 } from '../../src/util/time.js';

const cfg = (text: string, env: NodeJS.ProcessEnv = {}) => parseConfig(Buffer.from(text), { file: '/etc/test.yml', expandEnv: true, env, cwd: '/work' });

describe('config', () => {
  it('reads Litestream 0.3 keys with their defaults', () => {
    const c = cfg(`
addr: ":9090"
exec: myapp -flag
dbs:
  - path: /data/app.db
    replicas:
      - url: file:///backup/app
      - name: second
        path: /backup/two
        sync-interval: 250ms
        retention: 72h
        snapshot-interval: 1h
`);
    assert.equal(c.addr, ':9090');
    assert.equal(c.exec, 'myapp -flag');
    const db = c.dbs[0]!;
    assert.equal(db.path, '/data/app.db');
    assert.equal(db.metaPath, '/data/.app.db-litestream');
    assert.equal(db.monitorIntervalMs, 1000);
    assert.equal(db.minCheckpointPageCount, 1000);
    assert.equal(db.maxCheckpointPageCount, 10000);
    assert.deepEqual(db.replicas.map((r) => [r.name, r.type, r.display, r.syncIntervalMs, r.retentionMs, r.snapshotIntervalMs]), [
      ['file', 'file', 'file:///backup/app', 1000, 86_400_000, 0],
      ['second', 'file', 'file:///backup/two', 250, 259_200_000, 3_600_000],
    ]);
    assert.deepEqual(c.warnings, []);
  });

  it('unknown keys are warnings naming the key path', () => {
    const c = cfg('dbs:\n  - path: /a.db\n    replicas:\n      - path: /b\n        sync-intervall: 1s\nloging: {}\n');
    assert.ok(c.warnings.some((w) => w.includes('dbs[0].replicas[0].sync-intervall')));
    assert.ok(c.warnings.some((w) => w.includes('loging')));
  });

  for (const [name, text, key] of [
    ['bad duration', 'dbs:\n  - path: /a.db\n    replicas:\n      - path: /b\n      - path: /c\n        name: c\n        sync-interval: fast\n', 'dbs[0].replicas[1].sync-interval'],
    ['duplicate replica names', 'dbs:\n  - path: /a.db\n    replicas:\n      - path: /b\n      - path: /c\n', 'dbs[0].replicas[1].name'],
    ['missing path', 'dbs:\n  - replicas: []\n', 'dbs[0].path'],
    ['unknown scheme', 'dbs:\n  - path: /a.db\n    replicas:\n      - url: ftp://host/x\n', 'dbs[0].replicas[0].url'],
    ['url without scheme', 'dbs:\n  - path: /a.db\n    replicas:\n      - url: bucket/path\n', 'dbs[0].replicas[0].url'],
    ['wrong type', 'dbs: 5\n', 'dbs'],
    ['bad logging level', 'logging:\n  level: loud\ndbs: []\n', 'logging.level'],
    ['min-checkpoint-page-count 0', 'dbs:\n  - path: /a.db\n    min-checkpoint-page-count: 0\n    replicas:\n      - path: /b\n', 'dbs[0].min-checkpoint-page-count'],
    ['bare-number duration (Litestream: nanoseconds)', 'dbs:\n  - path: /a.db\n    monitor-interval: 9\n    replicas:\n      - path: /b\n', 'dbs[0].monitor-interval'],
    ['db: instead of dbs:', 'db:\n  - path: /a.db\n    replicas:\n      - path: /b\n', 'dbs'],
    ['replica: instead of replicas:', 'dbs:\n  - path: /a.db\n    replica:\n      - path: /b\n', 'dbs[0].replicas'],
    ['db without replicas', 'dbs:\n  - path: /a.db\n', 'dbs[0].replicas'],
    ['empty replicas list', 'dbs:\n  - path: /a.db\n    replicas: []\n', 'dbs[0].replicas'],
  ] as const) {
    it(`a ${name} is an LSINIT_ERR_CONFIG naming ${key}`, () => {
      assert.throws(() => cfg(text), (err: { code: string; message: string; fields: { key: string } }) => {
        assert.equal(err.code, 'LSINIT_ERR_CONFIG');
        assert.equal(err.fields.key, key);
        assert.ok(err.message.startsWith(key), err.message);
        return true;
      });
    });
  }

  it('db: for dbs: and replica: for replicas: name the unknown key, the missing one and the likely intent', () => {
    assert.throws(() => cfg('db:\n  - path: /a.db\n    replicas:\n      - path: /b\n'), { code: 'LSINIT_ERR_CONFIG', message: /^dbs: missing: .*unknown key "db" \(did you mean dbs\?\)/ });
    assert.throws(() => cfg('dbs:\n  - path: /a.db\n    replica:\n      - path: /b\n'), { code: 'LSINIT_ERR_CONFIG', message: /^dbs\[0\]\.replicas: missing: .*unknown key "replica" \(did you mean replicas\?\)/ });
    const c = cfg('dbs:\n  - path: /a.db\n    replicas:\n      - path: /b\n        sync-interal: 1s\n');
    assert.deepEqual(c.warnings, ['dbs[0].replicas[0].sync-interal: unknown key, ignored (did you mean sync-interval?)']);
  });

  it('malformed, empty and non-UTF-8 files are clear errors', () => {
    assert.throws(() => cfg('dbs: [\n'), { code: 'LSINIT_ERR_CONFIG', message: /invalid YAML/ });
    assert.throws(() => cfg(''), { code: 'LSINIT_ERR_CONFIG', message: /empty/ });
    assert.throws(() => parseConfig(Buffer.from([0x64, 0x62, 0xff, 0xfe]), { file: '/x.yml', expandEnv: true }), { code: 'LSINIT_ERR_CONFIG', message: /UTF-8/ });
  });

  it('accepts exec under a dbs entry, as the Litestream blog shows', () => {
    assert.equal(cfg('dbs:\n  - path: /a.db\n    exec: run-me\n    replicas:\n      - path: /b\n').exec, 'run-me');
  });
});

describe('env expansion (Go os.ExpandEnv)', () => {
  it('expands $VAR and ${VAR}, unset to empty, keeps a lone $', () => {
    const env = { A: 'x', B_1: 'y' };
    assert.equal(expandEnv('$A-${B_1}-$UNSET-${A:-d}-$ -$$', env).text, 'x-y---$ -');
    assert.deepEqual(expandEnv('${NOPE} $A', env).unset, ['NOPE']);
  });
  it('expands before parsing, and -no-expand-env keeps text verbatim', () => {
    assert.equal(cfg('dbs:\n  - path: ${DB}\n    replicas:\n      - path: /b\n', { DB: '/env.db' }).dbs[0]!.path, '/env.db');
    const c = parseConfig(Buffer.from('dbs:\n  - path: /a$DB.db\n    replicas:\n      - path: /b\n'), { file: '/x', expandEnv: false, env: { DB: 'zz' } });
    assert.equal(c.dbs[0]!.path, '/a$DB.db');
  });
});

describe('Go-style flags and values', () => {
  it('accepts -x v, -x=v, --x and stops at the first positional', () => {
    const specs = { o: { type: 'string', help: '' }, 'if-db-not-exists': { type: 'bool', help: '' } } as const;
    const p = parseFlags(['--o=out', '-if-db-not-exists', 'db', '-o', 'late'], specs, 'restore');
    assert.equal(p.flags['o'], 'out');
    assert.equal(p.flags['if-db-not-exists'], true);
    assert.deepEqual(p.args, ['db', '-o', 'late']);
    assert.throws(() => parseFlags(['-nope'], specs, 'restore'), { code: 'LSINIT_ERR_USAGE', message: /flag provided but not defined: -nope/ });
  });
  it('parses Go durations and RFC 3339 with nanoseconds and offsets', () => {
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('250ms'), 250);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('1d'), undefined);
    assert.equal(parseRFC3339('2026-11-26T04:40:15.772820799Z'), 1795668015772820799n);
    assert.equal(parseRFC3339('2026-11-26T10:10:13.767+05:30'), parseRFC3339('2026-11-26T04:40:13.767Z'));
    assert.throws(() => parseRFC3339('yesterday'), { code: 'LSINIT_ERR_USAGE' });
  });
});
