/**
 * What a newcomer meets at the CLI edge (issue 11): one duration parser and one flag parser with the
 * same behaviour in every command and in init mode, and messages that say what happened and what to do.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { parseInitArgs } from '../../src/init/command.js';
import { parseFlags, parseGoBool } from '../../src/util/flags.js';
import { formatRFC3339 } from '../../src/util/time.js';
import { lsinit, spawnLsinit } from '../helpers/cli.js';
import { createDB, fileConfig, integrity, logIds, sleep, startReplicate, workdir, writer } from '../helpers/replicate.js';
import { loadScenario, stageReplica } from '../helpers/vectors.js';

describe('one duration parser, one flag parser', () => {
  const w = workdir('edge-parse');
  after(() => w.cleanup());

  it('-shutdown-timeout 9 is refused naming the flag, by replicate and by init mode alike (not 9 ns)', async () => {
    const db = join(w.dir, 'a.db');
    for (const args of [['replicate', '-shutdown-timeout', '9', db, `file://${join(w.dir, 'r')}`], ['-shutdown-timeout', '9', '--', 'true'], ['replicate', '-lease-max-wait', '30', db, `file://${join(w.dir, 'r')}`]]) {
      const r = await lsinit(args);
      assert.equal(r.exitCode, 2, r.stderr);
      assert.match(r.stderr, /^lsinit: LSINIT_ERR_USAGE: -(shutdown-timeout|lease-max-wait): invalid duration "(9|30)": a number needs a unit, e.g. "(9|30)s"/);
    }
    assert.equal(existsSync(db), false);
    assert.equal(existsSync(join(w.dir, 'r')), false);
  });

  it('booleans take Go strconv.ParseBool spellings, the same in every command and in init mode', () => {
    const specs = { json: { type: 'bool', help: '' } } as const;
    for (const [v, want] of [['1', true], ['t', true], ['T', true], ['TRUE', true], ['true', true], ['True', true], ['0', false], ['f', false], ['F', false], ['FALSE', false], ['false', false], ['False', false]] as const) {
      assert.equal(parseGoBool(v), want);
      assert.equal(parseFlags([`-json=${v}`], specs, 'wal').flags['json'], want, v);
      assert.equal(parseInitArgs([`-process-group=${v}`, '--', 'x']).overrides.processGroup, want, v);
    }
    for (const v of ['yes', 'tRuE', 'on', '']) {
      assert.throws(() => parseFlags([`-json=${v}`], specs, 'wal'), { code: 'LSINIT_ERR_USAGE', message: /invalid boolean value/ }, v);
      assert.throws(() => parseInitArgs([`-process-group=${v}`, '--', 'x']), { code: 'LSINIT_ERR_USAGE', message: /invalid boolean value/ }, v);
    }
  });

  it('a flag after the path gets the flag-order hint in every command', async () => {
    for (const cmd of ['generations', 'snapshots', 'wal', 'restore']) {
      const r = await lsinit([cmd, `file://${join(w.dir, 'nowhere')}`, '-json']);
      assert.equal(r.exitCode, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`^lsinit: LSINIT_ERR_USAGE: ${cmd}: too many arguments: -json; flags must come before DB_PATH\\|REPLICA_URL, e\\.g\\. lsinit ${cmd} -json DB_PATH\\|REPLICA_URL`));
    }
    let r = await lsinit(['databases', '-json', 'extra']);
    assert.match(r.stderr, /databases: too many arguments: extra$/m);
    r = await lsinit(['replicate', join(w.dir, 'x.db'), `file://${join(w.dir, 'r')}`, '-exec', 'true']);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /^lsinit: LSINIT_ERR_USAGE: replicate: flag -exec after the arguments; flags must come before DB_PATH REPLICA_URL\.\.\., e\.g\. lsinit replicate -exec DB_PATH/);
    assert.equal(existsSync(join(w.dir, 'r')), false);
  });
});

describe('messages that say what happened', () => {
  const w = workdir('edge-msg');
  let replica = '';
  before(() => {
    replica = stageReplica('basic', w.dir);
  });
  after(() => w.cleanup());

  it('a file URL with two slashes names the host it would read and shows the three-slash form', async () => {
    const out = join(w.dir, 'o1.db');
    const r = await lsinit(['restore', '-o', out, 'file://backups/app']);
    assert.equal(r.exitCode, 78, r.stderr);
    assert.match(r.stderr, /^lsinit: LSINIT_ERR_CONFIG: replica URL "file:\/\/backups\/app": "backups" would be the host of this file URL.*e\.g\. file:\/\/\/backups\/app$/m);
    assert.doesNotMatch(r.stderr, /\.url:/);
    assert.equal(existsSync(out), false);
  });

  it('a -timestamp after the last object is refused with the newest time available', async () => {
    const { manifest } = loadScenario('basic');
    const newest = manifest.files.reduce((m, f) => (BigInt(f.mtime_ns_str) > m ? BigInt(f.mtime_ns_str) : m), 0n);
    const out = join(w.dir, 'o2.db');
    const r = await lsinit(['restore', '-timestamp', '2099-01-01T00:00:00Z', '-o', out, `file://${replica}`]);
    assert.equal(r.exitCode, 1, r.stderr);
    assert.match(r.stderr, /^lsinit: LSINIT_ERR_NO_BACKUPS: no matching backups found for that timestamp: backups cover \S+ to (\S+) \(the newest time available\)/);
    assert.equal(/ to (\S+) \(the newest/.exec(r.stderr)?.[1], formatRFC3339(newest));
    assert.equal(existsSync(out), false);
    // Asking for exactly that time restores.
    const ok = await lsinit(['restore', '-timestamp', formatRFC3339(newest), '-o', out, `file://${replica}`]);
    assert.equal(ok.exitCode, 0, ok.stderr);
    assert.equal(integrity(out), 'ok');
  });

  it('-index is hexadecimal as in Litestream; a bad one says so and shows the conversion from wal\'s decimal', async () => {
    const out = join(w.dir, 'o3.db');
    let r = await lsinit(['restore', '-index', '123456789', '-o', out, `file://${replica}`]);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /-index is a hexadecimal WAL index as in Litestream.*`lsinit wal` lists indexes in decimal \(index 123456789 is -index 75bcd15\)/);
    r = await lsinit(['restore', '-index', 'x1', '-o', out, `file://${replica}`]);
    assert.match(r.stderr, /index 26 is -index 1a/);
    assert.equal(existsSync(out), false);
    r = await lsinit(['restore', '-generation', loadScenario('basic').manifest.generations[0]!, '-index', '0x1', '-o', out, `file://${replica}`]);
    assert.equal(r.exitCode, 0, r.stderr);
  });
});

describe('replicate: shutdown wording, second signal, a new generation says why', () => {
  const w = workdir('edge-repl');
  after(() => w.cleanup());

  it('logs lsinit (not litestream) shutting down, and a second signal exits 1 at once through the CLI entry', async () => {
    const dir = join(w.dir, 'a');
    mkdirSync(dir);
    const { cfg, db } = fileConfig(dir, { replicaExtra: '        validation-interval: 1h\n' });
    createDB(db);
    let a = await startReplicate(cfg);
    assert.doesNotMatch(a.output(), /restore tests cover it/);
    a.child.kill('SIGTERM');
    let r = await a.child;
    assert.equal(r.exitCode, 0, a.output());
    assert.match(a.output(), /msg="signal received, lsinit shutting down" signal=SIGTERM/);
    assert.match(a.output(), /msg="lsinit shut down"/);
    assert.doesNotMatch(a.output(), /litestream shut/);

  });

  it('a second signal ends replicate with exit 1 while the final sync still waits on a replica that never answers', async () => {
    // A TCP server that accepts and never replies: the final sync's upload hangs until the budget.
    const sockets: Socket[] = [];
    const hole = createServer((s) => void sockets.push(s));
    await new Promise<void>((res) => hole.listen(0, '127.0.0.1', res));
    try {
      const dir = join(w.dir, 'c');
      mkdirSync(dir);
      const db = join(dir, 'app.db');
      createDB(db);
      const cfg = join(dir, 'lsinit.yml');
      const port = (hole.address() as { port: number }).port;
      writeFileSync(cfg, `dbs:\n  - path: ${db}\n    replicas:\n      - url: s3://bucket/app\n        endpoint: http://127.0.0.1:${port}\n        access-key-id: x\n        secret-access-key: y\n        lease: false\n`);
      // Start-up hangs on the first upload: the stop signal waits behind it, the second must not.
      const a = spawnLsinit(['replicate', '-shutdown-timeout', '60s', '-config', cfg], { all: true, buffer: true });
      let out = '';
      a.all!.on('data', (d: Buffer) => (out += d.toString()));
      for (let i = 0; i < 2400 && !out.includes('new generation'); i++) await sleep(25);
      a.kill('SIGTERM');
      await sleep(200);
      const t0 = Date.now();
      a.kill('SIGINT');
      const r = await a;
      assert.equal(r.exitCode, 1, out);
      assert.ok(Date.now() - t0 < 10_000, `exited ${Date.now() - t0} ms after the second signal`);
      assert.match(out, /second signal received, exiting without waiting for the final sync/);
    } finally {
      for (const s of sockets) s.destroy();
      hole.close();
    }
  });

  it('after the sqlite3 shell (any last connection) closed the database, the new generation says so', async () => {
    const dir = join(w.dir, 'b');
    mkdirSync(dir);
    const { cfg, db } = fileConfig(dir);
    createDB(db);
    let a = await startReplicate(cfg);
    await writer(db, ['--tx', '5']);
    await sleep(300);
    a.child.kill('SIGTERM');
    assert.equal((await a.child).exitCode, 0, a.output());
    // The last connection to close checkpoints and deletes the -wal, as the sqlite3 shell does.
    const h = new Database(db);
    h.exec('INSERT INTO log (id, conn, payload) VALUES (100, 0, \'shell\')');
    h.close();
    assert.equal(existsSync(`${db}-wal`), false);
    a = await startReplicate(cfg);
    a.child.kill('SIGTERM');
    await a.child;
    assert.match(a.output(), /cannot continue: the WAL was removed since the last run \(the last connection closed the database/);
    assert.match(a.output(), /msg="sync: new generation" db=\S+ generation=[0-9a-f]{16} reason="the WAL was removed since the last run/);
    assert.doesNotMatch(a.output(), /reason="no generation exists"/);
    assert.deepEqual(logIds(db), [1, 2, 3, 4, 5, 100]);
  });
});
