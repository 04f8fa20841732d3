/**
 * `sftp` replica client: the Litestream layout in a remote directory over SFTP.
 * Differences from Litestream 0.3's client (reference §3.4), all invisible in the stored format:
 * - writes go to `<name>.tmp`, are fsynced (fsync@openssh.com, when offered) and moved over the
 *   final name with posix-rename@openssh.com, so a reader never sees a partial object (Litestream
 *   writes in place);
 * - one connection is opened lazily, shared by concurrent calls and reopened after it drops;
 * - created directories are remembered per connection, so a segment upload is open, write(s),
 *   fsync, fstat, close, rename: no per-upload mkdir.
 * Object time = file mtime; SFTP v3 carries whole seconds only.
 */
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { LsinitError, notFound } from '../../errors.js';
import * as paths from '../../format/paths.js';
import { countOp } from '../../metrics/ops.js';
import { byKey, type Body, type ObjectInfo, type Pos, type ReplicaClient, type SnapshotInfo, type TimeNs, type WALSegmentInfo } from '../client.js';
import { openConn, SFTP_NO_SUCH_FILE, sftpCode, sftpError, target, type DirEntry, type SFTPConn, type SFTPSettings, type SFTPStats } from './sftp-conn.js';

// 32 KiB fits every SFTP server's packet limit (OpenSSH takes 256 KiB); keeping several requests
// in flight hides the round trip, which is what makes SFTP slow over a WAN.
const CHUNK = 32 * 1024;
const WINDOW = 32;
/** Parallel unlinks when deleting many objects. */
const DELETE_CONCURRENCY = 16;

export class SFTPReplicaClient implements ReplicaClient {
  readonly type = 'sftp';
  private conn: Promise<SFTPConn> | undefined;
  private closed = false;
  /** Directories known to exist on the current connection's server. */
  private dirs = new Set<string>();

  constructor(readonly settings: SFTPSettings) {}

