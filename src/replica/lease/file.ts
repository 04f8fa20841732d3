/**
 * Lease store for `file` replicas. Create is `open(O_CREAT|O_EXCL)` (atomic on every local
 * filesystem, and on NFSv3+); replace writes a temporary file and renames it over the lease after
 * checking that the current bytes still hash to the caller's token.
 *
 * The check and the rename are two steps: two replacers holding the same token inside the same
 * millisecond could both pass. That needs an expired lease taken over while its holder is still
 * alive and renewing; whichever rename lands first is overwritten, and that instance's next renew
 * (≤ one renew interval later) fails its holder check and stops loudly. Nothing is lost silently.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { LsinitError } from '../../errors.js';
import { countOp } from '../../metrics/ops.js';
import type { FileSettings } from '../clients/file-backend.js';
import { contentToken, encodeLease, LEASE_NAME, leaseConflict, recordOf, type Lease, type LeaseRecord, type LeaseStore } from './types.js';

export class FileLeaseStore implements LeaseStore {
  readonly type = 'file';
  readonly location: string;
  private readonly file: string;

  constructor(settings: FileSettings) {
    this.file = join(settings.path, LEASE_NAME);
    this.location = `file://${this.file}`;
  }

  async read(): Promise<LeaseRecord | undefined> {
    const data = await this.readBytes();
    return data === undefined ? undefined : recordOf(data, contentToken(data));
  }

  async create(lease: Lease): Promise<string> {
    const data = encodeLease(lease);
    await this.io('mkdir', () => mkdir(dirname(this.file), { recursive: true }));
    let fh;
    try {
      fh = await open(this.file, 'wx', 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw leaseConflict(this, 'create', 'a lease object already exists', err);
      throw this.error('create', err);
    }
    countOp(this.type, 'PUT', data.length);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } catch (err) {
      // A half-written lease would block others until they treat it as corrupt: remove it.
      await unlink(this.file).catch(() => {});
      throw this.error('write', err);
    } finally {
      await fh.close().catch(() => {});
    }
    await this.syncDir();
    return contentToken(data);
  }

  async replace(lease: Lease, token: string): Promise<string> {
    await this.check('replace', token);
    const data = encodeLease(lease);
    const tmp = join(dirname(this.file), `.${LEASE_NAME}.${randomBytes(6).toString('hex')}.tmp`);
    countOp(this.type, 'PUT', data.length);
    try {
      const fh = await open(tmp, 'wx', 0o644);
      try {
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.file);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw this.error('replace', err);
    }
    await this.syncDir();
    return contentToken(data);
  }

  async delete(token: string): Promise<void> {
    const held = await this.check('delete', token, true);
    if (!held) return;
    countOp(this.type, 'DELETE');
    await this.io('delete', () => unlink(this.file).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    }));
  }

  async close(): Promise<void> {}

  /** Throws a conflict unless the current bytes have `token`; false when gone and `goneOk`. */
  private async check(op: 'replace' | 'delete', token: string, goneOk = false): Promise<boolean> {
    const data = await this.readBytes();
    if (data === undefined) {
      if (goneOk) return false;
      throw leaseConflict(this, op, 'the lease object is gone');
    }
    if (contentToken(data) !== token) throw leaseConflict(this, op, 'the lease object was replaced by another holder');
    return true;
  }

  private async readBytes(): Promise<Buffer | undefined> {
    try {
      const data = await readFile(this.file);
      countOp(this.type, 'GET', data.length);
      return data;
    } catch (err) {
      countOp(this.type, 'GET');
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw this.error('read', err);
    }
  }

  /** Make the create/rename itself durable (a power loss must not resurrect an old lease). */
  private async syncDir(): Promise<void> {
    const fh = await open(dirname(this.file), 'r').catch(() => undefined);
    if (!fh) return;
    await fh.sync().catch(() => {});
    await fh.close().catch(() => {});
  }

  private async io<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.error(op, err);
    }
  }

  private error(op: string, err: unknown): LsinitError {
    if (err instanceof LsinitError) return err;
    const code = (err as NodeJS.ErrnoException).code;
    return new LsinitError('LSINIT_ERR_REPLICA', `lease ${op} ${this.file}: ${(err as Error).message}`, {
      cause: err,
      fields: { op, path: this.file, ...(code ? { errno: code } : {}) },
      transient: code === 'EIO' || code === 'EAGAIN' || code === 'EBUSY',
    });
  }
}
