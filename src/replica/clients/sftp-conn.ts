/**
 * One SSH connection with an SFTP channel, opened with `ssh2-sftp-client` and then driven through
 * the raw ssh2 SFTP channel: the wrapper's per-call helpers add three event listeners per call
 * (MaxListeners warnings at 16 concurrent uploads) and drop the SFTP status code we need to tell
 * "no such file" from "permission denied". Every failure leaves here as an LsinitError; messages
 * name user@host:port and never the password.
 */
import { readFile } from 'node:fs/promises';
import SftpClient from 'ssh2-sftp-client';
import { LsinitError } from '../../errors.js';
import { hostKeyCheck, type HostKeyPin } from './sftp-hostkey.js';

export interface SFTPSettings {
  host: string;
  port: number;
  user: string;
  /** Non-enumerable on resolved settings (never printed); do not spread settings objects. */
  readonly password?: string;
  keyPath?: string;
  /** Remote directory of the replica; absolute, or relative to the login directory. */
  path: string;
  hostKey?: HostKeyPin;
  knownHostsPath?: string;
  /** Dial + handshake timeout in ms (Litestream: 30 s, not configurable). */
  dialTimeoutMs?: number;
}

type SFTPWrapper = Awaited<ReturnType<SftpClient['connect']>>;
export type SFTPStats = Parameters<Parameters<SFTPWrapper['stat']>[1]>[1];
export interface DirEntry {
  name: string;
  attrs: SFTPStats;
}

/** SFTP v3 status codes (draft-ietf-secsh-filexfer-02 §7), as ssh2 puts them on `err.code`. */
export const SFTP_NO_SUCH_FILE = 2;
const SFTP_PERMISSION_DENIED = 3;
const SFTP_FAILURE = 4;
const SFTP_BAD_MESSAGE = 5;
const SFTP_OP_UNSUPPORTED = 8;

const SFTP_CONNECTION_LOST = 7;

function connectionLostError(): Error {
  return Object.assign(new Error('connection lost'), { code: SFTP_CONNECTION_LOST });
}

export const DEFAULT_DIAL_TIMEOUT_MS = 30_000;
// A silently dead peer (no RST) is noticed after ~interval × (count + 1); ssh2 then fails pending calls.
const KEEPALIVE_INTERVAL_MS = 10_000;
const KEEPALIVE_COUNT_MAX = 3;

export function target(s: SFTPSettings): string {
  const host = s.host.includes(':') ? `[${s.host}]` : s.host;
  return `${s.user}@${host}:${s.port}`;
}

export function sftpCode(err: unknown): number | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'number' ? c : undefined;
}

/** Wrap a failed SFTP call. Permission and protocol errors are permanent; anything else (dropped connection, FAILURE such as a full disk) may pass. */
export function sftpError(op: string, path: string, s: SFTPSettings, err: unknown): LsinitError {
  if (err instanceof LsinitError) return err;
  const code = sftpCode(err);
  const permanent = code === SFTP_PERMISSION_DENIED || code === SFTP_BAD_MESSAGE || code === SFTP_OP_UNSUPPORTED;
  return new LsinitError('LSINIT_ERR_REPLICA', `sftp: ${op} ${path} on ${target(s)}: ${(err as Error)?.message ?? String(err)}`, {
    cause: err,
    fields: { op, path, host: s.host, port: s.port, user: s.user, ...(code !== undefined ? { sftpCode: code } : {}) },
    transient: !permanent,
  });
}

export class SFTPConn {
  /** False once the connection or its channel closed or failed; the owner then opens a new one. */
  alive = true;
  private readonly dropListeners = new Set<() => void>();
  private readonly pending = new Set<(err: Error) => void>();

  constructor(
    private readonly wrapper: SftpClient,
    private readonly sftp: SFTPWrapper,
    readonly settings: SFTPSettings,
  ) {}

  /** The ssh2 client keeps the connect config, password included: never print it. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `SFTPConn { ${target(this.settings)}, alive: ${this.alive} }`;
  }

  toJSON(): Record<string, unknown> {
    return { target: target(this.settings), alive: this.alive };
  }

  onDrop(fn: () => void): void {
    if (!this.alive) fn();
    else this.dropListeners.add(fn);
  }

  /** @internal called from the connection's close/error events. */
  drop(): void {
    if (!this.alive) return;
    this.alive = false;
    for (const settle of [...this.pending]) settle(connectionLostError());
    for (const fn of this.dropListeners) fn();
    this.dropListeners.clear();
  }

