/**
 * Throughput floor benchmark (not a test): how much of the app's write throughput loss under
 * `lsinit replicate` is inherent to Litestream-style replication (a second process holding a read
 * lock, checkpointing, restarting the WAL, taking CPU) and how much is lsinit's own CPU work.
 *
 * Same app workload as bench/replication.ts writeLoad(): 4 better-sqlite3 connections in one worker
 * process, one-row INSERT transactions of a 100-char text, wal_autocheckpoint=0, saturating. Per
 * round, every condition gets one fresh database and one window (order rotated each round):
 *   A   nothing else running (app keeps wal_autocheckpoint=0, so nobody checkpoints)
 *   A0  reference: app with SQLite's default wal_autocheckpoint=1000 (bench/replication.ts baseline)
 *   B   another process holds a read transaction, released and re-taken every second; copies nothing
 *   C   B + that process, once a second and only when the WAL holds >= 1000 pages, does what
 *       lsinit's DB.checkpoint() does (src/sqlite/checkpointer.ts): drop the read lock, PRAGMA
 *       wal_checkpoint(PASSIVE), re-take the read lock, then a one-row write that lets SQLite
 *       restart the WAL when the checkpoint was complete
 *   C50 C at lsinit's real cadence under a write burst (controller WATCH_BATCH_MS = 50 ms)
 *   F   C50 + Litestream's data path without its CPU work: each tick the new WAL bytes are copied
 *       to a shadow file, and once a second the shadow's new bytes are read back as an uploader
 *       would (plain read/write, no checksum verification, no LZ4, no replica write, no fsync)
 *   D   another process burns one full core (no SQLite)
 *   W   another process keeps an fs.watch() on the database directory always armed (what lsinit did
 *       until its watch learned to disarm itself while it copies; see controller.ts watch())
 *   E   the real `lsinit replicate`, file replica, sync-interval 1s
 *   E2  E with lsinit's fs.watch disabled by a preload and monitor-interval 50ms, i.e. the same
 *       sync cadence as E under a write burst, without inotify events
 * Then one CPU profile of lsinit under the same load, summarized by self time (mapped to src/).
 *
 * Usage: npm run build && node --import tsx bench/throughput-floor.ts [--seconds 5] [--rounds 3] [--profile-seconds 10] [--no-profile]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { fileReplicaConfig, freshDB as freshDBIn, opt, startLsinit } from './lib.js';

const args = process.argv.slice(2);
const SECONDS = opt('seconds', 5);
const ROUNDS = opt('rounds', 3);
const PROFILE_SECONDS = opt('profile-seconds', 10);
const PROFILE = !args.includes('--no-profile');
const ROOT = resolve(import.meta.dirname, '..');
const BSQL = join(ROOT, 'node_modules/better-sqlite3');
const PROF_DIR = '/tmp/lsprof';
const HZ = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
const dir = mkdtempSync(join(tmpdir(), 'lsinit-floor-'));

// ---------------------------------------------------------------------------------------------
// Shared helpers (same workload and config as bench/replication.ts)

const freshDB = (name: string) => freshDBIn(dir, name);
const config = (db: string, replica: string, sync = '1s', dbExtra = '') => fileReplicaConfig(dir, db, replica, sync, dbExtra);

/**
 * Preload for condition E2: makes node:fs watch() throw inside lsinit, so its controller falls
 * back to the monitor tick (src/replicate/controller.ts watch(), the catch). No src/ change.
 */
function noWatchPreload(): string {
  const p = join(dir, 'no-watch.mjs');
  writeFileSync(p, "import fs from 'node:fs';\nimport { syncBuiltinESMExports } from 'node:module';\nfs.watch = () => { throw new Error('fs.watch disabled by bench/throughput-floor.ts'); };\nsyncBuiltinESMExports();\n");
  return p;
}

/** Number of inotify descriptors a process holds (to check that E2's preload worked). */
function inotifyFds(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).includes('inotify')) n++;
    } catch {
      /* closed meanwhile */
    }
  }
  return n;
}

