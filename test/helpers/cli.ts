/** Run the built CLI (bin/lsinit.js → dist/) as a user would. `npm test` builds first. */
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { execa, type Options } from 'execa';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = resolve(ROOT, 'bin/lsinit.js');

export async function lsinit(args: string[], opts: Options = {}) {
  const r = await execa(process.execPath, [BIN, ...args], { reject: false, timeout: 120_000, ...opts });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

/** Processes a test started and did not see end (a failed assertion before its kill). */
type Killable = { readonly pid?: number | undefined; kill: (signal: NodeJS.Signals) => boolean };
const running = new Set<Killable>();
// Their pipes would keep this test file's process alive after its last test, and the whole
// suite would wait for it: once the file's tests are done, whatever is still running is killed,
// with everything it started (lsinit's app, or PID 1 of an `unshare --pid` namespace, whose end
// takes every process in the namespace down with it).
after(() => {
  for (const c of running) killTree(c);
});

/** The pids of every process below `pid` (children, theirs, …), from /proc. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      // Field 4, the parent, follows the command name in parentheses (which may hold spaces).
      const ppid = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  for (let i = -1; i < out.length; i++) out.push(...(children.get(i < 0 ? pid : out[i]!) ?? []));
  return out;
}

/**
 * SIGKILL to `c` and every process below it. The tree is read first: once `c` dies its children
 * are re-parented and can no longer be found from it. An app in its own session (lsinit's
 * -process-group) is found all the same.
 */
export function killTree(c: Killable): void {
  const below = c.pid === undefined || process.platform !== 'linux' ? [] : descendants(c.pid);
  c.kill('SIGKILL');
  for (const pid of below) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/** Kill this child (and what it started) once the test file's tests are done, if it is still running then. */
export function killAtEnd<T extends Killable & PromiseLike<unknown>>(c: T): T {
  running.add(c);
  void Promise.resolve(c).then(() => running.delete(c), () => running.delete(c));
  return c;
}

/** killAtEnd for a child from node:child_process's spawn. */
export function killChildAtEnd<T extends ChildProcess>(child: T): T {
  if (child.exitCode !== null || child.signalCode !== null) return child;
  running.add(child);
  child.once('exit', () => running.delete(child));
  return child;
}

export function spawnLsinit(args: string[], opts: Options = {}) {
  return killAtEnd(execa(process.execPath, [BIN, ...args], { reject: false, ...opts }));
}
