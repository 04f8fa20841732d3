/**
 * Every benchmark in one run (`npm run bench`), one after the other so they never compete for the
 * machine's two cores. Each program measures its own baseline in the same run; this one only
 * sequences them and collects their reports:
 *   compare.ts      lsinit beside the reference Litestream 0.3.13 (issue 10's table): write rate of a
 *                   default-settings app, restore of a Litestream-written replica, RSS, start-up,
 *                   SIGTERM latency while shipping a large transaction
 *   replication.ts  write throughput with/without lsinit, commit latency, lag p50/p99 at 1s and
 *                   100ms, restore MB/s of a ≥ 1 GB database vs cp+fsync, peak RSS
 *   resources.ts    RSS idle vs one 200 MB transaction and a 2 GB database (snapshot + restore)
 *   init-timing.ts  start → app running, app exit → lsinit exit, SIGTERM → exit, RSS supervising
 *   requests.ts     storage requests per hour at 10 tx/s and idle, per backend, client and server counts
 *   throughput-floor.ts  where a saturating writer's lost throughput goes (read lock, checkpoints,
 *                   the shadow copy, inotify, lsinit's CPU), with a CPU profile of lsinit
 *   follow-lag.ts   read replicas: commit on the primary → visible on a follower's copy, p50/p99,
 *                   file and S3 (moto), at 1s and 100ms intervals
 *   age.ts          the cost of age encryption: snapshot, restore, per-segment write/read, event-loop
 *                   stall, plain vs age, lsinit and Litestream
 *   ltx.ts          restore of a Litestream 0.5 (LTX) replica vs cp + fsync, and one validation round
 * Usage: npm run bench [-- --quick] [--out report.md]
 *   --quick   smaller sizes and shorter windows (a smoke run of a few minutes, numbers less stable)
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { execa } from 'execa';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const out = args.includes('--out') ? args[args.indexOf('--out') + 1] : undefined;

const runs: { name: string; file: string; args: string[] }[] = [
  { name: 'lsinit vs Litestream', file: 'compare.ts', args: quick ? ['--quick'] : [] },
  { name: 'replication', file: 'replication.ts', args: quick ? ['--db-mb', '200', '--seconds', '5'] : ['--db-mb', '1100', '--seconds', '10'] },
  { name: 'resources', file: 'resources.ts', args: quick ? ['--tx-mb', '50', '--db-gb', '0.5'] : [] },
  { name: 'init', file: 'init-timing.ts', args: quick ? ['3'] : ['10'] },
  { name: 'requests', file: 'requests.ts', args: quick ? ['--seconds', '20'] : ['--seconds', '120'] },
  { name: 'throughput floor', file: 'throughput-floor.ts', args: quick ? ['--rounds', '1', '--no-profile'] : ['--rounds', '3'] },
  { name: 'age encryption', file: 'age.ts', args: quick ? ['--quick'] : [] },
  { name: 'follower lag', file: 'follow-lag.ts', args: quick ? ['--seconds', '5'] : ['--seconds', '30'] },
  { name: 'Litestream 0.5 (LTX) restore and validation', file: 'ltx.ts', args: quick ? ['--db-mb', '50', '--l0', '20'] : ['--db-mb', '500'] },
];

const report: string[] = [`# lsinit benchmarks — ${new Date().toISOString()}, node ${process.version}${quick ? ' (quick)' : ''}`, ''];
let failed = 0;
for (const r of runs) {
  const t0 = performance.now();
  process.stderr.write(`\n== ${r.name} (bench/${r.file} ${r.args.join(' ')})\n`);
  const child = execa(process.execPath, ['--import', 'tsx', resolve(import.meta.dirname, r.file), ...r.args], {
    reject: false,
    stdout: ['pipe', 'inherit'],
    stderr: 'inherit',
  });
  const res = await child;
  const secs = ((performance.now() - t0) / 1000).toFixed(0);
  report.push(`## ${r.name} (${secs} s)`, '', '```', String(res.stdout).trim(), '```', '');
  if (res.exitCode !== 0) {
    failed++;
    report.push(`**${r.name} failed with exit code ${res.exitCode}**`, '');
  }
}
if (out !== undefined) writeFileSync(out, `${report.join('\n')}\n`);
process.stderr.write(`\n${report.join('\n')}\n`);
process.exit(failed === 0 ? 0 : 1);
