/** The vectors' logical fingerprint (test/fixtures/litestream-0.3.13/README.md, fingerprint_version 1). */
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';

type Cell = ['n', null] | ['i' | 'r' | 't' | 'b', string];

function encode(v: unknown): Cell {
  if (v === null || v === undefined) return ['n', null];
  if (typeof v === 'bigint') return ['i', v.toString()];
  if (typeof v === 'number') {
    const b = Buffer.alloc(8);
    b.writeDoubleBE(v);
    return ['r', b.toString('hex')];
  }
  if (typeof v === 'string') return ['t', Buffer.from(v, 'utf8').toString('hex')];
  if (Buffer.isBuffer(v)) return ['b', v.toString('hex')];
  throw new Error(`unexpected value ${String(v)}`);
}

const q = (id: string) => `"${id.replace(/"/g, '""')}"`;

function hashRows(rows: unknown[][]): string {
  const h = createHash('sha256');
  for (const r of rows) h.update(`${JSON.stringify(r.map(encode))}\n`);
  return h.digest('hex');
}

export function fingerprint(path: string) {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    db.defaultSafeIntegers(true);
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name").raw().all() as [string][]).map(([name]) => {
      const wr = (db.prepare("SELECT wr FROM pragma_table_list WHERE schema='main' AND name=?").raw().get(name) as [bigint] | undefined)?.[0];
      const info = db.prepare(`PRAGMA table_info(${q(name)})`).all() as { name: string; pk: bigint }[];
      const withoutRowid = wr === 1n;
      let sql: string;
      let columns: string[];
      if (withoutRowid) {
        const pks = info.filter((c) => c.pk > 0n).sort((a, b) => Number(a.pk - b.pk)).map((c) => q(c.name));
        sql = `SELECT * FROM ${q(name)} ORDER BY ${pks.join(', ')}`;
        columns = info.map((c) => c.name);
      } else {
        sql = `SELECT _rowid_, * FROM ${q(name)} ORDER BY _rowid_`;
        columns = ['_rowid_', ...info.map((c) => c.name)];
      }
      const rows = db.prepare(sql).raw().all() as unknown[][];
      return { name, without_rowid: withoutRowid, columns, rows: rows.length, sha256: hashRows(rows) };
    });
    const srows = db.prepare('SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name').raw().all() as unknown[][];
    return { tables, schema: { rows: srows.length, sha256: hashRows(srows), objects: srows.map((r) => [r[0], r[1]]) } };
  } finally {
    db.close();
  }
}
