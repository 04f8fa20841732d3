/** Run the built CLI (bin/lsinit.js → dist/) as a user would. `npm test` builds first. */
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type Options } from 'execa';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = resolve(ROOT, 'bin/lsinit.js');

export async function lsinit(args: string[], opts: Options = {}) {
  const r = await execa(process.execPath, [BIN, ...args], { reject: false, timeout: 120_000, ...opts });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '') };
}

export function spawnLsinit(args: string[], opts: Options = {}) {
  return execa(process.execPath, [BIN, ...args], { reject: false, ...opts });
}
