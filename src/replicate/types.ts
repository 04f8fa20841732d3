import type { Config } from '../config/types.js';

/** What the init supervisor needs from replication (implemented by replicate/controller.ts). */
export interface SyncFailure {
  db: string;
  /** Replica name and redacted display. */
  replica: string;
  error: string;
}

export interface ControllerLike {
  /** Databases and their replicas (redacted) for the start-up log line. */
  describe(): { db: string; replicas: string[] }[];
  /**
   * For each database whose file is missing: restore it from its replicas if any has a generation,
   * leave it missing (start empty) if none has; throw an LsinitError on any other restore error.
   * Never touches an existing database.
   */
  restoreMissing(): Promise<void>;
  /** Open every database, take the read lock and run the first sync: resolves once positions are held. */
  start(): Promise<void>;
  /**
   * Stop the monitors and run the final WAL sync to every replica. `deadline` is an epoch-ms
   * time by which it must return; `fast` skips retries (second signal).
   */
  close(opts: { deadline: number; fast?: boolean }): Promise<{ failures: SyncFailure[] }>;
}

/** Databases and their replicas (redacted), as `ControllerLike.describe()` returns them. */
export function describeConfig(config: Config): { db: string; replicas: string[] }[] {
  return config.dbs.map((d) => ({ db: d.path, replicas: d.replicas.map((r) => `${r.name}=${r.display}`) }));
}
