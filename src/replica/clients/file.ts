/**
 * `file` replica client: the Litestream layout in a local directory. Writes go to `<name>.tmp`,
 * are fsynced and renamed into place (as Litestream's file client does), so a reader never sees
 * a partial object. Object time = file mtime read with nanosecond precision (vectors README).
 */
import * as fsp from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { LsinitError, notFound } from '../../errors.js';
import type { ByteSource } from '../../format/bytereader.js';
import { FileByteSource } from '../../format/file-source.js';
import * as paths from '../../format/paths.js';
import { countOp } from '../../metrics/ops.js';
import { byKey, type Body, type ObjectInfo, type Pos, type ReplicaClient, type SnapshotInfo, type WALSegmentInfo } from '../client.js';

export interface FileClientOptions {
  /** Absolute directory of the replica. */
  path: string;
}

export class FileReplicaClient implements ReplicaClient {
  readonly type = 'file';
  readonly root: string;

  constructor(opts: FileClientOptions) {
    this.root = posix.resolve(opts.path);
  }

  async generations(): Promise<string[]> {
    countOp(this.type, 'LIST');
    const names = await readdirOrEmpty(paths.generationsDir(this.root));
    return names.filter(paths.isGenerationName).sort();
  }

  async deleteGeneration(generation: string): Promise<void> {
    countOp(this.type, 'DELETE');
    await fsp.rm(paths.generationDir(this.root, generation), { recursive: true, force: true });
  }

  async snapshots(generation: string): Promise<SnapshotInfo[]> {
    countOp(this.type, 'LIST');
    const dir = paths.snapshotsDir(this.root, generation);
    const out: SnapshotInfo[] = [];
    for (const name of await readdirOrEmpty(dir)) {
      const index = paths.parseSnapshotName(name);
      if (index === undefined) continue;
      const st = await statOrUndefined(posix.join(dir, name));
      if (!st) continue;
      out.push({ generation, index, size: Number(st.size), createdAt: st.mtimeNs });
    }
    return out.sort((a, b) => a.index - b.index);
  }

  async writeSnapshot(generation: string, index: number, body: Body): Promise<SnapshotInfo> {
    const p = paths.snapshotPath(this.root, generation, index);
    const size = await this.writeFile(p, body);
    const st = await fsp.stat(p, { bigint: true });
    return { generation, index, size, createdAt: st.mtimeNs };
  }

  async deleteSnapshot(generation: string, index: number): Promise<void> {
    countOp(this.type, 'DELETE');
    await fsp.rm(paths.snapshotPath(this.root, generation, index), { force: true });
  }

  async snapshotReader(generation: string, index: number): Promise<Readable> {
    return this.openReader(paths.snapshotPath(this.root, generation, index), { generation, index });
  }

  async snapshotSource(generation: string, index: number, onBytes: (n: number) => void): Promise<ByteSource> {
    const p = paths.snapshotPath(this.root, generation, index);
    const fh = await this.openObject(p, { generation, index });
    const st = await fh.stat();
    countOp(this.type, 'GET', st.size);
    return new FileByteSource(fh, st.size, onBytes);
  }

  async walSegments(generation: string): Promise<WALSegmentInfo[]> {
    countOp(this.type, 'LIST');
    const dir = paths.walDir(this.root, generation);
    const out: WALSegmentInfo[] = [];
    for (const name of await readdirOrEmpty(dir)) {
      const parsed = paths.parseWALSegmentName(name);
      if (!parsed) continue;
      const st = await statOrUndefined(posix.join(dir, name));
      if (!st) continue;
      out.push({ generation, index: parsed.index, offset: parsed.offset, size: Number(st.size), createdAt: st.mtimeNs });
    }
    return out.sort((a, b) => a.index - b.index || a.offset - b.offset);
  }

  async writeWALSegment(pos: Pos, body: Body): Promise<WALSegmentInfo> {
    const p = paths.walSegmentPath(this.root, pos.generation, pos.index, pos.offset);
    const size = await this.writeFile(p, body);
    const st = await fsp.stat(p, { bigint: true });
    return { generation: pos.generation, index: pos.index, offset: pos.offset, size, createdAt: st.mtimeNs };
  }

  async deleteWALSegments(positions: Pos[]): Promise<void> {
    for (const pos of positions) {
      countOp(this.type, 'DELETE');
      await fsp.rm(paths.walSegmentPath(this.root, pos.generation, pos.index, pos.offset), { force: true });
    }
  }

