/**
 * Shared end-to-end scenarios for the s3 and abs replicas (test/e2e/s3.test.ts, abs.test.ts):
 * `lsinit replicate -config` while an app writes rows → SIGTERM → `lsinit restore -config` gives
 * the same rows and integrity_check ok; the same across a store outage of many sync intervals; and
 * what a sync and a restore cost, counted twice: by a logging proxy in front of the store (the CLI
 * runs in its own process) and in process through metrics/ops.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { loadConfig } from '../../src/config/file.js';
import { nullLogger } from '../../src/log/logger.js';
import { onOp, type Operation } from '../../src/metrics/ops.js';
import type { ReplicaClient } from '../../src/replica/client.js';
import { Controller } from '../../src/replicate/controller.js';
import { restore } from '../../src/restore/index.js';
import { lsinit, spawnLsinit } from '../helpers/cli.js';
import { startProxy, type LoggedRequest, type StoreProxy } from '../servers/s3-abs-proxy.js';
import { rowsOf } from '../helpers/e2e.js';
import { waitFor } from '../helpers/wait.js';

export const SYNC_MS = 200;

export interface E2EStore {
  type: 's3' | 'abs';
  /** Port of the real server; the proxy forwards to it. */
  port: number;
  /** Replica mapping lines (without the leading "- ") for a store reached at `endpoint`. */
  replicaYaml(endpoint: string, prefix: string): string[];
  /** Environment lsinit needs (credentials); also checked never to be printed. */
  env: Record<string, string>;
  secret: string;
  /** A client straight to the server (not through the proxy) on `prefix`, to watch progress. */
  client(prefix: string): ReplicaClient;
  classify(r: LoggedRequest): Operation;
  stop(): Promise<void>;
}

function ops(reqs: LoggedRequest[], classify: (r: LoggedRequest) => Operation): string {
  const n: Record<Operation, number> = { LIST: 0, GET: 0, PUT: 0, DELETE: 0 };
  for (const r of reqs) n[classify(r)]++;
  return `${reqs.length} (${Object.entries(n).filter(([, v]) => v).map(([k, v]) => `${v} ${k}`).join(' + ') || 'none'})`;
}

