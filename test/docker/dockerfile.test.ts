/**
 * What can be checked about the images without a Docker engine: the Dockerfiles' structure (stages,
 * entrypoint, user, what reaches the runtime stage), that every COPY from the build context names a
 * file that exists and that .dockerignore sends, and — when one is installed — a Dockerfile linter.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/cli.js';
import { copyParts, dockerignore, last, parseDockerfile, stageArgs, substitute, type Dockerfile, type Stage } from './dockerfile.js';

const IMAGE = join(ROOT, 'docker/Dockerfile');

function read(path: string): Dockerfile {
  return parseDockerfile(readFileSync(path, 'utf8'));
}

/** Every Dockerfile this repository ships: docker/ and examples/. */
function allDockerfiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name === 'Dockerfile' || e.name.endsWith('.Dockerfile')) out.push(p);
    }
  };
  walk(join(ROOT, 'docker'));
  walk(join(ROOT, 'examples'));
  return out.sort();
}

function stage(df: Dockerfile, name: string): Stage {
  const s = df.stages.find((x) => x.name === name);
  assert.ok(s, `stage ${name} exists`);
  return s;
}

function runs(s: Stage): string[] {
  return s.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.rest);
}

test('docker/Dockerfile: a build stage and a runtime stage, both on node:20-bookworm-slim', () => {
  const df = read(IMAGE);
  assert.equal(df.directives['syntax'], 'docker/dockerfile:1');
  assert.deepEqual(
    df.stages.map((s) => [s.name, s.from]),
    [
      ['build', 'node:20-bookworm-slim'],
      ['runtime', 'node:20-bookworm-slim'],
    ],
  );
});

test('docker/Dockerfile: the build stage has the compiler toolchain, runs npm ci, builds, then prunes the devDependencies', () => {
  const build = stage(read(IMAGE), 'build');
  const script = runs(build).join(' && ');
  const apt = runs(build).find((r) => r.includes('apt-get install'));
  assert.ok(apt, 'apt-get install in the build stage');
  for (const pkg of ['python3', 'make', 'g++']) assert.match(apt, new RegExp(`\\s${pkg.replace('+', '\\+')}(\\s|$)`), `${pkg} installed`);
  assert.match(apt, /--no-install-recommends/);
  assert.match(apt, /rm -rf \/var\/lib\/apt\/lists/);
  // Order matters: dependencies, then the build, then the prune (a prune before the build would
  // remove typescript; a build after the prune could not run).
  const ci = script.indexOf('npm ci');
  const rebuild = script.indexOf('npm rebuild');
  const buildAt = script.indexOf('npm run build');
  const prune = script.indexOf('npm prune --omit=dev');
  assert.ok(ci >= 0 && rebuild > ci && buildAt > rebuild && prune > buildAt, `npm ci → npm rebuild → npm run build → npm prune --omit=dev in: ${script}`);
  // better-sqlite3 is compiled from source: prebuild-install must not try to download a binary.
  const env = build.instructions.filter((i) => i.keyword === 'ENV').map((i) => i.rest);
  assert.ok(env.some((e) => /npm_config_build_from_source=true/.test(e)), 'npm_config_build_from_source=true');
  // The sources come in after npm ci, so a change in src/ keeps the dependency layer.
  const copies = build.instructions.filter((i) => i.keyword === 'COPY');
  const depsCopy = copies.findIndex((c) => copyParts(c).sources.includes('package-lock.json'));
  const srcCopy = copies.findIndex((c) => copyParts(c).sources.includes('src'));
  assert.ok(depsCopy >= 0 && srcCopy > depsCopy, 'package*.json copied before src/');
});

test('docker/Dockerfile: the runtime stage copies only package.json, the pruned node_modules, dist/ and bin/ from the build', () => {
  const df = read(IMAGE);
  const runtime = stage(df, 'runtime');
  const fromBuild = runtime.instructions.filter((i) => i.keyword === 'COPY' && i.flags['from'] !== undefined);
  assert.ok(fromBuild.every((c) => c.flags['from'] === 'build'));
  const sources = fromBuild.flatMap((c) => copyParts(c).sources).sort();
  assert.deepEqual(sources, ['/build/bin', '/build/dist', '/build/node_modules', '/build/package.json']);
  // Nothing in the runtime stage installs packages or compiles: no toolchain, no devDependencies.
  for (const r of runs(runtime)) {
    assert.doesNotMatch(r, /\bnpm (ci|install|i)\b|apt-get install|\byarn\b|\bpnpm\b/, `runtime RUN installs nothing: ${r}`);
  }
  // From the build context the runtime takes the examples only (the demo app and configs).
  const fromContext = runtime.instructions.filter((i) => i.keyword === 'COPY' && i.flags['from'] === undefined);
  assert.deepEqual(fromContext.flatMap((c) => copyParts(c).sources), ['examples']);
});