/** CPU ticks (utime + stime) of a process; the comm field may hold spaces, so split after ')'. */
function procTicks(pid: number): number {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // fields 14 and 15 of stat(5)
}

/** Whole-machine busy and total jiffies from /proc/stat. */
function machineTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, x) => a + x, 0);
  return { busy: total - f[3]! - f[4]!, total };
}

interface LoadResult {
  tps: number;
  appCpu: number; // % of one core used by the app's worker process during the window
  appSys: number; // of which in the kernel
  walMB: number; // -wal size when the window ended
  sideCpu: number; // % of one core used by the side process (helper or lsinit) during the window
  machineBusy: number; // % of all cores busy on the machine during the window
}

/**
 * Small transactions from 4 connections in one worker process for `seconds` (bench/replication.ts
 * writeLoad). The worker prints START/END around its loop so CPU of the side process and of the
 * machine is sampled over exactly the window; then it is SIGKILLed, so SQLite's close-time
 * checkpoint of a GB-sized WAL neither runs nor delays the next condition.
 */
async function writeLoad(db: string, seconds: number, autocheckpoint: boolean, sidePid: number | undefined): Promise<LoadResult> {
  const script = `
    const D = require(${JSON.stringify(BSQL)});
    const conns = Array.from({length: 4}, () => { const d = new D(${JSON.stringify(db)}); d.pragma('busy_timeout=5000'); ${autocheckpoint ? '' : "d.pragma('wal_autocheckpoint=0');"} return d; });
    conns[0].exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)');
    const st = conns.map((d) => d.prepare('INSERT INTO t (v) VALUES (?)'));
    process.stdout.write('START\\n');
    const c0 = process.cpuUsage(); const t0 = Date.now();
    const end = t0 + ${seconds * 1000}; let n = 0;
    while (Date.now() < end) { st[n % 4].run('x'.repeat(100)); n++; }
    const c = process.cpuUsage(c0); const wall = Date.now() - t0;
    let wal = 0; try { wal = require('fs').statSync(${JSON.stringify(`${db}-wal`)}).size; } catch {}
    process.stdout.write('END' + JSON.stringify({ tps: n / ${seconds}, appCpu: (c.user + c.system) / 1000 / wall * 100, appSys: c.system / 1000 / wall * 100, walMB: wal / 1e6 }) + '\\n');
    setInterval(() => {}, 1000);`;
  const child = execa(process.execPath, ['-e', script], { reject: false });
  let out = '';
  let s0 = 0;
  let m0 = machineTicks();
  let t0 = 0;
  let started = false;
  child.stdout.on('data', (d: Buffer) => {
    out += d;
    if (!started && out.includes('START')) {
      started = true;
      s0 = sidePid ? procTicks(sidePid) : 0;
      m0 = machineTicks();
      t0 = performance.now();
    }
  });
  await waitFor(() => out, 'END{', 'writer', (seconds + 60) * 1000);
  await waitFor(() => out.slice(out.indexOf('END{')), '\n', 'writer');
  const wall = (performance.now() - t0) / 1000;
  const s1 = sidePid ? procTicks(sidePid) : 0;
  const m1 = machineTicks();
  child.kill('SIGKILL');
  await child;
  const r = JSON.parse(/END(\{.*\})/.exec(out)![1]!) as { tps: number; appCpu: number; appSys: number; walMB: number };
  return { ...r, sideCpu: sidePid ? ((s1 - s0) / HZ / wall) * 100 : 0, machineBusy: ((m1.busy - m0.busy) / (m1.total - m0.total)) * 100 };
}

async function waitFor(getOut: () => string, needle: string, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!getOut().includes(needle)) {
    if (Date.now() > end) throw new Error(`${what} did not become ready:\n${getOut()}`);
    await sleep(20);
  }
}

// ---------------------------------------------------------------------------------------------
// The side process for conditions B, C, C50, D

