/** A small /proc reader: the process table as lsinit needs it (state, parent, group). Linux only. */
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcInfo {
  pid: number;
  /** One-letter state from /proc/PID/stat: R S D Z T t X I. */
  state: string;
  ppid: number;
  pgrp: number;
  comm: string;
}

/** Parses /proc/PID/stat; comm may hold spaces and parentheses, so split after the last ')'. */
export function parseStat(text: string): ProcInfo | null {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) return null;
  const rest = text.slice(close + 2).split(' ');
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: rest[0] ?? '?',
    ppid: Number(rest[1]),
    pgrp: Number(rest[2]),
  };
}

export function readProc(pid: number, procRoot = '/proc'): ProcInfo | null {
  try {
    return parseStat(readFileSync(`${procRoot}/${pid}/stat`, 'utf8'));
  } catch {
    return null; // gone between readdir and read, or not ours to see
  }
}

export function listProcs(procRoot = '/proc'): ProcInfo[] {
  const out: ProcInfo[] = [];
  let names: string[];
  try {
    names = readdirSync(procRoot);
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const p = readProc(Number(name), procRoot);
    if (p !== null) out.push(p);
  }
  return out;
}

/**
 * Live (non-zombie) processes left behind by the app: the subtrees under `self` that do not start at a
 * pid in `exclude` (children Node spawned, e.g. a sibling app or a helper), plus, when `pgrp` is given,
 * every member of that process group (which catches descendants re-parented elsewhere).
 */
export function leftovers(procs: readonly ProcInfo[], self: number, exclude: ReadonlySet<number>, pgrp?: number): ProcInfo[] {
  const children = new Map<number, ProcInfo[]>();
  for (const p of procs) {
    const list = children.get(p.ppid);
    if (list === undefined) children.set(p.ppid, [p]);
    else list.push(p);
  }
  const found = new Map<number, ProcInfo>();
  const stack = (children.get(self) ?? []).filter((p) => !exclude.has(p.pid));
  while (stack.length > 0) {
    const p = stack.pop() as ProcInfo;
    if (found.has(p.pid) || p.pid === self) continue;
    found.set(p.pid, p);
    stack.push(...(children.get(p.pid) ?? []));
  }
  if (pgrp !== undefined) for (const p of procs) if (p.pgrp === pgrp && p.pid !== self) found.set(p.pid, p);
  return [...found.values()].filter((p) => p.state !== 'Z' && p.state !== 'X');
}
