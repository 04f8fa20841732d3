/**
 * A real OpenSSH sshd for the sftp tests, on a free 127.0.0.1 port, with a throwaway ed25519 host
 * key, a throwaway system user (password and key auth) and a private sshd_config. Needs root
 * (useradd, privilege separation) and Debian's openssh-server; when it is missing the error says how
 * to install it (scripts/install-system-deps.sh): the tests never install packages themselves.
 *
 *   const sshd = await startSshd();   // in before()
 *   await sshd.stop();                // outage: kills the listener and every session
 *   await sshd.start();               // same port, same keys, same user
 *   await sshd.cleanup();             // in after(): stop, userdel, rm -rf
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { INSTALL_COMMAND } from '../helpers/requirements.js';

const run = promisify(execFile);
const SSHD = '/usr/sbin/sshd';
const SFTP_SERVER = '/usr/lib/openssh/sftp-server';

export interface Sshd {
  host: '127.0.0.1';
  port: number;
  user: string;
  password: string;
  /** Private key file the user may log in with. */
  clientKeyPath: string;
  /** The server's public key line, `ssh-ed25519 AAAA... comment`. */
  hostKeyLine: string;
  /** With `extraHostKeyTypes`: the public key line of each extra host key, by type (`rsa`, `ecdsa`). */
  extraHostKeys: Record<string, string>;
  /** `SHA256:...` of the host key, as `ssh-keygen -lf` prints it. */
  hostKeyFingerprint: string;
  /** The user's home: an absolute directory the user may write to. */
  home: string;
  /** `sftp://user:password@127.0.0.1:port<remotePath>` */
  url(remotePath: string): string;
  /** Everything sshd printed (sshd -e), for failure messages. */
  log(): string;
  /** With `logRequests`: every SFTP request the server handled so far, e.g. `open "/x" flags WRITE,CREATE,TRUNCATE mode 0666`. */
  requests(): string[];
  /** Start again on the same port after stop(). */
  start(): Promise<void>;
  /** Kill the listener and its per-connection children, so live sessions drop too. */
  stop(): Promise<void>;
  cleanup(): Promise<void>;
}

/** Never installs anything: names what is missing and how to install it (test/helpers/requirements.ts). */
function ensureSshd(): void {
  for (const p of [SSHD, SFTP_SERVER]) {
    if (!existsSync(p)) throw new Error(`${p} is missing: the sftp tests need OpenSSH's server (Debian package openssh-server); install the test suite's system packages with: ${INSTALL_COMMAND}`);
  }
}

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? res(addr.port) : rej(new Error('no port'))));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      res(true);
    });
    s.once('error', () => res(false));
  });
}

/** Pids whose parent chain leads to `root` (sshd's session children call setsid, so a process-group kill misses them). */
async function descendants(root: number): Promise<number[]> {
  const parent = new Map<number, number>();
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = await readFile(`/proc/${d}/stat`, 'utf8');
      // Field 4 (ppid) follows the parenthesised command name, which may itself contain spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(d), ppid);
    } catch {
      // The process exited while we looked.
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [pid, pp] of parent) {
      if (pp === p) {
        out.push(pid);
        walk(pid);
      }
    }
  };
  walk(root);
  return out;
}

