/** Load a Litestream vectors scenario into a temp copy with every mtime set to the nanosecond. */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// Copied into the repository (test/fixtures/VECTORS-NOTE.md) so a fresh clone needs nothing beside it;
// LSINIT_VECTORS overrides.
export const VECTORS = process.env['LSINIT_VECTORS'] ?? resolve(dirname(fileURLToPath(import.meta.url)), '../fixtures/litestream-0.3.13');

export interface VectorFile { path: string; sha256: string; mtime_ns_str: string }
export interface Manifest { scenario: string; page_size: number; generations: string[]; files: VectorFile[] }
export interface Case {
  id: string;
  description: string;
  args: { generation?: string; index?: string; timestamp?: string };
  via: 'url' | 'config';
  /** For `via: config`: the config file in the scenario folder. */
  config_file?: string;
  setup?: { output_exists?: boolean };
  requires_ns_mtime?: boolean;
  expect: {
    outcome: 'ok' | 'error';
    sha256?: string;
    size?: number;
    page_size?: number;
    integrity_check?: string;
    fingerprint?: unknown;
    output_untouched?: boolean;
  };
}

export function loadScenario(name: string) {
  const dir = join(VECTORS, name);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as { cases: Case[] };
  return { dir, manifest, cases: expected.cases };
}

/** Copy replica/ to `dest`, verify every sha256, set mtimes with touch (ns precision). */
export function stageReplica(name: string, dest: string): string {
  const { dir, manifest } = loadScenario(name);
  const replica = join(dest, 'replica');
  cpSync(join(dir, 'replica'), replica, { recursive: true });
  for (const f of manifest.files) {
    const p = join(replica, f.path);
    const sum = createHash('sha256').update(readFileSync(p)).digest('hex');
    if (sum !== f.sha256) throw new Error(`vector file ${f.path} has sha256 ${sum}, manifest says ${f.sha256}`);
    const ns = f.mtime_ns_str;
    execFileSync('touch', ['-m', '-d', `@${ns.slice(0, -9)}.${ns.slice(-9)}`, p]);
  }
  return replica;
}

export function sha256File(p: string): string {
  return createHash('sha256').update(readFileSync(p)).digest('hex');
}
