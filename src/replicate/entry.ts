/** What the controller keeps for one database (controller.ts); metrics and /healthz read it too. */
import type { DBConfig } from '../config/types.js';
import type { Logger } from '../log/logger.js';
import type { Replica } from '../replica/replica.js';
import type { DB } from '../sqlite/db.js';
import type { TimerHandle } from '../util/timers.js';
import type { LeaseGuard } from './lease-guard.js';

export interface Entry {
  cfg: DBConfig;
  db: DB;
  replicas: Replica[];
  log: Logger;
  timers: TimerHandle[];
  pendingTick: TimerHandle | undefined;
  /** When the last sync of the database (copy to the shadow WAL) ran. */
  lastTickAt: number;
  lastErrorLog: Map<string, number>;
  /** Since when every shadow WAL sync failed (undefined after a success), and the last error: /healthz. */
  syncFailingSince: number | undefined;
  syncError: string | undefined;
  /** Single-writer lease per replica (absent for replicas with `lease: false`). */
  leases: Map<Replica, LeaseGuard>;
}