const WATCHER = `
// An always-armed fs.watch on the database directory (lsinit's old watch), doing nothing else.
const fs = require('fs'), path = require('path');
const db = process.argv[2], base = path.basename(db); let events = 0;
fs.watch(path.dirname(db), (_e, name) => { if (name === base + '-wal' || name === base) events++; });
console.log('ready');
process.on('SIGTERM', () => { console.log('STATS' + JSON.stringify({ events })); process.exit(0); });
`;

const HELPER = `
const [kind, db, periodMs, scratch] = [process.argv[1], process.argv[2], Number(process.argv[3]), process.argv[4]];
if (kind === 'burn') { console.log('ready'); for (;;) {} }
const fs = require('fs');
const D = require(${JSON.stringify(BSQL)});
const r = new D(db, { timeout: 1000 }); r.pragma('wal_autocheckpoint=0');
const lock = () => { r.exec('BEGIN'); r.prepare('SELECT COUNT(1) FROM sqlite_master').get(); };
const unlock = () => { if (r.inTransaction) r.exec('ROLLBACK'); };
const ckpt = kind !== 'reader';
const copy = kind === 'copy';
const stats = { ticks: 0, checkpoints: 0, complete: 0, errors: 0, restarts: 0, seqErrors: 0, ckptMs: 0, seqMs: 0, copiedMB: 0, copyMs: 0 };
let c;
if (ckpt) {
  c = new D(db, { timeout: 1000 }); c.pragma('wal_autocheckpoint=0');
  c.exec('CREATE TABLE IF NOT EXISTS _floor_seq (id INTEGER PRIMARY KEY, seq INTEGER)');
}
const walPath = db + '-wal';
const header = () => { try { const fd = fs.openSync(walPath, 'r'); const b = Buffer.alloc(32); fs.readSync(fd, b, 0, 32, 0); fs.closeSync(fd); return b; } catch { return undefined; } };
const pageSize = Number(r.pragma('page_size', { simple: true }));
// F: Litestream's data path without its CPU work: new WAL bytes -> shadow file (every tick), and
// once a second the new shadow bytes are read back as an uploader would (not written anywhere:
// LZ4 shrinks this workload's WAL to almost nothing). Plain read()/write(), one reused 1 MiB buffer.
const buf = Buffer.allocUnsafe(1 << 20);
let walOff = 0, shadowOff = 0, replOff = 0, lastShip = Date.now(), walHdr = header();
const shadowFd = copy ? fs.openSync(scratch + '.shadow', 'w+') : -1;
function pump(from, fromOff, to, toOff, end) {
  while (fromOff < end) {
    const n = fs.readSync(from, buf, 0, Math.min(buf.length, end - fromOff), fromOff);
    if (n <= 0) break;
    if (to >= 0) { fs.writeSync(to, buf, 0, n, toOff); stats.copiedMB += n / 1e6; }
    fromOff += n; toOff += n;
  }
  return fromOff;
}
function copyWAL() {
  const t0 = performance.now();
  const h = header();
  if (h && walHdr && !h.equals(walHdr)) { walOff = 0; walHdr = h; }
  const wfd = fs.openSync(walPath, 'r');
  const size = fs.fstatSync(wfd).size;
  const fsz = 24 + pageSize;
  const end = size < 32 ? 0 : 32 + Math.floor((size - 32) / fsz) * fsz;
  const got = pump(wfd, walOff, shadowFd, shadowOff, end);
  shadowOff += got - walOff; walOff = got;
  fs.closeSync(wfd);
  if (Date.now() - lastShip >= 1000) { replOff = pump(shadowFd, replOff, -1, 0, shadowOff); lastShip = Date.now(); }
  stats.copyMs += performance.now() - t0;
}
lock();
console.log('ready');
setInterval(() => {
  stats.ticks++;
  if (!ckpt) { unlock(); lock(); return; } // B: Litestream's reader lock, moved once a period
  if (copy) copyWAL();
  // lsinit's maybeCheckpoint() threshold: 1000 pages (min-checkpoint-page-count) in the current WAL.
  let walSize = 0; try { walSize = fs.statSync(walPath).size; } catch {}
  if ((walSize - 32) / (24 + pageSize) < 1000) return;
  const before = header();
  let t0 = performance.now();
  unlock();
  try { const res = c.pragma('wal_checkpoint(PASSIVE)')[0]; if (res && res.log === res.checkpointed) stats.complete++; }
  catch { stats.errors++; }
  finally { lock(); }
  stats.checkpoints++;
  stats.ckptMs += performance.now() - t0;
  t0 = performance.now();
  // lsinit's write after the checkpoint (it lets SQLite restart the WAL); busy timeout 1 s as lsinit's.
  try { c.prepare('INSERT INTO _floor_seq (id, seq) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET seq = seq + 1').run(); }
  catch { stats.seqErrors++; }
  stats.seqMs += performance.now() - t0;
  const after = header();
  if (before && after && !before.equals(after)) stats.restarts++;
}, periodMs);
process.on('SIGTERM', () => { console.log('STATS' + JSON.stringify(stats)); process.exit(0); });
`;

