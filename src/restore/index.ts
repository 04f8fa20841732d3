/** Restore as the CLI and the init run it: validation, target selection, the -if-* flags. */
import { LsinitError } from '../errors.js';
import { nullLogger, type Logger } from '../log/logger.js';
import { executeRestore, outputExists, type RestoreProgress, type RestoreResult } from './restore.js';
import { planRestore, type ReplicaCandidate, type RestoreRequest } from './target.js';

export interface RestoreArgs extends RestoreRequest {
  output: string;
  replicas: ReplicaCandidate[];
  parallelism?: number;
  ifDBNotExists?: boolean;
  ifReplicaExists?: boolean;
  integrityCheck?: boolean;
  log?: Logger;
  onProgress?: (p: RestoreProgress) => void;
}

export type RestoreOutcome =
  | { status: 'restored'; replica: string; generation: string; result: RestoreResult }
  | { status: 'skipped-exists' }
  | { status: 'no-backups' };

export async function restore(args: RestoreArgs): Promise<RestoreOutcome> {
  const log = args.log ?? nullLogger;
  if (args.index !== undefined && args.timestamp !== undefined) {
    throw new LsinitError('LSINIT_ERR_USAGE', 'cannot specify both -index and -timestamp: choose one restore point');
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
  const target = await planRestore(args.replicas, req);
  if (!target) {
    if (args.ifReplicaExists) {
      log.info('no matching backups found, skipping');
      return { status: 'no-backups' };
    }
    const what = args.generation ? ` in generation ${args.generation}` : '';
    throw new LsinitError('LSINIT_ERR_NO_BACKUPS', `no matching backups found${what}${args.timestamp !== undefined ? ' for that timestamp' : ''} (replicas: ${args.replicas.map((r) => r.name).join(', ')})`);
  }
  const opts: Parameters<typeof executeRestore>[2] = { output: args.output, log: log.child({ replica: target.replica.name }) };
  if (args.parallelism !== undefined) opts.parallelism = args.parallelism;
  if (args.integrityCheck !== undefined) opts.integrityCheck = args.integrityCheck;
  if (args.onProgress) opts.onProgress = args.onProgress;
  const result = await executeRestore(target.replica.client, target.plan, opts);
  return { status: 'restored', replica: target.replica.name, generation: target.plan.generation, result };
}
