/**
 * The shadow WAL of one database across its generations and indexes (Litestream 0.3 `DB`'s
 * generation and shadow-WAL half, reference §2.3–2.4): which generation and index the copies go
 * to, whether the real WAL still continues them (verify), and the on-disk layout under the meta
 * directory (`generation`, `generations/<gen>/wal/<index>.wal`). The frame copy itself is
 * shadow.ts.
 *
 * One explicit state: `cur`, the current lifetime (generation, index and the shadow file's
 * verified state), undefined until the first generation starts; and `reset`, a pending reason to
 * start a new generation at the next sync (continuity lost in a way verify() cannot see: the WAL
 * changed between two runs, or a checkpoint race). No SQLite here: the caller holds the read lock.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LsinitError } from '../errors.js';
import { hex8 } from '../format/paths.js';
import { FRAME_HEADER_SIZE, WAL_HEADER_SIZE, frameAlign } from '../format/wal.js';
import type { Logger } from '../log/logger.js';
import type { Pos } from '../replica/client.js';
import { copyToShadow, fileSize, initShadow, openShadow, readExact, readWALHeaderFile, readWALIndexHeader, syncShadowFile, type ShadowState } from './shadow.js';

const MAX_INDEX = 0x7fffffff;
const SHADOW_RE = /^([0-9a-f]{8})\.wal$/;

/** The lifetime the copies go to. */
export interface Lifetime {
  generation: string;
  index: number;
  shadow: ShadowState;
}

/** What verify() found: `reason` to start a new generation; `restart` when the WAL restarted since the last copy. */
export interface Verdict {
  reason?: string;
  restart: boolean;
}

export class ShadowWAL {
  private cur: Lifetime | undefined;
  /** Set when continuity was lost in a way verify() cannot see; consumed by the next verify() or startNextIndex(). */
  private reset: string | undefined;

  constructor(
    private readonly walPath: string,
    private readonly metaPath: string,
    private readonly log: Logger,
    /** Bytes the shadow WAL received (litestream_total_wal_bytes), shared with the DB's stats. */
    private readonly stats: { totalWALBytes: number },
  ) {}

  get current(): Lifetime | undefined {
    return this.cur;
  }

  generationDir(gen: string): string {
    return join(this.metaPath, 'generations', gen, 'wal');
  }

  shadowPath(gen: string, index: number): string {
    return join(this.generationDir(gen), `${hex8(index)}.wal`);
  }

  pos(): Pos | undefined {
    const c = this.cur;
    return c ? { generation: c.generation, index: c.index, offset: c.shadow.size } : undefined;
  }

  /** Committed size of a shadow index (what replicas may ship), or -1 when it does not exist. */
  shadowSize(gen: string, index: number): number {
    const c = this.cur;
    if (c && gen === c.generation && index === c.index) return c.shadow.size;
    if (!c || gen !== c.generation || index > c.index) return -1;
    return fileSize(this.shadowPath(gen, index));
  }

  /** Make a shadow index durable before its bytes are shipped (see copyToShadow). */
  flush(gen: string, index: number): void {
    const c = this.cur;
    if (c && gen === c.generation && index === c.index) syncShadowFile(c.shadow, this.shadowPath(gen, index));
  }

  /** Copy the WAL's new committed frames to the current index; the bytes added. */
  copy(): number {
    const c = this.cur!;
    return copyToShadow(c.shadow, this.shadowPath(c.generation, c.index), this.walPath);
  }

  /** Copy, then make the current index durable (a snapshot stands for its frames up to there). */
  copyAndFlush(): void {
    const c = this.cur!;
    copyToShadow(c.shadow, this.shadowPath(c.generation, c.index), this.walPath);
    syncShadowFile(c.shadow, this.shadowPath(c.generation, c.index));
  }

  /** The next sync starts a new generation for this reason. */
  forceNewGeneration(reason: string): void {
    this.reset = reason;
  }

