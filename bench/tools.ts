/**
 * The two programs bench/compare.ts runs side by side, lsinit and the reference Litestream 0.3.13,
 * behind one shape (their replicate/restore command lines are the same; init mode differs), and the
 * process measurements it takes: wall time, peak RSS (VmHWM polled from /proc, which only misses a
 * peak reached in the last poll interval before exit), output lines.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { BIN, waitFor } from './lib.js';

export interface Tool {
  name: 'lsinit' | 'litestream';
  /** argv prefix: the program and what goes before its subcommand. */
  cmd: string[];
}

export const lsinitTool: Tool = { name: 'lsinit', cmd: [process.execPath, BIN] };
export const litestreamTool = (bin: string): Tool => ({ name: 'litestream', cmd: [bin] });

export const replicateArgs = (t: Tool, db: string, replica: string, exec?: string): string[] => [
  ...t.cmd, 'replicate', ...(exec === undefined ? [] : ['-exec', exec]), db, `file://${replica}`,
];

/** `restore -o out file://replica`; Litestream 0.3.13 never runs an integrity check, so `check` only affects lsinit. */
export const restoreArgs = (t: Tool, replica: string, out: string, check: boolean): string[] => [
  ...t.cmd, 'restore', ...(t.name === 'lsinit' && !check ? ['-no-integrity-check'] : []), '-o', out, `file://${replica}`,
];

/** As init (lsinit) or with -exec (Litestream): both forward SIGTERM to the command. */
export const initArgs = (t: Tool, cfg: string, app: string[]): string[] =>
  t.name === 'lsinit' ? [...t.cmd, '-config', cfg, '--', ...app] : [...t.cmd, 'replicate', '-config', cfg, '-exec', app.join(' ')];

function status(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0; // exited
  }
}
export const peakOf = (pid: number): number => status(pid, 'VmHWM');
export const rssOf = (pid: number): number => status(pid, 'VmRSS');

export interface Measured {
  ms: number;
  /** Peak RSS in bytes (0 unless `rss` was asked for). */
  peak: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run argv to completion: wall time from spawn to exit, optionally peak RSS polled every `rssEveryMs`. */
export function measure(argv: string[], opts: { rss?: boolean; rssEveryMs?: number } = {}): Promise<Measured> {
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    let peak = 0;
    const timer = opts.rss ? setInterval(() => (peak = Math.max(peak, peakOf(child.pid!))), opts.rssEveryMs ?? 10) : undefined;
    child.on('error', rej);
    child.on('exit', (code) => {
      const ms = performance.now() - t0;
      if (timer) clearInterval(timer);
      child.on('close', () => res({ ms, peak, code, stdout, stderr }));
    });
  });
}

export interface Background {
  child: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  out: () => string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves on exit. */
  stop: (graceMs?: number) => Promise<void>;
}

export function background(argv: string[]): Background {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  return {
    child,
    out: () => out,
    stop: async (graceMs = 120_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Resolves once `bg` has written a snapshot to the file replica at `replica` (either program). */
export async function replicaReady(bg: Background, replica: string): Promise<void> {
  const has = () => {
    try {
      return readdirSync(`${replica}/generations`).some((g) => readdirSync(`${replica}/generations/${g}/snapshots`).some((f) => f.endsWith('.lz4')));
    } catch {
      return false;
    }
  };
  await waitFor(() => {
    if (bg.child.exitCode !== null) throw new Error(`replicator exited early:\n${bg.out()}`);
    return has();
  }, `a snapshot in ${replica}`, 60_000, 20);
}
