/** Run the built CLI (bin/lsinit.js → dist/) as a user would. `npm test` builds first. */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import { execa, type Options } from 'execa';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = resolve(ROOT, 'bin/lsinit.js');

export async function lsinit(args: string[], opts: Options = {}) {
  const r = await execa(process.execPath, [BIN, ...args], { reject: false, timeout: 120_000, ...opts });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

/** lsinit processes a test started and did not see end (a failed assertion before its kill). */
const running = new Set<{ kill: (signal: NodeJS.Signals) => boolean }>();
// Their pipes would keep this test file's process alive after its last test, and the whole
// suite would wait for it: once the file's tests are done, whatever is still running is killed.
after(() => {
  for (const c of running) c.kill('SIGKILL');
});

/** Kill this child once the test file's tests are done, if it is still running then. */
export function killAtEnd<T extends { kill: (signal: NodeJS.Signals) => boolean } & PromiseLike<unknown>>(c: T): T {
  running.add(c);
  void Promise.resolve(c).then(() => running.delete(c), () => running.delete(c));
  return c;
}

export function spawnLsinit(args: string[], opts: Options = {}) {
  return killAtEnd(execa(process.execPath, [BIN, ...args], { reject: false, ...opts }));
}