type Helper = { child: PromiseLike<unknown> & { pid?: number | undefined; kill: (signal?: NodeJS.Signals) => boolean }; out: () => string };

async function startHelper(kind: 'reader' | 'reader+ckpt' | 'copy' | 'burn' | 'watch', db: string, periodMs: number): Promise<Helper> {
  const child = execa(process.execPath, ['-e', kind === 'watch' ? WATCHER : HELPER, kind, db, String(periodMs), db], { reject: false, all: true });
  let out = '';
  child.all!.on('data', (d: Buffer) => (out += d));
  await waitFor(() => out, 'ready', `helper ${kind}`);
  return { child, out: () => out };
}

// ---------------------------------------------------------------------------------------------
// One measurement per condition

interface Sample extends LoadResult {
  note: string;
}

type Cond = { key: string; label: string; run: (tag: string) => Promise<Sample> };

async function measure(db: string, side: Helper | undefined, autocheckpoint = false, seconds = SECONDS): Promise<Sample> {
  return { ...(await writeLoad(db, seconds, autocheckpoint, side?.child.pid)), note: '' };
}

async function stopHelper(h: Helper, signal: NodeJS.Signals = 'SIGTERM'): Promise<string> {
  h.child.kill(signal);
  await h.child;
  const m = /STATS(\{.*\})/.exec(h.out());
  if (!m) return '';
  const s = JSON.parse(m[1]!) as Record<string, number>;
  if (s.events !== undefined) return `${s.events} watch events`;
  const n = Math.max(1, s.checkpoints!);
  let note = `${s.checkpoints} ckpts (${s.complete} complete) avg ${(s.ckptMs! / n).toFixed(0)} ms, restart-write avg ${(s.seqMs! / n).toFixed(0)} ms (${s.seqErrors} busy), ${s.restarts} WAL restarts`;
  if (s.copiedMB) note += `, shadow-copied ${s.copiedMB.toFixed(0)} MB in ${(s.copyMs! / 1000).toFixed(1)} s`;
  return note;
}

/** Remove a database, its -wal/-shm, lsinit's meta dir (.<name>-litestream) and `extra` paths. */
function cleanup(db: string, extra: string[] = []): void {
  for (const p of [db, `${db}-wal`, `${db}-shm`, `${db}.shadow`, `${db}.replica`, join(dirname(db), `.${basename(db)}-litestream`), ...extra]) rmSync(p, { recursive: true, force: true });
}

