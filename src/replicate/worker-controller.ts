/**
 * The init's replication, run in a worker thread (worker.ts). PID 1's first duty is to forward a
 * signal at once; on one event loop, a WAL copy of a 300 MB transaction, a checksum chain, a
 * checkpoint waiting in SQLite's busy handler or a snapshot held a SIGTERM back for hundreds of ms
 * (seconds for a larger WAL). Here the main thread keeps the signals, the app, the reaper and
 * the shutdown budget; every call below is one small message, and the worker does the work.
 *
 * A worker that dies (out of memory, a bug) does not take the app down: the failure is logged, the
 * app runs on unprotected, and the final sync reports it (exit code 70 when the app exited 0).
 */
import type { Worker } from 'node:worker_threads';
import type { Config } from '../config/types.js';
import type { Level, Logger } from '../log/logger.js';
import { errorMessage } from '../errors.js';
import { holdWALs } from '../sqlite/wal-guard.js';
import { fixMmapThreshold } from '../util/memory.js';
import { realTimers, settledWithin, type Timers } from '../util/timers.js';
import { MetaLocks } from './meta-lock.js';
import { canStartEarly, holdEarly, newHolderIds, type EarlyHold } from './early-start.js';
import { describeConfig, type ControllerLike, type SyncFailure } from './types.js';
import { pack, unpackError, type CallOp, type FromWorker, type ToWorker } from './worker-protocol.js';
import type { WorkerData } from './worker.js';
import { newWorker, takeEarlyWorker } from './worker-start.js';

/**
 * How long dispose() waits for each of its steps (the worker's shutdown, releasing early leases,
 * the worker's end): the final sync is over by then, and a worker or store that does not answer
 * must not keep lsinit (PID 1) from exiting with the app's code.
 */
export const DISPOSE_STEP_MS = 3000;

export interface WorkerControllerOptions {
  /** The worker's entry (default worker.js beside this module); tests pass a fixture. */
  workerUrl?: URL;
  /** See DISPOSE_STEP_MS. */
  disposeStepMs?: number;
  timers?: Timers;
}

export class WorkerController implements ControllerLike {
  private readonly config: Config;
  private readonly log: Logger;
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private dead: Error | undefined;
  /**
   * The databases' meta-directory locks, held by the process from before the worker opens
   * anything until the worker has ended (meta-lock.ts); the worker's controller takes none.
   */
  private readonly locks: MetaLocks;
  /** Lease holder ids, shared with the worker (early-start.ts). */
  private readonly holderIds: Record<string, string>;
  /** Read locks and leases the main thread took so the app could start before the worker. */
  private early: EarlyHold | undefined;
  private readonly abort = new AbortController();

  private readonly disposeStepMs: number;
  private readonly timers: Timers;

  constructor(config: Config, log: Logger, opts: WorkerControllerOptions = {}) {
    this.config = config;
    this.log = log;
    this.disposeStepMs = opts.disposeStepMs ?? DISPOSE_STEP_MS;
    this.timers = opts.timers ?? realTimers;
    this.locks = new MetaLocks(config.dbs, { log, signal: this.abort.signal });
    this.holderIds = newHolderIds(config);
    const data: WorkerData = { config: pack(config), level: config.logging.level as Level, metaLocked: true, holderIds: this.holderIds, mmapThresholdFixed: true };
    // Started by main.ts before anything else was loaded (worker-start.ts), or now (`workerUrl`: a test's fixture).
    const started = opts.workerUrl ? newWorker(opts.workerUrl) : (takeEarlyWorker() ?? newWorker());
    this.worker = started.worker;
    this.worker.postMessage({ t: 'init', data } satisfies ToWorker);
    // glibc's malloc settings are the process's: set here, once the worker has its config (it
    // needs no koffi for them then) and before this thread sends it any call (so before its
    // first large buffer). This thread loads koffi for the meta locks and the reaper anyway.
    fixMmapThreshold();
    // The init's answer (id 0). Calls are not held back for it: the port delivers them after the
    // init and the worker runs them once its controller exists, or answers each with the init's
    // error. Waiting for it here put the main thread's event loop (spawning the app, logging) between
    // the worker's readiness and its `start`, on the path from the app's exit to the final sync.
    this.pending.set(0, { resolve: () => {}, reject: () => {} });
    this.worker.on('message', (m: FromWorker) => this.onMessage(m));
    this.worker.on('error', (err) => this.die(err));
    this.worker.on('exit', (code) => this.die(new Error(`replication worker exited (code ${code})`)));
    const failed = started.failure(); // before these listeners
    if (failed) this.die(failed);
  }

