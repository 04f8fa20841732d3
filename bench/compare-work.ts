/** The workloads of bench/compare.ts, one function per section, each returning table rows. */
import { rmSync, writeFileSync, readdirSync, createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { dirBytes, freshDB, median, pct, waitFor } from './lib.js';
import { background, initArgs, measure, peakOf, replicaReady, replicateArgs, restoreArgs, rssOf, type Tool } from './tools.js';

export interface Ctx {
  dir: string;
  tools: Tool[];
  quick: boolean;
}
export interface Row {
  figure: string;
  lsinit: string;
  litestream?: string | undefined;
  ratio?: string;
  goal?: string;
  holds?: boolean;
}

const SQLITE = resolve(import.meta.dirname, '../node_modules/better-sqlite3');
const mb = (b: number) => (b / 1e6).toFixed(0);
const avg = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
const range = (xs: number[], f: (x: number) => string) => (xs.length === 1 ? f(xs[0]!) : `${f(Math.min(...xs))}–${f(Math.max(...xs))}`);
let seq = 0;
const fresh = (c: Ctx, what: string) => join(c.dir, `${what}-${++seq}`);
const clean = (...paths: string[]) => {
  for (const p of paths) for (const s of ['', '-wal', '-shm']) rmSync(`${p}${s}`, { recursive: true, force: true });
};
const byTool = <T>(c: Ctx, f: (t: Tool) => T) => Object.fromEntries(c.tools.map((t) => [t.name, f(t)])) as Partial<Record<Tool['name'], T>>;

/** Rotate the order of `conds` each round so no condition always runs first or after another's leftovers. */
async function rounds<T>(n: number, conds: T[], run: (x: T, round: number) => Promise<void>): Promise<void> {
  for (let r = 0; r < n; r++) for (let i = 0; i < conds.length; i++) await run(conds[(i + r) % conds.length]!, r);
}

// ---------------------------------------------------------------- write rate

/** The default-settings app: one connection, one ~100-byte row per transaction, for `seconds`; prints tx/s. */
const APP_WRITE = `
  const D = require(${JSON.stringify(SQLITE)});
  const [db, seconds, noauto] = process.argv.slice(1);
  const d = new D(db);
  if (noauto === '1') d.pragma('wal_autocheckpoint=0');
  const st = d.prepare('INSERT INTO t (v) VALUES (?)');
  const v = 'x'.repeat(100);
  const end = Date.now() + Number(seconds) * 1000; let n = 0;
  while (Date.now() < end) { st.run(v); n++; }
  console.log(n / Number(seconds));`;

const writeApp = async (db: string, seconds: number, noauto: boolean) =>
  Number((await execa(process.execPath, ['-e', APP_WRITE, db, String(seconds), noauto ? '1' : '0'])).stdout);

// ---------------------------------------------------------------- floors

/**
 * What any Node program pays before lsinit's own code: the same-run floors beside the idle-RSS and
 * start-up rows (issue 10's goals of 50 MB and 60 ms over node are measured against them).
 * `worker`: the SQLite work in a worker thread (the design issue 10 asks for: nothing heavy on the
 * thread that forwards signals), with lsinit's worker heap limits; else on the main thread.
 */
const FLOOR_OPEN = `
  const D = require(${JSON.stringify(SQLITE)});
  const d = new D(DB);
  d.pragma('journal_mode = wal');
  d.prepare('SELECT count(*) FROM t').get();`;

/** Prints VmRSS (bytes) after `idleMs` with the database open and read, nothing else. */
const floorRSSApp = (worker: boolean) => `
  const { Worker } = require('node:worker_threads');
  const [db, idleMs] = process.argv.slice(1);
  const open = ${JSON.stringify(`const DB = require('node:worker_threads').workerData;${FLOOR_OPEN} setInterval(() => {}, 1000);`)};
  if (${worker}) new Worker(open, { eval: true, workerData: db, resourceLimits: { maxYoungGenerationSizeMb: 8 } });
  else new Function('require', 'DB', ${JSON.stringify(FLOOR_OPEN)})(require, db);
  setTimeout(() => {
    console.log(1024 * Number(/VmRSS:\\s+(\\d+)/.exec(require('node:fs').readFileSync('/proc/self/status', 'utf8'))[1]));
    process.exit(0);
  }, Number(idleMs));`;

/** A worker opens the database while the main thread runs `true`; exits when both are done. */
const FLOOR_START = `
  const { Worker } = require('node:worker_threads');
  const { spawn } = require('node:child_process');
  let n = 0;
  const done = () => { if (++n === 2) process.exit(0); };
  const w = new Worker(${JSON.stringify(`const DB = require('node:worker_threads').workerData;${FLOOR_OPEN}`)}, { eval: true, workerData: process.argv[1] });
  w.on('exit', done);
  w.on('error', (e) => { console.error(e); process.exit(1); });
  spawn('true').on('exit', done);`;

const floorRSS = async (db: string, idleMs: number, worker: boolean) =>
  Number((await execa(process.execPath, ['-e', floorRSSApp(worker), db, String(idleMs)])).stdout);

export async function writeRows(c: Ctx): Promise<Row[]> {
  const seconds = c.quick ? 3 : 5;
  const n = c.quick ? 2 : 3;
  const rows: Row[] = [];
  for (const noauto of [false, true]) {
    const rates = new Map<string, number[]>();
    await rounds(n, ['none', ...c.tools], async (cond) => {
      const db = freshDB(c.dir, `w-${++seq}.db`);
      const replica = fresh(c, 'w-replica');
      const key = typeof cond === 'string' ? cond : cond.name;
      const bg = typeof cond === 'string' ? undefined : background(replicateArgs(cond, db, replica));
      try {
        if (bg) await replicaReady(bg, replica);
        const r = await writeApp(db, seconds, noauto);
        rates.set(key, [...(rates.get(key) ?? []), r]);
      } finally {
        await bg?.stop();
        clean(db, replica, join(c.dir, `.${db.split('/').pop()}-litestream`));
      }
    });
    const base = avg(rates.get('none')!);
    const ratio = (t: Tool) => avg(rates.get(t.name)!) / base;
    const cell = (t: Tool) => `${ratio(t).toFixed(2)} (${avg(rates.get(t.name)!).toFixed(0)} tx/s)`;
    const r = byTool(c, ratio);
    const name = noauto ? 'same app with wal_autocheckpoint=0' : 'app with SQLite defaults (1 conn, 1 row/tx, autocheckpoint 1000)';
    rows.push({
      figure: `write rate with replication / without: ${name}; alone ${base.toFixed(0)} tx/s`,
      lsinit: cell(c.tools[0]!),
      litestream: c.tools[1] ? cell(c.tools[1]) : undefined,
      ratio: r.litestream === undefined ? '' : `lsinit/Litestream ${(r.lsinit! / r.litestream).toFixed(2)}`,
      goal: noauto ? '≥ 0.95' : '≥ 0.95 and ≥ Litestream',
      holds: r.lsinit! >= 0.95 && (noauto || r.litestream === undefined || r.lsinit! >= r.litestream),
    });
  }
  return rows;
}

// ---------------------------------------------------------------- restore

/**
 * A ~171 MB database replicated by Litestream (lsinit when Litestream is absent): an ~88 MB database
 * snapshotted, then 64 transactions of ~1.3 MB, each made its own WAL index by a checkpoint (the
 * replicator checkpoints once the WAL passes min-checkpoint-page-count, and the next write starts a
 * new index). Returns the replica directory.
 */
export async function litestreamWrittenReplica(c: Ctx): Promise<{ replica: string; indexes: number; by: string }> {
  const tool = c.tools[1] ?? c.tools[0]!;
  const db = freshDB(c.dir, 'restore-src.db', 'CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)');
  const d = new Database(db);
  // Rows half random, half zeros: a database that compresses about 2:1, like most.
  const ins = d.prepare('INSERT INTO blobs (b) VALUES (randomblob(1000) || zeroblob(1000))');
  const tx = d.transaction((rows: number) => { for (let i = 0; i < rows; i++) ins.run(); });
  for (let i = 0; i < 44; i++) tx(1000); // 44 × 2 MB of rows ≈ 88 MB
  d.pragma('wal_checkpoint(TRUNCATE)');
  const replica = join(c.dir, 'restore-replica');
  const cfg = join(c.dir, 'restore-src.yml');
  writeFileSync(cfg, `dbs:\n  - path: ${db}\n    monitor-interval: 100ms\n    min-checkpoint-page-count: 200\n    replicas:\n      - path: ${replica}\n        sync-interval: 100ms\n`);
  const bg = background([...tool.cmd, 'replicate', '-config', cfg]);
  const maxIndex = () => {
    let m = -1;
    try {
      for (const g of readdirSync(join(replica, 'generations'))) {
        for (const f of readdirSync(join(replica, 'generations', g, 'wal'))) m = Math.max(m, parseInt(f.slice(0, 8), 16));
      }
    } catch { /* not yet */ }
    return m;
  };
  try {
    await replicaReady(bg, replica);
    d.pragma('busy_timeout = 10000');
    for (let i = 0; i < 64; i++) {
      const before = maxIndex();
      tx(650); // ~1.3 MB
      await waitFor(() => maxIndex() > before, `WAL index ${before + 1} from ${tool.name}`, 60_000, 20);
    }
    await sleep(1000);
  } finally {
    d.close();
    await bg.stop();
  }
  return { replica, indexes: maxIndex() + 1, by: tool.name };
}

async function sha(p: string): Promise<string> {
  const h = createHash('sha256');
  for await (const b of createReadStream(p)) h.update(b as Buffer);
  return h.digest('hex');
}

export async function restoreRows(c: Ctx): Promise<Row[]> {
  const { replica, indexes, by } = await litestreamWrittenReplica(c);
  const conds: { tool: Tool; check: boolean; key: string }[] = [
    { tool: c.tools[0]!, check: true, key: 'lsinit' },
    { tool: c.tools[0]!, check: false, key: 'lsinit-noic' },
    ...(c.tools[1] ? [{ tool: c.tools[1], check: true, key: 'litestream' }] : []),
  ];
  const ms = new Map<string, number[]>();
  const peak = new Map<string, number[]>();
  const hashes = new Map<string, string>();
  await rounds(c.quick ? 2 : 4, conds, async (cond, round) => {
    const out = fresh(c, 'restored.db');
    const m = await measure(restoreArgs(cond.tool, replica, out, cond.check), { rss: true });
    if (m.code !== 0) throw new Error(`${cond.key} restore failed (${m.code}):\n${m.stdout}${m.stderr}`);
    ms.set(cond.key, [...(ms.get(cond.key) ?? []), m.ms]);
    peak.set(cond.key, [...(peak.get(cond.key) ?? []), m.peak]);
    if (round === 0) hashes.set(cond.key, await sha(out));
    clean(out);
  });
  const t = (k: string) => median(ms.get(k)!);
  const lt = c.tools[1] ? t('litestream') : undefined;
  const identical = new Set(hashes.values()).size === 1;
  const what = `restore of a database written by ${by} (1 snapshot + ${indexes} WAL indexes, ${mb(dirBytes(replica))} MB replica)`;
  const cellT = (k: string) => `${(t(k) / 1000).toFixed(2)} s (${range(ms.get(k)!, (x) => (x / 1000).toFixed(2))})`;
  const lsPeak = (k: string) => median(peak.get(k)!);
  return [
    {
      figure: `${what}, default flags (lsinit runs integrity_check)`,
      lsinit: cellT('lsinit'),
      litestream: lt === undefined ? undefined : cellT('litestream'),
      ratio: lt === undefined ? '' : `Litestream/lsinit ${(lt / t('lsinit')).toFixed(2)}`,
      goal: '> 1 (faster than Litestream)',
      ...(lt === undefined ? {} : { holds: lt / t('lsinit') > 1 }),
    },
    {
      figure: 'same restore, integrity check off (lsinit -no-integrity-check)',
      lsinit: cellT('lsinit-noic'),
      litestream: lt === undefined ? undefined : cellT('litestream'),
      ratio: lt === undefined ? '' : `Litestream/lsinit ${(lt / t('lsinit-noic')).toFixed(2)}`,
      goal: '≥ 1.5',
      ...(lt === undefined ? {} : { holds: lt / t('lsinit-noic') >= 1.5 }),
    },
    {
      figure: 'restore peak RSS (default flags; -no-integrity-check)',
      lsinit: `${mb(lsPeak('lsinit'))} MB; ${mb(lsPeak('lsinit-noic'))} MB`,
      litestream: lt === undefined ? undefined : `${mb(lsPeak('litestream'))} MB`,
      ratio: lt === undefined ? '' : `lsinit/Litestream ${(lsPeak('lsinit') / lsPeak('litestream')).toFixed(2)}`,
      goal: '≤ 120 MB',
      holds: Math.max(lsPeak('lsinit'), lsPeak('lsinit-noic')) <= 120e6,
    },
    {
      figure: 'restored files byte-identical across lsinit, lsinit -no-integrity-check and Litestream',
      lsinit: identical ? 'yes' : `NO: ${[...hashes].map(([k, v]) => `${k} ${v.slice(0, 12)}`).join(', ')}`,
      goal: 'identical',
      holds: identical,
    },
  ];
}

// ---------------------------------------------------------------- memory

async function settle(replica: string, minBytes: number): Promise<void> {
  let last = -1;
  let stableSince = Date.now();
  await waitFor(() => {
    const n = dirBytes(replica);
    if (n !== last) [last, stableSince] = [n, Date.now()];
    return n >= minBytes && Date.now() - stableSince >= 1500;
  }, `${replica} to reach ${mb(minBytes)} MB and settle`, 300_000, 100);
}

export async function rssRows(c: Ctx): Promise<Row[]> {
  const idle = new Map<string, number[]>();
  const commits = new Map<string, number[]>();
  const big = new Map<string, number[]>();
  const floor = new Map<string, number[]>();
  const push = (m: Map<string, number[]>, k: string, v: number) => m.set(k, [...(m.get(k) ?? []), v]);
  await rounds(c.quick ? 1 : 2, c.tools, async (tool) => {
    // Idle, one database, then 5 s of small commits by the default-settings app.
    const db = freshDB(c.dir, `rss-${++seq}.db`);
    const replica = fresh(c, 'rss-replica');
    let bg = background(replicateArgs(tool, db, replica));
    try {
      await replicaReady(bg, replica);
      await sleep(c.quick ? 2000 : 4000);
      push(idle, tool.name, rssOf(bg.child.pid!));
      if (tool.name === 'lsinit') {
        push(floor, 'main', await floorRSS(db, c.quick ? 2000 : 4000, false));
        push(floor, 'worker', await floorRSS(db, c.quick ? 2000 : 4000, true));
      }
      await writeApp(db, 5, false);
      await sleep(1500);
      push(commits, tool.name, peakOf(bg.child.pid!));
    } finally {
      await bg.stop();
      clean(db, replica);
    }
    // One 100 MB transaction.
    const db2 = freshDB(c.dir, `rss-${++seq}.db`, 'CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)');
    const replica2 = fresh(c, 'rss-replica');
    bg = background(replicateArgs(tool, db2, replica2));
    try {
      await replicaReady(bg, replica2);
      const d = new Database(db2);
      d.pragma('busy_timeout = 10000');
      const ins = d.prepare('INSERT INTO blobs (b) VALUES (randomblob(?))');
      d.transaction(() => { for (let i = 0; i < 1000; i++) ins.run(100_000); })();
      d.close();
      await settle(replica2, 95e6);
      push(big, tool.name, peakOf(bg.child.pid!));
    } finally {
      await bg.stop();
      clean(db2, replica2);
    }
  });
  const row = (figure: string, m: Map<string, number[]>, goalMB: number): Row => {
    const l = median(m.get('lsinit')!);
    const t = m.get('litestream');
    return {
      figure,
      lsinit: `${mb(l)} MB`,
      litestream: t ? `${mb(median(t))} MB` : undefined,
      ratio: t ? `lsinit/Litestream ${(l / median(t)).toFixed(2)}` : '',
      goal: `≤ ${goalMB} MB`,
      holds: l <= goalMB * 1e6,
    };
  };
  return [
    row('RSS idle, one database (replicate DB file://R)', idle, 50),
    {
      figure: '  floor, same run: node idle with better-sqlite3 and the same database open, on the main thread / in a worker thread (no lsinit code)',
      lsinit: `${mb(median(floor.get('main')!))} MB / ${mb(median(floor.get('worker')!))} MB`,
    },
    row('peak RSS after 5 s of small commits (default-settings app)', commits, 100),
    row('peak RSS after one 100 MB transaction', big, 120),
  ];
}

// ---------------------------------------------------------------- start-up

export async function startupRows(c: Ctx): Promise<Row[]> {
  const runs = c.quick ? 7 : 21;
  const now = () => performance.timeOrigin + performance.now();
  const db = byTool(c, (t) => {
    const p = freshDB(c.dir, `startup-${t.name}.db`);
    const d = new Database(p);
    d.prepare("INSERT INTO t (v) VALUES ('x')").run();
    d.close();
    return { db: p, replica: join(c.dir, `startup-replica-${t.name}`) };
  });
  const whole = new Map<string, number[]>();
  const toChild = new Map<string, number[]>();
  const fromChild = new Map<string, number[]>();
  const push = (m: Map<string, number[]>, k: string, v: number) => m.set(k, [...(m.get(k) ?? []), v]);
  // Warm-up: the replica exists afterwards, as for any restart of a container with its volume.
  for (const t of c.tools) await measure(replicateArgs(t, db[t.name]!.db, db[t.name]!.replica, 'true'));
  await rounds(runs, ['node', 'floor', ...c.tools], async (cond) => {
    if (cond === 'node') {
      push(whole, 'node', (await measure([process.execPath, '-e', '0'])).ms);
      return;
    }
    if (typeof cond === 'string') {
      const m = await measure([process.execPath, '-e', FLOOR_START, db['lsinit']!.db]);
      if (m.code !== 0) throw new Error(`start-up floor probe failed:\n${m.stderr}`);
      push(whole, 'floor', m.ms);
      return;
    }
    const { db: p, replica } = db[cond.name]!;
    const m = await measure(replicateArgs(cond, p, replica, 'true'));
    if (m.code !== 0) throw new Error(`${cond.name} replicate -exec true failed:\n${m.stdout}${m.stderr}`);
    push(whole, cond.name, m.ms);
    // The same with a child that prints the time it starts and ends.
    const t0 = now();
    const s = await measure(replicateArgs(cond, p, replica, "sh -c 'date +%s%N; date +%s%N'"));
    const end = t0 + s.ms;
    const stamps = s.stdout.split('\n').filter((l) => /^\d{19}$/.test(l)).map((l) => Number(BigInt(l) / 1000n) / 1000);
    if (stamps.length === 2) {
      push(toChild, cond.name, stamps[0]! - t0);
      push(fromChild, cond.name, end - stamps[1]!);
    }
  });
  const node = median(whole.get('node')!);
  const over = (k: string) => median(whole.get(k)!) - node;
  const lt = c.tools[1] ? 'litestream' : undefined;
  const f = (x: number) => `${x.toFixed(0)} ms`;
  return [
    {
      figure: `replicate -exec true DB file://R (existing DB), whole process minus bare node -e 0 (${f(node)}); median of ${runs}`,
      lsinit: `${f(over('lsinit'))} (whole ${f(median(whole.get('lsinit')!))})`,
      litestream: lt ? `${f(median(whole.get(lt)!))} whole` : undefined,
      ratio: lt ? `lsinit whole / Litestream whole ${(median(whole.get('lsinit')!) / median(whole.get(lt)!)).toFixed(1)}` : '',
      goal: '≤ 60 ms over node, final sync included',
      holds: over('lsinit') <= 60,
    },
    {
      figure: '  floor, same run: node starts a worker that opens the database with better-sqlite3, and runs `true` (no lsinit code), minus bare node',
      lsinit: `${f(over('floor'))} (whole ${f(median(whole.get('floor')!))})`,
    },
    {
      figure: '  of which: start → child running / child exit → exit (median)',
      lsinit: toChild.has('lsinit') ? `${f(median(toChild.get('lsinit')!))} / ${f(median(fromChild.get('lsinit')!))}` : 'n/a',
      litestream: lt && toChild.has(lt) ? `${f(median(toChild.get(lt)!))} / ${f(median(fromChild.get(lt)!))}` : undefined,
    },
  ];
}

// ---------------------------------------------------------------- SIGTERM while shipping

/** Writes `mb` MB in one transaction, says so, then reports when SIGTERM arrives (monotonic clock, ns). */
const APP_TERM = `
  const fs = require('node:fs');
  const D = require(${JSON.stringify(SQLITE)});
  const [db, mb] = process.argv.slice(2);
  process.on('SIGTERM', () => { fs.writeSync(1, 'term ' + process.hrtime.bigint() + '\\n'); process.exit(0); });
  const d = new D(db);
  const ins = d.prepare('INSERT INTO blobs (b) VALUES (randomblob(?))');
  d.transaction(() => { for (let i = 0; i < Number(mb) * 10; i++) ins.run(100000); })();
  fs.writeSync(1, 'committed\\n');
  setInterval(() => {}, 1 << 30);`;

export async function sigtermRows(c: Ctx): Promise<Row[]> {
  const trials = c.quick ? 2 : 6;
  const size = 300;
  const app = join(c.dir, 'term-app.cjs');
  writeFileSync(app, APP_TERM);
  const lat = new Map<string, number[]>();
  await rounds(trials, c.tools, async (tool) => {
    const db = freshDB(c.dir, `term-${++seq}.db`, 'CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)');
    const replica = fresh(c, 'term-replica');
    const cfg = join(c.dir, `term-${seq}.yml`);
    writeFileSync(cfg, `dbs:\n  - path: ${db}\n    replicas:\n      - path: ${replica}\n`);
    const bg = background(initArgs(tool, cfg, [process.execPath, app, db, String(size)]));
    try {
      await waitFor(() => {
        if (bg.child.exitCode !== null) throw new Error(`${tool.name} exited early:\n${bg.out()}`);
        return bg.out().includes('committed\n');
      }, `the app's ${size} MB commit under ${tool.name}`, 300_000, 10);
      // Land somewhere in the copy of the transaction, not always at its start.
      await sleep(50 + Math.random() * 350);
      const t0 = process.hrtime.bigint();
      bg.child.kill('SIGTERM');
      await waitFor(() => /term \d+/.test(bg.out()), `the app to get SIGTERM under ${tool.name}`, 60_000, 1);
      const t1 = BigInt(/term (\d+)/.exec(bg.out())![1]!);
      lat.set(tool.name, [...(lat.get(tool.name) ?? []), Number(t1 - t0) / 1e6]);
      await bg.stop(300_000);
    } finally {
      await bg.stop(1000);
      clean(db, replica);
    }
  });
  const cell = (k: string) => {
    const xs = lat.get(k)!;
    return `${pct(xs, 50).toFixed(1)} / ${pct(xs, 99).toFixed(1)} ms`;
  };
  const l99 = pct(lat.get('lsinit')!, 99);
  return [{
    figure: `SIGTERM → app as init while shipping a ${size} MB transaction, p50 / p99 (${trials} trials each; p99 of so few is the max)`,
    lsinit: cell('lsinit'),
    litestream: lat.has('litestream') ? cell('litestream') : undefined,
    goal: '≤ 10 ms at p99',
    holds: l99 <= 10,
  }];
}
