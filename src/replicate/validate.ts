/**
 * `validation-interval` (Litestream 0.3.13 Replica.Validate, replica.go): every interval, restore
 * the replica at a known position into a temp file and compare its CRC-64 with the local
 * database's at the same position. A mismatch is logged as an error and counted as
 * `litestream_replica_validation_total{status="error"}`; a match as `status="ok"`.
 *
 * Litestream forces a RESTART checkpoint under its lock and checksums the database file. lsinit
 * does not checkpoint for this (a forced checkpoint makes the app's writers wait, #724): it holds
 * SQLite's write lock only while it copies the WAL to the shadow (so the position is exactly the
 * committed state) and opens a read transaction on a connection of its own, which pins that state
 * (no checkpoint can back-fill past it) while the image is read: the database file through the
 * DB's long-lived descriptor, with the current shadow index's frames up to the position laid over
 * it. The write lock is tried without waiting: a busy database skips the round.
 *
 * Resources: one validation per replica at a time, one page in memory, one temp database in the
 * meta directory (removed after), WAL indexes restored one at a time. Nothing here can stop
 * replication or the app: every failure is logged and the next round tries again.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, readdirSync, rmSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleepMs } from 'node:timers/promises';
import { LsinitError, errorMessage } from '../errors.js';
import { Crc64 } from '../format/crc64.js';
import type { Logger } from '../log/logger.js';
import { comparePos, formatPos, type Pos, type SnapshotInfo } from '../replica/client.js';
import type { Replica } from '../replica/replica.js';
import { executeRestore } from '../restore/restore.js';
import { pickSnapshot, planSegments, type RestorePlan } from '../restore/target.js';
import type { DB } from '../sqlite/db.js';
import { openDatabase, type SqliteConnection } from '../sqlite/driver.js';
import type { Snapshot } from '../sqlite/snapshot-source.js';

export interface ValidatorOptions {
  db: DB;
  replica: Replica;
  log: Logger;
  /** Ask for a sync of this replica now (the controller's; a no-op while one runs). */
  syncReplica: () => Promise<void>;
  /** How long to wait for the replica to reach the position (default max(10 s, 3 × sync-interval), Litestream waits 10 s). */
  waitMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export type ValidationResult =
  | { status: 'ok' | 'mismatch'; pos: Pos; local: string; replica: string }
  | { status: 'failed'; pos?: Pos; error: string }
  | { status: 'skipped'; reason: string };

/** Errors that say the replica's objects are wrong, not that the store was unreachable. */
const BAD_REPLICA = new Set(['LSINIT_ERR_CHECKSUM', 'LSINIT_ERR_FORMAT', 'LSINIT_ERR_NOT_FOUND', 'LSINIT_ERR_INTEGRITY', 'LSINIT_ERR_DECRYPT']);

export class Validator {
  private running = false;
  private stopped = false;
  private wconn: SqliteConnection | undefined;
  private rconn: SqliteConnection | undefined;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly now: () => number;

  constructor(private readonly o: ValidatorOptions) {
    this.sleep = o.sleep ?? ((ms) => sleepMs(ms));
    this.now = o.now ?? Date.now;
    removeLeftovers(o.db.metaPath);
  }

  /** One validation round; never throws. */
  async run(): Promise<ValidationResult> {
    if (this.stopped) return { status: 'skipped', reason: 'stopped' };
    if (this.running) return { status: 'skipped', reason: 'a validation is already running' };
    this.running = true;
    const { replica: r, log } = this.o;
    try {
      const res = await this.validate();
      if (res.status === 'ok') {
        r.stats.validations.ok++;
        log.info('validator', { status: 'ok', db: res.local, replica: res.replica, position: formatPos(res.pos) });
      } else if (res.status === 'mismatch') {
        r.stats.validations.error++;
        log.error('validation mismatch: the replica differs from the database at the same position', { replica: r.name, position: formatPos(res.pos), db_crc64: res.local, replica_crc64: res.replica });
      } else if (res.status === 'failed') {
        log.error('validation error', { replica: r.name, error: res.error, ...(res.pos ? { position: formatPos(res.pos) } : {}) });
      } else if (res.status === 'skipped') {
        log.debug('validation skipped', { replica: r.name, reason: res.reason });
      }
      return res;
    } finally {
      this.running = false;
    }
  }