  private onMessage(m: FromWorker): void {
    if (m.t === 'log') {
      this.log[m.level](m.msg, m.fields);
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    if (m.ok) p.resolve(m.value);
    else p.reject(unpackError(m.error));
  }

  private die(err: Error): void {
    if (this.dead) return;
    this.dead = err;
    if (!this.disposed) this.log.error('replication stopped: its worker thread died; the app keeps running without replication', { error: err.message });
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private async call(op: CallOp, args?: unknown): Promise<unknown> {
    if (this.dead) throw this.dead;
    const id = this.nextId++;
    const result = new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
    this.worker.postMessage({ t: 'call', id, op, args } satisfies ToWorker);
    return result;
  }

  describe(): { db: string; replicas: string[] }[] {
    return describeConfig(this.config);
  }

  /** Nothing to restore when every database is present: then the worker is not waited for. */
  async restoreMissing(): Promise<void> {
    await this.locks.acquire();
    if (canStartEarly(this.config)) {
      for (const d of this.config.dbs) this.log.child({ db: d.path }).info('database exists, not restoring');
      return;
    }
    await this.call('restoreMissing');
  }

  /**
   * With every database present, protect them and take the leases from this thread and return
   * (the app may start) while the worker starts; our read locks are let go once it holds its own
   * (early-start.ts). A worker that cannot start then is reported like one that died: the app runs
   * on, the final sync fails. Otherwise the worker does it all before this returns.
   */
  async start(): Promise<void> {
    await this.locks.acquire();
    const early = canStartEarly(this.config) ? await this.holdEarly() : undefined;
    if (!early) {
      await this.call('start');
      return;
    }
    this.call('start', { handovers: early.handovers }).then(
      () => early.handOver(),
      (err: unknown) => {
        this.log.error('replication could not start; the app keeps running without it', { error: errorMessage(err) });
        early.handOver(); // held on, our read locks would stop the app's checkpoints for good
      },
    );
  }

  /** A refused lease ends the start here: the worker never opens the databases (close() has nothing to sync). */
  private async holdEarly(): Promise<EarlyHold | undefined> {
    try {
      this.holding = holdEarly(this.config, this.holderIds, this.log, this.abort.signal);
      this.early = await this.holding;
      return this.early;
    } catch (err) {
      this.refused = true;
      throw err;
    }
  }

  private refused = false;
  private holding: Promise<EarlyHold | undefined> | undefined;

  async close(opts: { deadline: number; fast?: boolean }): Promise<{ failures: SyncFailure[] }> {
    this.abort.abort();
    await this.holding?.catch(() => {}); // a lease wait ends at the abort
    // Refused (or stopped while waiting for the lock or a lease): the databases belong to another process.
    if (!this.locks.held || this.refused) return { failures: [] };
    try {
      return (await this.call('close', opts)) as { failures: SyncFailure[] };
    } catch (err) {
      if (!this.dead) throw err;
      return { failures: this.config.dbs.map((d) => ({ db: d.path, replica: '(replication worker)', error: this.dead!.message })) };
    }
  }

  /** The app's exit code, for /healthz (`child.last_exit_code`). */
  appEnded(code: number): void {
    if (!this.dead) this.worker.postMessage({ t: 'appEnd', code } satisfies ToWorker);
  }

  private disposed = false;

  /**
   * After the final sync: close the metrics server, keep every -wal past the worker's end, stop it.
   * Each step waits at most `disposeStepMs`: a worker that does not answer is terminated anyway.
   */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.abort.abort();
    await this.bounded(this.call('shutdown').catch(() => {}), 'the replication worker did not answer the shutdown; terminating it');
    this.disposed = true;
    // Not ours (refused by another process's lock): not even a read transaction on them.
    if (this.early) await this.bounded(this.early.finish(), 'the early leases were not released in time; they expire after their ttl');
    else if (this.locks.held) holdWALs(this.config.dbs.map((d) => d.path));
    await this.bounded(this.worker.terminate(), 'the replication worker did not stop in time');
    this.locks.release();
  }

  private async bounded(p: Promise<unknown>, warning: string): Promise<void> {
    if (!(await settledWithin(p, this.disposeStepMs, this.timers))) this.log.warn(warning, { timeout_ms: this.disposeStepMs });
  }
}
