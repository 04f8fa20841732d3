/**
 * The test suite runs from a fresh clone with nothing beside it, and installs nothing: it names what
 * the machine lacks before any test runs (issue 11).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers/cli.js';
import { INSTALL_COMMAND, REQUIREMENTS, missingRequirements, requirementsMessage } from './helpers/requirements.js';

function files(dir: string, ext = /\.(ts|mjs|js|sh)$/): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => ext.test(f) && !f.startsWith(join('test', 'fixtures', 'litestream-')));
}

// The sibling folder's name is built here, not written, so this guard does not match itself.
const SIBLING = ['..', 'shared'].join('/');
const SIBLING_RE = new RegExp(`${SIBLING.replace(/\./g, '\\.')}|/work/${'shared'}|${'shared'}/(vectors|bin|reference)`);

test('no source, test, benchmark or script reads the shared folder beside the checkout', () => {
  const offenders = ['src', 'test', 'bench', 'scripts', 'bin'].flatMap((d) => files(d)).filter((f) => SIBLING_RE.test(readFileSync(join(ROOT, f), 'utf8')));
  assert.deepEqual(offenders, []);
});

test('the copied Litestream vectors carry their README and licence note', () => {
  const note = readFileSync(join(ROOT, 'test/fixtures/VECTORS-NOTE.md'), 'utf8');
  assert.match(note, /Apache-2\.0/);
  for (const d of ['litestream-0.3.13', 'litestream-0.5.16-ltx']) {
    assert.match(note, new RegExp(d.replace(/\./g, '\\.')));
    const readme = readFileSync(join(ROOT, 'test/fixtures', d, 'README.md'), 'utf8');
    assert.match(readme, /## Licence[\s\S]*Apache-2\.0/, `${d}/README.md has no licence note`);
  }
});

test('the test harness never installs packages: no test file runs apt-get, dpkg or an install script', () => {
  const runs = /\b(spawn|spawnSync|exec|execSync|execFile|execFileSync|execa|run)\s*\(\s*(['"`](sudo|apt-get|apt|dpkg|pip|pip3)['"`]|['"`]npm['"`]\s*,\s*\[\s*['"`](install|i|ci|add)['"`]|[^)]*install-(system-deps|sshd))/;
  const offenders = files('test').filter((f) => runs.test(readFileSync(join(ROOT, f), 'utf8')));
  assert.deepEqual(offenders, []);
  assert.equal(existsSync(join(ROOT, '.ci/install-sshd.sh')), false);
  // The one install step: .ci/run calls it, the README shows it.
  assert.match(readFileSync(join(ROOT, '.ci/run'), 'utf8'), /^sh scripts\/install-system-deps\.sh$/m);
  assert.ok(readFileSync(join(ROOT, 'README.md'), 'utf8').includes(INSTALL_COMMAND), `README does not show ${INSTALL_COMMAND}`);
  const script = readFileSync(join(ROOT, 'scripts/install-system-deps.sh'), 'utf8');
  for (const r of REQUIREMENTS) if (!r.from.includes(' ')) assert.match(script, new RegExp(`\\b${r.from}\\b`), `install-system-deps.sh does not install ${r.from}`);
});

test('a machine without the tools or root gets one message naming each missing tool, its package and the install command', () => {
  const none = missingRequirements({ PATH: '/nowhere', uid: 1000, executable: () => false });
  assert.equal(none.root, false);
  assert.deepEqual(none.tools.map((r) => r.tool), REQUIREMENTS.map((r) => r.tool));
  const msg = requirementsMessage({ PATH: '/nowhere', uid: 1000, executable: (p) => p !== '/bin/sqlite3' && p !== '/usr/sbin/sshd' });
  assert.match(msg, /^npm test: this machine is missing what the test suite needs; nothing was installed and no test ran\./);
  assert.match(msg, /- root: /);
  assert.match(msg, /- \/usr\/sbin\/sshd \(openssh-server\): the sftp tests/);
  assert.doesNotMatch(msg, /sqlite3 \(/, 'sqlite3 is found at /bin/sqlite3');
  assert.ok(msg.endsWith(`Install the Debian/Ubuntu packages with: ${INSTALL_COMMAND}\n`));
  assert.equal(requirementsMessage({ PATH: '/bin', uid: 0, executable: () => true }), '');
});

test('npm test checks first: scripts/check-test-deps.ts exits 1 and names what is missing when PATH has nothing', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/check-test-deps.ts'], { cwd: ROOT, env: { PATH: '/nonexistent' }, encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  for (const tool of ['sqlite3', 'lz4', 'unshare', 'moto_server', 'ssh-keygen']) assert.match(r.stderr, new RegExp(`- ${tool} \\(`));
  assert.match(r.stderr, new RegExp(INSTALL_COMMAND.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts['test']!, /scripts\/check-test-deps\.ts && node --import tsx --test /);
});

test('no package-archive or registry host names in the repository (package-lock.json\'s resolved URLs aside)', () => {
  const tracked = spawnSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' }).stdout.split('\0').filter((f) => f && f !== 'package-lock.json' && !f.startsWith('test/fixtures/litestream-') && existsSync(join(ROOT, f)));
  assert.ok(tracked.length > 100, 'git ls-files listed the repository');
  // Built from parts so that this file does not name them either.
  const hosts = [['deb', 'debian', 'org'], ['registry', 'npmjs', 'org'], ['npmjs', 'com'], ['pypi', 'org'], ['docker', 'io'], ['archive', 'ubuntu', 'com'], ['security', 'debian', 'org'], ['nodejs', 'org']].map((p) => p.join('.'));
  const re = new RegExp(hosts.map((h) => h.replace(/\./g, '\\.')).join('|'), 'i');
  const offenders = tracked.filter((f) => re.test(readFileSync(join(ROOT, f), 'latin1')));
  assert.deepEqual(offenders, []);
});
