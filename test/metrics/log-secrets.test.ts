/**
 * `lsinit replicate` with replicas that carry credentials and cannot connect: every log line it
 * writes (start-up, sync errors, final sync failures, at debug level, text and json) is free of
 * the password and the secret key. Runs the built CLI (`npm run build` first).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { spawnLsinit } from '../helpers/cli.js';
import { createDB, sleep, workdir } from '../helpers/replicate.js';

// Percent-encoded in the URL; lsinit decodes it like Go's url.Parse, so check both spellings.
const PASSWORD_URL = 'Pw%2Fs3cr3t%40Z9q';
const PASSWORD = decodeURIComponent(PASSWORD_URL);
const SECRET_KEY = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYLOGTEST';

describe('logs never contain replica credentials', () => {
  let cleanup = () => {};
  afterEach(() => cleanup());

  for (const type of ['text', 'json'] as const) {
    it(`replicate with an sftp password URL and an s3 secret key, ${type} logs at debug, SIGTERM after 3 s`, async () => {
      const w = workdir('logsecrets');
      cleanup = w.cleanup;
      const db = join(w.dir, 'app.db');
      createDB(db);
      const cfg = join(w.dir, 'lsinit.yml');
      writeFileSync(cfg, `logging:
  level: debug
  type: ${type}
dbs:
  - path: ${db}
    monitor-interval: 100ms
    replicas:
      - type: file
        name: local
        path: ${join(w.dir, 'replica')}
        sync-interval: 100ms
      - name: offsite
        url: sftp://backup:${PASSWORD_URL}@127.0.0.1:1/srv/backups/app
        sync-interval: 200ms
      - name: s3
        type: s3
        bucket: bkt
        path: app
        endpoint: http://127.0.0.1:1
        access-key-id: AKIAEXAMPLELOGTEST
        secret-access-key: ${SECRET_KEY}
        sync-interval: 200ms
`);
      const child = spawnLsinit(['replicate', '-config', cfg], { all: true, buffer: true, timeout: 60_000 });
      let seen = '';
      child.all!.on('data', (d: Buffer) => (seen += d.toString()));
      // Count the 3 s from when it replicates: a loaded machine can take seconds to load the SDKs,
      // and a SIGTERM before the handlers exist would end it silently.
      for (let i = 0; i < 600 && !/msg=replicating|"msg":"replicating"/.test(seen) && child.exitCode === null; i++) await sleep(25);
      assert.match(seen, /msg=replicating|"msg":"replicating"/, seen);
      const conn = new Database(db);
      try {
        const end = Date.now() + 3000;
        for (let i = 0; Date.now() < end; i++) {
          conn.prepare('INSERT INTO log (conn, payload) VALUES (0, ?)').run(`row ${i}`);
          await sleep(100);
        }
      } finally {
        conn.close();
      }
      child.kill('SIGTERM');
      const r = await child;
      const out = String(r.all ?? '');
      const lines = out.split('\n').filter((l) => l !== '');
      // It did run and did fail against both unreachable stores, so the error paths were logged.
      assert.ok(lines.length >= 5, out);
      assert.match(out, /replica sync failed/, out);
      assert.match(out, /final sync failed/, out);
      assert.match(out, /offsite/);
      assert.match(out, /xxxxx/, 'the sftp URL is shown redacted');
      assert.equal(r.exitCode, 1, 'final sync to the unreachable replicas failed');
      if (type === 'json') for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), l);
      for (const l of lines) {
        for (const secret of [PASSWORD, PASSWORD_URL, SECRET_KEY]) {
          assert.ok(!l.includes(secret), `a log line carries a credential: ${l}`);
        }
      }
    });
  }
});
