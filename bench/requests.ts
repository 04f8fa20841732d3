/**
 * Storage requests per hour (not a test): one database replicated by `lsinit replicate` (the real
 * CLI, default settings: sync-interval 1s, lease on) to every backend at once — file, S3 (moto),
 * Azure Blob (azurite), GCS (the in-repo JSON-API server), SFTP (OpenSSH) — while an app commits
 * 10 transactions a second. Baseline, same run: the same replicas with the database idle.
 *
 * Each count is taken twice: from lsinit's own `litestream_replica_operation_total` (what a user's
 * Prometheus sees) and at the server (an HTTP proxy's log for S3 and Azure, the GCS server's log,
 * sftp-server's request log), so a request the client forgets to count still shows up.
 * Counts over the measured window are scaled to one hour.
 *
 * Usage: npm run build && node --import tsx bench/requests.ts [--seconds 120] [--tps 10]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { startAzurite } from '../test/servers/azurite.js';
import { startGcs } from '../test/servers/gcs.js';
import { freePort, MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY, startMoto } from '../test/servers/moto.js';
import { startProxy, type LoggedRequest } from '../test/servers/s3-abs-proxy.js';
import { startSshd } from '../test/servers/sshd.js';

const args = process.argv.slice(2);
const opt = (n: string, d: number) => (args.includes(`--${n}`) ? Number(args[args.indexOf(`--${n}`) + 1]) : d);
const SECONDS = opt('seconds', 120);
const TPS = opt('tps', 10);
const BIN = resolve(import.meta.dirname, '../bin/lsinit.js');
const TYPES = ['file', 's3', 'abs', 'gcs', 'sftp'] as const;
type Type = (typeof TYPES)[number];

const dir = mkdtempSync(join(tmpdir(), 'lsinit-bench-req-'));
const [moto, azurite, gcs, sshd] = await Promise.all([startMoto(), startAzurite(), startGcs(), startSshd({ name: 'bench', logRequests: true })]);
await moto.createBucket('bench');
await azurite.createContainer('bench');
const s3Proxy = await startProxy(moto.port);
const absProxy = await startProxy(azurite.port);
const metricsPort = await freePort();

const db = join(dir, 'app.db');
{
  const d = new Database(db);
  d.pragma('journal_mode = wal');
  d.exec('CREATE TABLE log (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, payload TEXT NOT NULL)');
  d.close();
}
const cfg = join(dir, 'lsinit.yml');
writeFileSync(cfg, `addr: 127.0.0.1:${metricsPort}
dbs:
  - path: ${db}
    replicas:
      - name: file
        path: ${join(dir, 'replica')}
      - name: s3
        type: s3
        bucket: bench
        path: app
        endpoint: ${s3Proxy.endpoint}
        region: us-east-1
        access-key-id: ${MOTO_ACCESS_KEY_ID}
        secret-access-key: ${MOTO_SECRET_ACCESS_KEY}
      - name: abs
        type: abs
        account-name: ${azurite.accountName}
        account-key: ${azurite.accountKey}
        bucket: bench
        path: app
        endpoint: ${absProxy.endpoint}/${azurite.accountName}
      - name: gcs
        type: gcs
        bucket: ${gcs.bucket}
        path: app
        endpoint: ${gcs.endpoint}
      - name: sftp
        url: ${sshd.url(`${sshd.home}/replica`)}
        host-key: ${sshd.hostKeyLine}
`);

/** Client-side counts by type → operation, from /metrics. */
async function scrape(): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^litestream_replica_operation_total\{([^}]*)\} (\S+)$/gm)) {
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    out.set(`${labels.replica_type} ${labels.operation}`, Number(m[2]));
  }
  return out;
}

/** What an HTTP request is, in Litestream's operation names. */
function httpOp(r: { method: string; query: URLSearchParams }): string {
  if (r.method === 'GET' && (r.query.has('list-type') || r.query.get('comp') === 'list' || r.query.has('prefix'))) return 'LIST';
  return r.method;
}

interface Mark {
  client: Map<string, number>;
  s3: number;
  abs: number;
  gcs: number;
  sftp: number;
  at: number;
}
async function mark(): Promise<Mark> {
  return { client: await scrape(), s3: s3Proxy.requests.length, abs: absProxy.requests.length, gcs: gcs.server.requests.length, sftp: sshd.requests().length, at: performance.now() };
}

