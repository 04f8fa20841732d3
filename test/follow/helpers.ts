/** Shared parts of the follower tests: the bank app, readers in other processes, a follower child. */
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { execa } from 'execa';
import { killAtEnd, spawnLsinit } from '../helpers/cli.js';
import { sleep } from '../helpers/replicate.js';

const FIX = resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/follow');
export const BANK = resolve(FIX, 'bank.mjs');
export const READER = resolve(FIX, 'reader.mjs');

export async function bank(db: string, args: string[] = []): Promise<number> {
  const r = await execa(process.execPath, [BANK, db, ...args], { reject: false });
  if (r.exitCode !== 0) throw new Error(`bank failed: ${r.stderr}`);
  const lines = String(r.stdout).trim().split('\n');
  return Number(lines[lines.length - 1]!.split(' ')[1]);
}

export function startBank(db: string, args: string[]) {
  return execa(process.execPath, [BANK, db, ...args], { reject: false });
}

/** The follower copy's sequence number (0 when absent or not readable yet). */
export function followerSeq(path: string): number {
  if (!existsSync(path)) return 0;
  const d = new Database(path, { timeout: 5000 });
  try {
    return d.prepare("SELECT seq FROM meta WHERE k = 'seq'").pluck().get() as number;
  } catch {
    return 0;
  } finally {
    d.close();
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

export interface Reader {
  kind: string;
  /** Resolves once the reader's first read is done (python or the shell can take a while to start on a loaded machine). */
  ready: Promise<void>;
  finish(): Promise<{ out: string; reads: number; distinct: number; bad: string[]; errors: string[] }>;
}

export function startReader(path: string, kind: 'node' | 'python' | 'cli', hold = 0): Reader {
  const child = killAtEnd(execa(process.execPath, [READER, path, kind, ...(hold ? ['--hold', String(hold)] : [])], { reject: false, stdin: 'pipe' }));
  let seen = '';
  const ready = new Promise<void>((res) => {
    const on = (d: Buffer) => {
      seen += d.toString();
      if (seen.includes('READY')) {
        child.stdout!.off('data', on);
        res();
      }
    };
    child.stdout!.on('data', on);
  });
  return {
    kind,
    ready,
    async finish() {
      child.stdin!.end();
      const r = await child;
      const out = String(r.stdout);
      const m = /done reads=(\d+) distinct=(\d+)/.exec(out);
      return {
        out: `${out}\n${String(r.stderr)}`,
        reads: m ? Number(m[1]) : 0,
        distinct: m ? Number(m[2]) : 0,
        bad: out.split('\n').filter((l) => l.startsWith('BAD')),
        errors: out.split('\n').filter((l) => l.startsWith('ERR')),
      };
    },
  };
}

/** `lsinit restore -f ...` as a child, its output collected. */
export function startFollower(args: string[], env: Record<string, string> = {}) {
  const child = spawnLsinit(['restore', '-f', ...args], { all: true, buffer: true, env: { ...process.env, LSINIT_LOG_LEVEL: 'debug', ...env } });
  let out = '';
  child.all!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, output: () => out };
}

export function rows(path: string) {
  const d = new Database(path, { readonly: true });
  try {
    return {
      accounts: d.prepare('SELECT id, balance FROM accounts ORDER BY id').raw().all(),
      ledger: d.prepare('SELECT seq, amount, at, hex(pad) FROM ledger ORDER BY seq').raw().all(),
      meta: d.prepare('SELECT * FROM meta').raw().all(),
      integrity: d.pragma('integrity_check', { simple: true }),
      journalMode: d.pragma('journal_mode', { simple: true }),
    };
  } finally {
    d.close();
  }
}

/** A TCP proxy in front of a store, to cut the follower off (an outage) without touching the store. */
export async function startProxy(targetPort: number) {
  const sockets = new Set<Socket>();
  const server = createServer((c) => {
    const u = connect(targetPort, '127.0.0.1');
    for (const s of [c, u]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    c.pipe(u).pipe(c);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  let listening = true;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    async down() {
      if (!listening) return;
      listening = false;
      const closed = once(server, 'close');
      server.close();
      for (const s of sockets) s.destroy();
      await closed;
    },
    /** Stop for good (the listening server would keep the test process alive). */
    async close() {
      await this.down();
    },
    async up() {
      if (listening) return;
      server.listen(port, '127.0.0.1');
      await once(server, 'listening');
      listening = true;
    },
  };
}