  async end(): Promise<void> {
    this.drop();
    await this.wrapper.end().catch(() => {});
  }

  /** True when the server offers an OpenSSH extension (`posix-rename@openssh.com`, `fsync@openssh.com`). */
  hasExtension(name: string): boolean {
    const ext = (this.sftp as unknown as { _extensions?: Record<string, string> })._extensions;
    return ext?.[name] === '1';
  }

  /**
   * Run one raw call. ssh2 answers calls made after the channel closed with nothing at all (the
   * request is dropped silently), and a call can race the close: so every pending call is
   * remembered and failed with CONNECTION_LOST when the connection drops.
   */
  private call<T>(fn: (cb: (err: Error | undefined | null, v?: T) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (!this.alive || (this.sftp as unknown as { outgoing?: { state?: string } }).outgoing?.state !== 'open') {
        reject(connectionLostError());
        return;
      }
      const settle = (err: Error | undefined | null, v?: T) => {
        if (!this.pending.delete(settle)) return;
        if (err) reject(err);
        else resolve(v as T);
      };
      this.pending.add(settle);
      try {
        fn(settle);
      } catch (err) {
        settle(err as Error);
      }
    });
  }

  readdir(p: string): Promise<DirEntry[]> {
    return this.call<Array<{ filename: string; attrs: SFTPStats }>>((cb) => this.sftp.readdir(p, cb)).then((list) =>
      list.map((e) => ({ name: e.filename, attrs: e.attrs })),
    );
  }
  stat(p: string): Promise<SFTPStats> {
    return this.call((cb) => this.sftp.stat(p, cb));
  }
  open(p: string, flags: 'r' | 'w' | 'wx'): Promise<Buffer> {
    return this.call((cb) => this.sftp.open(p, flags, cb));
  }
  close(handle: Buffer): Promise<void> {
    return this.call((cb) => this.sftp.close(handle, cb));
  }
  fstat(handle: Buffer): Promise<SFTPStats> {
    return this.call((cb) => this.sftp.fstat(handle, cb));
  }
  fsync(handle: Buffer): Promise<void> {
    return this.call((cb) => this.sftp.ext_openssh_fsync(handle, cb));
  }
  write(handle: Buffer, buf: Buffer, position: number): Promise<void> {
    return this.call((cb) => this.sftp.write(handle, buf, 0, buf.length, position, cb));
  }
  /** Read up to `len` bytes at `position`; a short result (or empty at EOF) is possible. */
  read(handle: Buffer, len: number, position: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(len);
    return this.call<number>((cb) =>
      this.sftp.read(handle, buf, 0, len, position, (err, n) => {
        // ssh2 reports EOF as an error with SFTP status 1 (SSH_FX_EOF).
        if (err && sftpCode(err) === 1) cb(undefined, 0);
        else cb(err, n);
      }),
    ).then((n) => buf.subarray(0, n));
  }
  unlink(p: string): Promise<void> {
    return this.call((cb) => this.sftp.unlink(p, cb));
  }
  mkdir(p: string): Promise<void> {
    return this.call((cb) => this.sftp.mkdir(p, cb));
  }
  rmdir(p: string): Promise<void> {
    return this.call((cb) => this.sftp.rmdir(p, cb));
  }
  /** Atomic replace (posix-rename@openssh.com). SFTP v3's plain RENAME fails when the target exists. */
  posixRename(from: string, to: string): Promise<void> {
    return this.call((cb) => this.sftp.ext_openssh_rename(from, to, cb));
  }
  rename(from: string, to: string): Promise<void> {
    return this.call((cb) => this.sftp.rename(from, to, cb));
  }
}

interface SSH2ClientLike {
  setNoDelay(noDelay?: boolean): unknown;
  on(event: string, fn: (...args: unknown[]) => void): unknown;
}

