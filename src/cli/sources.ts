/** Resolve a `DB_PATH | REPLICA_URL` argument plus -config/-replica into replicas to read. */
import { LsinitError } from '../errors.js';
import { absPath, configFromArgs, isURL, replicaFromURL } from '../config/load.js';
import type { Config, DBConfig, ReplicaConfig } from '../config/types.js';
import type { ReplicaClient } from '../replica/client.js';
import { createClient } from '../replica/create.js';
import { bool, str, type FlagSpec, type FlagValues } from '../util/flags.js';

export const CONFIG_FLAGS: Record<string, FlagSpec> = {
  config: { type: 'string', help: 'path to the config file (default $LITESTREAM_CONFIG or /etc/litestream.yml)' },
  'no-expand-env': { type: 'bool', help: 'do not expand $VAR and ${VAR} in the config file' },
};

export interface Source {
  /** The database from the config, when the argument was a DB path. */
  db?: DBConfig;
  replicas: { config: ReplicaConfig; client: ReplicaClient }[];
  config: Config;
  fromURL: boolean;
}

export async function readConfigFromFlags(flags: FlagValues): Promise<Config> {
  const path = str(flags, 'config');
  const { loadConfig } = await import('../config/file.js');
  return loadConfig({ ...(path ? { path } : {}), expandEnv: !bool(flags, 'no-expand-env') });
}

export async function openSource(arg: string, flags: FlagValues, command: string): Promise<Source> {
  const replicaName = str(flags, 'replica');
  if (isURL(arg)) {
    if (str(flags, 'config')) throw new LsinitError('LSINIT_ERR_USAGE', `${command}: cannot specify a replica URL and -config together`);
    const config = configFromArgs(undefined, []);
    const rc = replicaFromURL(arg, 'replica URL');
    return { replicas: [{ config: rc, client: createClient(rc) }], config, fromURL: true };
  }
  const config = await readConfigFromFlags(flags);
  const path = absPath(arg, process.cwd());
  const db = config.dbs.find((d) => d.path === path);
  if (!db) throw new LsinitError('LSINIT_ERR_CONFIG', `database not found in config: ${path} (config: ${config.file ?? '-'})`, { fields: { path } });
  let rcs = db.replicas;
  if (replicaName !== undefined) {
    rcs = rcs.filter((r) => r.name === replicaName);
    if (rcs.length === 0) throw new LsinitError('LSINIT_ERR_CONFIG', `replica "${replicaName}" not found for database ${path} (have: ${db.replicas.map((r) => r.name).join(', ') || 'none'})`);
  }
  if (rcs.length === 0) throw new LsinitError('LSINIT_ERR_CONFIG', `database ${path} has no replicas in ${config.file ?? 'the config'}`);
  return { db, replicas: rcs.map((r) => ({ config: r, client: createClient(r) })), config, fromURL: false };
}

export async function closeSource(s: Source): Promise<void> {
  await Promise.all(s.replicas.map((r) => r.client.close().catch(() => {})));
}