  /** The connection holds the password: print where we connect, never how. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `SFTPReplicaClient { ${target(this.settings)}, path: ${JSON.stringify(this.settings.path)} }`;
  }

  toJSON(): Record<string, unknown> {
    return { type: this.type, target: target(this.settings), path: this.settings.path };
  }

  async generations(): Promise<string[]> {
    const entries = await this.list(paths.generationsDir(this.settings.path));
    return entries.filter((e) => e.attrs.isDirectory() && paths.isGenerationName(e.name)).map((e) => e.name).sort();
  }

  async deleteGeneration(generation: string): Promise<void> {
    const dir = paths.generationDir(this.settings.path, generation);
    await this.run('delete', dir, (c) => this.removeTree(c, dir));
    for (const d of this.dirs) if (d === dir || d.startsWith(`${dir}/`)) this.dirs.delete(d);
  }

  async snapshots(generation: string): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    for (const e of await this.list(paths.snapshotsDir(this.settings.path, generation))) {
      const index = paths.parseSnapshotName(e.name);
      if (index === undefined || !e.attrs.isFile()) continue;
      out.push({ generation, index, size: e.attrs.size, createdAt: mtimeNs(e.attrs) });
    }
    return out.sort((a, b) => a.index - b.index);
  }

  async writeSnapshot(generation: string, index: number, body: Body): Promise<SnapshotInfo> {
    const { size, createdAt } = await this.put(paths.snapshotPath(this.settings.path, generation, index), body);
    return { generation, index, size, createdAt };
  }

  async deleteSnapshot(generation: string, index: number): Promise<void> {
    const p = paths.snapshotPath(this.settings.path, generation, index);
    await this.run('delete', p, (c) => this.unlinkIfExists(c, p));
  }

  async snapshotReader(generation: string, index: number): Promise<Readable> {
    return this.get(paths.snapshotPath(this.settings.path, generation, index), { generation, index });
  }

  async walSegments(generation: string): Promise<WALSegmentInfo[]> {
    const out: WALSegmentInfo[] = [];
    for (const e of await this.list(paths.walDir(this.settings.path, generation))) {
      const parsed = paths.parseWALSegmentName(e.name);
      if (!parsed || !e.attrs.isFile()) continue;
      out.push({ generation, index: parsed.index, offset: parsed.offset, size: e.attrs.size, createdAt: mtimeNs(e.attrs) });
    }
    return out.sort((a, b) => a.index - b.index || a.offset - b.offset);
  }

  async writeWALSegment(pos: Pos, body: Body): Promise<WALSegmentInfo> {
    const { size, createdAt } = await this.put(paths.walSegmentPath(this.settings.path, pos.generation, pos.index, pos.offset), body);
    return { generation: pos.generation, index: pos.index, offset: pos.offset, size, createdAt };
  }

  async deleteWALSegments(positions: Pos[]): Promise<void> {
    const ps = positions.map((p) => paths.walSegmentPath(this.settings.path, p.generation, p.index, p.offset));
    await pMap(ps, DELETE_CONCURRENCY, (p) => this.run('delete', p, (c) => this.unlinkIfExists(c, p)));
  }

  async walSegmentReader(pos: Pos): Promise<Readable> {
    return this.get(paths.walSegmentPath(this.settings.path, pos.generation, pos.index, pos.offset), { ...pos });
  }

  async listObjects(dir: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    const walk = async (rel: string): Promise<void> => {
      for (const e of await this.list(paths.objectPath(this.settings.path, rel))) {
        const key = `${rel}/${e.name}`;
        if (e.attrs.isDirectory()) await walk(key);
        else if (e.attrs.isFile()) out.push({ key, size: e.attrs.size, createdAt: mtimeNs(e.attrs) });
      }
    };
    await walk(dir);
    return out.sort(byKey);
  }

  async objectReader(key: string): Promise<Readable> {
    return this.get(paths.objectPath(this.settings.path, key), { key });
  }

  async writeObject(key: string, body: Body): Promise<ObjectInfo> {
    return { key, ...(await this.put(paths.objectPath(this.settings.path, key), body)) };
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.conn;
    this.conn = undefined;
    if (c) await c.then((x) => x.end(), () => {});
  }

  // --- connection ---------------------------------------------------------------------------

  /** The shared connection, opened on first use and again after a drop. */
  private connection(): Promise<SFTPConn> {
    if (this.closed) return Promise.reject(new LsinitError('LSINIT_ERR_REPLICA', 'sftp: client is closed'));
    if (this.conn) return this.conn;
    const p = openConn(this.settings).then((c) => {
      // A new connection may reach a server whose directories were removed meanwhile.
      this.dirs = new Set();
      c.onDrop(() => {
        if (this.conn === p) this.conn = undefined;
      });
      return c;
    });
    p.catch(() => {
      if (this.conn === p) this.conn = undefined;
    });
    this.conn = p;
    return p;
  }

  /**
   * Run `fn` on the shared connection. When a connection that was already open turns out to be
   * dead (server restarted while we idled), `fn` runs once more on a fresh one, unless
   * `replayable()` says it can't (a stream body already partly read).
   */
  private async run<T>(op: string, path: string, fn: (c: SFTPConn) => Promise<T>, replayable: () => boolean = () => true): Promise<T> {
    const reused = this.conn !== undefined;
    const c = await this.connection();
    try {
      return await fn(c);
    } catch (err) {
      if (!connectionLost(c, err)) throw sftpError(op, path, this.settings, err);
      // Pending calls can fail before the close event arrives: retire the connection now.
      await c.end();
      if (replayable() && reused && !this.closed) {
        try {
          return await fn(await this.connection());
        } catch (err2) {
          throw sftpError(op, path, this.settings, err2);
        }
      }
      throw sftpError(op, path, this.settings, err);
    }
  }

  // --- operations ---------------------------------------------------------------------------

  private async list(dir: string): Promise<DirEntry[]> {
    countOp(this.type, 'LIST');
    return this.run('list', dir, (c) => readdirOrEmpty(c, dir));
  }

