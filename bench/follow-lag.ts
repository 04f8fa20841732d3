/**
 * Follower lag (issue 12): commit on the primary → visible to a reader of the follower's copy.
 *
 * The primary is bank.mjs (one transfer per tick, printing its commit time) under a real
 * `lsinit replicate`; the follower is `lsinit restore -f`; a reader in this process polls the
 * copy every 5 ms with an ordinary SQLite connection and records when each sequence number first
 * becomes visible. lag = first visible − committed, same clock (one machine). Conditions: file and
 * S3 (moto) replicas, at sync-interval = monitor-interval = follow-interval = 1s and 100ms.
 * The bound the issue sets is sync + follow + 200 ms; the table reports p50/p99/max against it.
 * There is no reference run: Litestream 0.3 has no follow mode (0.5's works only on its LTX format).
 *
 * Usage: npm run build && node --import tsx bench/follow-lag.ts [--seconds 20] [--rate 10]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY, startMoto } from '../test/servers/moto.js';
import { BIN, opt, pct, startLsinit, waitFor } from './lib.js';

const seconds = opt('seconds', 20);
const rate = opt('rate', 10);
const BANK = resolve(import.meta.dirname, '../test/fixtures/follow/bank.mjs');
Object.assign(process.env, { AWS_ACCESS_KEY_ID: MOTO_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: MOTO_SECRET_ACCESS_KEY });
const moto = await startMoto();
await moto.createBucket('bench');

function seqOf(path: string, db?: Database.Database): number {
  try {
    return (db!.prepare("SELECT seq FROM meta WHERE k = 'seq'").pluck().get() as number) ?? 0;
  } catch {
    return 0;
  }
}

async function run(backend: 'file' | 's3', interval: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'lsinit-follow-bench-'));
  try {
    const db = join(dir, 'primary.db');
    const copy = join(dir, 'copy.db');
    await execa(process.execPath, [BANK, db, '--tx', '1']);
    const replicaYaml = backend === 'file'
      ? `      - type: file\n        path: ${join(dir, 'replica')}\n`
      : `      - type: s3\n        bucket: bench\n        path: ${dir.slice(-8)}-${interval}\n        endpoint: ${moto.endpoint}\n        region: us-east-1\n`;
    const cfg = (path: string) => `dbs:\n  - path: ${path}\n    monitor-interval: ${interval}\n    replicas:\n${replicaYaml}        sync-interval: ${interval}\n`;
    writeFileSync(join(dir, 'primary.yml'), cfg(db));
    writeFileSync(join(dir, 'copy.yml'), cfg(copy));
    const primary = await startLsinit(join(dir, 'primary.yml'));
    await sleep(1500);
    const follower = execa(process.execPath, [BIN, 'restore', '-f', '-follow-interval', interval, '-config', join(dir, 'copy.yml'), copy], { reject: false, all: true });
    let fout = '';
    follower.all.on('data', (d: Buffer) => (fout += d));
    await waitFor(() => fout.includes('msg="following'), 'the follower to start');
    const reader = new Database(copy, { timeout: 5000 });
    const committed = new Map<number, number>();
    const seen = new Map<number, number>();
    const writer = execa(process.execPath, [BANK, db, '--tx', String(seconds * rate), '--delay', String(Math.round(1000 / rate))], { reject: false });
    let buf = '';
    writer.stdout!.on('data', (d: Buffer) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const [, s, t] = buf.slice(0, i).split(' ');
        committed.set(Number(s), Number(t));
        buf = buf.slice(i + 1);
      }
    });
    let last = seqOf(copy, reader);
    let writing = true;
    void writer.then(() => (writing = false));
    const deadline = () => Date.now() + 30_000;
    let stopAt = Infinity;
    while (writing || (last < Math.max(0, ...committed.keys()) && Date.now() < stopAt)) {
      if (!writing && stopAt === Infinity) stopAt = deadline();
      const s = seqOf(copy, reader);
      const now = Date.now();
      for (let k = last + 1; k <= s; k++) seen.set(k, now);
      if (s > last) last = s;
      await sleep(5);
    }
    reader.close();
    follower.kill('SIGTERM');
    await follower;
    primary.child.kill('SIGTERM');
    await primary.child;
    const lags = [...committed].filter(([s]) => s > 1 && seen.has(s)).map(([s, t]) => seen.get(s)! - t);
    const missing = [...committed.keys()].filter((s) => s > 1 && !seen.has(s)).length;
    const ms = interval.endsWith('ms') ? Number(interval.slice(0, -2)) : Number(interval.slice(0, -1)) * 1000;
    const bound = 2 * ms + 200;
    const p99 = pct(lags, 99);
    return `| ${backend} | ${interval} | ${lags.length} | ${pct(lags, 50)} | ${p99} | ${Math.max(...lags)} | ${bound} | ${p99 <= bound ? 'yes' : 'NO'}${missing ? ` (${missing} never seen)` : ''} |`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows: string[] = [];
for (const interval of ['1s', '100ms']) for (const backend of ['file', 's3'] as const) {
  process.stderr.write(`follow-lag: ${backend} at ${interval}...\n`);
  rows.push(await run(backend, interval));
}
await moto.stop();
console.log(`Follower lag, commit on the primary → visible on the copy (ms), ${rate} tx/s for ${seconds} s per row.
sync-interval = monitor-interval = follow-interval = the interval column. bound = sync + follow + 200 ms (issue 12).
Reference: none — Litestream 0.3 has no follow mode.

| replica | interval | commits | p50 | p99 | max | bound | p99 within |
|---|---|---|---|---|---|---|---|
${rows.join('\n')}`);
