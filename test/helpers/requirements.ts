/**
 * What the test suite needs from the machine, checked before any test runs (`npm test` runs
 * scripts/check-test-deps.ts first). The tests never install anything: a missing tool is named with
 * the package that has it and the one command that installs them all (scripts/install-system-deps.sh,
 * which .ci/run also uses). Tools whose tests skip themselves (shellcheck, docker-compose, kubectl,
 * script) are not listed.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export const INSTALL_COMMAND = 'sudo sh scripts/install-system-deps.sh';

export interface Requirement {
  /** A command looked up on PATH, or an absolute path. */
  tool: string;
  /** How to get it: a Debian package name (installed by the script), or a sentence. */
  from: string;
  why: string;
}

export const REQUIREMENTS: readonly Requirement[] = [
  { tool: '/usr/sbin/sshd', from: 'openssh-server', why: 'the sftp tests run a private OpenSSH sshd on 127.0.0.1' },
  { tool: '/usr/lib/openssh/sftp-server', from: 'openssh-server', why: 'the sftp subsystem of that sshd' },
  { tool: 'ssh-keygen', from: 'openssh-client', why: 'throwaway host and user keys for the sftp tests' },
  { tool: 'useradd', from: 'passwd', why: 'a throwaway user for the sftp tests' },
  { tool: 'sqlite3', from: 'sqlite3', why: 'interop: restore lsinit replicas with the sqlite3 command line' },
  { tool: 'lz4', from: 'lz4', why: 'interop: decode lsinit objects with the lz4 command line' },
  { tool: 'unshare', from: 'util-linux', why: 'the init tests run lsinit as PID 1 of a PID namespace' },
  { tool: 'git', from: 'git', why: 'the Docker tests check which files are tracked' },
  { tool: 'faketime', from: 'faketime', why: 'a real lsinit runs with its wall clock stepped back by libfaketime (the package brings libfaketime)' },
  { tool: 'moto_server', from: "Python moto: pip install 'moto[server]' (not a Debian package here)", why: 'the S3 tests run a real S3 server on 127.0.0.1' },
];

export interface Machine {
  PATH: string;
  uid: number;
  executable?: (path: string) => boolean;
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The requirements this machine does not meet, and whether it runs as root (sshd's user, unshare). */
export function missingRequirements(m: Machine): { tools: Requirement[]; root: boolean } {
  const x = m.executable ?? isExecutable;
  const dirs = m.PATH.split(delimiter).filter(Boolean);
  const found = (tool: string) => (tool.startsWith('/') ? x(tool) : dirs.some((d) => x(join(d, tool))));
  return { tools: REQUIREMENTS.filter((r) => !found(r.tool)), root: m.uid === 0 };
}

/** The message `npm test` prints when something is missing; empty when nothing is. */
export function requirementsMessage(m: Machine): string {
  const { tools, root } = missingRequirements(m);
  if (tools.length === 0 && root) return '';
  const lines = ['npm test: this machine is missing what the test suite needs; nothing was installed and no test ran.'];
  if (!root) lines.push('  - root: the sftp tests add a throwaway user for sshd and the init tests use unshare(1); run npm test as root (e.g. in a container)');
  for (const r of tools) lines.push(`  - ${r.tool} (${r.from}): ${r.why}`);
  if (tools.some((r) => !r.from.includes(' '))) lines.push(`Install the Debian/Ubuntu packages with: ${INSTALL_COMMAND}`);
  return `${lines.join('\n')}\n`;
}
