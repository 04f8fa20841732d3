/**
 * `npm pack` then `npm i -g lsinit-*.tgz` (README "Use it like Litestream"): the tarball holds the
 * launcher and every compiled module, and the packed `lsinit` runs from PATH as a global install
 * links it. Offline: the tarball is unpacked into a temp prefix laid out as `npm i -g --prefix`
 * lays it out (lib/node_modules/lsinit + bin/lsinit → the package's bin), with this checkout's
 * node_modules standing in for the dependencies npm would fetch. `npm test` builds dist/ first.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT } from './helpers/cli.js';
import { integrity } from './helpers/replicate.js';
import { loadScenario, sha256File, stageReplica } from './helpers/vectors.js';

describe('npm pack + npm i -g lsinit-*.tgz', () => {
  const work = mkdtempSync(join(tmpdir(), 'lsinit-pack-'));
  const prefix = join(work, 'prefix');
  const pkgDir = join(prefix, 'lib', 'node_modules', 'lsinit');
  let files: string[] = [];
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string>; dependencies: Record<string, string> };
  before(() => {
    // --ignore-scripts: `npm test` already built dist/; a prepare run here would rebuild it under
    // the tests running beside this one.
    const p = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(p.status, 0, p.stderr);
    const info = JSON.parse(p.stdout) as [{ filename: string; files: { path: string; mode: number }[] }];
    files = info[0].files.map((f) => f.path);
    mkdirSync(pkgDir, { recursive: true });
    const x = spawnSync('tar', ['-xzf', join(work, info[0].filename), '-C', pkgDir, '--strip-components=1'], { encoding: 'utf8' });
    assert.equal(x.status, 0, x.stderr);
    symlinkSync(join(ROOT, 'node_modules'), join(pkgDir, 'node_modules'));
    mkdirSync(join(prefix, 'bin'));
    for (const [name, rel] of Object.entries(pkg.bin)) symlinkSync(join(pkgDir, rel), join(prefix, 'bin', name));
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const run = (args: string[]) => {
    // Only the prefix's bin and node's own directory on PATH: `lsinit` must come from the package.
    const r = spawnSync('lsinit', args, { cwd: work, encoding: 'utf8', env: { PATH: [join(prefix, 'bin'), dirname(process.execPath)].join(delimiter), HOME: work } });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, error: r.error };
  };

  it('the tarball holds the launcher, package.json and a compiled module for every source module', () => {
    assert.ok(files.includes('bin/lsinit.js') && files.includes('package.json') && files.includes('README.md') && files.includes('LICENSE'));
    const srcModules = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
    for (const m of srcModules) assert.ok(files.includes(`dist/${m.replace(/\.ts$/, '.js')}`), `dist/${m.replace(/\.ts$/, '.js')} is not packed`);
    assert.deepEqual(files.filter((f) => !/^(bin\/|dist\/|package\.json$|README\.md$|LICENSE)/.test(f)), [], 'nothing but bin/, dist/, package.json, README');
    assert.ok(statSync(join(pkgDir, 'bin/lsinit.js')).mode & 0o111, 'bin/lsinit.js is executable');
    assert.match(readFileSync(join(pkgDir, 'bin/lsinit.js'), 'utf8'), /^#!\/usr\/bin\/env node\n/);
  });

  it('`lsinit version` and `lsinit help` run from PATH', () => {
    const v = run(['version']);
    assert.equal(v.error, undefined);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout, `v${pkg.version}\n`);
    const h = run(['help']);
    assert.equal(h.status, 0);
    assert.match(h.stdout, /^lsinit is a Litestream-0\.3-compatible SQLite replicator/);
  });

  it('the installed lsinit restores a Litestream 0.3.13 replica (SQLite, LZ4 and the CLI all load from the package)', () => {
    const replica = stageReplica('basic', work);
    const out = join(work, 'restored.db');
    const r = run(['restore', '-o', out, `file://${replica}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(integrity(out), 'ok');
    const c = loadScenario('basic').cases.find((k) => Object.keys(k.args).length === 0 && k.expect.outcome === 'ok');
    assert.ok(c, 'the basic scenario has a latest-state case');
    assert.equal(sha256File(out), c.expect.sha256, 'the same bytes as Litestream restored');
  });
});
