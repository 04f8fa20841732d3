/**
 * The replication worker: a worker_threads entry that runs the Controller (WAL copies, checksums,
 * checkpoints with SQLite's busy waits, snapshots, uploads) and the metrics server, so the init's
 * main thread only forwards signals, reaps and supervises the app (worker-controller.ts). Its log
 * records go to the main thread's logger, which formats and redacts them.
 */
import { parentPort } from 'node:worker_threads';
import type { Config } from '../config/types.js';
import { errorMessage } from '../errors.js';
import type { Fields, Level, Logger } from '../log/logger.js';
import { nativeLZ4 } from '../format/lz4-native.js';
import { loadSqlite } from '../sqlite/driver.js';
import { Controller } from './controller.js';
import type { LeaseHandover } from './lease-options.js';
import { cloneableFields, packError, unpack, type CallOp, type FromWorker, type ToWorker } from './worker-protocol.js';

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface WorkerData {
  config: unknown;
  level: Level;
  /** The main thread holds the meta-directory locks (worker-controller.ts). */
  metaLocked?: boolean;
  /** Lease holder ids shared with the main thread (early-start.ts). */
  holderIds: Record<string, string>;
  /** The main thread called fixMmapThreshold (process-wide) before sending this: no koffi here for it. */
  mmapThresholdFixed?: boolean;
}

function forwardingLogger(port: NonNullable<typeof parentPort>, min: Level, bound: Fields = {}): Logger {
  const emit = (level: Level, msg: string, fields?: Fields) => {
    if (ORDER[level] < ORDER[min]) return;
    const rec: FromWorker = { t: 'log', level, msg, fields: cloneableFields({ ...bound, ...fields }) };
    try {
      port.postMessage(rec);
    } catch {
      port.postMessage({ t: 'log', level, msg, fields: { fields: 'unclonable' } } satisfies FromWorker);
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (f) => forwardingLogger(port, min, { ...bound, ...f }),
  };
}

type Ops = Record<CallOp, (args: unknown) => Promise<unknown>>;

async function main(port: NonNullable<typeof parentPort>, data: WorkerData, appEnded: () => number | undefined): Promise<Ops> {
  const config = unpack(data.config) as Config;
  const log = forwardingLogger(port, data.level);
  // Filled in by the start call: the leases the main thread wrote (early-start.ts), adopted as written.
  const handovers: Record<string, LeaseHandover> = {};
  const controller = new Controller(config, log, { metaLocked: data.metaLocked === true, holderIds: data.holderIds, handovers, mmapThresholdFixed: data.mmapThresholdFixed === true });
  // Init mode serves metrics from before restore until lsinit exits, so the final sync is observable.
  let metrics: { close(): Promise<void> } | undefined;
  if (config.addr) {
    const { startMetricsServer } = await import('../metrics/server.js');
    const init = { restarts: () => 0, lastExitCode: appEnded };
    metrics = await startMetricsServer({ addr: config.addr, controller, log, init }).catch((err: unknown) => {
      log.error('cannot start metrics server', { error: errorMessage(err) });
      return undefined;
    });
  }
  return {
    restoreMissing: () => controller.restoreMissing(),
    start: (args: unknown) => {
      Object.assign(handovers, (args as { handovers?: Record<string, LeaseHandover> } | undefined)?.handovers);
      return controller.start();
    },
    close: (args: unknown) => controller.close(args as { deadline: number; fast?: boolean }),
    shutdown: async () => {
      await metrics?.close();
    },
  };
}

/**
 * The worker is started before the main thread knows its config (worker-start.ts): its modules load
 * at once, its config comes in the first message. Calls come after it (the main thread sends them
 * without waiting for the ready answer, id 0) and wait for the controller, or fail with its error;
 * the app's exit code may come at any time.
 */
function serve(port: NonNullable<typeof parentPort>): void {
  let lastExitCode: number | undefined;
  let ops: Promise<Ops> | undefined;
  const answer = (id: number, p: Promise<unknown>) => p.then(
    (value) => port.postMessage({ t: 'result', id, ok: true, value: value ?? null } satisfies FromWorker),
    (err: unknown) => port.postMessage({ t: 'result', id, ok: false, error: packError(err) } satisfies FromWorker),
  );
  port.on('message', (m: ToWorker) => {
    if (m.t === 'appEnd') lastExitCode = m.code;
    else if (m.t === 'init') answer(0, (ops ??= main(port, m.data as WorkerData, () => lastExitCode)).then(() => null));
    else if (ops) answer(m.id, ops.then((o) => o[m.op](m.args)));
  });
}

if (parentPort) {
  serve(parentPort);
  // While the config is on its way: the first thing start() does is open the databases, and its
  // first sync decodes the replica's newest segment (or compresses a snapshot): SQLite and liblz4
  // (through koffi, lz4-native.ts) would be loaded then, on the way to the first sync.
  loadSqlite();
  nativeLZ4();
}
