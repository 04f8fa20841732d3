/**
 * Starting the replication worker (worker.ts) as the first thing the process does. A Node 20 worker
 * needs 25–40 ms for its isolate and as much again for its modules (the engine, SQLite, LZ4): done
 * after the main thread's own start-up, that time ended up between the app's exit and lsinit's (the
 * final sync waits for the worker). main.ts starts it here, before it loads anything else, for the
 * commands that will run one (`replicate -exec`); the worker loads its modules and then waits for
 * its config (an `init` message, worker-protocol.ts). worker-controller.ts takes it over, or starts
 * its own where none was started; one not taken over is terminated (`dropEarlyWorker`).
 * Kept free of imports other than node's: main.ts loads it before everything else.
 */
import { Worker } from 'node:worker_threads';

/**
 * V8 limits of the worker's heap. A small young generation keeps the RSS that bursts of short-lived
 * buffers leave behind small (V8 grows the semi-spaces to 16 MB each under allocation pressure and
 * keeps them); data is streamed in bounded chunks, so the old generation needs no more than this.
 */
export const WORKER_RESOURCE_LIMITS = { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 1024 };

/** A worker and, when it already died, why (its 'error'/'exit' came before anyone listened). */
export interface StartedWorker {
  worker: Worker;
  failure(): Error | undefined;
}

let early: StartedWorker | undefined;

/** A new replication worker, waiting for its `init` message (`url`: another entry, for tests). */
export function newWorker(url = new URL('./worker.js', import.meta.url)): StartedWorker {
  const worker = new Worker(url, { resourceLimits: WORKER_RESOURCE_LIMITS });
  let failed: Error | undefined;
  // Listened to from the start: an 'error' nobody listens to would end the process.
  worker.on('error', (err) => (failed ??= err));
  worker.on('exit', (code) => (failed ??= new Error(`replication worker exited (code ${code})`)));
  return { worker, failure: () => failed };
}

/** Start the worker now, for whoever calls `takeEarlyWorker` later. */
export function startWorkerEarly(): void {
  early ??= newWorker();
}

/** The worker `startWorkerEarly` started, once (undefined when none was started or it was taken). */
export function takeEarlyWorker(): StartedWorker | undefined {
  const w = early;
  early = undefined;
  return w;
}

/** A worker started early that nothing took over (no config, a read node): stop it. */
export function dropEarlyWorker(): void {
  void takeEarlyWorker()?.worker.terminate();
}
