/** `lsinit generations | snapshots | wal | databases` with Litestream's columns (tabwriter, padding 2). */
import { stat } from 'node:fs/promises';
import type { Logger } from '../log/logger.js';
import { formatTXID } from '../format/ltx.js';
import type { ReplicaClient } from '../replica/client.js';
import { listLTXFiles, type LTXFileInfo } from '../restore/ltx-plan.js';
import { generationBounds } from '../restore/target.js';
import { formatRFC3339Sec, nowNs } from '../util/time.js';
import { bool, noArgs, oneArg, parseFlags, str, usage, type FlagSpec } from '../util/flags.js';
import { CONFIG_FLAGS, closeSource, openSource, readConfigFromFlags } from './sources.js';

/** Go text/tabwriter with padding 2: every column but the last padded to its widest cell + 2. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i < r.length - 1 ? c.padEnd(widths[i]! + 2) : c)).join('')).join('\n') + '\n';
}

const JSON_FLAG: FlagSpec = { type: 'bool', help: 'print JSON instead of a table (lsinit extension)' };

function truncDuration(ns: bigint): string {
  let s = Number(ns / 1_000_000_000n);
  const neg = s < 0;
  s = Math.abs(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return `${neg ? '-' : ''}${h ? `${h}h` : ''}${h || m ? `${m}m` : ''}${sec}s`;
}

async function dbUpdatedAt(path: string): Promise<bigint | undefined> {
  let max: bigint | undefined;
  for (const p of [path, `${path}-wal`]) {
    try {
      const st = await stat(p, { bigint: true });
      if (max === undefined || st.mtimeNs > max) max = st.mtimeNs;
    } catch {
      /* missing */
    }
  }
  return max;
}

export async function generationsCommand(argv: string[]): Promise<number> {
  const specs = { ...CONFIG_FLAGS, replica: { type: 'string', help: 'only this replica' } as FlagSpec, json: JSON_FLAG };
  const p = parseFlags(argv, specs, 'generations');
  if (p.help) return void process.stdout.write(usage('generations', '[flags] DB_PATH|REPLICA_URL', specs)), 0;
  const src = await openSource(oneArg(p.args, 'generations', 'DB_PATH|REPLICA_URL'), p.flags, 'generations');
  try {
    const ref = src.db ? ((await dbUpdatedAt(src.db.path)) ?? nowNs()) : nowNs();
    const rows: string[][] = [['name', 'generation', 'lag', 'start', 'end']];
    const out: unknown[] = [];
    for (const r of src.replicas) {
      for (const g of await r.client.generations()) {
        const [snaps, segs] = await Promise.all([r.client.snapshots(g), r.client.walSegments(g)]);
        const b = generationBounds(g, snaps, segs);
        if (!b) continue;
        rows.push([r.config.name, g, truncDuration(ref - b.updatedAt), formatRFC3339Sec(b.createdAt), formatRFC3339Sec(b.updatedAt)]);
        out.push({ replica: r.config.name, generation: g, lag_seconds: Number(ref - b.updatedAt) / 1e9, start: formatRFC3339Sec(b.createdAt), end: formatRFC3339Sec(b.updatedAt), snapshots: snaps.length, wal_segments: segs.length });
      }
      const ltx = await ltxFilesIfLTX(r.client);
      if (ltx.length > 0) {
        // A Litestream 0.5 replica has no generations: one row for all it holds.
        const times = ltx.map((f) => f.createdAt);
        const start = times.reduce((a, b) => (b < a ? b : a));
        const end = times.reduce((a, b) => (b > a ? b : a));
        const maxTXID = ltx.reduce((a, f) => (f.maxTXID > a ? f.maxTXID : a), 0n);
        rows.push([r.config.name, 'ltx', truncDuration(ref - end), formatRFC3339Sec(start), formatRFC3339Sec(end)]);
        out.push({ replica: r.config.name, generation: 'ltx', format: 'ltx', lag_seconds: Number(ref - end) / 1e9, start: formatRFC3339Sec(start), end: formatRFC3339Sec(end), files: ltx.length, max_txid: formatTXID(maxTXID) });
        process.stderr.write(`replica ${r.config.name} is a Litestream 0.5 (LTX) replica up to TXID ${formatTXID(maxTXID)} (${ltx.length} files): restore it with \`lsinit restore\` (-txid, -timestamp); \`lsinit snapshots\` and \`lsinit wal\` list its files\n`);
      }
    }
    process.stdout.write(bool(p.flags, 'json') ? `${JSON.stringify(out)}\n` : table(rows));
    return 0;
  } finally {
    await closeSource(src);
  }
}