test('docker/Dockerfile: ENTRYPOINT ["lsinit", "--"], a CMD, lsinit on the PATH, a non-root user, the /data volume', () => {
  const runtime = stage(read(IMAGE), 'runtime');
  assert.deepEqual(last(runtime, 'ENTRYPOINT')?.exec, ['lsinit', '--']);
  const cmd = last(runtime, 'CMD')?.exec;
  assert.ok(cmd && cmd.length > 0, 'CMD in exec form');
  assert.deepEqual(cmd, ['node', '/opt/lsinit/examples/quickstart/app.mjs']);
  assert.ok(
    runs(runtime).some((r) => /ln -s \/opt\/lsinit\/bin\/lsinit\.js \/usr\/local\/bin\/lsinit/.test(r)),
    '/usr/local/bin/lsinit → /opt/lsinit/bin/lsinit.js',
  );
  // The symlink runs bin/lsinit.js directly: it needs its #! line (and the exec bit, which the
  // image also sets).
  assert.match(readFileSync(join(ROOT, 'bin/lsinit.js'), 'utf8'), /^#!\/usr\/bin\/env node\n/);
  const user = last(runtime, 'USER');
  assert.ok(user, 'USER set');
  const resolved = substitute(user.rest, stageArgs(runtime));
  assert.notEqual(resolved, 'root');
  assert.notEqual(resolved, '0');
  assert.equal(resolved, 'node');
  const volume = last(runtime, 'VOLUME');
  assert.ok(volume?.exec?.includes('/data') ?? volume?.rest.split(' ').includes('/data'), 'VOLUME /data');
  assert.ok(runs(runtime).some((r) => /chown node:node \/data/.test(r)), '/data owned by the node user before VOLUME');
});

test('every Dockerfile: exec-form ENTRYPOINT starting with lsinit --, no ADD of a URL, tagged base images', () => {
  const files = allDockerfiles();
  assert.ok(files.length >= 2, `found ${files.map((f) => relative(ROOT, f)).join(', ')}`);
  for (const f of files) {
    const df = read(f);
    const name = relative(ROOT, f);
    for (const ins of df.all) {
      if (ins.keyword === 'ADD') assert.doesNotMatch(ins.rest, /(^|\s)(https?|git):\/\/|git@/, `${name}:${ins.line}: ADD of a URL`);
    }
    const final = df.stages.at(-1)!;
    const ep = last(final, 'ENTRYPOINT');
    assert.ok(ep?.exec, `${name}: ENTRYPOINT in exec form (a shell-form entrypoint would make sh PID 1)`);
    assert.deepEqual(ep.exec.slice(0, 2), ['lsinit', '--'], `${name}: ENTRYPOINT starts with lsinit --`);
    for (const s of df.stages) {
      if (df.stages.some((o) => o.name === s.from)) continue; // FROM another stage
      assert.match(s.from, /^[\w./-]+(:[\w.-]+|@sha256:[0-9a-f]{64})$/, `${name}: FROM ${s.from} names a tag or digest`);
      assert.doesNotMatch(s.from, /:latest$/, `${name}: FROM ${s.from} is not :latest`);
    }
  }
});

test('every COPY from the build context names a file that exists and that .dockerignore sends', () => {
  const ignored = dockerignore(readFileSync(join(ROOT, '.dockerignore'), 'utf8'));
  // The matcher itself, on the cases that matter.
  assert.equal(ignored('src/cli/main.ts'), false);
  assert.equal(ignored('node_modules/yaml/package.json'), true);
  assert.equal(ignored('dist/cli/main.js'), true);
  assert.equal(ignored('.git/HEAD'), true);
  assert.equal(ignored('examples/quickstart/data/app.db'), true);
  assert.equal(ignored('examples/quickstart/replica/generations'), true);
  for (const f of allDockerfiles()) {
    for (const ins of read(f).all) {
      if (ins.keyword !== 'COPY' || ins.flags['from'] !== undefined) continue;
      for (const src of copyParts(ins).sources) {
        const where = `${relative(ROOT, f)}:${ins.line}: COPY ${src}`;
        assert.ok(existsSync(join(ROOT, src)), `${where}: exists in the repository`);
        assert.equal(ignored(src), false, `${where}: not excluded by .dockerignore`);
      }
    }
  }
});

test('the files the build stage needs are tracked by git (a fresh clone can build the image)', () => {
  const tracked = execFileSync('git', ['ls-files', 'package.json', 'package-lock.json', 'tsconfig.json', 'bin/lsinit.js', '.dockerignore', 'docker/Dockerfile'], { cwd: ROOT, encoding: 'utf8' });
  for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'bin/lsinit.js', '.dockerignore', 'docker/Dockerfile']) {
    assert.ok(tracked.split('\n').includes(f), `${f} is tracked`);
  }
});

// The Dockerfile linter: dockerfile-utils (a dev dependency). hadolint, the usual choice, ships as
// a static binary on neither npm nor Debian, so it cannot be installed here or in CI.
const { validate } = (await import('dockerfile-utils')) as unknown as { validate(text: string, settings?: object): { message: string; range: { start: { line: number } } }[] };
test('dockerfile-utils reports no problem', () => {
  for (const f of allDockerfiles()) {
    const problems = validate(readFileSync(f, 'utf8'), {});
    assert.deepEqual(
      problems.map((p) => `${p.range.start.line + 1}: ${p.message}`),
      [],
      relative(ROOT, f),
    );
  }
});

const shellcheck = spawnSync('shellcheck', ['--version'], { encoding: 'utf8' }).status === 0;
test('docker/verify-local scripts parse (bash -n) and pass shellcheck when it is installed', () => {
  const dir = join(ROOT, 'docker/verify-local');
  const scripts = ['base-image.sh', 'docker'].map((f) => join(dir, f));
  for (const f of scripts) {
    const n = spawnSync('bash', ['-n', f], { encoding: 'utf8' });
    assert.equal(n.status, 0, `${relative(ROOT, f)}: ${n.stderr}`);
    if (!shellcheck) continue;
    const r = spawnSync('shellcheck', [f], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${relative(ROOT, f)}:\n${r.stdout}${r.stderr}`);
  }
});
