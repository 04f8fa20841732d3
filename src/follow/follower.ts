/**
 * The follower: restore once, then poll the replica and apply each new batch of WAL segments to
 * the live copy as one SQLite transaction (apply.ts), until stopped.
 *
 * Cadence: every poll lists the current generation's WAL (one listing, filtered from the
 * position on); the generations are listed only every `generationCheckPolls` idle polls, or at
 * once when the next segment is missing (gap). A different generation that is newer than what
 * is applied — the primary's restart, TRUNCATE checkpoint or VACUUM — and a gap are handled the
 * same way: build the generation's image beside the copy (image.ts) and apply it as one
 * transaction, so readers go from one committed state to the next.
 *
 * Faults: store errors (outages) are logged and counted, the copy keeps serving its last state
 * and `lagMs` grows; the next successful poll catches up. A damaged object, a foreign database
 * or a page-size change stop the follower with an LsinitError naming it (nothing is applied
 * from a batch until every frame in it verified).
 */
import { closeSync, existsSync, fstatSync, fsyncSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { LsinitError, errorMessage } from '../errors.js';
import { formatPos, type ReplicaClient } from '../replica/client.js';
import { nullLogger, type Logger } from '../log/logger.js';
import { planForReplica } from '../restore/target.js';
import { LiveFile, fsyncDir, writeAll, type ApplyHooks, type FileIdentity } from './apply.js';
import { changeCounter, followerHeader, page1Digest } from './header.js';
import { buildImage, tempBeside, type Image } from './image.js';
import { ImagePages, readExactly } from './pages.js';
import { readState, removeState, resolveState, statePath, writeState, type Cursor, type FollowState } from './state.js';
import { listAfter, spoolBatch, type Batch } from './tail.js';

export interface FollowerOptions {
  path: string;
  client: ReplicaClient;
  /** Display form of the replica (no credentials), recorded in the state file and errors. */
  replica: string;
  log?: Logger;
  now?: () => number;
  busyTimeoutMs?: number;
  /** Idle polls between generation listings (default 10). */
  generationCheckPolls?: number;
  hooks?: ApplyHooks;
}

export interface FollowerStats {
  /** Position applied: generation/index:offset. */
  position: string;
  generation: string;
  index: number;
  offset: number;
  transactions: number;
  generationSwitches: number;
  busyRetries: number;
  pollErrors: number;
  lastError?: string;
  /** When the follower last saw nothing newer in the replica (ms since epoch). */
  caughtUpAt?: number;
  lastAppliedAt?: number;
}

/** Errors that no retry fixes: the follower stops on them. */
const FATAL = new Set(['LSINIT_ERR_CHECKSUM', 'LSINIT_ERR_FORMAT', 'LSINIT_ERR_DB', 'LSINIT_ERR_INTEGRITY', 'LSINIT_ERR_NO_BACKUPS']);
export function isFatal(err: unknown): boolean {
  return err instanceof LsinitError && FATAL.has(err.code);
}

export class Follower {
  private live?: LiveFile;
  private cursor!: Cursor;
  private file!: FileIdentity;
  private pageSize = 0;
  private appliedAt = 0n;
  private idlePolls = 0;
  private knownGenerations = new Set<string>();
  private pending: Batch | Image | undefined;
  readonly stats: FollowerStats = { position: '', generation: '', index: 0, offset: 0, transactions: 0, generationSwitches: 0, busyRetries: 0, pollErrors: 0 };
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly opts: FollowerOptions) {
    this.log = opts.log ?? nullLogger;
    this.now = opts.now ?? Date.now;
  }

  /** Restore (or resume) the copy. After this the file at `path` is a committed state. */
  async open(): Promise<'restored' | 'resumed'> {
    const { path } = this.opts;
    removeLeftovers(path);
    if (existsSync(path)) {
      this.resume();
      return 'resumed';
    }
    const plan = await planForReplica(this.opts.client, {});
    if (!plan) throw new LsinitError('LSINIT_ERR_NO_BACKUPS', `replica ${this.opts.replica} has no generations to follow (is the primary replicating to it?)`, { fields: { replica: this.opts.replica } });
    const img = await buildImage(this.opts.client, plan, path, this.log);
    try {
      const id = this.stamp(img.path, img.pageSize);
      writeState(path, { version: 1, replica: this.opts.replica, cursor: img.cursor, file: id });
      if (existsSync(path)) throw new LsinitError('LSINIT_ERR_EXISTS', `cannot restore, output path appeared during the restore: ${path}`, { fields: { path } });
      renameSync(img.path, path);
      fsyncDir(dirname(path));
      this.setPosition(img.cursor, id);
      this.appliedAt = img.createdAt;
    } finally {
      await img.remove();
    }
    this.live = new LiveFile(path, this.opts.busyTimeoutMs, this.opts.hooks);
    this.pageSize = img.pageSize;
    this.knownGenerations = new Set(await this.opts.client.generations());
    this.stats.caughtUpAt = this.now();
    this.log.info('follower restored', { path, position: this.stats.position });
    return 'restored';
  }

  private resume(): void {
    const { path } = this.opts;
    const state = readState(path);
    if (!state) {
      throw new LsinitError('LSINIT_ERR_EXISTS', `${path} already exists and is not a follower copy (no ${statePath(path)}): nothing was changed; move it away, or pick another -o path`, { fields: { path } });
    }
    if (state.replica !== this.opts.replica) {
      throw new LsinitError('LSINIT_ERR_DB', `${path} follows ${state.replica}, not ${this.opts.replica}: nothing was changed; move it away to follow another replica`, { fields: { path } });
    }
    const live = new LiveFile(path, this.opts.busyTimeoutMs, this.opts.hooks); // rolls back a hot journal
    try {
      const id = live.identity();
      const at = resolveState(state, id);
      if (!at) {
        throw new LsinitError('LSINIT_ERR_DB', `${path} does not match its follower state ${statePath(path)} (change counter ${id.counter}, expected ${state.file.counter}): it was changed by something else; nothing was changed; move both away to restore afresh`, { fields: { path } });
      }
      this.live = live;
      this.pageSize = id.pageSize;
      this.setPosition(at.cursor, at.file);
      if (at.file !== state.file) writeState(path, { version: 1, replica: this.opts.replica, cursor: at.cursor, file: at.file });
      this.log.info('follower resumed', { path, position: this.stats.position });
    } catch (err) {
      live.close();
      throw err;
    }
  }

  /** Page 1 of a fresh image as the follower's; returns its identity. */
  private stamp(path: string, pageSize: number): FileIdentity {
    const fd = openSync(path, 'r+');
    try {
      const page1 = readExactly(fd, pageSize, 0, path);
      const pages = Math.floor(fstatSync(fd).size / pageSize);
      followerHeader(page1, changeCounter(page1) + 1, pages);
      writeAll(fd, page1, 0);
      fsyncSync(fd);
      return { counter: changeCounter(page1), digest: page1Digest(page1) };
    } finally {
      closeSync(fd);
    }
  }

  private setPosition(cursor: Cursor, file: FileIdentity): void {
    this.cursor = cursor;
    this.file = file;
    Object.assign(this.stats, { position: formatPos(cursor.pos), generation: cursor.pos.generation, index: cursor.pos.index, offset: cursor.pos.offset });
    this.knownGenerations.add(cursor.pos.generation);
  }

  /** Lag: time since the follower last knew it had everything the replica had. */
  lagMs(): number {
    return this.stats.caughtUpAt === undefined ? Number.POSITIVE_INFINITY : Math.max(0, this.now() - this.stats.caughtUpAt);
  }

  /**
   * One poll. Returns the number of transactions applied. Throws only fatal errors (isFatal);
   * others are counted in stats and retried at the next poll.
   */
  async poll(): Promise<number> {
    const started = this.now();
    try {
      const n = await this.step();
      if (!this.pending) this.stats.caughtUpAt = started;
      return n;
    } catch (err) {
      if (isFatal(err)) throw err;
      this.stats.pollErrors++;
      this.stats.lastError = errorMessage(err);
      this.log.warn('follow poll failed; serving the last applied state', { error: this.stats.lastError, position: this.stats.position });
      return 0;
    }
  }

  private async step(): Promise<number> {
    if (this.pending) return this.applyPending();
    const next = await listAfter(this.opts.client, this.cursor);
    if (next.gap) {
      this.log.warn('WAL gap in the replica (retention?); re-basing on the newest snapshot', { position: this.stats.position });
      return this.rebase(true);
    }
    if (next.segments.length === 0) {
      if (++this.idlePolls % (this.opts.generationCheckPolls ?? 10) === 0) return this.checkGenerations();
      return 0;
    }
    this.idlePolls = 0;
    const batch = await spoolBatch(this.opts.client, this.cursor, next.segments, tempBeside(this.opts.path, 'spool'), this.pageSize);
    if (!batch) return 0;
    this.pending = batch;
    return this.applyPending();
  }

  private async checkGenerations(): Promise<number> {
    const gens = await this.opts.client.generations();
    const fresh = gens.filter((g) => !this.knownGenerations.has(g));
    for (const g of gens) this.knownGenerations.add(g);
    if (fresh.length === 0 && gens.includes(this.cursor.pos.generation)) return 0;
    return this.rebase(false);
  }

  /** Move to the replica's best generation (or a newer snapshot of this one, after a gap). */
  private async rebase(gap: boolean): Promise<number> {
    const plan = await planForReplica(this.opts.client, {});
    if (!plan) return 0; // nothing to follow right now (retention mid-flight?): keep serving
    if (!gap && (plan.generation === this.cursor.pos.generation || plan.updatedAt <= this.appliedAt)) return 0;
    this.log.info('follower moving to a new image', { from: this.stats.position, generation: plan.generation, reason: gap ? 'gap' : 'new generation' });
    this.pending = await buildImage(this.opts.client, plan, this.opts.path, this.log);
    return this.applyPending();
  }

  private async applyPending(): Promise<number> {
    const p = this.pending!;
    const isImage = 'path' in p;
    const src = isImage ? new ImagePages(p.path, p.pageSize) : p.pages;
    let result: FileIdentity | 'busy';
    try {
      result = this.live!.apply(src, this.file, (next) => {
        const state: FollowState = { version: 1, replica: this.opts.replica, cursor: this.cursor, file: this.file, next: { cursor: p.cursor, file: next } };
        writeState(this.opts.path, state, false); // made durable by the journal's directory fsync
      });
    } finally {
      if (src instanceof ImagePages) src.close();
    }
    if (result === 'busy') {
      this.stats.busyRetries++;
      this.log.debug('readers held the database; retrying at the next poll');
      return 0;
    }
    // No directory fsync (nor one after the journal's unlink): a power loss may leave either state
    // file and either side of the commit, and each state file names both sides.
    writeState(this.opts.path, { version: 1, replica: this.opts.replica, cursor: p.cursor, file: result, previous: { cursor: this.cursor, file: this.file } }, false);
    this.pending = undefined;
    if (isImage) {
      await p.remove();
      this.stats.generationSwitches++;
    } else await p.dispose();
    if (p.createdAt > this.appliedAt) this.appliedAt = p.createdAt;
    this.setPosition(p.cursor, result);
    this.stats.transactions++;
    this.stats.lastAppliedAt = this.now();
    this.log.debug('applied', { position: this.stats.position });
    return 1;
  }

  async close(): Promise<void> {
    const p = this.pending;
    this.pending = undefined;
    if (p) await ('path' in p ? p.remove() : p.dispose());
    this.live?.close();
  }

  /** Remove the copy and its state (tests and `-follow` re-restores only). */
  static remove(path: string): void {
    for (const s of ['', '-journal']) rmSync(`${path}${s}`, { force: true });
    removeState(path);
  }
}

/** Temp images and spools a killed follower left beside the copy (names from image.ts tempBeside). */
function removeLeftovers(path: string): void {
  const prefix = `.${basename(path)}.lsinit-`;
  let names: string[];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return;
  }
  for (const n of names) if (n.startsWith(prefix) && /^(follow|spool)-/.test(n.slice(prefix.length))) rmSync(join(dirname(path), n), { force: true });
}

export interface RunOptions {
  intervalMs: number;
  signal: AbortSignal;
  /** Injected for tests; resolves early when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  now?: () => number;
}

/** Poll every `intervalMs` until `signal` aborts; rejects with the first fatal error. */
export async function runFollower(f: Follower, opts: RunOptions): Promise<void> {
  const sleep = opts.sleep ?? abortableSleep;
  const now = opts.now ?? Date.now;
  while (!opts.signal.aborted) {
    const started = now();
    const applied = await f.poll();
    // After applying, look again at once: the primary may have written more meanwhile. Otherwise
    // poll at a fixed rate: the poll's own time (a LIST on a slow store) counts toward the interval.
    if (applied === 0) await sleep(Math.max(0, opts.intervalMs - (now() - started)), opts.signal);
  }
}

export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