  private async validate(): Promise<ValidationResult> {
    const { db, replica: r } = this.o;
    const gen = db.pos()?.generation;
    if (!gen) return { status: 'skipped', reason: 'no generation yet' };
    // Snapshots that exist before the position is taken are all at or before it; one uploaded
    // later may hold newer pages, so only these may start the restore.
    let snapshots: SnapshotInfo[];
    try {
      snapshots = await r.client.snapshots(gen);
    } catch (err) {
      return { status: 'failed', error: `cannot list snapshots: ${errorMessage(err)}` };
    }
    let local: { pos: Pos; crc: bigint };
    try {
      const l = await this.localChecksum();
      if ('reason' in l) return { status: 'skipped', reason: l.reason };
      local = l;
    } catch (err) {
      return { status: 'failed', error: `cannot checksum the database: ${errorMessage(err)}` };
    }
    const pos = local.pos;
    if (pos.generation !== gen) return { status: 'skipped', reason: 'generation changed' };
    if (!(await this.waitForReplica(pos))) return { status: 'skipped', reason: `replica did not reach ${formatPos(pos)} in time` };
    if (this.stopped) return { status: 'skipped', reason: 'stopped' };
    const out = join(db.metaPath, `validate-${randomBytes(4).toString('hex')}.db`);
    try {
      const segments = await r.client.walSegments(gen);
      const req = { index: pos.index, offset: pos.offset };
      const snapshot = pickSnapshot(snapshots, req);
      if (!snapshot) return { status: 'skipped', reason: `no snapshot at or before index ${pos.index} yet` };
      const plan: RestorePlan = { generation: gen, snapshot, indexes: planSegments(gen, snapshot.index, segments, req), updatedAt: 0n, endOffset: pos.offset };
      await executeRestore(r.client, plan, { output: out, parallelism: 1, integrityCheck: false });
      const remote = await fileCRC(out);
      return { status: remote === local.crc ? 'ok' : 'mismatch', pos, local: hex(local.crc), replica: hex(remote) };
    } catch (err) {
      if (err instanceof LsinitError && BAD_REPLICA.has(err.code)) {
        // The replica cannot be restored to a position it claims to hold: as wrong as a mismatch.
        this.o.replica.stats.validations.error++;
      }
      return { status: 'failed', pos, error: `cannot restore the replica: ${errorMessage(err)}` };
    } finally {
      await fsp.rm(out, { force: true });
    }
  }

  /** Wait until the replica holds `pos` (Litestream's waitForReplica), asking for syncs meanwhile. */
  private async waitForReplica(pos: Pos): Promise<boolean> {
    const { replica: r } = this.o;
    const deadline = this.now() + (this.o.waitMs ?? Math.max(10_000, 3 * r.cfg.syncIntervalMs));
    for (;;) {
      const cur = r.pos;
      if (cur && cur.generation !== pos.generation) return false;
      if (cur && comparePos(cur, pos) >= 0) return true;
      if (this.now() >= deadline) return false;
      await this.o.syncReplica().catch(() => {});
      const again = r.pos;
      if (again && again.generation === pos.generation && comparePos(again, pos) >= 0) return true;
      await this.sleep(200);
    }
  }

  /**
   * The committed database at an exact position, checksummed as its file would be after a full
   * checkpoint. Under the write lock (not waited for): copy the WAL to the shadow, take the
   * position, pin it with a read transaction; then read with the lock released.
   */
  private async localChecksum(): Promise<{ pos: Pos; crc: bigint } | { reason: string }> {
    const { db } = this.o;
    const w = (this.wconn ??= openConn(db.path, 0));
    const rd = (this.rconn ??= openConn(db.path, 1000));
    try {
      w.exec('BEGIN IMMEDIATE');
    } catch (err) {
      if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) return { reason: 'the database is busy (write lock held)' };
      throw err;
    }
    let snap: Snapshot | undefined;
    let pos: Pos | undefined;
    try {
      snap = db.beginSnapshot(); // copies the WAL to the shadow and holds our checkpoints off
      pos = db.pos();
      // A WAL restarted by someone else is picked up by the next sync, not here.
      if (!pos || pos.generation !== snap.generation || pos.index !== snap.index || db.walAdvanced()) {
        snap.stream.destroy();
        return { reason: 'the WAL moved on before the next sync' };
      }
      rd.exec('BEGIN');
      rd.prepare('SELECT count(*) FROM sqlite_master').pluck().get();
    } catch (err) {
      snap?.stream.destroy();
      throw err;
    } finally {
      w.exec('ROLLBACK');
    }
    try {
      return { pos, crc: await streamCRC(snap.stream) };
    } finally {
      snap.stream.destroy();
      if (rd.inTransaction) rd.exec('ROLLBACK');
    }
  }

  /** Close the validator's own connections (the DB's stay open; see db.ts). */
  /**
   * Shutdown: no more rounds, and the temp files of a round in flight are removed now (the process
   * exits before that round would remove them; the next start would, but the meta dir should be
   * left clean).
   */
  stop(): void {
    this.stopped = true;
    removeLeftovers(this.o.db.metaPath);
  }

  close(): void {
    for (const c of [this.wconn, this.rconn]) c?.close();
    this.wconn = this.rconn = undefined;
  }
}

const TEMP_RE = /^(\.)?validate-[0-9a-f]{8}\.db/;

/** Temp restores of a process that died mid-validation (none runs yet when a Validator is made). */
function removeLeftovers(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) if (TEMP_RE.test(n)) rmSync(join(dir, n), { force: true });
}

function openConn(path: string, busyMs: number): SqliteConnection {
  const c = openDatabase(path, { fileMustExist: true });
  c.pragma(`busy_timeout = ${busyMs}`);
  return c;
}

/** CRC-64/ISO of a stream (the database image at a position, db.beginSnapshot; a restored file). */
async function streamCRC(src: AsyncIterable<Uint8Array>): Promise<bigint> {
  const crc = new Crc64();
  for await (const c of src) crc.update(c);
  return crc.digest();
}

function fileCRC(path: string): Promise<bigint> {
  return streamCRC(createReadStream(path, { highWaterMark: 1 << 20 }));
}

function hex(n: bigint): string {
  return n.toString(16).padStart(16, '0');
}