export async function snapshotsCommand(argv: string[]): Promise<number> {
  const specs = { ...CONFIG_FLAGS, replica: { type: 'string', help: 'only this replica' } as FlagSpec, json: JSON_FLAG };
  const p = parseFlags(argv, specs, 'snapshots');
  if (p.help) return void process.stdout.write(usage('snapshots', '[flags] DB_PATH|REPLICA_URL', specs)), 0;
  const src = await openSource(oneArg(p.args, 'snapshots', 'DB_PATH|REPLICA_URL'), p.flags, 'snapshots');
  try {
    const rows: string[][] = [['replica', 'generation', 'index', 'size', 'created']];
    const out: unknown[] = [];
    const ltxRows: string[][] = [];
    for (const r of src.replicas) {
      for (const g of await r.client.generations()) {
        for (const s of await r.client.snapshots(g)) {
          rows.push([r.config.name, g, String(s.index), String(s.size), formatRFC3339Sec(s.createdAt)]);
          out.push({ replica: r.config.name, generation: g, index: s.index, size: s.size, created: formatRFC3339Sec(s.createdAt) });
        }
      }
      ltxRows.push(...ltxTable(r.config.name, (await ltxFilesIfLTX(r.client)).filter((f) => f.level === 9), out));
    }
    process.stdout.write(bool(p.flags, 'json') ? `${JSON.stringify(out)}\n` : table(rows) + ltxSection(ltxRows, 'snapshots (level 9)'));
    return 0;
  } finally {
    await closeSource(src);
  }
}

export async function walCommand(argv: string[]): Promise<number> {
  const specs = { ...CONFIG_FLAGS, replica: { type: 'string', help: 'only this replica' } as FlagSpec, generation: { type: 'string', help: 'only this generation' } as FlagSpec, json: JSON_FLAG };
  const p = parseFlags(argv, specs, 'wal');
  if (p.help) return void process.stdout.write(usage('wal', '[flags] DB_PATH|REPLICA_URL', specs)), 0;
  const src = await openSource(oneArg(p.args, 'wal', 'DB_PATH|REPLICA_URL'), p.flags, 'wal');
  try {
    const only = str(p.flags, 'generation');
    const rows: string[][] = [['replica', 'generation', 'index', 'offset', 'size', 'created']];
    const out: unknown[] = [];
    const ltxRows: string[][] = [];
    for (const r of src.replicas) {
      for (const g of await r.client.generations()) {
        if (only !== undefined && g !== only) continue;
        for (const s of await r.client.walSegments(g)) {
          rows.push([r.config.name, g, String(s.index), String(s.offset), String(s.size), formatRFC3339Sec(s.createdAt)]);
          out.push({ replica: r.config.name, generation: g, index: s.index, offset: s.offset, size: s.size, created: formatRFC3339Sec(s.createdAt) });
        }
      }
      if (only === undefined || only === 'ltx') ltxRows.push(...ltxTable(r.config.name, (await ltxFilesIfLTX(r.client)).filter((f) => f.level < 9), out));
    }
    process.stdout.write(bool(p.flags, 'json') ? `${JSON.stringify(out)}\n` : table(rows) + ltxSection(ltxRows, 'transaction files (levels 0-8)'));
    return 0;
  } finally {
    await closeSource(src);
  }
}

/** The LTX files of a replica that has no Litestream 0.3 generations, else [] (one LIST more). */
async function ltxFilesIfLTX(client: ReplicaClient): Promise<LTXFileInfo[]> {
  if ((await client.generations()).length > 0) return [];
  return listLTXFiles(client);
}

function ltxTable(replica: string, files: LTXFileInfo[], out: unknown[]): string[][] {
  return files.map((f) => {
    out.push({ replica, generation: 'ltx', format: 'ltx', level: f.level, min_txid: formatTXID(f.minTXID), max_txid: formatTXID(f.maxTXID), size: f.size, created: formatRFC3339Sec(f.createdAt) });
    return [replica, String(f.level), formatTXID(f.minTXID), formatTXID(f.maxTXID), String(f.size), formatRFC3339Sec(f.createdAt)];
  });
}

/** Litestream 0.5 files get their own table under the 0.3 one: their columns differ. */
function ltxSection(rows: string[][], what: string): string {
  if (rows.length === 0) return '';
  return `\nLTX replica (Litestream 0.5) ${what}:\n${table([['replica', 'level', 'min_txid', 'max_txid', 'size', 'created'], ...rows])}`;
}

export async function databasesCommand(argv: string[], log: Logger): Promise<number> {
  const specs = { ...CONFIG_FLAGS, json: JSON_FLAG };
  const p = parseFlags(argv, specs, 'databases');
  if (p.help) return void process.stdout.write(usage('databases', '[flags]', specs)), 0;
  noArgs(p.args, 'databases');
  const config = await readConfigFromFlags(p.flags);
  for (const w of config.warnings) log.warn(w);
  if (bool(p.flags, 'json')) {
    process.stdout.write(`${JSON.stringify(config.dbs.map((d) => ({ path: d.path, replicas: d.replicas.map((r) => ({ name: r.name, type: r.type, url: r.display })) })))}\n`);
  } else {
    process.stdout.write(table([['path', 'replicas'], ...config.dbs.map((d) => [d.path, d.replicas.map((r) => r.name).join(',')])]));
  }
  return 0;
}
