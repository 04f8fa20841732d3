/** `lsinit restore` (reference §4), Litestream's flags plus -no-integrity-check. */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultMetaPath } from '../config/load.js';
import { LsinitError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { lockedError, META_LOCK_NAME, metaLockHolder } from '../replicate/meta-lock.js';
import { restore } from '../restore/index.js';
import { parseTXIDFlag } from '../format/ltx.js';
import { fixMmapThreshold } from '../util/memory.js';
import { parseRFC3339 } from '../util/time.js';
import { bool, oneArg, parseFlags, str, usage, type FlagSpec } from '../util/flags.js';
import { startProgress } from './progress.js';
import { followCommand } from './follow.js';
import { CONFIG_FLAGS, closeSource, openSource } from './sources.js';

const SPECS: Record<string, FlagSpec> = {
  ...CONFIG_FLAGS,
  o: { type: 'string', help: 'output path (default: the database path; required with a replica URL)' },
  replica: { type: 'string', help: 'restore from this replica only (by name)' },
  generation: { type: 'string', help: 'restore from this generation (16 hex)' },
  index: { type: 'string', help: 'restore through this WAL index, in hexadecimal as in Litestream (`lsinit wal` prints decimal: 26 is -index 1a)' },
  txid: { type: 'string', help: 'restore a Litestream 0.5 (LTX) replica through this TXID (16 hex digits)' },
  timestamp: { type: 'string', help: 'restore to this point in time (RFC 3339, e.g. 2024-01-02T15:04:05Z)' },
  parallelism: { type: 'string', help: 'WAL indexes downloaded in parallel (default 8)' },
  'if-db-not-exists': { type: 'bool', help: 'exit 0 without restoring when the output already exists' },
  'if-replica-exists': { type: 'bool', help: 'exit 0 without restoring when no backup matches' },
  'no-integrity-check': { type: 'bool', help: 'skip PRAGMA integrity_check on the restored database (lsinit extension)' },
  f: { type: 'bool', help: 'follow: after restoring, keep applying new WAL segments to the output until SIGINT/SIGTERM (a live read replica; see docs/follow.md)' },
  'follow-interval': { type: 'string', help: 'with -f, how often to poll the replica (Go duration, default 1s)' },
  v: { type: 'bool', help: 'verbose (accepted for Litestream 0.3.5 compatibility; lsinit always logs)' },
};

export async function restoreCommand(argv: string[], log: Logger): Promise<number> {
  const p = parseFlags(argv, SPECS, 'restore');
  if (p.help) {
    process.stdout.write(usage('restore', '[flags] DB_PATH|REPLICA_URL', SPECS));
    return 0;
  }
  const arg = oneArg(p.args, 'restore', 'DB_PATH|REPLICA_URL');
  fixMmapThreshold(); // a restore's 4 MiB buffers must not stay resident once freed (util/memory.ts)
  const f = p.flags;
  const indexStr = str(f, 'index');
  let index: number | undefined;
  if (indexStr !== undefined) {
    // Hexadecimal, as Litestream 0.3 parses it (main.go indexVar); `lsinit wal` prints decimal, as Litestream's does.
    const hex = indexStr.replace(/^0x/i, '');
    if (!/^[0-9a-fA-F]{1,8}$/.test(hex)) {
      const n = /^\d+$/.test(indexStr) ? Number(indexStr) : 26;
      throw new LsinitError('LSINIT_ERR_USAGE', `restore: invalid -index ${JSON.stringify(indexStr)}: -index is a hexadecimal WAL index as in Litestream, e.g. 1a or 0000001a; \`lsinit wal\` lists indexes in decimal (index ${n} is -index ${n.toString(16)})`);
    }
    index = Number.parseInt(hex, 16);
    if (index > 0x7fffffff) throw new LsinitError('LSINIT_ERR_USAGE', `restore: -index ${indexStr} is above the maximum 7fffffff`);
  }
  const txidStr = str(f, 'txid');
  let txid: bigint | undefined;
  if (txidStr !== undefined) {
    txid = parseTXIDFlag(txidStr);
    if (txid === undefined) throw new LsinitError('LSINIT_ERR_USAGE', `restore: invalid -txid ${JSON.stringify(txidStr)}: want 16 hex digits like 000000000000002a (Litestream 0.5's format)`);
    if (index !== undefined || str(f, 'generation') !== undefined) throw new LsinitError('LSINIT_ERR_USAGE', 'restore: -txid (Litestream 0.5 replicas) cannot be combined with -index or -generation (Litestream 0.3 replicas)');
  }
  const tsStr = str(f, 'timestamp');
  const timestamp = tsStr !== undefined ? parseRFC3339(tsStr) : undefined;
  if (index !== undefined && timestamp !== undefined) throw new LsinitError('LSINIT_ERR_USAGE', 'restore: cannot specify both -index and -timestamp');
  if (txid !== undefined && timestamp !== undefined) throw new LsinitError('LSINIT_ERR_USAGE', 'restore: cannot specify both -txid and -timestamp');
  const generation = str(f, 'generation');
  if (generation !== undefined && !/^[0-9a-f]{16}$/.test(generation)) {
    throw new LsinitError('LSINIT_ERR_USAGE', `restore: invalid -generation ${JSON.stringify(generation)}: want 16 lowercase hex characters`);
  }
  const parStr = str(f, 'parallelism');
  const parallelism = parStr !== undefined ? Number(parStr) : 8;
  if (!Number.isInteger(parallelism) || parallelism < 1) throw new LsinitError('LSINIT_ERR_USAGE', `restore: -parallelism must be a positive integer, got ${JSON.stringify(parStr)}`);
  if (bool(f, 'f')) return followCommand(arg, f, log);
  if (str(f, 'follow-interval') !== undefined) throw new LsinitError('LSINIT_ERR_USAGE', 'restore: -follow-interval needs -f');
  const src = await openSource(arg, f, 'restore');
  try {
    for (const w of src.config.warnings) log.warn(w);
    let output = str(f, 'o');
    if (output === undefined) {
      if (!src.db) throw new LsinitError('LSINIT_ERR_USAGE', 'restore: output path required: pass -o PATH when restoring from a replica URL');
      output = src.db.path;
    }
    if (!existsSync(output)) {
      // A database some lsinit still replicates (deleted under it, say) is not restored behind its
      // back: that process still holds the old file open and would not replicate the new one.
      const metaPath = src.db && resolve(output) === src.db.path ? src.db.metaPath : defaultMetaPath(resolve(output));
      const holder = metaLockHolder(metaPath);
      if (holder !== undefined) throw lockedError(output, join(metaPath, META_LOCK_NAME), holder, { hint: 'stop that process before restoring this database, or restore to another path with -o' });
    }
    const progress = startProgress(log);
    try {
      const outcome = await restore({
        output,
        replicas: src.replicas.map((r) => ({ name: r.config.name, client: r.client })),
        ...(generation !== undefined ? { generation } : {}),
        ...(index !== undefined ? { index } : {}),
        ...(txid !== undefined ? { txid } : {}),
        ...(timestamp !== undefined ? { timestamp } : {}),
        parallelism,
        ifDBNotExists: bool(f, 'if-db-not-exists'),
        ifReplicaExists: bool(f, 'if-replica-exists'),
        integrityCheck: !bool(f, 'no-integrity-check'),
        log,
        onProgress: progress.update,
      });
      progress.done();
      return outcome.status === 'restored' || outcome.status === 'skipped-exists' || outcome.status === 'no-backups' ? 0 : 1;
    } finally {
      progress.done();
    }
  } finally {
    await closeSource(src);
  }
}