  /** Pick up the generation and shadow left by a previous run, if still consistent. */
  load(): void {
    const genFile = join(this.metaPath, 'generation');
    let gen: string | undefined;
    try {
      gen = readFileSync(genFile, 'utf8').trim();
    } catch {
      gen = undefined;
    }
    if (!gen || !/^[0-9a-f]{16}$/.test(gen)) return;
    const dir = this.generationDir(gen);
    const indexes = existsSync(dir) ? readdirSync(dir).map((n) => SHADOW_RE.exec(n)).filter((m) => m !== null).map((m) => Number.parseInt(m[1]!, 16)) : [];
    if (existsSync(dir)) for (const n of readdirSync(dir)) if (n.endsWith('.tmp')) rmSync(join(dir, n), { force: true });
    if (indexes.length === 0) return;
    const index = Math.max(...indexes);
    const st = openShadow(this.shadowPath(gen, index));
    const real = readWALHeaderFile(this.walPath);
    // Litestream's verifyHeadersMatch: a restart after the WAL changed starts a new generation.
    if (!st || !real || !st.headerBytes.equals(real)) {
      // Say what happened since the last run; sync() logs it again as the new generation's reason.
      const why = !real
        ? 'the WAL was removed since the last run (the last connection closed the database, e.g. the sqlite3 shell, or it was restored)'
        : !st
          ? 'the shadow WAL of the last run is unreadable'
          : 'the WAL was reset since the last run (checkpointed by another process, or the database was replaced or restored)';
      this.log.info(`generation ${gen} cannot continue: ${why}; a new generation will start`, { generation: gen });
      this.reset = why;
      rmSync(genFile, { force: true });
      return;
    }
    this.cur = { generation: gen, index, shadow: st };
    this.log.info('continuing generation', { generation: gen, index: hex8(index), offset: st.size });
  }

  /**
   * How many frames the app committed past the shadow (Infinity when the WAL was restarted or the
   * count is unknown but something changed), 0 when nothing. `shmFd`: the -shm descriptor, whose
   * WAL-index header SQLite updates at each commit (mxFrame and the salts; wal.c
   * walIndexWriteHdr): an open transaction spilling pages into the WAL does not count, unlike a
   * look at the WAL itself.
   */
  newFrames(shmFd: number | undefined): number {
    const st = this.cur?.shadow;
    if (!st) return 0; // not replicating yet: the monitor tick retries
    const h = shmFd === undefined ? undefined : readWALIndexHeader(shmFd);
    if (!h) return this.walFrameAdvanced(st) ? Infinity : 0;
    if (!h.salt.equals(st.headerBytes.subarray(16, 24))) return Infinity;
    const d = h.mxFrame - (st.size - WAL_HEADER_SIZE) / (FRAME_HEADER_SIZE + st.header.pageSize);
    return d === 0 ? 0 : d > 0 ? d : Infinity;
  }

  /** Without a readable WAL index: a frame written at the shadow's end with the same salts, or a new WAL header. */
  private walFrameAdvanced(st: ShadowState): boolean {
    const header = readWALHeaderFile(this.walPath);
    if (!header) return false;
    if (!header.equals(st.headerBytes)) return true;
    let fd: number;
    try {
      fd = openSync(this.walPath, 'r');
    } catch {
      return false;
    }
    try {
      const fh = readExact(fd, FRAME_HEADER_SIZE, st.size);
      // Salts: frame header bytes 8..16, WAL header bytes 16..24.
      return fh !== undefined && fh.subarray(8, 16).equals(header.subarray(16, 24));
    } finally {
      closeSync(fd);
    }
  }

