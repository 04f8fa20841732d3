/**
 * Init overhead, measured against running the same command directly (the baseline, same run):
 *   - start → app running: spawn of lsinit until the app's first instruction (`date +%s%N`),
 *   - app exit → lsinit exit: the app's last instruction until lsinit's exit event,
 *   - SIGTERM → lsinit exit for an app that exits on SIGTERM (sh trap),
 *   - RSS of lsinit while it supervises (VmRSS after 1 s), vs an idle `node` process.
 * Variants: pure init (no config), with the real Controller (one DB, file replica), and the test
 * launcher with a fake controller (tsx, source). Run: `npm run build && node --import tsx bench/init-timing.ts [runs]`.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin/lsinit.js');
const ENTRY = join(ROOT, 'test/fixtures/init-entry.ts');
const RUNS = Number(process.argv[2] ?? 10);
const dir = mkdtempSync(join(tmpdir(), 'lsinit-bench-'));

const nowNs = () => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));

interface Variant {
  name: string;
  prefix: string[];
  env?: NodeJS.ProcessEnv;
}

const cfg = join(dir, 'lsinit.yml');
writeFileSync(cfg, `dbs:\n  - path: ${join(dir, 'app.db')}\n    replicas:\n      - type: file\n        path: ${join(dir, 'replica')}\n`);

const tini = ['/usr/bin/tini', '/sbin/tini', '/usr/local/bin/tini'].find((p) => existsSync(p));
const variants: Variant[] = [
  { name: 'direct (baseline)', prefix: [] },
  ...(tini === undefined ? [] : [{ name: 'tini -s (baseline)', prefix: [tini, '-s', '--'] }]),
  { name: 'lsinit, no config', prefix: [process.execPath, BIN, '--'] },
  {
    // What `lsinit -- cmd` would cost if the CLI entry did not load every backend SDK up front.
    name: 'dist/init/command.js only',
    prefix: [process.execPath, '--input-type=module', '-e',
      `const { runInit } = await import(${JSON.stringify(join(ROOT, 'dist/init/command.js'))}); process.exit(await runInit(process.argv.slice(1)));`, '--', '--'],
  },
  { name: 'lsinit + Controller (file)', prefix: [process.execPath, BIN, '-config', cfg, '--'], env: { LITESTREAM_CONFIG: '' } },
  {
    name: 'test launcher + fake ctrl (tsx)',
    prefix: [process.execPath, '--import', 'tsx', ENTRY, '-config', '/fake', '--'],
    env: { LSINIT_TEST_CONTROLLER: JSON.stringify({ events: join(dir, 'events') }) },
  },
];

function runOnce(v: Variant, script: string, opts: { term?: boolean; rss?: boolean } = {}) {
  const argv = [...v.prefix, 'sh', '-c', script];
  return new Promise<{ firstMs: number; exitMs: number; termMs?: number; rssKb?: number }>((res, rej) => {
    const t0 = nowNs();
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, ...v.env }, cwd: ROOT });
    let out = '';
    let termAt: bigint | undefined;
    let rssKb: number | undefined;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (opts.term && termAt === undefined && out.includes('\n')) {
        setTimeout(() => {
          if (opts.rss && existsSync(`/proc/${child.pid}/status`)) {
            const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
            rssKb = m ? Number(m[1]) : undefined;
          }
          termAt = nowNs();
          child.kill('SIGTERM');
        }, opts.rss ? 1000 : 50);
      }
    });
    child.on('error', rej);
    child.on('exit', () => {
      const end = nowNs();
      const stamps = out.trim().split('\n').filter((l) => /^\d+$/.test(l)).map(BigInt);
      const first = stamps[0] ?? end;
      const last = stamps[stamps.length - 1] ?? end;
      res({
        firstMs: Number(first - t0) / 1e6,
        exitMs: Number(end - last) / 1e6,
        ...(termAt === undefined ? {} : { termMs: Number(end - termAt) / 1e6 }),
        ...(rssKb === undefined ? {} : { rssKb }),
      });
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.9))] ?? NaN;
const f = (x: number) => x.toFixed(1).padStart(7);

async function idleNodeRss(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 5000)'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 1000));
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
  child.kill();
  return m ? Number(m[1]) : NaN;
}

if (!existsSync(join(ROOT, 'dist/cli/main.js'))) {
  process.stderr.write('dist/ is missing: run `npm run build` first\n');
  process.exit(1);
}
const rows: string[] = [];
rows.push(`| variant | start → app running (ms, median / p90) | app exit → lsinit exit (ms) | SIGTERM → exit (ms) | RSS supervising (MB) |`);
rows.push('|---|---|---|---|---|');
for (const v of variants) {
  const first: number[] = [];
  const exit: number[] = [];
  const term: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    rmSync(join(dir, 'app.db'), { force: true });
    const r = await runOnce(v, 'date +%s%N; date +%s%N');
    first.push(r.firstMs);
    exit.push(r.exitMs);
    const t = await runOnce(v, 'trap "exit 0" TERM; date +%s%N; while :; do sleep 0.01; done', { term: true });
    if (t.termMs !== undefined) term.push(t.termMs);
  }
  const rss = v.prefix.length === 0 ? undefined : (await runOnce(v, 'trap "exit 0" TERM; date +%s%N; while :; do sleep 0.01; done', { term: true, rss: true })).rssKb;
  rows.push(`| ${v.name} | ${f(median(first))} / ${f(p90(first))} | ${f(median(exit))} / ${f(p90(exit))} | ${f(median(term))} / ${f(p90(term))} | ${rss === undefined ? '—' : (rss / 1024).toFixed(1)} |`);
}
const idle = await idleNodeRss();
rows.push(`| idle \`node -e setTimeout\` (RSS baseline) | | | | ${(idle / 1024).toFixed(1)} |`);
process.stdout.write(`init timing, ${RUNS} runs each, node ${process.version}\n\n${rows.join('\n')}\n`);
rmSync(dir, { recursive: true, force: true });