  private async get(p: string, fields: Record<string, unknown>): Promise<Readable> {
    const { conn, handle, size } = await this.run('read', p, async (c) => {
      let h: Buffer;
      try {
        h = await c.open(p, 'r');
      } catch (err) {
        if (sftpCode(err) === SFTP_NO_SUCH_FILE) throw notFound(`replica object ${p}`, { ...fields, path: p });
        throw err;
      }
      try {
        return { conn: c, handle: h, size: (await c.fstat(h)).size };
      } catch (err) {
        await c.close(h).catch(() => {});
        throw err;
      }
    });
    countOp(this.type, 'GET', size);
    return Readable.from(readChunks(conn, handle, size, (err) => sftpError('read', p, this.settings, err)), { objectMode: false, highWaterMark: 1 << 20 });
  }

  private async put(p: string, body: Body): Promise<{ size: number; createdAt: TimeNs }> {
    let streamed = false;
    const res = await this.run('write', p, (c) => this.upload(c, p, body, () => (streamed = !(body instanceof Uint8Array))), () => !streamed);
    countOp(this.type, 'PUT', res.size);
    return res;
  }

  private async upload(c: SFTPConn, p: string, body: Body, consuming: () => void): Promise<{ size: number; createdAt: TimeNs }> {
    const tmp = `${p}.tmp`;
    const handle = await this.openForWrite(c, tmp);
    let size = 0;
    let stat: SFTPStats;
    try {
      consuming();
      size = await writeAll(c, handle, body);
      // Durable before it becomes visible: the rename must not publish a file whose data is still in the server's page cache.
      if (c.hasExtension('fsync@openssh.com')) await c.fsync(handle);
      stat = await c.fstat(handle);
    } catch (err) {
      await c.close(handle).catch(() => {});
      await c.unlink(tmp).catch(() => {});
      throw err;
    }
    await c.close(handle);
    if (c.hasExtension('posix-rename@openssh.com')) {
      await c.posixRename(tmp, p);
    } else {
      // Servers without the OpenSSH extension: SFTP v3 RENAME refuses an existing target, so
      // remove it first (a short window without the object, never a partial one).
      await this.unlinkIfExists(c, p, false);
      await c.rename(tmp, p);
    }
    return { size, createdAt: mtimeNs(stat) };
  }

  private async openForWrite(c: SFTPConn, file: string): Promise<Buffer> {
    const dir = posix.dirname(file);
    if (!this.dirs.has(dir)) await this.mkdirp(c, dir);
    try {
      return await c.open(file, 'w');
    } catch (err) {
      if (sftpCode(err) !== SFTP_NO_SUCH_FILE) throw err;
      // Our directory cache was stale (a generation deleted by another process): create again.
      this.dirs.delete(dir);
      await this.mkdirp(c, dir);
      return c.open(file, 'w');
    }
  }

  /** mkdir -p in the fewest round trips for the common case: one mkdir when the parent exists. */
  private async mkdirp(c: SFTPConn, dir: string): Promise<void> {
    if (this.dirs.has(dir) || dir === '/' || dir === '.' || dir === '') return;
    try {
      await c.mkdir(dir);
    } catch (err) {
      if (sftpCode(err) === SFTP_NO_SUCH_FILE) {
        await this.mkdirp(c, posix.dirname(dir));
        await this.mkdirp(c, dir);
        return;
      }
      // OpenSSH answers FAILURE for "exists" (and for real failures): look before deciding.
      const st = await c.stat(dir).catch(() => undefined);
      if (!st?.isDirectory()) throw err;
    }
    this.dirs.add(dir);
  }

  private async unlinkIfExists(c: SFTPConn, p: string, count = true): Promise<void> {
    if (count) countOp(this.type, 'DELETE');
    try {
      await c.unlink(p);
    } catch (err) {
      if (sftpCode(err) !== SFTP_NO_SUCH_FILE) throw err;
    }
  }