interface Window {
  seconds: number;
  client: Record<Type, Record<string, number>>;
  server: Partial<Record<Type, Record<string, number>>>;
}
function tally<T>(items: T[], key: (x: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of items) out[key(x)] = (out[key(x)] ?? 0) + 1;
  return out;
}
function diff(a: Mark, b: Mark): Window {
  const client = Object.fromEntries(TYPES.map((t) => [t, {} as Record<string, number>])) as Record<Type, Record<string, number>>;
  for (const [k, v] of b.client) {
    const [type, op] = k.split(' ') as [Type, string];
    const d = v - (a.client.get(k) ?? 0);
    if (d > 0 && client[type]) client[type][op] = d;
  }
  const http = (rs: LoggedRequest[]) => tally(rs, httpOp);
  return {
    seconds: (b.at - a.at) / 1000,
    client,
    server: {
      s3: http(s3Proxy.requests.slice(a.s3, b.s3)),
      abs: http(absProxy.requests.slice(a.abs, b.abs)),
      gcs: tally(gcs.server.requests.slice(a.gcs, b.gcs), (r) => (r.method === 'GET' && /\/o$/.test(r.path) ? 'LIST' : r.method)),
      sftp: tally(sshd.requests().slice(a.sftp, b.sftp), (l) => l.split(/[ "]/)[0] ?? l),
    },
  };
}

const perHour = (n: number, secs: number) => Math.round((n * 3600) / secs);
const fmt = (ops: Record<string, number> | undefined, secs: number) =>
  ops === undefined ? '—' : Object.keys(ops).length === 0 ? '0' : Object.entries(ops).sort().map(([op, n]) => `${op} ${perHour(n, secs).toLocaleString('en-US')}`).join(', ');
const sum = (ops: Record<string, number> | undefined) => Object.values(ops ?? {}).reduce((a, b) => a + b, 0);

const child = execa(process.execPath, [BIN, 'replicate', '-config', cfg], { reject: false, all: true });
let log = '';
child.all!.on('data', (d: Buffer) => (log += d));
try {
  const t0 = Date.now();
  while (!log.includes('msg=replicating')) {
    if (Date.now() - t0 > 60_000 || child.exitCode !== null) throw new Error(`lsinit did not start:\n${log}`);
    await sleep(50);
  }
  await sleep(5000); // the first snapshot to every replica lands outside the measured windows

  const idle0 = await mark();
  await sleep(SECONDS * 1000);
  const idle1 = await mark();

  const app = new Database(db);
  app.pragma('busy_timeout = 5000');
  const ins = app.prepare('INSERT INTO log (at, payload) VALUES (?, ?)');
  let n = 0;
  const timer = setInterval(() => {
    ins.run(Date.now(), `row ${++n} `.padEnd(200, 'x'));
  }, 1000 / TPS);
  await sleep(2000); // steady state before the window opens
  const busy0 = await mark();
  const n0 = n;
  await sleep(SECONDS * 1000);
  const busy1 = await mark();
  const commits = n - n0;
  clearInterval(timer);
  app.close();

  const idle = diff(idle0, idle1);
  const busy = diff(busy0, busy1);
  const rate = commits / busy.seconds;
  const rows = [
    '| backend | idle: client counter, per hour | idle: at the server | 10 tx/s: client counter, per hour | 10 tx/s: at the server | 10 tx/s: all requests / hour |',
    '|---|---|---|---|---|---|',
    ...TYPES.map((t) => `| ${t} | ${fmt(idle.client[t], idle.seconds)} | ${fmt(idle.server[t], idle.seconds)} | ${fmt(busy.client[t], busy.seconds)} | ${fmt(busy.server[t], busy.seconds)} | ${perHour(sum(busy.server[t] ?? busy.client[t]), busy.seconds).toLocaleString('en-US')} |`),
  ];
  console.log(`\nlsinit storage requests — ${new Date().toISOString()}, node ${process.version}`);
  console.log(`windows of ${SECONDS} s each, scaled to one hour; app rate ${rate.toFixed(2)} tx/s (asked ${TPS}); sync-interval 1s, lease on (defaults)\n`);
  console.log(rows.join('\n'));
  console.log('\nSFTP counts are SFTP protocol requests (open, write, fsync, fstat, close, rename…), free of charge; the file replica has no server.');
} finally {
  child.kill('SIGTERM');
  await child;
  await Promise.all([s3Proxy.stop(), absProxy.stop(), moto.stop(), azurite.stop(), gcs.stop(), sshd.cleanup()]);
  rmSync(dir, { recursive: true, force: true });
}
