/**
 * Zombie reaping for lsinit as PID 1 or as a child subreaper.
 *
 * libuv only waitpid()s the children it spawned (libuv#4179), so orphans re-parented to a Node PID 1
 * stay zombies forever. A blanket waitpid(-1) from JS would fix that and break everything else: it can
 * reap the app before libuv does, and libuv then "handles this by not handling it at all"
 * (src/unix/process.c) — the app's 'exit' event never fires and lsinit hangs (checked here with koffi).
 * So: on SIGCHLD (plus a slow backstop timer) scan /proc for zombies whose parent is us, skip every pid
 * Node spawned itself, and waitpid(pid, WNOHANG) each remaining one by pid.
 *
 * Why koffi and not a ~60-line N-API addon: koffi ships prebuilt binaries inside its npm package, so
 * installing lsinit needs no compiler or node-gyp in the image, and if it cannot load (an unsupported
 * platform, no libc found) we log and keep running without reaping instead of failing at install time.
 * The addon would be smaller and faster to call, but only the two calls below cross the boundary, at
 * most once per zombie. `node:ffi` (Node ≥ 26, experimental) is the future zero-dependency path.
 */
import { ChildProcess } from 'node:child_process';
import type { Logger } from '../log/logger.js';
import { loadLibc as loadLibcFns } from '../util/libc.js';
import { listProcs, readProc } from './proc.js';

const PR_SET_CHILD_SUBREAPER = 36;
const WNOHANG = 1;

export interface Libc {
  /** The library name that loaded. */
  name: string;
  waitpid(pid: number, status: number[], options: number): number;
  prctl(option: number, a2: number, a3: number, a4: number, a5: number): number;
}

/** glibc first, then musl (Alpine) by architecture, then the symbols already linked into node. */
export function loadLibc(): { libc: Libc | null; error?: string } {
  const r = loadLibcFns((lib) => ({
    waitpid: lib.func('int waitpid(int, _Out_ int *, int)') as Libc['waitpid'],
    prctl: lib.func('int prctl(int, unsigned long, unsigned long, unsigned long, unsigned long)') as Libc['prctl'],
  }));
  return 'error' in r ? { libc: null, error: r.error } : { libc: { name: r.name, ...r.fns } };
}

// Pids of children Node spawned in this process (any ChildProcess: the app, a helper of the replicator,
// a test's siblings). libuv will reap those; we must not. Every spawn/exec/fork goes through
// ChildProcess.prototype.spawn; spawnSync blocks the event loop, so its children never meet a scan.
// Children that already exist when tracking starts (e.g. tsx's esbuild service, spawned by a loader
// before our code ran) are added from /proc and dropped once they are gone.
const nodeChildren = new Set<number>();
const preexisting = new Set<number>();
let tracking = false;

export function trackNodeChildren(): void {
  if (tracking) return;
  tracking = true;
  for (const p of listProcs()) if (p.ppid === process.pid) preexisting.add(p.pid);
  const proto = ChildProcess.prototype as unknown as { spawn: (this: ChildProcess, ...args: unknown[]) => unknown };
  const original = proto.spawn;
  proto.spawn = function spawn(this: ChildProcess, ...args: unknown[]) {
    const result = original.apply(this, args);
    const pid = this.pid;
    if (pid !== undefined) {
      nodeChildren.add(pid);
      this.once('exit', () => nodeChildren.delete(pid));
    }
    return result;
  };
}

export function isNodeChild(pid: number): boolean {
  return nodeChildren.has(pid) || preexisting.has(pid);
}

/** The pids Node spawned (or that existed before tracking started) that have not exited yet. */
export function nodeChildPids(): ReadonlySet<number> {
  if (preexisting.size === 0) return nodeChildren;
  for (const pid of preexisting) if (readProc(pid)?.ppid !== process.pid) preexisting.delete(pid);
  return new Set([...nodeChildren, ...preexisting]);
}

export type ReaperMode = 'pid1' | 'subreaper' | 'none';

