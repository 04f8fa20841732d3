/** A controller on a temp database with the metrics server on 127.0.0.1:0, and a tiny Prometheus text parser. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { parseConfig } from '../../src/config/file.js';
import { nullLogger } from '../../src/log/logger.js';
import { startMetricsServer, type MetricsServer } from '../../src/metrics/server.js';
import type { ChildStats } from '../../src/metrics/registry.js';
import { Controller } from '../../src/replicate/controller.js';
import { createDB, sleep, workdir } from '../helpers/replicate.js';

export interface Rig {
  dir: string;
  db: string;
  controller: Controller;
  server: MetricsServer;
  url: (path: string) => string;
  scrape: () => Promise<Samples>;
  write: (rows: number) => void;
  stop: () => Promise<void>;
}

/**
 * `replicas` is the YAML of the `replicas:` list items, indented by 6 spaces, with `{dir}`
 * standing for the temp directory.
 */
export async function rig(prefix: string, replicas: string, opts: { init?: ChildStats } = {}): Promise<Rig> {
  const w = workdir(prefix);
  const db = join(w.dir, 'app.db');
  createDB(db);
  const cfgPath = join(w.dir, 'lsinit.yml');
  const text = `dbs:
  - path: ${db}
    monitor-interval: 100ms
    replicas:
${replicas.replaceAll('{dir}', w.dir)}`;
  writeFileSync(cfgPath, text);
  const config = parseConfig(Buffer.from(text), { file: cfgPath, expandEnv: false, env: {}, cwd: w.dir });
  const controller = new Controller(config, nullLogger);
  await controller.start();
  const server = await startMetricsServer({ addr: '127.0.0.1:0', controller, log: nullLogger, init: opts.init });
  const url = (path: string) => `http://127.0.0.1:${server.port}${path}`;
  const conn = new Database(db);
  let next = 1;
  return {
    dir: w.dir,
    db,
    controller,
    server,
    url,
    scrape: async () => {
      const res = await fetch(url('/metrics'));
      if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
      return parseProm(await res.text());
    },
    write: (rows) => {
      const ins = conn.prepare('INSERT INTO log (id, conn, payload) VALUES (?, 0, ?)');
      conn.transaction(() => {
        for (let i = 0; i < rows; i++) ins.run(next++, 'x'.repeat(200));
      })();
    },
    stop: async () => {
      await server.close();
      conn.close();
      await controller.close({ deadline: Date.now() + 5000 });
      await controller.dispose();
      w.cleanup();
    },
  };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Samples {
  text: string;
  samples: Sample[];
  types: Map<string, string>;
  /** Value of the one sample with exactly these labels, or undefined. */
  get(name: string, labels?: Record<string, string>): number | undefined;
}

/** Enough of the Prometheus text format for our output (no escaped quotes in label values). */
export function parseProm(text: string): Samples {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) types.set(t[1]!, t[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_]\w*)="([^"]*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  const same = (a: Record<string, string>, b: Record<string, string>) => Object.keys(a).length === Object.keys(b).length && Object.entries(b).every(([k, v]) => a[k] === v);
  return {
    text,
    samples,
    types,
    get: (name, labels = {}) => samples.find((s) => s.name === name && same(s.labels, labels))?.value,
  };
}

/** Poll `fn` until it returns a truthy value or the time runs out. */
export async function until<T>(fn: () => Promise<T> | T, ms: number, what: string): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  let last: T;
  do {
    last = await fn();
    if (last) return last;
    await sleep(25);
  } while (Date.now() < end);
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}