export function defineE2E(name: string, start: () => Promise<E2EStore>): void {
  describe(`e2e: lsinit replicate → ${name} → lsinit restore`, () => {
    let store: E2EStore;
    let proxy: StoreProxy;
    let work: string;
    let n = 0;
    const clients: ReplicaClient[] = [];

    before(async () => {
      store = await start();
      proxy = await startProxy(store.port);
      work = mkdtempSync(join(tmpdir(), `lsinit-e2e-${store.type}-`));
    });
    after(async () => {
      for (const c of clients) await c.close();
      await proxy?.stop();
      await store?.stop();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    function setup(label: string) {
      const db = join(work, `${label}.db`);
      const cfg = join(work, `${label}.yml`);
      const prefix = `e2e/${label}-${++n}`;
      writeFileSync(cfg, ['dbs:', `  - path: ${db}`, '    replicas:', ...store.replicaYaml(proxy.endpoint, prefix).map((l, i) => `${i === 0 ? '      - ' : '        '}${l}`), `        sync-interval: ${SYNC_MS}ms`, ''].join('\n'));
      const app = new Database(db);
      app.pragma('journal_mode = WAL');
      app.pragma('busy_timeout = 5000');
      app.exec('CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
      const insert = app.prepare('INSERT INTO rows (v) VALUES (?)');
      const client = store.client(prefix);
      clients.push(client);
      const segments = async () => {
        const gens = await client.generations();
        let k = 0;
        for (const g of gens) k += (await client.walSegments(g)).length;
        return k;
      };
      const hasSnapshot = async () => {
        for (const g of await client.generations()) if ((await client.snapshots(g)).length > 0) return true;
        return false;
      };
      return { db, cfg, app, insert, client, segments, hasSnapshot };
    }

    async function restoreAndCompare(s: ReturnType<typeof setup>, label: string) {
      const expected = s.app.prepare('SELECT id, v FROM rows ORDER BY id').all();
      s.app.close();
      const out = join(work, `${label}-restored.db`);
      const mark = proxy.requests.length;
      const r = await lsinit(['restore', '-config', s.cfg, '-o', out, s.db], { env: { ...process.env, ...store.env } });
      assert.equal(r.exitCode, 0, r.stderr);
      assert.ok(!`${r.stdout}${r.stderr}`.includes(store.secret), 'secret printed by restore');
      assert.deepEqual(rowsOf(out, work), expected);
      return { rows: expected.length, requests: proxy.requests.slice(mark) };
    }

    it('rows written while replicating restore identically after SIGTERM; requests per sync and per restore', { timeout: 180_000 }, async (t) => {
      const s = setup('basic');
      const proc = spawnLsinit(['replicate', '-config', s.cfg], { env: { ...process.env, ...store.env } });
      let idle: LoggedRequest[] = [];
      let oneSync: LoggedRequest[] = [];
      try {
        await waitFor(s.hasSnapshot, 20_000, 'the first snapshot', 50);
        for (let i = 0; i < 100; i++) {
          s.insert.run(`row-${i}`);
          await sleep(5);
        }
        await sleep(3 * SYNC_MS);
        let mark = proxy.requests.length;
        await sleep(5 * SYNC_MS);
        idle = proxy.requests.slice(mark);
        const segs = await s.segments();
        mark = proxy.requests.length;
        s.insert.run('one-more');
        await waitFor(async () => (await s.segments()) > segs, 10_000, 'the segment of one transaction', 50);
        await sleep(SYNC_MS / 2);
        oneSync = proxy.requests.slice(mark);
      } finally {
        proc.kill('SIGTERM');
      }
      const r = await proc;
      assert.equal(r.exitCode, 0, String(r.stderr));
      assert.ok(!`${r.stdout}${r.stderr}`.includes(store.secret), 'secret printed by replicate');
      const restored = await restoreAndCompare(s, 'basic');
      assert.equal(restored.rows, 101);
      t.diagnostic(`${store.type} (proxy log): idle for 5 sync intervals: ${ops(idle, store.classify)}; one sync with one transaction: ${ops(oneSync, store.classify)}; one restore: ${ops(restored.requests, store.classify)}`);
    });

    it('a database larger than one upload part is snapshotted in parts and restores identically', { timeout: 180_000 }, async (t) => {
      const s = setup('large');
      // ~12 MB of random hex text: LZ4 cannot shrink it below the 5 MiB (s3) / 4 MiB (abs) part size.
      s.app.exec("INSERT INTO rows (v) SELECT lower(hex(randomblob(524288))) FROM (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9 UNION ALL SELECT 10 UNION ALL SELECT 11 UNION ALL SELECT 12)");
      const mark = proxy.requests.length;
      const proc = spawnLsinit(['replicate', '-config', s.cfg], { env: { ...process.env, ...store.env } });
      try {
        await waitFor(s.hasSnapshot, 60_000, 'the first snapshot', 50);
        s.insert.run('after-snapshot');
        const segs = await s.segments();
        await waitFor(async () => (await s.segments()) > segs, 10_000, 'a segment after the snapshot', 50);
      } finally {
        proc.kill('SIGTERM');
      }
      const r = await proc;
      assert.equal(r.exitCode, 0, String(r.stderr));
      const parts = proxy.requests.slice(mark).filter((q) => q.query.has('partNumber') || q.query.get('comp') === 'block');
      assert.ok(parts.length >= 2, `expected a multipart/block upload, saw ${parts.length} part requests`);
      const restored = await restoreAndCompare(s, 'large');
      assert.equal(restored.rows, 13);
      t.diagnostic(`${store.type}: a ~12 MB snapshot went up in ${parts.length} parts`);
    });

    it('an outage of many sync intervals loses no committed row', { timeout: 180_000 }, async (t) => {
      const s = setup('outage');
      const proc = spawnLsinit(['replicate', '-config', s.cfg], { env: { ...process.env, ...store.env } });
      let count = 0;
      try {
        await waitFor(s.hasSnapshot, 20_000, 'the first snapshot', 50);
        for (let i = 0; i < 20; i++, count++) s.insert.run(`pre-${i}`);
        await sleep(3 * SYNC_MS);
        await proxy.stop();
        // Writes keep committing locally while the store is unreachable, for longer than one sync's
        // retry budget, so whole syncs fail and later ones must catch up.
        const until = Date.now() + 25 * SYNC_MS;
        while (Date.now() < until) {
          s.insert.run(`during-${count++}`);
          await sleep(20);
        }
        await proxy.start();
        for (let i = 0; i < 20; i++, count++) s.insert.run(`post-${i}`);
        await sleep(5 * SYNC_MS);
      } finally {
        await proxy.start(); // no-op when running
        proc.kill('SIGTERM');
      }
      const r = await proc;
      assert.equal(r.exitCode, 0, String(r.stderr));
      const logs = `${r.stdout}${r.stderr}`;
      // The outage was real: syncs failed and were logged, without the secret.
      assert.match(logs, /level=ERROR|"level":"ERROR"|level=WARN/i, logs.slice(-2000));
      assert.ok(!logs.includes(store.secret), 'secret printed by replicate');
      if (process.env['LSINIT_E2E_SHOW_LOGS']) t.diagnostic(logs.split('\n').filter((l) => /ERROR|WARN/.test(l)).slice(0, 5).join('\n'));
      const restored = await restoreAndCompare(s, 'outage');
      assert.equal(restored.rows, count);
    });

    it('in process, metrics/ops.ts counts what one sync and one restore cost', { timeout: 120_000 }, async (t) => {
      const s = setup('inproc');
      const seen: { op: Operation; bytes: number }[] = [];
      const off = onOp((type, op, bytes) => type === store.type && seen.push({ op, bytes }));
      const saved: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(store.env)) {
        saved[k] = process.env[k];
        process.env[k] = v;
      }
      const fmt = (xs: { op: Operation; bytes: number }[]) => {
        const c: Record<string, number> = {};
        for (const x of xs) c[x.op] = (c[x.op] ?? 0) + 1;
        return `${xs.length} (${Object.entries(c).map(([k, v]) => `${v} ${k}`).join(' + ')}, ${xs.reduce((a, x) => a + x.bytes, 0)} bytes)`;
      };
      try {
        const controller = new Controller(await loadConfig({ path: s.cfg, expandEnv: true }), nullLogger);
        let startOps: typeof seen = [];
        let oneSync: typeof seen = [];
        // Progress is read from the proxy's log, so ops.ts sees nothing but the replicator's requests.
        const putSince = (mark: number, dir: string) => proxy.requests.slice(mark).some((r) => r.method === 'PUT' && r.path.includes(`/${dir}/`));
        try {
          let mark = proxy.requests.length;
          await controller.start();
          await waitFor(async () => putSince(mark, 'snapshots') && putSince(mark, 'wal'), 20_000, 'the first snapshot and segment', 50);
          await sleep(SYNC_MS / 2);
          startOps = seen.splice(0);
          await sleep(2 * SYNC_MS);
          seen.splice(0);
          mark = proxy.requests.length;
          s.insert.run('one');
          await waitFor(async () => putSince(mark, 'wal'), 10_000, 'the segment of one transaction', 50);
          await sleep(SYNC_MS / 2);
          oneSync = seen.splice(0);
        } finally {
          await controller.close({ deadline: Date.now() + 5000 });
        }
        const expected = s.app.prepare('SELECT id, v FROM rows ORDER BY id').all();
        s.app.close();
        seen.splice(0);
        const out = join(work, 'inproc-restored.db');
        const res = await restore({ output: out, replicas: [{ name: store.type, client: s.client }] });
        assert.equal(res.status, 'restored');
        const restoreOps = seen.splice(0);
        assert.deepEqual(rowsOf(out, work), expected);
        t.diagnostic(`${store.type} (ops.ts): start + first snapshot: ${fmt(startOps)}; window with one transaction: ${fmt(oneSync)}; one restore: ${fmt(restoreOps)}`);
      } finally {
        off();
        for (const [k, v] of Object.entries(saved)) {
          if (v === undefined) delete process.env[k];
          else process.env[k] = v;
        }
      }
    });
  });
}
