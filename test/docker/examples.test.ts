/**
 * The deploy examples (examples/{docker,docker-compose,fly,render,kubernetes}): every YAML file
 * parses, every lsinit config loads with lsinit itself, each platform's stop grace is longer than
 * the lsinit shutdown budget its config sets, the files they point at exist, the docker-compose
 * config replicates to and restores from a real S3 server (moto standing in for MinIO), and the
 * shell scripts pass shellcheck. Tools that may be missing (moto_server, shellcheck,
 * docker-compose, kubectl) skip their test.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import YAML from 'yaml';
import { BIN, killChildAtEnd, lsinit, ROOT } from '../helpers/cli.js';

const EX = join(ROOT, 'examples');
/** Where docker/Dockerfile puts examples/ in the image. */
const IMAGE_EXAMPLES = '/opt/lsinit/examples';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'lsinit-examples-'));
  dirs.push(d);
  return d;
}

function files(dir: string, pred: (name: string) => boolean): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && e.name !== 'data' && e.name !== 'replica') out.push(...files(p, pred));
    } else if (pred(e.name)) out.push(p);
  }
  return out.sort();
}

const yamlFiles = files(EX, (n) => /\.ya?ml$/.test(n));
const lsinitConfigs = files(EX, (n) => n === 'litestream.yml' || n === 'lsinit.yml');

function readYaml(path: string): Record<string, any> {
  return YAML.parse(readFileSync(path, 'utf8')) as Record<string, any>;
}

/** `$VAR` and `${VAR}` a config refers to (lsinit expands them over the whole text). */
function envRefs(text: string): string[] {
  return [...new Set([...text.matchAll(/\$\{(\w+)\}|\$(\w+)/g)].map((m) => (m[1] ?? m[2])!))].sort();
}

/** Go-style durations as used in these files: 9s, 29s, 1m30s. */
function seconds(d: string): number {
  const m = /^(?:(\d+)m)?(?:(\d+)s)?$/.exec(d);
  assert.ok(m && d !== '', `duration ${d}`);
  return Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0);
}

function shutdownSeconds(cfgPath: string): number {
  const t = readYaml(cfgPath)['init']?.['shutdown-timeout'] as string | undefined;
  return t === undefined ? 9 : seconds(t);
}

/** An image path /opt/lsinit/examples/X → the repository's examples/X. */
function repoPathOfImageConfig(p: string): string {
  assert.ok(p.startsWith(`${IMAGE_EXAMPLES}/`), `${p} is under ${IMAGE_EXAMPLES}`);
  return join(EX, p.slice(IMAGE_EXAMPLES.length + 1));
}

function dbPaths(cfgPath: string): string[] {
  return (readYaml(cfgPath)['dbs'] as { path: string }[]).map((d) => d.path);
}

test('every YAML file in examples/ parses (all documents)', () => {
  assert.ok(yamlFiles.length >= 9, yamlFiles.map((f) => relative(ROOT, f)).join(', '));
  for (const f of yamlFiles) {
    const docs = YAML.parseAllDocuments(readFileSync(f, 'utf8'));
    for (const d of docs) {
      assert.deepEqual(d.errors, [], relative(ROOT, f));
      assert.deepEqual(d.warnings, [], relative(ROOT, f));
      assert.ok(d.toJS() !== null, `${relative(ROOT, f)}: a document is empty`);
    }
  }
});

