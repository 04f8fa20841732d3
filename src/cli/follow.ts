/** `lsinit restore -f`: restore, then follow the replica until SIGINT/SIGTERM (docs/follow.md). */
import { LsinitError } from '../errors.js';
import { DEFAULT_FOLLOW_INTERVAL_MS, follow } from '../follow/index.js';
import type { Logger } from '../log/logger.js';
import { str, type FlagValues } from '../util/flags.js';
import { requireDuration } from '../util/time.js';
import { closeSource, openSource } from './sources.js';

/** Restore flags that choose a point in the past or a skip condition: meaningless when following. */
const NOT_WITH_FOLLOW = ['index', 'timestamp', 'generation', 'txid', 'parallelism', 'if-db-not-exists', 'if-replica-exists', 'no-integrity-check'];

export async function followCommand(arg: string, f: FlagValues, log: Logger): Promise<number> {
  const conflicting = NOT_WITH_FOLLOW.filter((n) => f[n] !== undefined).map((n) => `-${n}`);
  if (conflicting.length > 0) throw new LsinitError('LSINIT_ERR_USAGE', `restore: -f follows the newest state and cannot be combined with ${conflicting.join(', ')}`);
  const iv = str(f, 'follow-interval');
  const flagMs = iv === undefined ? undefined : requireDuration(iv, 'restore: -follow-interval', { code: 'LSINIT_ERR_USAGE', min: 1 });
  const src = await openSource(arg, f, 'restore');
  try {
    // The flag wins; else the db's own follow-interval key (config form), else the default.
    const intervalMs = flagMs ?? src.db?.follow?.intervalMs ?? DEFAULT_FOLLOW_INTERVAL_MS;
    for (const w of src.config.warnings) log.warn(w);
    const output = str(f, 'o') ?? src.db?.path;
    if (output === undefined) throw new LsinitError('LSINIT_ERR_USAGE', 'restore: output path required: pass -o PATH when following a replica URL');
    const replica = src.replicas[0]!;
    if (src.replicas.length > 1) log.info(`following replica "${replica.config.name}" (the first; choose another with -replica)`);
    const ac = new AbortController();
    const stop = (sig: NodeJS.Signals) => {
      log.info(`received ${sig}, stopping the follower`);
      ac.abort();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      await follow({ path: output, client: replica.client, replica: replica.config.display, intervalMs, signal: ac.signal, log });
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    return 0;
  } finally {
    await closeSource(src);
  }
}