export interface Reaper {
  /** pid1: orphans come to us; subreaper: prctl succeeded; none: we cannot (or may not) reap. */
  readonly mode: ReaperMode;
  /** Why mode is 'none', for the start-up line. */
  readonly reason: string | undefined;
  /** Zombies reaped so far. */
  readonly reaped: number;
  /** One pass now; returns the number reaped. */
  scan(): number;
  stop(): void;
}

export interface ReaperOptions {
  log: Logger;
  /** Backstop period when no SIGCHLD arrives (tini wakes every 1 s). */
  intervalMs?: number;
  /**
   * A zombie must be seen twice this far apart before we reap it, in case a pid was spawned by a
   * worker thread's own libuv loop (not tracked above) and that loop has not reaped it yet.
   */
  confirmMs?: number;
  /** Injected for tests; default loadLibc(). */
  libc?: Libc | null;
  pid?: number;
}

export function startReaper(opts: ReaperOptions): Reaper {
  const log = opts.log.child({ component: 'reaper' });
  const self = opts.pid ?? process.pid;
  const intervalMs = opts.intervalMs ?? 1000;
  const confirmMs = opts.confirmMs ?? 20;
  trackNodeChildren();

  let libc: Libc | null;
  let reason: string | undefined;
  if (opts.libc !== undefined) libc = opts.libc;
  else {
    const loaded = loadLibc();
    libc = loaded.libc;
    reason = loaded.error;
  }

  let mode: ReaperMode = 'none';
  if (libc === null) {
    reason = `cannot load libc for waitpid/prctl (${reason ?? 'disabled'}); orphaned zombies will not be reaped`;
  } else if (self === 1) {
    mode = 'pid1';
  } else if (libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) === 0) {
    mode = 'subreaper';
  } else {
    reason = 'not PID 1 and prctl(PR_SET_CHILD_SUBREAPER) failed: orphans go to the real init';
  }

  let reaped = 0;
  let stopped = false;
  const firstSeen = new Map<number, number>();
  let recheck: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;

  const scan = (): number => {
    if (libc === null || mode === 'none' || stopped) return 0;
    const now = performance.now();
    const seen = new Set<number>();
    let n = 0;
    for (const p of listProcs()) {
      if (p.state !== 'Z' || p.ppid !== self || isNodeChild(p.pid)) continue;
      seen.add(p.pid);
      const first = firstSeen.get(p.pid);
      if (first === undefined) {
        firstSeen.set(p.pid, now);
        continue;
      }
      if (now - first < confirmMs) continue;
      const status = [0];
      const r = libc.waitpid(p.pid, status, WNOHANG);
      if (r === p.pid) {
        n++;
        log.debug('reaped zombie process', { pid: p.pid, comm: p.comm });
      }
      firstSeen.delete(p.pid);
    }
    for (const pid of firstSeen.keys()) if (!seen.has(pid)) firstSeen.delete(pid);
    reaped += n;
    if (firstSeen.size > 0 && recheck === undefined) {
      recheck = setTimeout(() => {
        recheck = undefined;
        scan();
      }, confirmMs);
      recheck.unref();
    }
    return n;
  };

  const onChld = () => {
    // Coalesce a burst of SIGCHLDs (100 orphans exiting) into one pass after libuv had its turn.
    immediate ??= setImmediate(() => {
      immediate = undefined;
      scan();
    });
  };
  let timer: NodeJS.Timeout | undefined;
  if (mode !== 'none') {
    process.on('SIGCHLD', onChld);
    timer = setInterval(scan, intervalMs);
    timer.unref();
    scan();
  }

  return {
    mode,
    reason,
    get reaped() {
      return reaped;
    },
    scan,
    stop() {
      if (stopped) return;
      scan();
      stopped = true;
      process.off('SIGCHLD', onChld);
      if (timer !== undefined) clearInterval(timer);
      if (recheck !== undefined) clearTimeout(recheck);
      if (immediate !== undefined) clearImmediate(immediate);
    },
  };
}

/** A reaper that does nothing (negative controls, `reap: false`). */
export function disabledReaper(reason: string): Reaper {
  return { mode: 'none', reason, reaped: 0, scan: () => 0, stop() {} };
}
