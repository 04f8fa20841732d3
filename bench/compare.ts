/**
 * lsinit beside the reference Litestream 0.3.13 (issue 10's table), in one run, conditions
 * interleaved and rotated so both share the machine's noise; every figure is also given as a
 * same-run ratio. Litestream is found through $LITESTREAM_BIN (see bench/lib.ts);
 * without it the Litestream column is skipped and the run says so.
 *   write     app write rate with / without replication: an app with SQLite's defaults (one
 *             connection, one small row per transaction, wal_autocheckpoint=1000, its own process),
 *             and the same app with wal_autocheckpoint=0
 *   restore   a ~171 MB database written by Litestream (1 snapshot + 64 WAL indexes of ~1.3 MB
 *             transactions): time with default flags, with lsinit's integrity check off, peak RSS
 *   rss       RSS idle with one database, peak RSS after 5 s of small commits, after one 100 MB transaction;
 *             floor: node idle with better-sqlite3 and the database open (main thread / worker thread)
 *   startup   `replicate -exec true DB file://R` (existing DB) whole process, minus a bare `node -e 0`;
 *             start → child and child exit → exit; floor: node + a worker opening the database + `true`
 *   sigterm   SIGTERM → app, as init, while the replicator ships a 300 MB transaction (p50 / p99)
 * Usage: npm run build && node --import tsx bench/compare.ts [--quick] [--only write,restore,rss,startup,sigterm]
 */
import { loadavg } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { litestreamBin } from './lib.js';
import { lsinitTool, litestreamTool, type Tool } from './tools.js';
import { restoreRows, rssRows, sigtermRows, startupRows, writeRows, type Row, type Ctx } from './compare-work.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.includes('--only') ? new Set((args[args.indexOf('--only') + 1] ?? '').split(',')) : undefined;
const ls = litestreamBin();
const tools: Tool[] = [lsinitTool, ...(ls ? [litestreamTool(ls)] : [])];
const dir = mkdtempSync(join(tmpdir(), 'lsinit-compare-'));
const ctx: Ctx = { dir, tools, quick };

const sections: [string, (c: Ctx) => Promise<Row[]>][] = [
  ['write', writeRows],
  ['restore', restoreRows],
  ['rss', rssRows],
  ['startup', startupRows],
  ['sigterm', sigtermRows],
];

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const head = [
  `lsinit vs Litestream 0.3.13 — ${new Date().toISOString()}, node ${process.version}${quick ? ' (quick)' : ''}`,
  ls ? `Litestream: ${ls}` : 'Litestream: NOT FOUND (set LITESTREAM_BIN=/path/to/litestream-0.3.13): its column is skipped',
  `load average at start: ${load()}`,
];
process.stderr.write(`${head.join('\n')}\n`);
const rows: Row[] = [];
try {
  for (const [name, fn] of sections) {
    if (only && !only.has(name)) continue;
    const t0 = performance.now();
    process.stderr.write(`-- ${name} …\n`);
    rows.push(...(await fn(ctx)));
    process.stderr.write(`   ${((performance.now() - t0) / 1000).toFixed(0)} s, load ${load()}\n`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const table = [
  ['figure', 'lsinit', 'Litestream 0.3.13', 'same-run ratio', 'goal', 'holds'],
  ...rows.map((r) => [r.figure, r.lsinit, r.litestream ?? '—', r.ratio ?? '', r.goal ?? '', r.holds === undefined ? '' : r.holds ? 'yes' : 'NO']),
];
const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
console.log([...head, `load average at end: ${load()}`, '', line(table[0]!), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...table.slice(1).map(line)].join('\n'));