  /** Does the real WAL still continue the current index (Litestream's DB.verify)? */
  verify(): Verdict {
    const c = this.cur;
    if (!c || this.reset) {
      const reason = this.reset ?? 'no generation exists';
      this.reset = undefined;
      return { reason, restart: false };
    }
    const shadow = c.shadow;
    if (c.index >= MAX_INDEX) return { reason: 'max index exceeded', restart: false };
    if (!existsSync(this.shadowPath(c.generation, c.index))) return { reason: 'no shadow wal', restart: false };
    if (shadow.size < WAL_HEADER_SIZE) return { reason: 'short shadow wal', restart: false };
    const realSize = frameAlign(Math.max(0, fileSize(this.walPath)), shadow.header.pageSize);
    if (shadow.size > realSize) return { reason: 'wal truncated by another process', restart: false };
    const real = readWALHeaderFile(this.walPath);
    const restart = !real || !real.equals(shadow.headerBytes);
    if (restart && !shadow.lastFrame) return { reason: 'wal header only, mismatched', restart };
    if (shadow.lastFrame) {
      const fs = FRAME_HEADER_SIZE + shadow.header.pageSize;
      const fd = openSync(this.walPath, 'r');
      try {
        const last = readExact(fd, fs, shadow.size - fs);
        if (!last || !last.equals(shadow.lastFrame)) return { reason: 'wal overwritten by another process', restart };
      } finally {
        closeSync(fd);
      }
    }
    return { restart };
  }

  createGeneration(reason: string): void {
    const gen = randomBytes(8).toString('hex');
    mkdirSync(this.generationDir(gen), { recursive: true });
    const st = initShadow(this.shadowPath(gen, 0), this.walPath);
    if (!st) throw new LsinitError('LSINIT_ERR_DB', `${this.walPath}: WAL missing while starting a generation`);
    const genFile = join(this.metaPath, 'generation');
    writeFileSync(`${genFile}.tmp`, `${gen}\n`);
    renameSync(`${genFile}.tmp`, genFile);
    this.cur = { generation: gen, index: 0, shadow: st };
    this.stats.totalWALBytes += st.size;
    this.log.info('sync: new generation', { generation: gen, reason });
  }

  /**
   * The WAL restarted: continue in the next index, or start a new generation when continuity is
   * lost. SQLite gives each restart's header the previous salt-1 plus one (wal.c walRestartHdr), so a
   * new WAL whose salt-1 is not the shadow's plus one means a whole WAL lifetime came and went
   * between two copies: the app restarted the WAL while our read lock was released for a
   * checkpoint, and our checkpoint back-filled and restarted that lifetime in turn (torture seed
   * 500039). Its commits are in no shadow index; the new generation's snapshot has them.
   */
  startNextIndex(): void {
    const c = this.cur!;
    const prev = c.shadow;
    syncShadowFile(prev, this.shadowPath(c.generation, c.index));
    const next = this.shadowPath(c.generation, c.index + 1);
    const st = initShadow(next, this.walPath);
    if (!st) throw new LsinitError('LSINIT_ERR_DB', `${this.walPath}: WAL disappeared during a restart`);
    const from = prev.header.salt1;
    const why = this.reset ?? (st.header.salt1 !== ((from + 1) >>> 0) ? `a WAL lifetime was missed: the WAL restarted from salt-1 ${hex8(from)} to ${hex8(st.header.salt1)}, not to the next one, between two copies` : undefined);
    if (why) {
      rmSync(next, { force: true });
      this.reset = undefined;
      this.createGeneration(why);
      return;
    }
    this.cur = { generation: c.generation, index: c.index + 1, shadow: st };
    this.stats.totalWALBytes += st.size;
  }

  /**
   * Remove other generations' shadow dirs and shadow files no replica needs any more. `shipped`:
   * the lowest position every live replica holds (the controller's knowledge), or undefined (keep all).
   */
  clean(shipped: { generation: string; index: number } | undefined): void {
    const generation = this.cur?.generation;
    const gensDir = join(this.metaPath, 'generations');
    if (existsSync(gensDir)) {
      for (const g of readdirSync(gensDir)) if (g !== generation) rmSync(join(gensDir, g), { recursive: true, force: true });
    }
    // A position in another generation (this sync may just have started a new one) says nothing.
    const min = shipped !== undefined && shipped.generation === generation ? shipped.index : 0;
    if (min <= 1) return;
    const dir = this.generationDir(generation!);
    for (const n of readdirSync(dir)) {
      const m = SHADOW_RE.exec(n);
      if (m && Number.parseInt(m[1]!, 16) < min - 1) rmSync(join(dir, n), { force: true });
    }
  }
}