test('every lsinit config in examples/ loads with `lsinit databases -config FILE`, without warnings', async () => {
  assert.ok(lsinitConfigs.length >= 6, lsinitConfigs.map((f) => relative(ROOT, f)).join(', '));
  for (const f of lsinitConfigs) {
    const text = readFileSync(f, 'utf8');
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const v of envRefs(text)) env[v] = `test-${v.toLowerCase().replace(/_/g, '-')}`;
    const r = await lsinit(['databases', '-config', f], { env, cwd: ROOT });
    assert.equal(r.exitCode, 0, `${relative(ROOT, f)}: ${r.stderr}`);
    assert.equal(r.stderr.trim(), '', `${relative(ROOT, f)}: no warning`);
    for (const p of dbPaths(f)) assert.ok(r.stdout.includes(p.replace(/^\.\//, '')), `${relative(ROOT, f)} lists ${p}:\n${r.stdout}`);
    // A config that refers to a variable must fail without it, not replicate to a wrong place.
    if (envRefs(text).length > 0) {
      const bare: NodeJS.ProcessEnv = { ...process.env };
      for (const v of envRefs(text)) delete bare[v];
      const r2 = await lsinit(['databases', '-config', f], { env: bare, cwd: ROOT });
      assert.notEqual(r2.exitCode === 0 && r2.stderr.trim() === '', true, `${relative(ROOT, f)} without ${envRefs(text).join(', ')} fails or warns`);
    }
  }
});

test('every container config keeps its databases on the volume the example mounts', () => {
  const mounts: Record<string, string> = {
    'docker/litestream.yml': '/data',
    'docker-compose/litestream.yml': '/data',
    'fly/litestream.yml': '/data',
    'render/litestream.yml': '/data',
    'kubernetes/litestream.yml': '/data',
  };
  for (const [cfg, mount] of Object.entries(mounts)) {
    for (const p of dbPaths(join(EX, cfg))) assert.equal(posix.dirname(p), mount, `${cfg}: ${p}`);
  }
});

test('Fly.io: kill_timeout outlasts lsinit shutdown-timeout; stop signal, volume and config path line up', () => {
  const toml = readFileSync(join(EX, 'fly/fly.toml'), 'utf8');
  // No TOML parser is a dependency: these keys are simple `key = value` lines. Top-level keys must
  // come before the first [table], or TOML assigns them to that table.
  const firstTable = toml.search(/^\[/m);
  const top = toml.slice(0, firstTable);
  const killTimeout = /^kill_timeout\s*=\s*(\d+)\s*(#.*)?$/m.exec(top);
  const killSignal = /^kill_signal\s*=\s*"(\w+)"/m.exec(top);
  assert.ok(killTimeout && killSignal, 'kill_timeout and kill_signal at the top level');
  assert.ok(['SIGTERM', 'SIGINT'].includes(killSignal[1]!), 'a signal lsinit treats as a stop signal');
  const cfgPath = /^\s*LITESTREAM_CONFIG\s*=\s*"([^"]+)"/m.exec(toml)?.[1];
  assert.ok(cfgPath);
  const cfg = repoPathOfImageConfig(cfgPath);
  assert.ok(existsSync(cfg), cfg);
  assert.ok(Number(killTimeout[1]) > shutdownSeconds(cfg), `kill_timeout ${killTimeout[1]} > shutdown-timeout ${shutdownSeconds(cfg)}`);
  if (killSignal[1] === 'SIGINT') assert.ok(readYaml(cfg)['init']?.['signal-rewrite'], 'SIGINT is rewritten for the app');
  assert.match(toml, /\[\[mounts\]\]\s*\n\s*source\s*=\s*"\w+"\s*\n\s*destination\s*=\s*"\/data"/);
});

test('Render: maxShutdownDelaySeconds outlasts lsinit shutdown-timeout; disk, Dockerfile, config and env vars line up', () => {
  const doc = readYaml(join(EX, 'render/render.yaml'));
  const svc = (doc['services'] as Record<string, any>[])[0]!;
  assert.equal(svc['runtime'], 'docker');
  assert.ok(existsSync(join(ROOT, svc['dockerfilePath'] as string)), 'dockerfilePath is relative to the repository root');
  assert.equal(svc['dockerContext'], '.');
  assert.equal(svc['disk']['mountPath'], '/data');
  const env = Object.fromEntries((svc['envVars'] as { key: string; value?: string }[]).map((e) => [e.key, e.value]));
  const cfg = repoPathOfImageConfig(env['LITESTREAM_CONFIG']!);
  assert.ok(svc['maxShutdownDelaySeconds'] > shutdownSeconds(cfg), `${svc['maxShutdownDelaySeconds']} > ${shutdownSeconds(cfg)}`);
  for (const v of envRefs(readFileSync(cfg, 'utf8'))) assert.ok(v in env, `render.yaml sets ${v}, which litestream.yml uses`);
  for (const secret of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
    assert.ok(secret in env && env[secret] === undefined, `${secret} is set in the dashboard (sync: false), not in git`);
  }
});

test('Kubernetes: one-replica StatefulSet, grace outlasts lsinit, Secret holds what the config refers to, config and PVC mounted', () => {
  const dir = join(EX, 'kubernetes');
  const kust = readYaml(join(dir, 'kustomization.yaml'));
  const resources = (kust['resources'] as string[]).flatMap((r) => YAML.parseAllDocuments(readFileSync(join(dir, r), 'utf8')).map((d) => d.toJS() as Record<string, any>));
  const byKind = (k: string) => resources.filter((r) => r['kind'] === k);
  const sts = byKind('StatefulSet')[0]!;
  const secret = byKind('Secret')[0]!;
  const service = byKind('Service')[0]!;
  assert.equal(sts['spec']['replicas'], 1);
  assert.equal(sts['spec']['serviceName'], service['metadata']['name']);
  assert.equal(service['spec']['clusterIP'], 'None');
  const gen = (kust['configMapGenerator'] as { name: string; files: string[] }[])[0]!;
  const cfg = join(dir, gen.files[0]!);
  const pod = sts['spec']['template']['spec'];
  assert.ok(pod['terminationGracePeriodSeconds'] > shutdownSeconds(cfg), `${pod['terminationGracePeriodSeconds']} > ${shutdownSeconds(cfg)}`);
  assert.equal(pod['securityContext']['fsGroup'], 1000, 'the volume is writable by the image user');
  const c = pod['containers'][0];
  assert.equal(c['envFrom'][0]['secretRef']['name'], secret['metadata']['name']);
  for (const v of envRefs(readFileSync(cfg, 'utf8'))) assert.ok(v in secret['stringData'], `the Secret has ${v}`);
  const mounts = Object.fromEntries((c['volumeMounts'] as { name: string; mountPath: string }[]).map((m) => [m.mountPath, m.name]));
  assert.equal(mounts['/data'], sts['spec']['volumeClaimTemplates'][0]['metadata']['name']);
  assert.equal(mounts['/etc/litestream.yml'], 'config');
  assert.equal(pod['volumes'].find((v: any) => v.name === 'config')['configMap']['name'], gen.name);
});

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
test('Kubernetes: `kubectl kustomize` builds it and wires the generated ConfigMap in', { skip: kubectl ? false : 'kubectl is not installed' }, () => {
  const r = spawnSync('kubectl', ['kustomize', join(EX, 'kubernetes')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const objs = YAML.parseAllDocuments(r.stdout).map((d) => d.toJS() as Record<string, any>);
  const cm = objs.find((o) => o['kind'] === 'ConfigMap')!;
  assert.equal(cm['data']['litestream.yml'], readFileSync(join(EX, 'kubernetes/litestream.yml'), 'utf8'));
  const sts = objs.find((o) => o['kind'] === 'StatefulSet')!;
  const vol = sts['spec']['template']['spec']['volumes'].find((v: any) => v.name === 'config');
  assert.equal(vol['configMap']['name'], cm['metadata']['name'], 'the hashed ConfigMap name');
});

function compose() {
  const doc = readYaml(join(EX, 'docker-compose/compose.yaml'));
  return doc['services'] as Record<string, Record<string, any>>;
}

/** Compose's `${VAR:-default}` with VAR unset. */
function composeDefault(v: string): string {
  return v.replace(/\$\{\w+:-([^}]*)\}/g, '$1');
}

test('docker-compose: the app waits for the bucket, stop_grace_period outlasts lsinit, the files it names exist', () => {
  const s = compose();
  const app = s['app']!;
  assert.equal(app['depends_on']['createbucket']['condition'], 'service_completed_successfully');
  const cfg = join(EX, 'docker-compose/litestream.yml');
  assert.ok(seconds(app['stop_grace_period']) > shutdownSeconds(cfg));
  assert.ok(existsSync(join(EX, 'docker-compose', app['build']['context'], app['build']['dockerfile'])));
  assert.ok((app['volumes'] as string[]).includes('./litestream.yml:/etc/litestream.yml:ro'));
  // The config's endpoint is the MinIO service, and its bucket is the one the one-shot creates.
  const replica = readYaml(cfg)['dbs'][0]['replicas'][0];
  assert.equal(new URL(replica['endpoint']).hostname, 'minio');
  assert.ok('minio' in s);
  assert.match(s['createbucket']!['command'][0], new RegExp(`mc mb --ignore-existing local/${replica['bucket']}\\b`));
  // The app gets the same credentials MinIO is started with.
  assert.equal(composeDefault(app['environment']['LITESTREAM_ACCESS_KEY_ID']), composeDefault(s['minio']!['environment']['MINIO_ROOT_USER']));
  assert.equal(composeDefault(app['environment']['LITESTREAM_SECRET_ACCESS_KEY']), composeDefault(s['minio']!['environment']['MINIO_ROOT_PASSWORD']));
});

const dockerCompose = spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0;
test('docker-compose: `docker-compose config` accepts compose.yaml', { skip: dockerCompose ? false : 'docker-compose is not installed' }, () => {
  const r = spawnSync('docker-compose', ['-f', join(EX, 'docker-compose/compose.yaml'), 'config', '-q'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

const moto = spawnSync('sh', ['-c', 'command -v moto_server'], { encoding: 'utf8' }).status === 0;
test('docker-compose: its lsinit config replicates the example app to S3 and restores it (moto in place of MinIO)', { skip: moto ? false : 'moto_server is not installed', timeout: 120_000 }, async () => {
  const { startMoto } = await import('../servers/moto.js');
  const server = await startMoto();
  try {
    const s = compose();
    const cfg0 = readYaml(join(EX, 'docker-compose/litestream.yml'));
    const bucket = cfg0['dbs'][0]['replicas'][0]['bucket'] as string;
    await server.createBucket(bucket);
    const dir = tmp();
    const db = join(dir, 'app.db');
    // The example's config with two substitutions: MinIO's address → moto's, /data → a temp dir.
    const text = readFileSync(join(EX, 'docker-compose/litestream.yml'), 'utf8').replace('endpoint: http://minio:9000', `endpoint: ${server.endpoint}`).replace('path: /data/app.db', `path: ${db}`);
    assert.ok(text.includes(server.endpoint) && text.includes(`path: ${db}`), text);
    const cfg = join(dir, 'litestream.yml');
    writeFileSync(cfg, text);
    const env = {
      ...process.env,
      APP_DB: db,
      LITESTREAM_ACCESS_KEY_ID: composeDefault(s['app']!['environment']['LITESTREAM_ACCESS_KEY_ID']),
      LITESTREAM_SECRET_ACCESS_KEY: composeDefault(s['app']!['environment']['LITESTREAM_SECRET_ACCESS_KEY']),
    };
    const child = killChildAtEnd(spawn(process.execPath, [BIN, '-config', cfg, '--', process.execPath, join(EX, 'quickstart/app.mjs')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    const deadline = Date.now() + 30_000;
    while (!/^app: 2 visits$/m.test(out)) {
      assert.ok(Date.now() < deadline && child.exitCode === null, out);
      await sleep(50);
    }
    child.kill('SIGTERM');
    assert.equal(await exited, 0, out);
    assert.match(out, /replicas="minio=s3:\/\/lsinit\/app"/);
    const restored = join(dir, 'restored.db');
    const r = await lsinit(['restore', '-o', restored, '-config', cfg, db], { env });
    assert.equal(r.exitCode, 0, r.stderr);
    const rowsOf = (p: string) => {
      const d = new Database(p, { readonly: true });
      try {
        return d.prepare('SELECT id, at, note FROM visits ORDER BY id').all();
      } finally {
        d.close();
      }
    };
    const written = rowsOf(db);
    assert.ok(written.length >= 3);
    assert.deepEqual(rowsOf(restored), written);
  } finally {
    await server.stop();
  }
});

const scripts = files(EX, (n) => n.endsWith('.sh'));
test('the example scripts are executable and parse (bash -n)', () => {
  assert.ok(scripts.length >= 2);
  for (const f of scripts) {
    const r = spawnSync('bash', ['-n', f], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${relative(ROOT, f)}: ${r.stderr}`);
    const tracked = spawnSync('git', ['ls-files', '-s', relative(ROOT, f)], { cwd: ROOT, encoding: 'utf8' }).stdout;
    if (tracked !== '') assert.match(tracked, /^100755 /, `${relative(ROOT, f)} is committed executable`);
  }
});

const shellcheck = spawnSync('shellcheck', ['--version'], { encoding: 'utf8' }).status === 0;
test('shellcheck finds nothing in the example scripts', { skip: shellcheck ? false : 'shellcheck is not installed' }, () => {
  for (const f of scripts) {
    const r = spawnSync('shellcheck', [f], { cwd: dirname(f), encoding: 'utf8' });
    assert.equal(r.status, 0, `${relative(ROOT, f)}:\n${r.stdout}${r.stderr}`);
  }
});