  /** rm -rf over SFTP: Litestream walks the generation and removes files, then directories. */
  private async removeTree(c: SFTPConn, dir: string): Promise<void> {
    countOp(this.type, 'LIST');
    const entries = await readdirOrEmpty(c, dir);
    const files = entries.filter((e) => !e.attrs.isDirectory());
    const subdirs = entries.filter((e) => e.attrs.isDirectory());
    await pMap(files, DELETE_CONCURRENCY, (e) => this.unlinkIfExists(c, posix.join(dir, e.name)));
    for (const d of subdirs) await this.removeTree(c, posix.join(dir, d.name));
    try {
      await c.rmdir(dir);
    } catch (err) {
      if (sftpCode(err) !== SFTP_NO_SUCH_FILE) throw err;
    }
  }
}

/** The call failed because the connection went away, not because of what it asked. */
function connectionLost(c: SFTPConn, err: unknown): boolean {
  if (!c.alive) return true;
  if (err instanceof LsinitError) return false;
  const code = (err as { code?: unknown } | null)?.code;
  // 6/7: SFTP NO_CONNECTION / CONNECTION_LOST; ssh2 fails pending requests with "No response from server".
  if (code === 6 || code === 7 || code === 'ECONNRESET' || code === 'EPIPE') return true;
  return /No response from server|not connected|closed/i.test((err as Error)?.message ?? '');
}

function mtimeNs(attrs: SFTPStats): TimeNs {
  return BigInt(attrs.mtime) * 1_000_000_000n;
}

async function readdirOrEmpty(c: SFTPConn, dir: string): Promise<DirEntry[]> {
  try {
    return await c.readdir(dir);
  } catch (err) {
    if (sftpCode(err) === SFTP_NO_SUCH_FILE) return [];
    throw err;
  }
}

/** Write a buffer or stream at increasing offsets with up to WINDOW requests in flight. */
async function writeAll(c: SFTPConn, handle: Buffer, body: Body): Promise<number> {
  let pos = 0;
  const inflight: Promise<void>[] = [];
  const send = async (chunk: Buffer) => {
    for (let off = 0; off < chunk.length; off += CHUNK) {
      const piece = chunk.subarray(off, off + CHUNK);
      const w = c.write(handle, piece, pos);
      // Observed later in order; a rejection must not count as unhandled meanwhile.
      w.catch(() => {});
      inflight.push(w);
      pos += piece.length;
      if (inflight.length >= WINDOW) await inflight.shift();
    }
  };
  try {
    if (body instanceof Uint8Array) {
      await send(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    } else {
      for await (const chunk of body) await send(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
    }
  } finally {
    // Settle every request before the handle is closed, success or not.
    const results = await Promise.allSettled(inflight);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }
  return pos;
}

/** Stream a remote file with read-ahead; the handle is closed when the stream ends or is destroyed. */
async function* readChunks(c: SFTPConn, handle: Buffer, size: number, wrap: (err: unknown) => Error): AsyncGenerator<Buffer> {
  const queue: Promise<Buffer>[] = [];
  let next = 0;
  const readFull = async (pos: number, len: number): Promise<Buffer> => {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < len) {
      const b = await c.read(handle, len - got, pos + got);
      if (b.length === 0) break;
      parts.push(b);
      got += b.length;
    }
    if (got < len) throw new Error(`file shrank while reading: got ${pos + got} of ${size} bytes`);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  };
  const refill = () => {
    while (next < size && queue.length < WINDOW / 4) {
      const len = Math.min(CHUNK * 4, size - next);
      const r = readFull(next, len);
      r.catch(() => {});
      queue.push(r);
      next += len;
    }
  };
  try {
    refill();
    while (queue.length > 0) {
      let b: Buffer;
      try {
        b = await queue.shift()!;
      } catch (err) {
        throw wrap(err);
      }
      refill();
      yield b;
    }
  } finally {
    await Promise.allSettled(queue);
    await c.close(handle).catch(() => {});
  }
}

async function pMap<T>(items: readonly T[], n: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}