/** Open a connection and its SFTP channel. Auth and host-key failures are permanent LSINIT_ERR_AUTH. */
export async function openConn(s: SFTPSettings): Promise<SFTPConn> {
  const check = await hostKeyCheck({ ...(s.hostKey ? { pin: s.hostKey } : {}), ...(s.knownHostsPath ? { knownHostsPath: s.knownHostsPath } : {}), host: s.host, port: s.port });
  let privateKey: Buffer | undefined;
  if (s.keyPath) {
    try {
      privateKey = await readFile(s.keyPath);
    } catch (err) {
      throw new LsinitError('LSINIT_ERR_CONFIG', `sftp: cannot read key-path ${s.keyPath}: ${(err as Error).message}`, { cause: err, fields: { path: s.keyPath } });
    }
  }
  let conn: SFTPConn | undefined;
  let lastError: (Error & { level?: string }) | undefined;
  let hostRejected = false;
  // Global callbacks replace the wrapper's defaults, which print to the console.
  const wrapper = new SftpClient('lsinit', {
    error: () => conn?.drop(),
    end: () => conn?.drop(),
    close: () => conn?.drop(),
  });
  const ssh = (wrapper as unknown as { client: SSH2ClientLike }).client;
  // The wrapper's own listener rewraps errors and loses ssh2's `level` (authentication, timeout...).
  ssh.on('error', (err) => {
    lastError = err as Error & { level?: string };
    conn?.drop();
  });
  ssh.on('close', () => conn?.drop());
  const config: SftpClient.ConnectOptions = {
    host: s.host,
    port: s.port,
    username: s.user,
    readyTimeout: s.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS,
    keepaliveInterval: KEEPALIVE_INTERVAL_MS,
    keepaliveCountMax: KEEPALIVE_COUNT_MAX,
    // Litestream offers password and public key only; no agent, no keyboard-interactive.
    tryKeyboard: false,
    ...(s.password !== undefined ? { password: s.password } : {}),
    ...(privateKey ? { privateKey } : {}),
    ...(check
      ? {
          hostVerifier: (key: Buffer) => {
            const ok = check.verify(key);
            if (!ok) hostRejected = true;
            return ok;
          },
        }
      : {}),
    ...(check?.algorithms ? { algorithms: { serverHostKey: check.algorithms as never } } : {}),
  };
  let sftp: SFTPWrapper;
  try {
    sftp = await wrapper.connect(config);
  } catch (err) {
    await wrapper.end().catch(() => {});
    throw connectError(s, err, lastError, hostRejected ? check : undefined);
  }
  // Nagle's algorithm holds back the small SFTP packets that follow each write: a 20 MB stream
  // upload took 13-17 s instead of 0.2-1 s on loopback (test-servers.md, SFTP traps).
  ssh.setNoDelay(true);
  conn = new SFTPConn(wrapper, sftp, s);
  sftp.on('error', () => conn?.drop());
  sftp.on('close', () => conn?.drop());
  return conn;
}

function connectError(s: SFTPSettings, err: unknown, raw: (Error & { level?: string }) | undefined, rejected: Awaited<ReturnType<typeof hostKeyCheck>>): LsinitError {
  const fields = { host: s.host, port: s.port, user: s.user };
  if (rejected) {
    const presented = rejected.presented();
    return new LsinitError('LSINIT_ERR_AUTH', `sftp: host key mismatch for ${target(s)}: server presented ${presented}, expected ${rejected.expected()}`, {
      cause: err,
      fields: { ...fields, presented, expected: rejected.expected() },
      transient: false,
    });
  }
  const e = raw ?? (err as Error & { level?: string });
  if (e?.level === 'client-authentication') {
    const methods = [s.password !== undefined ? 'password' : '', s.keyPath ? `publickey (${s.keyPath})` : ''].filter(Boolean).join(', ');
    return new LsinitError('LSINIT_ERR_AUTH', `sftp: authentication failed for ${target(s)} (tried: ${methods || 'none'})`, {
      cause: err,
      fields,
      transient: false,
    });
  }
  if (/private key|passphrase/i.test(e?.message ?? '')) {
    return new LsinitError('LSINIT_ERR_AUTH', `sftp: cannot use key-path ${s.keyPath} for ${target(s)}: ${e?.message}`, { cause: err, fields, transient: false });
  }
  // Refused, reset, timed out, DNS: the server may come back.
  const errno = (e as { code?: unknown } | undefined)?.code;
  return new LsinitError('LSINIT_ERR_REPLICA', `sftp: cannot connect to ${target(s)}: ${e?.message ?? String(err)}`, {
    cause: err,
    fields: { ...fields, ...(typeof errno === 'string' ? { errno } : {}) },
    transient: true,
  });
}

export { SFTP_FAILURE };
