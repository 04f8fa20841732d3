/** Restore as the CLI and the init run it: validation, target selection, the -if-* flags. */
import { LsinitError } from '../errors.js';
import { nullLogger, type Logger } from '../log/logger.js';
import { formatTXID } from '../format/ltx.js';
import { formatRFC3339 } from '../util/time.js';
import { executeLTXRestore } from './ltx.js';
import { planLTXRestore } from './ltx-plan.js';
import { executeRestore, outputExists, type ExecuteOptions, type RestoreProgress, type RestoreResult } from './restore.js';
import { generationBounds, planRestore, type ReplicaCandidate, type RestoreRequest } from './target.js';

export interface RestoreArgs extends RestoreRequest {
  output: string;
  /** Litestream 0.5 `-txid`: restore an LTX replica through this TXID. */
  txid?: bigint;
  replicas: ReplicaCandidate[];
  parallelism?: number;
  ifDBNotExists?: boolean;
  ifReplicaExists?: boolean;
  integrityCheck?: boolean;
  log?: Logger;
  onProgress?: (p: RestoreProgress) => void;
}

export type RestoreOutcome =
  /** `generation` is `ltx` for a Litestream 0.5 replica, whose restore point is `txid`. */
  | { status: 'restored'; replica: string; generation: string; result: RestoreResult; txid?: string }
  | { status: 'skipped-exists' }
  | { status: 'no-backups' };

export async function restore(args: RestoreArgs): Promise<RestoreOutcome> {
  const log = args.log ?? nullLogger;
  if (args.index !== undefined && args.timestamp !== undefined) {
    throw new LsinitError('LSINIT_ERR_USAGE', 'cannot specify both -index and -timestamp: choose one restore point');
  }
  if (args.txid !== undefined && (args.index !== undefined || args.timestamp !== undefined || args.generation !== undefined)) {
    throw new LsinitError('LSINIT_ERR_USAGE', '-txid (Litestream 0.5 replicas) cannot be combined with -index, -generation or -timestamp: choose one restore point');
  }
  if (await outputExists(args.output)) {
    if (args.ifDBNotExists) {
      log.info('database already exists, skipping', { path: args.output });
      return { status: 'skipped-exists' };
    }
    throw new LsinitError('LSINIT_ERR_EXISTS', `cannot restore, output path already exists: ${args.output} (move it away, or pass -if-db-not-exists to skip)`, { fields: { path: args.output } });
  }
  const req: RestoreRequest = {};
  if (args.generation !== undefined) req.generation = args.generation;
  if (args.index !== undefined) req.index = args.index;
  if (args.timestamp !== undefined) req.timestamp = args.timestamp;
  const target = args.txid === undefined ? await planRestore(args.replicas, req) : undefined;
  if (!target && args.generation === undefined && args.index === undefined) {
    // No Litestream 0.3 generation matches: a Litestream 0.5 replica (ltx/) may.
    const ltxTarget = { ...(args.txid !== undefined ? { txid: args.txid } : {}), ...(args.timestamp !== undefined ? { timestamp: args.timestamp } : {}) };
    let ltx;
    try {
      ltx = await planLTXRestore(args.replicas, ltxTarget);
    } catch (err) {
      if (args.ifReplicaExists && err instanceof LsinitError && err.code === 'LSINIT_ERR_NO_BACKUPS') {
        log.info('no matching backups found, skipping');
        return { status: 'no-backups' };
      }
      throw err;
    }
    if (ltx) {
      const result = await executeLTXRestore(ltx.replica.client, ltx.plan, executeOptions(args, log.child({ replica: ltx.replica.name })));
      return { status: 'restored', replica: ltx.replica.name, generation: 'ltx', result, txid: result.txid };
    }
    if (args.txid !== undefined) {
      throw new LsinitError('LSINIT_ERR_NO_BACKUPS', `no matching backup files available: -txid ${formatTXID(args.txid)} needs a Litestream 0.5 (LTX) replica, and none of ${args.replicas.map((r) => r.name).join(', ')} holds ltx/ files`);
    }
  }
  if (!target) {
    if (args.ifReplicaExists) {
      log.info('no matching backups found, skipping');
      return { status: 'no-backups' };
    }
    const what = args.generation ? ` in generation ${args.generation}` : '';
    const when = args.timestamp !== undefined ? ` for that timestamp${await availableTimes(args.replicas, args.generation)}` : '';
    throw new LsinitError('LSINIT_ERR_NO_BACKUPS', `no matching backups found${what}${when} (replicas: ${args.replicas.map((r) => r.name).join(', ')})`);
  }
  for (const sk of target.plan.skipped ?? []) {
    log.warn('passing over a newer generation that cannot be restored; restoring an older one', { replica: target.replica.name, skipped: sk.generation, reason: sk.reason, generation: target.plan.generation });
  }
  const result = await executeRestore(target.replica.client, target.plan, executeOptions(args, log.child({ replica: target.replica.name })));
  return { status: 'restored', replica: target.replica.name, generation: target.plan.generation, result };
}

function executeOptions(args: RestoreArgs, log: Logger): ExecuteOptions {
  const opts: ExecuteOptions = { output: args.output, log };
  if (args.parallelism !== undefined) opts.parallelism = args.parallelism;
  if (args.integrityCheck !== undefined) opts.integrityCheck = args.integrityCheck;
  if (args.onProgress) opts.onProgress = args.onProgress;
  return opts;
}

/**
 * For a -timestamp outside every generation: the times that can be restored, so the refusal (kept as in
 * Litestream 0.3.13, docs/restore.md) says what to ask for instead. Only on this error path.
 */
async function availableTimes(replicas: ReplicaCandidate[], generation: string | undefined): Promise<string> {
  let oldest: bigint | undefined;
  let newest: bigint | undefined;
  for (const r of replicas) {
    for (const g of await r.client.generations()) {
      if (generation !== undefined && g !== generation) continue;
      const [snaps, segs] = await Promise.all([r.client.snapshots(g), r.client.walSegments(g)]);
      const b = generationBounds(g, snaps, segs);
      if (!b) continue;
      if (oldest === undefined || b.createdAt < oldest) oldest = b.createdAt;
      if (newest === undefined || b.updatedAt > newest) newest = b.updatedAt;
    }
  }
  if (oldest === undefined || newest === undefined) return ': the replicas hold no backups';
  return `: backups cover ${formatRFC3339(oldest)} to ${formatRFC3339(newest)} (the newest time available); pass a -timestamp in that range (\`lsinit generations\` lists each generation's), or none for the latest state`;
}