  async walSegmentReader(pos: Pos): Promise<Readable> {
    return this.openReader(paths.walSegmentPath(this.root, pos.generation, pos.index, pos.offset), { ...pos });
  }

  async listObjects(dir: string): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    const walk = async (rel: string): Promise<void> => {
      countOp(this.type, 'LIST');
      let entries;
      try {
        entries = await fsp.readdir(paths.objectPath(this.root, rel), { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw err;
      }
      for (const e of entries) {
        const key = `${rel}/${e.name}`;
        if (e.isDirectory()) await walk(key);
        else if (e.isFile()) {
          const st = await statOrUndefined(posix.join(this.root, key));
          if (st) out.push({ key, size: Number(st.size), createdAt: st.mtimeNs });
        }
      }
    };
    await walk(dir);
    return out.sort(byKey);
  }

  async objectReader(key: string): Promise<Readable> {
    return this.openReader(paths.objectPath(this.root, key), { key });
  }

  async writeObject(key: string, body: Body): Promise<ObjectInfo> {
    const p = paths.objectPath(this.root, key);
    const size = await this.writeFile(p, body);
    const st = await fsp.stat(p, { bigint: true });
    return { key, size, createdAt: st.mtimeNs };
  }

  async close(): Promise<void> {}

  private async openObject(p: string, fields: Record<string, unknown>): Promise<fsp.FileHandle> {
    try {
      return await fsp.open(p, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`replica object ${p}`, { ...fields, path: p });
      throw err;
    }
  }

  private async openReader(p: string, fields: Record<string, unknown>): Promise<Readable> {
    const fh = await this.openObject(p, fields);
    const st = await fh.stat();
    countOp(this.type, 'GET', st.size);
    return readWhole(fh, st.size);
  }

  /** Write to `<p>.tmp`, fsync, rename: the object appears whole or not at all. */
  private async writeFile(p: string, body: Body): Promise<number> {
    await fsp.mkdir(posix.dirname(p), { recursive: true });
    const tmp = `${p}.tmp`;
    let size = 0;
    try {
      // One chunk written at a time, awaited: a pipeline into a write stream would queue up to 16
      // compressed 4 MiB blocks (64 MiB of RSS) whenever the disk is slower than the compressor.
      const fh = await fsp.open(tmp, 'w');
      try {
        if (body instanceof Uint8Array) {
          await fh.writeFile(body);
          size = body.byteLength;
        } else {
          for await (const c of body as AsyncIterable<Buffer>) {
            await writeAll(fh, c);
            size += c.length;
          }
        }
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, p);
    } catch (err) {
      await fsp.rm(tmp, { force: true }).catch(() => {});
      const code = (err as NodeJS.ErrnoException).code;
      throw new LsinitError('LSINIT_ERR_REPLICA', `file replica: cannot write ${p}: ${(err as Error).message}`, {
        cause: err,
        fields: { path: p },
        // A full disk or a read-only directory may be fixed by the operator: keep retrying later.
        transient: code === 'ENOSPC' || code === 'EIO' || code === 'EAGAIN',
      });
    }
    countOp(this.type, 'PUT', size);
    return size;
  }
}

/**
 * A stream of the object's bytes, read in buffers sized to what it holds. Objects are written
 * whole and renamed into place, so the size read at open is final. Without `end` the fs stream
 * allocates `highWaterMark` bytes for every read, copies a short one into a buffer of its size,
 * and reads once more to find the end: ~2 MiB of garbage per small WAL segment during a restore.
 * An object up to 4 MiB (an LZ4 block) is one chunk: a download-ahead keeps it without joining.
 */
function readWhole(fh: fsp.FileHandle, size: number): Readable {
  if (size === 0) return fh.createReadStream({ autoClose: true, highWaterMark: 1 << 10 }); // `end` cannot say "nothing"
  return fh.createReadStream({ autoClose: true, start: 0, end: size - 1, highWaterMark: size <= WHOLE_READ ? size : 1 << 20 });
}

/** Objects up to this size are read in one chunk. */
const WHOLE_READ = 4 << 20;

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fsp.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

async function statOrUndefined(p: string) {
  try {
    return await fsp.stat(p, { bigint: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function writeAll(fh: fsp.FileHandle, b: Buffer): Promise<void> {
  for (let off = 0; off < b.length; ) off += (await fh.write(b, off, b.length - off)).bytesWritten;
}