const conditions: Cond[] = [
  {
    key: 'A',
    label: 'A   baseline, wal_autocheckpoint=0',
    run: async (tag) => {
      const db = freshDB(`A-${tag}.db`);
      const s = await measure(db, undefined);
      cleanup(db);
      return s;
    },
  },
  {
    key: 'A0',
    label: 'A0  ref: app keeps wal_autocheckpoint=1000',
    run: async (tag) => {
      const db = freshDB(`A0-${tag}.db`);
      const s = await measure(db, undefined, true);
      cleanup(db);
      return s;
    },
  },
  {
    key: 'B',
    label: 'B   read lock held, re-taken 1/s',
    run: async (tag) => {
      const db = freshDB(`B-${tag}.db`);
      const h = await startHelper('reader', db, 1000);
      const s = await measure(db, h);
      await stopHelper(h);
      cleanup(db);
      return s;
    },
  },
  {
    key: 'C',
    label: 'C   B + PASSIVE ckpt + restart write, 1/s',
    run: async (tag) => {
      const db = freshDB(`C-${tag}.db`);
      const h = await startHelper('reader+ckpt', db, 1000);
      const s = await measure(db, h);
      s.note = await stopHelper(h);
      cleanup(db);
      return s;
    },
  },
  {
    key: 'C50',
    label: 'C50 same as C every 50 ms (lsinit cadence)',
    run: async (tag) => {
      const db = freshDB(`C50-${tag}.db`);
      const h = await startHelper('reader+ckpt', db, 50);
      const s = await measure(db, h);
      s.note = await stopHelper(h);
      cleanup(db);
      return s;
    },
  },
  {
    key: 'F',
    label: 'F   C50 + plain WAL->shadow copy, 1/s re-read',
    run: async (tag) => {
      const db = freshDB(`F-${tag}.db`);
      const h = await startHelper('copy', db, 50);
      const s = await measure(db, h);
      s.note = await stopHelper(h);
      cleanup(db);
      return s;
    },
  },
  {
    key: 'D',
    label: 'D   one core busy-looping (no SQLite)',
    run: async (tag) => {
      const db = freshDB(`D-${tag}.db`);
      const h = await startHelper('burn', db, 0);
      const s = await measure(db, h);
      await stopHelper(h, 'SIGKILL');
      cleanup(db);
      return s;
    },
  },
  {
    key: 'W',
    label: 'W   always-armed fs.watch on the DB dir only',
    run: async (tag) => {
      const db = freshDB(`W-${tag}.db`);
      const h = await startHelper('watch', db, 0);
      const s = await measure(db, h);
      s.note = await stopHelper(h);
      cleanup(db);
      return s;
    },
  },
  {
    key: 'E',
    label: 'E   lsinit replicate, file replica, 1s',
    run: async (tag) => {
      const db = freshDB(`E-${tag}.db`);
      const replica = join(dir, `replica-E-${tag}`);
      const h = await startLsinit(config(db, replica));
      const fds = inotifyFds(h.child.pid!);
      const s = await measure(db, h);
      const t0 = performance.now();
      h.child.kill('SIGTERM');
      await h.child;
      s.note = `inotify fds in lsinit: ${fds}, shutdown (final sync) ${((performance.now() - t0) / 1000).toFixed(1)} s`;
      cleanup(db, [replica]);
      return s;
    },
  },
  {
    key: 'E2',
    label: 'E2  E, fs.watch off, monitor-interval 50ms',
    run: async (tag) => {
      const db = freshDB(`E2-${tag}.db`);
      const replica = join(dir, `replica-E2-${tag}`);
      const h = await startLsinit(config(db, replica, '1s', '    monitor-interval: 50ms\n'), ['--import', noWatchPreload()]);
      const fds = inotifyFds(h.child.pid!);
      const s = await measure(db, h);
      h.child.kill('SIGTERM');
      await h.child;
      s.note = `inotify fds in lsinit: ${fds}`;
      cleanup(db, [replica]);
      return s;
    },
  },
];

// ---------------------------------------------------------------------------------------------
// CPU profile of lsinit under the same load

interface ProfNode {
  id: number;
  children?: number[];
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
}