function fingerprintOf(pubLine: string): string {
  const blob = Buffer.from(pubLine.trim().split(/\s+/)[1] ?? '', 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export async function startSshd(opts: { name?: string; logRequests?: boolean; extraHostKeyTypes?: Array<'rsa' | 'ecdsa'> } = {}): Promise<Sshd> {
  ensureSshd();
  // sshd refuses to start without its privilege-separation directory.
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const dir = await mkdtemp(join(tmpdir(), 'lsinit-sshd-'));
  // The throwaway user must traverse into its home below this directory.
  await chmod(dir, 0o755);
  const user = `lsi${randomBytes(5).toString('hex')}`;
  const password = `pw-${randomBytes(9).toString('base64url')}`;
  const home = join(dir, 'home');
  const keysDir = join(dir, 'authorized_keys');
  await mkdir(home);
  await mkdir(keysDir, { mode: 0o755 });
  const hostKey = join(dir, 'host_ed25519');
  const clientKeyPath = join(dir, 'client_ed25519');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'lsinit-test-host', '-f', hostKey]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'lsinit-test-client', '-f', clientKeyPath]);
  const hostKeyLine = (await readFile(`${hostKey}.pub`, 'utf8')).trim();
  // Like a stock server: more key types besides ed25519, offered in sshd's own preference order.
  const extraHostKeys: Record<string, string> = {};
  for (const type of opts.extraHostKeyTypes ?? []) {
    const f = join(dir, `host_${type}`);
    await run('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', `lsinit-test-host-${type}`, '-f', f]);
    extraHostKeys[type] = (await readFile(`${f}.pub`, 'utf8')).trim();
  }
  await writeFile(join(keysDir, user), await readFile(`${clientKeyPath}.pub`), { mode: 0o644 });

  let userCreated = false;
  let child: ChildProcess | undefined;
  let output = '';
  const port = await freePort();
  const conf = join(dir, 'sshd_config');
  const requestLog = join(dir, 'sftp-requests.log');
  if (opts.logRequests) await writeFile(requestLog, '', { mode: 0o666 });
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c?.pid || c.exitCode !== null) return;
    // Freeze the listener and every session process first, rescanning until nothing new appears:
    // a stopped process cannot fork, so no session child escapes the kill (an escaped privsep
    // child would hold the client's socket open without ever answering).
    const pids = new Set<number>([c.pid]);
    signal(c.pid, 'SIGSTOP');
    for (let grew = true; grew; ) {
      grew = false;
      for (const p of [...pids]) {
        for (const d of await descendants(p)) {
          if (pids.has(d)) continue;
          pids.add(d);
          signal(d, 'SIGSTOP');
          grew = true;
        }
      }
    }
    const exited = new Promise<void>((res) => c.once('exit', () => res()));
    for (const pid of pids) signal(pid, 'SIGKILL');
    await exited;
    // Session processes are reparented and reaped elsewhere; wait until they are gone.
    for (let i = 0; i < 100 && [...pids].some((p) => !isZombie(p)); i++) await sleep(10);
  };
  const start = async () => {
    if (child) return;
    for (let attempt = 0; ; attempt++) {
      const c = spawn(SSHD, ['-D', '-e', '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
      c.stderr!.setEncoding('utf8').on('data', (d: string) => (output = (output + d).slice(-20_000)));
      child = c;
      for (let i = 0; i < 500; i++) {
        if (c.exitCode !== null) break;
        if (await canConnect(port)) return;
        await sleep(10);
      }
      await stop();
      // The port may still be held for a moment by the previous run's dying processes; retry briefly.
      if (attempt >= 20) throw new Error(`sshd did not start on 127.0.0.1:${port}:\n${output}`);
      await sleep(100);
    }
  };
  const cleanup = async () => {
    await stop();
    if (userCreated) await run('userdel', [user]).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await run('useradd', ['-M', '-d', home, '-s', '/bin/sh', '-c', `lsinit test ${opts.name ?? ''}`.trim(), user]);
    userCreated = true;
    const ids = await uidGid(user);
    await chown(home, ...ids);
    if (opts.logRequests) await chown(requestLog, ...ids);
    const chpasswd = spawn('chpasswd', { stdio: ['pipe', 'ignore', 'inherit'] });
    chpasswd.stdin!.end(`${user}:${password}\n`);
    const code = await new Promise<number | null>((res) => chpasswd.once('exit', res));
    if (code !== 0) throw new Error(`chpasswd exited ${code}`);
    const lines = [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey}`,
      ...Object.keys(extraHostKeys).map((type) => `HostKey ${join(dir, `host_${type}`)}`),
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${keysDir}/%u`,
      'PubkeyAuthentication yes',
      'PasswordAuthentication yes',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'PermitRootLogin no',
      `AllowUsers ${user}`,
      // internal-sftp can only log to syslog; to count requests, run the external sftp-server
      // through the user's shell with its debug log (one line per request) sent to a file.
      opts.logRequests ? `Subsystem sftp ${SFTP_SERVER} -e -l DEBUG 2>>${requestLog}` : 'Subsystem sftp internal-sftp',
      // Tests open many short connections from one address in parallel.
      'MaxStartups 100:30:200',
      'LogLevel VERBOSE',
    ];
    // OpenSSH >= 9.8 penalises addresses after failed logins (the wrong-password tests would lock
    // 127.0.0.1 out); older versions reject the option, so keep it only when sshd accepts it.
    await writeFile(conf, [...lines, 'PerSourcePenalties no', ''].join('\n'));
    if (!(await run(SSHD, ['-t', '-f', conf]).then(() => true, () => false))) {
      await writeFile(conf, [...lines, ''].join('\n'));
      await run(SSHD, ['-t', '-f', conf]);
    }
    await start();
  } catch (err) {
    await cleanup();
    throw err;
  }

  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    clientKeyPath,
    hostKeyLine,
    extraHostKeys,
    hostKeyFingerprint: fingerprintOf(hostKeyLine),
    home,
    url: (remotePath) => `sftp://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}${remotePath}`,
    log: () => output,
    requests: () => (opts.logRequests ? parseRequests(readFileSync(requestLog, 'utf8')) : []),
    start,
    stop,
    cleanup,
  };
}

/**
 * The requests in an `sftp-server -e -l DEBUG` log. At that level it logs every request: either
 * `request <id>: <what>` (debug1: read, write, fstat, readdir...) or a plain line (open, close,
 * opendir, mkdir, remove, posix-rename, fsync...). Its replies (`sent ...`) and its own notes are skipped.
 */
export function parseRequests(log: string): string[] {
  const out: string[] = [];
  for (const raw of log.split('\n')) {
    const line = raw.replace(/\r$/, '').replace(/^debug1: /, '').replace(/^request \d+: /, '');
    if (line === '' || line.startsWith('sent ') || raw.startsWith('debug') && !/^debug1: request \d+: /.test(raw)) continue;
    if (/^(session (opened|closed)|received client version|Starting|request \d+)/.test(line)) continue;
    out.push(line);
  }
  return out;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

/** Gone or a zombie (reaped by whoever inherited it): either way it holds no socket any more. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] === 'Z';
  } catch {
    return true;
  }
}

async function uidGid(user: string): Promise<[number, number]> {
  const { stdout: uid } = await run('id', ['-u', user]);
  const { stdout: gid } = await run('id', ['-g', user]);
  return [Number(uid.trim()), Number(gid.trim())];
}
