/**
 * Init mode on a read node: the ControllerLike the supervisor drives when the config's databases
 * are followers. restoreMissing() restores or resumes every copy before the app starts (a failure
 * is the usual restore failure: exit 1, app not started); start() runs the poll loops; close()
 * stops them. There is no final sync: a read node never writes to the replica.
 *
 * A fatal follower error (damaged object, the copy written by someone else) stops that follower
 * and is kept in `fatal`: the app keeps serving the last applied state, /healthz fails.
 */
import type { Config, DBConfig } from '../config/types.js';
import { LsinitError, errorMessage } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { ReplicaClient } from '../replica/client.js';
import { createClient } from '../replica/create.js';
import type { ControllerLike, SyncFailure } from '../replicate/types.js';
import { Follower, runFollower } from './follower.js';

export interface FollowEntry {
  cfg: DBConfig;
  follower: Follower;
  client: ReplicaClient;
  replicaName: string;
  fatal?: string;
  loop?: Promise<void>;
}

export class FollowController implements ControllerLike {
  readonly entries: FollowEntry[];
  private readonly ac = new AbortController();

  constructor(
    config: Config,
    private readonly log: Logger,
    opts: { makeClient?: (rc: DBConfig['replicas'][number]) => ReplicaClient; now?: () => number } = {},
  ) {
    const makeClient = opts.makeClient ?? createClient;
    this.entries = config.dbs.map((cfg) => {
      if (!cfg.follow) throw new LsinitError('LSINIT_ERR_CONFIG', `${cfg.keyPath}: a read node follows every database; mark this one follow: true too, or replicate it from another lsinit`, { fields: { key: cfg.keyPath } });
      const rc = cfg.replicas[0]!;
      const client = makeClient(rc);
      const follower = new Follower({ path: cfg.path, client, replica: rc.display, log: log.child({ db: cfg.path }), ...(opts.now ? { now: opts.now } : {}) });
      return { cfg, follower, client, replicaName: rc.name };
    });
  }

  describe(): { db: string; replicas: string[] }[] {
    return this.entries.map((e) => ({ db: e.cfg.path, replicas: [`follow ${e.replicaName}=${e.cfg.replicas[0]!.display}`] }));
  }

  async restoreMissing(): Promise<void> {
    for (const e of this.entries) await e.follower.open();
  }

  async start(): Promise<void> {
    for (const e of this.entries) {
      e.loop = runFollower(e.follower, { intervalMs: e.cfg.follow!.intervalMs, signal: this.ac.signal }).catch((err: unknown) => {
        e.fatal = errorMessage(err);
        this.log.error('follower stopped; the app keeps the last applied state', { db: e.cfg.path, error: e.fatal });
      });
    }
  }

  async close(_opts: { deadline: number; fast?: boolean }): Promise<{ failures: SyncFailure[] }> {
    this.ac.abort();
    await Promise.all(this.entries.map((e) => e.loop));
    for (const e of this.entries) {
      await e.follower.close();
      await e.client.close().catch(() => {});
    }
    return { failures: [] };
  }
}