const maps = new Map<string, SourceMap | null>();
function srcLocation(url: string, line: number, col: number): string {
  if (!url) return '';
  let file = url.startsWith('file://') ? fileURLToPath(url) : url;
  if (file.startsWith('node:')) return file;
  if (!maps.has(file)) {
    let sm: SourceMap | null = null;
    try {
      if (file.startsWith(join(ROOT, 'dist')) && existsSync(`${file}.map`)) sm = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
    } catch {
      sm = null;
    }
    maps.set(file, sm);
  }
  const sm = maps.get(file);
  if (sm && line >= 0) {
    const e = sm.findEntry(line, Math.max(0, col)) as { originalSource?: string; originalLine?: number };
    if (e.originalSource) {
      const src = e.originalSource.startsWith('file://') ? fileURLToPath(e.originalSource) : resolve(dirname(file), e.originalSource);
      return `${relative(ROOT, src)}:${e.originalLine! + 1}`;
    }
  }
  file = file.includes('/node_modules/') ? file.slice(file.lastIndexOf('/node_modules/') + 1) : relative(ROOT, file);
  return `${file}:${line + 1}`;
}

function summarizeProfile(path: string, top = 15): string[] {
  const p = JSON.parse(readFileSync(path, 'utf8')) as { nodes: ProfNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    // Sample i lasts until sample i+1 (DevTools' convention).
    const dt = p.timeDeltas[i + 1] ?? 0;
    selfUs.set(p.samples[i]!, (selfUs.get(p.samples[i]!) ?? 0) + Math.max(0, dt));
  }
  const agg = new Map<string, number>();
  const byFile = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const cf = byId.get(id)!.callFrame;
    total += us;
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const loc = srcLocation(cf.url, cf.lineNumber, cf.columnNumber);
    const key = `${cf.functionName || '(anonymous)'}${loc ? `  ${loc}` : ''}`;
    agg.set(key, (agg.get(key) ?? 0) + us);
    const file = loc ? loc.replace(/:\d+$/, '') : cf.functionName;
    byFile.set(file, (byFile.get(file) ?? 0) + us);
  }
  const busy = total - idle;
  const lines = [`profile ${path}: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(2)} s not idle (${((busy / total) * 100).toFixed(0)} % of one core); shares below are of the non-idle time`];
  lines.push(`top ${top} functions by self time:`);
  for (const [k, us] of [...agg].sort((a, b) => b[1] - a[1]).slice(0, top)) lines.push(`  ${((us / busy) * 100).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`);
  lines.push('by file / category (self time):');
  for (const [k, us] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 10)) lines.push(`  ${((us / busy) * 100).toFixed(1).padStart(5)} %  ${k}`);
  // Inclusive time of lsinit's own functions (each sample counted once per function on its stack).
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map<string, number>();
  for (const [id, us] of selfUs) {
    if (byId.get(id)!.callFrame.functionName === '(idle)') continue;
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame;
      const loc = srcLocation(cf.url, cf.lineNumber, cf.columnNumber);
      if (!loc.startsWith('src/')) continue;
      const key = `${cf.functionName || '(anonymous)'}  ${loc}`;
      if (seen.has(key)) continue;
      seen.add(key);
      incl.set(key, (incl.get(key) ?? 0) + us);
    }
  }
  lines.push('inclusive time of src/ functions:');
  for (const [k, us] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, 14)) lines.push(`  ${((us / busy) * 100).toFixed(1).padStart(5)} %  ${k}`);
  return lines;
}

