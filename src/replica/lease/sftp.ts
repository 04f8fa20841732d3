/**
 * Lease store for `sftp` replicas. create = SFTP OPEN with CREAT|EXCL (ssh2 flags 'wx'; OpenSSH's
 * sftp-server passes O_EXCL to open(2), so exactly one creator wins), then one WRITE of the whole
 * lease and fsync@openssh.com when offered. replace = read and compare the content hash (the
 * token), write a temporary file, posix-rename@openssh.com over the lease. delete = compare, unlink.
 *
 * Between OPEN and WRITE the lease is briefly empty; readers report it as `corrupt` and the guard
 * re-reads after a grace period before treating it as abandoned. The check-then-rename of replace
 * has the same narrow window as the file store (see file.ts): the loser finds out at its next renew.
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { LsinitError } from '../../errors.js';
import { countOp } from '../../metrics/ops.js';
import { openConn, SFTP_NO_SUCH_FILE, sftpCode, sftpError, target, type SFTPConn, type SFTPSettings } from '../clients/sftp-conn.js';
import { contentToken, encodeLease, LEASE_NAME, leaseConflict, recordOf, type Lease, type LeaseRecord, type LeaseStore } from './types.js';

/** A lease is ~200 bytes; anything past this is not ours. */
const MAX_READ = 64 * 1024;

export class SFTPLeaseStore implements LeaseStore {
  readonly type = 'sftp';
  readonly location: string;
  private readonly file: string;
  private conn: Promise<SFTPConn> | undefined;
  private closed = false;

  constructor(private readonly settings: SFTPSettings) {
    this.file = posix.join(settings.path || '.', LEASE_NAME);
    this.location = `sftp://${target(settings)}${this.file.startsWith('/') ? '' : '/'}${this.file}`;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `SFTPLeaseStore { ${this.location} }`;
  }

  async read(): Promise<LeaseRecord | undefined> {
    const data = await this.run('read', (c) => this.readBytes(c));
    return data === undefined ? undefined : recordOf(data, contentToken(data));
  }

  async create(lease: Lease): Promise<string> {
    const data = encodeLease(lease);
    return this.run('create', async (c) => {
      await this.mkdirs(c, posix.dirname(this.file));
      let h: Buffer;
      try {
        // ssh2 maps 'wx' to WRITE|CREAT|TRUNC|EXCL; SFTPConn.open is typed for 'r' | 'w' only.
        h = await c.open(this.file, 'wx');
      } catch (err) {
        // OpenSSH reports EEXIST as a generic FAILURE: look whether the file is there.
        if (await this.exists(c)) throw leaseConflict(this, 'create', 'a lease object already exists', err);
        throw err;
      }
      try {
        await this.writeAll(c, h, data);
      } catch (err) {
        await c.close(h).catch(() => {});
        await c.unlink(this.file).catch(() => {});
        throw err;
      }
      await c.close(h);
      countOp('sftp', 'PUT', data.length);
      return contentToken(data);
    });
  }

  async replace(lease: Lease, token: string): Promise<string> {
    const data = encodeLease(lease);
    return this.run('replace', async (c) => {
      await this.check(c, 'replace', token);
      const tmp = posix.join(posix.dirname(this.file), `.${LEASE_NAME}.${randomBytes(6).toString('hex')}.tmp`);
      const h = await c.open(tmp, 'wx');
      try {
        await this.writeAll(c, h, data);
      } finally {
        await c.close(h).catch(() => {});
      }
      try {
        if (c.hasExtension('posix-rename@openssh.com')) await c.posixRename(tmp, this.file);
        else {
          // SFTP v3 RENAME refuses an existing target; without the extension, unlink first.
          await c.unlink(this.file).catch(() => {});
          await c.rename(tmp, this.file);
        }
      } catch (err) {
        await c.unlink(tmp).catch(() => {});
        throw err;
      }
      countOp('sftp', 'PUT', data.length);
      return contentToken(data);
    });
  }

  async delete(token: string): Promise<void> {
    await this.run('delete', async (c) => {
      if (!(await this.check(c, 'delete', token, true))) return;
      try {
        await c.unlink(this.file);
        countOp('sftp', 'DELETE');
      } catch (err) {
        if (sftpCode(err) !== SFTP_NO_SUCH_FILE) throw err;
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.conn;
    this.conn = undefined;
    if (c) await c.then((x) => x.end(), () => {});
  }

  private async check(c: SFTPConn, op: 'replace' | 'delete', token: string, goneOk = false): Promise<boolean> {
    const data = await this.readBytes(c);
    if (data === undefined) {
      if (goneOk) return false;
      throw leaseConflict(this, op, 'the lease object is gone');
    }
    if (contentToken(data) !== token) throw leaseConflict(this, op, 'the lease object was replaced by another holder');
    return true;
  }

  private async readBytes(c: SFTPConn): Promise<Buffer | undefined> {
    let h: Buffer;
    try {
      h = await c.open(this.file, 'r');
    } catch (err) {
      if (sftpCode(err) === SFTP_NO_SUCH_FILE) return undefined;
      throw err;
    }
    const parts: Buffer[] = [];
    let pos = 0;
    try {
      while (pos < MAX_READ) {
        const b = await c.read(h, 4096, pos);
        if (b.length === 0) break;
        parts.push(Buffer.from(b));
        pos += b.length;
      }
    } finally {
      await c.close(h).catch(() => {});
    }
    countOp('sftp', 'GET', pos);
    return Buffer.concat(parts);
  }

  private async writeAll(c: SFTPConn, h: Buffer, data: Buffer): Promise<void> {
    await c.write(h, data, 0);
    if (c.hasExtension('fsync@openssh.com')) await c.fsync(h);
  }

  private async exists(c: SFTPConn): Promise<boolean> {
    try {
      await c.stat(this.file);
      return true;
    } catch {
      return false;
    }
  }

  private async mkdirs(c: SFTPConn, dir: string): Promise<void> {
    if (dir === '.' || dir === '/' || dir === '') return;
    try {
      if ((await c.stat(dir)).isDirectory()) return;
    } catch (err) {
      if (sftpCode(err) !== SFTP_NO_SUCH_FILE) throw err;
    }
    await this.mkdirs(c, posix.dirname(dir));
    await c.mkdir(dir).catch(async (err: unknown) => {
      // Lost a race with another creator: fine if it is a directory now.
      if (!(await c.stat(dir).then((s) => s.isDirectory(), () => false))) throw err;
    });
  }

  private connection(): Promise<SFTPConn> {
    if (this.closed) return Promise.reject(new LsinitError('LSINIT_ERR_REPLICA', 'sftp: lease store is closed'));
    if (this.conn) return this.conn;
    const p = openConn(this.settings).then((c) => {
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

  /** One operation; a connection found dead is replaced once (a lease op is small and replayable). */
  private async run<T>(op: string, fn: (c: SFTPConn) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const c = await this.connection();
      try {
        return await fn(c);
      } catch (err) {
        if (err instanceof LsinitError) throw err;
        if (c.alive || attempt >= 2 || this.closed) throw sftpError(`lease ${op}`, this.file, this.settings, err);
        await c.end();
      }
    }
  }
}
