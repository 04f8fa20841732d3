/**
 * Long crash-torture run: `node --import tsx scripts/torture.ts --trials N [--seed S] [--faults k,k]
 * [--jobs J] [--slack MS] [--keep] [--s3] [--verbose]`. Build first (`npm run build`): trials run bin/lsinit.js.
 * Prints one line per trial and a table: trials, faults by kind, failures with their seeds.
 * `--seed S --trials 1 --faults K` replays one trial's schedule exactly.
 */
import { FAULTS, privateBuild, runTrial, type FaultKind, type TrialResult } from '../test/torture/harness.js';
import { isStoreFault } from '../test/torture/store-faults.js';

const argv = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const trials = Number(flag('trials') ?? '20');
const firstSeed = flag('seed') !== undefined ? Number(flag('seed')) : Math.floor(Math.random() * 1e9);
const kinds = (flag('faults')?.split(',').filter(Boolean) ?? []) as FaultKind[];
for (const k of kinds) if (!(FAULTS as readonly string[]).includes(k)) throw new Error(`unknown fault ${k}; known: ${FAULTS.join(', ')}`);
if (kinds.some(isStoreFault) && !argv.includes('--s3')) throw new Error(`faults ${kinds.filter(isStoreFault).join(', ')} need an S3 replica: add --s3`);
const jobs = Number(flag('jobs') ?? '1');
const slack = flag('slack') !== undefined ? Number(flag('slack')) : undefined;
const keep = argv.includes('--keep');
const verbose = argv.includes('--verbose');
// --s3: also replicate every trial to S3 (moto_server on a free port, one bucket for the run).
let s3: { endpoint: string; bucket: string } | undefined;
let stopMoto: (() => Promise<void>) | undefined;
if (argv.includes('--s3')) {
  const { startMoto, MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY } = await import('../test/servers/moto.js');
  const moto = await startMoto();
  await moto.createBucket('torture');
  process.env['AWS_ACCESS_KEY_ID'] = MOTO_ACCESS_KEY_ID;
  process.env['AWS_SECRET_ACCESS_KEY'] = MOTO_SECRET_ACCESS_KEY;
  s3 = { endpoint: moto.endpoint, bucket: 'torture' };
  stopMoto = () => moto.stop();
}
// Interrupted: stop what this run started (moto, the private build), then print what we have.
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    interrupted = true;
    console.log(`\n${sig}: finishing the trial in flight, then the summary`);
  });
}

// Trials run a private copy of dist/ (LSINIT_BIN overrides), immune to rebuilds of the shared tree.
const dropBuild = privateBuild();
const results: TrialResult[] = [];
let next = 0;
const started = Date.now();
async function worker() {
  while (next < trials && !interrupted) {
    const seed = firstSeed + next++;
    const r = await runTrial({ seed, kinds, keep, ...(s3 ? { s3 } : {}), ...(slack !== undefined ? { lagSlackMs: slack } : {}), ...(verbose ? { log: (l: string) => console.log(l) } : {}) });
    results.push(r);
    const status = r.failures.length ? `FAIL (${r.failures.map((f) => f.check).join('; ')}) dir=${r.dir}` : 'ok';
    console.log(`#${results.length} seed=${seed} fault=${r.kind} committed=${r.committed} ${(r.ms / 1000).toFixed(1)}s ${status}`);
    if (verbose || r.failures.length) for (const n of r.notes) console.log(`    ${n}`);
    for (const f of r.failures) console.log(`    ${f.check}: ${f.detail.slice(0, 1000)}`);
  }
}
await Promise.all(Array.from({ length: jobs }, worker));
await stopMoto?.();
dropBuild();

const byKind = new Map<string, { n: number; failed: number; commits: number }>();
for (const r of results) {
  const e = byKind.get(r.kind) ?? { n: 0, failed: 0, commits: 0 };
  e.n++;
  e.commits += r.committed;
  if (r.failures.length) e.failed++;
  byKind.set(r.kind, e);
}
const failed = results.filter((r) => r.failures.length);
const stalls = results.map((r) => ({ seed: r.seed, kind: r.kind, ms: Number(/longest pause between commits: (\d+)/.exec(r.notes.join('\n'))?.[1] ?? 0) })).sort((a, b) => b.ms - a.ms);
console.log(`\n${results.length} trials, ${failed.length} failed, ${results.reduce((a, r) => a + r.committed, 0)} transactions, ${((Date.now() - started) / 60000).toFixed(1)} min, seeds ${firstSeed}..${firstSeed + trials - 1}${kinds.length ? ` faults ${kinds.join(',')}` : ''}`);
console.log('fault                 trials  failed  commits');
for (const k of FAULTS) {
  const e = byKind.get(k);
  if (e) console.log(`${k.padEnd(22)}${String(e.n).padStart(6)}${String(e.failed).padStart(8)}${String(e.commits).padStart(9)}`);
}
if (stalls[0]) console.log(`longest pause between two app commits: ${stalls[0].ms} ms (seed ${stalls[0].seed}, ${stalls[0].kind}); median of per-trial maxima ${stalls[Math.floor(stalls.length / 2)]!.ms} ms`);
if (failed.length) {
  console.log('\nfailures (replay: node --import tsx scripts/torture.ts --trials 1 --seed S --faults KIND):');
  for (const r of failed) console.log(`  seed=${r.seed} fault=${r.kind}: ${r.failures.map((f) => `${f.check}: ${f.detail.slice(0, 200)}`).join(' / ')}`);
}
process.exitCode = failed.length ? 1 : 0;
