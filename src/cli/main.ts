/**
 * The lsinit binary: Litestream 0.3's subcommands, plus init mode (`lsinit [flags] -- CMD`).
 * The only module that calls process.exit.
 */
import { existsSync } from 'node:fs';
import { DEFAULT_CONFIG_PATH } from '../config/default-path.js';
import { LsinitError } from '../errors.js';
import { createLogger } from '../log/logger.js';
import { VERSION } from '../version.js';
import { errorLine, exitCodeOf } from './exit-codes.js';

// First thing: SIGUSR1 must never open Node's inspector (it is forwarded to the app in init mode).
process.on('SIGUSR1', () => {});

const HELP = `lsinit is a Litestream-0.3-compatible SQLite replicator and a container init.

Usage:
  lsinit <command> [arguments]
  lsinit [init flags] -- COMMAND [ARGS...]     run COMMAND as PID 1 with replication

Commands:
  databases    list databases specified in config file
  generations  list available generations for a database
  replicate    runs a server to replicate databases
  restore      recovers database backup from a replica
  snapshots    list available snapshots for a database
  version      prints the binary version
  wal          list available WAL files for a database
  init         run a command under lsinit as init (same as \`lsinit [flags] -- CMD\`)

Run \`lsinit <command> -h\` for a command's flags.
`;

/** `replicate … -exec CMD`, or init mode with a config (-config, $LITESTREAM_CONFIG or the default file). */
function runsWorker(argv: string[], initMode: boolean): boolean {
  if (argv[0] === 'replicate') return argv.some((a) => /^--?exec(=|$)/.test(a));
  if (!initMode) return false;
  const end = argv.indexOf('--');
  return argv.slice(0, end < 0 ? argv.length : end).some((a) => /^--?config(=|$)/.test(a)) || !!process.env['LITESTREAM_CONFIG'] || existsSync(DEFAULT_CONFIG_PATH);
}

async function run(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const initMode = cmd === 'init' || (cmd !== undefined && (cmd === '--' || (cmd.startsWith('-') && argv.includes('--'))));
  // A replication worker boots while this thread loads the rest (replicate/worker-start.ts;
  // init/command.ts stops it if the config turns out not to need one).
  if (runsWorker(argv, initMode)) (await import('../replicate/worker-start.js')).startWorkerEarly();
  const log = createLogger({ level: process.env['LSINIT_LOG_LEVEL'] === 'debug' ? 'debug' : 'info' });
  // Init mode: `lsinit -- cmd`, `lsinit -config x -- cmd`, `lsinit init ...`.
  if (initMode) {
    const { runInit } = await import('../init/command.js');
    return runInit(cmd === 'init' ? rest : argv);
  }
  switch (cmd) {
    case 'replicate': {
      const { replicateCommand } = await import('./replicate.js');
      return replicateCommand(rest, log);
    }
    // Commands are imported on demand: `lsinit -- app` starts the app without loading them.
    case 'restore':
      return (await import('./restore.js')).restoreCommand(rest, log);
    case 'generations':
      return (await import('./list.js')).generationsCommand(rest);
    case 'snapshots':
      return (await import('./list.js')).snapshotsCommand(rest);
    case 'wal':
      return (await import('./list.js')).walCommand(rest);
    case 'databases':
      return (await import('./list.js')).databasesCommand(rest, log);
    case 'version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case undefined:
    case 'help':
    case '-h':
    case '-help':
    case '--help':
      process.stdout.write(HELP);
      return cmd === undefined ? 1 : 0;
    default:
      throw new LsinitError('LSINIT_ERR_USAGE', `unknown command "${cmd}": run \`lsinit help\` for the list`);
  }
}

run(process.argv.slice(2)).then(
  // Always exit explicitly: a natural exit would close the SQLite connections, whose
  // close-time checkpoint deletes the -wal (see sqlite/connections.ts).
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${errorLine(err)}\n`);
    if (process.env['LSINIT_DEBUG'] && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exit(exitCodeOf(err));
  },
);
