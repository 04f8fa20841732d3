/**
 * systemd socket activation passthrough (catatonit's LISTEN_PID rewrite). sd_listen_fds(3) only trusts
 * LISTEN_FDS when LISTEN_PID is the reader's own pid; it names lsinit, not the app, and Node cannot set
 * an environment variable between fork and exec. So when the sockets were meant for us, the app is
 * started through `sh -c 'LISTEN_PID=$$; exec "$@"'` (exec keeps the pid) with fds 3..3+N-1 passed on.
 * Litestream's -exec breaks socket activation (roots/wp-packages#95); this keeps it working.
 */
import type { StdioOptions } from 'node:child_process';

const SD_LISTEN_FDS_START = 3;

/** The number of activation fds meant for this process, or 0. */
export function listenFdCount(env: NodeJS.ProcessEnv, selfPid: number): number {
  if (env.LISTEN_PID !== String(selfPid)) return 0;
  const n = Number(env.LISTEN_FDS);
  return Number.isInteger(n) && n > 0 && n <= 1024 ? n : 0;
}

export function activationSpawn(argv: readonly string[], count: number): { file: string; args: string[]; stdio: StdioOptions } {
  const fds = Array.from({ length: count }, (_, i) => SD_LISTEN_FDS_START + i);
  return {
    file: '/bin/sh',
    args: ['-c', 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', 'lsinit', ...argv],
    stdio: ['inherit', 'inherit', 'inherit', ...fds],
  };
}