async function profileLsinit(seconds: number): Promise<string[]> {
  mkdirSync(PROF_DIR, { recursive: true });
  const before = new Set(readdirSync(PROF_DIR));
  const db = freshDB('prof.db');
  const replica = join(dir, 'replica-prof');
  const h = await startLsinit(config(db, replica), ['--cpu-prof', `--cpu-prof-dir=${PROF_DIR}`]);
  const s = await measure(db, h, false, seconds);
  await sleep(500);
  h.child.kill('SIGTERM');
  await h.child;
  cleanup(db, [replica]);
  const fresh = readdirSync(PROF_DIR).filter((f) => f.endsWith('.cpuprofile') && !before.has(f));
  const lines = [`profiled run: app ${s.tps.toFixed(0)} tx/s, lsinit CPU ${s.sideCpu.toFixed(0)} % of one core (with profiler overhead)`];
  if (fresh.length === 0) return [...lines, `no .cpuprofile written in ${PROF_DIR} (did lsinit exit cleanly?)`, h.out().slice(-2000)];
  const newest = fresh.map((f) => join(PROF_DIR, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0]!;
  return [...lines, ...summarizeProfile(newest)];
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const median = (xs: number[]) => {
    const s = xs.slice().sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const results = new Map<string, Sample[]>(conditions.map((c) => [c.key, []]));
  const t0 = Date.now();
  { // warm-up window, discarded (the first window of a run is often off)
    const db = freshDB('warmup.db');
    await writeLoad(db, 3, false, undefined);
    cleanup(db);
  }
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order each round so slow drift of the noisy machine is spread over all conditions.
    const order = conditions.map((_, i) => conditions[(i + round) % conditions.length]!);
    for (const c of order) {
      execFileSync('sync');
      await sleep(1000); // let writeback of the previous window settle
      const s = await c.run(`${round}`);
      results.get(c.key)!.push(s);
      process.stderr.write(`round ${round} ${c.key.padEnd(3)} ${s.tps.toFixed(0).padStart(6)} tx/s  app cpu ${s.appCpu.toFixed(0)} % (sys ${s.appSys.toFixed(0)})  side cpu ${s.sideCpu.toFixed(0)} %  machine ${s.machineBusy.toFixed(0)} %  wal ${s.walMB.toFixed(0)} MB  ${s.note}\n`);
    }
  }
  const base = median(results.get('A')!.map((s) => s.tps));
  const lines: string[] = [];
  lines.push(`\nlsinit throughput floor — ${new Date().toISOString()}, node ${process.version}, ${ROUNDS} rounds x ${SECONDS} s windows, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  const w = Math.max(...conditions.map((c) => c.label.length));
  lines.push(`${'condition'.padEnd(w)}  median tx/s  ratio to A  all tx/s                  app cpu% (sys)  side cpu%  machine%  WAL MB at end`);
  for (const c of conditions) {
    const r = results.get(c.key)!;
    const m = median(r.map((s) => s.tps));
    lines.push(
      `${c.label.padEnd(w)}  ${m.toFixed(0).padStart(11)}  ${(m / base).toFixed(3).padStart(10)}  ${r.map((s) => s.tps.toFixed(0)).join(' / ').padEnd(24)}  ${median(r.map((s) => s.appCpu)).toFixed(0).padStart(8)} (${median(r.map((s) => s.appSys)).toFixed(0).padStart(2)})   ${median(r.map((s) => s.sideCpu)).toFixed(0).padStart(9)}  ${median(r.map((s) => s.machineBusy)).toFixed(0).padStart(8)}  ${median(r.map((s) => s.walMB)).toFixed(0).padStart(6)}`,
    );
  }
  for (const c of conditions) {
    const notes = results.get(c.key)!.map((s) => s.note).filter(Boolean);
    if (notes.length) lines.push(`  ${c.key}: ${notes.join(' | ')}`);
  }
  for (const k of ['E', 'E2']) {
    const e = results.get(k)!;
    lines.push(`${k === 'E' ? '\n' : ''}lsinit CPU during ${k} windows (utime+stime, % of one core): ${e.map((s) => s.sideCpu.toFixed(0)).join(' / ')} (median ${median(e.map((s) => s.sideCpu)).toFixed(0)})`);
  }
  console.log(lines.join('\n'));
  if (PROFILE) console.log(`\n${(await profileLsinit(PROFILE_SECONDS)).join('\n')}`);
  rmSync(dir, { recursive: true, force: true });
}

await main();
