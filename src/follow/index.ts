/** `restore -f` and init-mode read nodes: open (restore or resume) a follower and run it until stopped. */
import type { Logger } from '../log/logger.js';
import type { ReplicaClient } from '../replica/client.js';
import { Follower, runFollower, type FollowerOptions } from './follower.js';

export { Follower, isFatal, runFollower } from './follower.js';

export const DEFAULT_FOLLOW_INTERVAL_MS = 1000;

export interface FollowArgs {
  path: string;
  client: ReplicaClient;
  replica: string;
  intervalMs: number;
  signal: AbortSignal;
  log: Logger;
  /** Called once the copy is a committed state readers may open. */
  onReady?: (f: Follower) => void;
  options?: Partial<FollowerOptions>;
}

/** Restore/resume, then follow until `signal` aborts. Rejects on a fatal error. */
export async function follow(args: FollowArgs): Promise<void> {
  const f = new Follower({ path: args.path, client: args.client, replica: args.replica, log: args.log, ...args.options });
  try {
    const how = await f.open();
    args.log.info(`following ${args.replica}`, { path: args.path, how, position: f.stats.position, interval_ms: args.intervalMs });
    args.onReady?.(f);
    await runFollower(f, { intervalMs: args.intervalMs, signal: args.signal });
  } finally {
    await f.close();
  }
}
