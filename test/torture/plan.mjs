// The torture app's transactions, a pure function of (seed, id): the app runs them and the
// harness replays them (the oracle) to know the exact rows after any committed prefix 1..K.
// Shared by app.mjs (plain Node, spawned by lsinit in init mode) and harness.ts.

/** mulberry32 on a 32-bit state: tiny, fast, and identical in every process. */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mix(seed, id) {
  let h = (seed ^ Math.imul(id, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Deterministic bytes: a cheap pattern that still differs per row and per version. */
export function blob(id, version, size) {
  const b = Buffer.alloc(size);
  let x = mix(id, version) | 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/**
 * The operations of transaction `id`:
 *   insert log row id (payload text, data blob: usually small, 10% overflowing several pages)
 *   maybe update an earlier row (payload and blob), maybe delete an earlier row,
 *   bump a counter, set meta.last_id = id,
 *   rarely a schema change: CREATE TABLE s_<id> with a row, or DROP TABLE IF EXISTS an older one.
 */
export function plan(seed, id) {
  const r = rng(mix(seed, id));
  const big = r() < 0.1;
  const size = big ? 4000 + Math.floor(r() * 36000) : Math.floor(r() * 300);
  const op = {
    id,
    conn: id % 3,
    payload: `tx-${id}-${'p'.repeat(Math.floor(r() * 120))}`,
    size,
    update: undefined,
    del: undefined,
    counter: `c${id % 7}`,
    create: undefined,
    drop: undefined,
  };
  if (r() < 0.2 && id > 1) op.update = { target: id - 1 - Math.floor(r() * Math.min(20, id - 1)), size: r() < 0.1 ? 5000 + Math.floor(r() * 20000) : Math.floor(r() * 200) };
  if (r() < 0.15 && id > 1) op.del = id - 1 - Math.floor(r() * Math.min(30, id - 1));
  const s = r();
  if (s < 0.012) op.create = `s_${id}`;
  else if (s < 0.018 && id > 50) op.drop = `s_${id - 1 - Math.floor(r() * 50)}`;
  return op;
}

export const SCHEMA = `CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, conn INTEGER, payload TEXT, data BLOB);
CREATE INDEX IF NOT EXISTS log_payload ON log (payload);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER);`;

/** Run transaction `id` on a better-sqlite3 handle (inside the caller's transaction). */
export function apply(h, seed, id) {
  const op = plan(seed, id);
  h.prepare('INSERT INTO log (id, conn, payload, data) VALUES (?, ?, ?, ?)').run(id, op.conn, op.payload, blob(id, 0, op.size));
  if (op.update) h.prepare("UPDATE log SET payload = payload || ?, data = ? WHERE id = ?").run(`-u${id}`, blob(op.update.target, id, op.update.size), op.update.target);
  if (op.del !== undefined) h.prepare('DELETE FROM log WHERE id = ?').run(op.del);
  h.prepare('INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1').run(op.counter);
  if (op.create) {
    h.exec(`CREATE TABLE ${op.create} (a INTEGER PRIMARY KEY, b TEXT)`);
    h.prepare(`INSERT INTO ${op.create} (a, b) VALUES (?, ?)`).run(id, `schema-${id}`);
  }
  if (op.drop) h.exec(`DROP TABLE IF EXISTS ${op.drop}`);
  h.prepare("INSERT INTO meta (k, v) VALUES ('last_id', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v").run(id);
}

/** Expected contents after transactions 1..k, in the shape of `dumpState`. */
export function oracle(seed, k) {
  const log = new Map();
  const counters = new Map();
  const tables = new Map();
  for (let id = 1; id <= k; id++) {
    const op = plan(seed, id);
    log.set(id, [id, op.conn, op.payload, blob(id, 0, op.size)]);
    if (op.update) {
      const row = log.get(op.update.target);
      if (row) log.set(op.update.target, [row[0], row[1], `${row[2]}-u${id}`, blob(op.update.target, id, op.update.size)]);
    }
    if (op.del !== undefined) log.delete(op.del);
    counters.set(op.counter, (counters.get(op.counter) ?? 0) + 1);
    if (op.create) tables.set(op.create, [[id, `schema-${id}`]]);
    if (op.drop) tables.delete(op.drop);
  }
  return {
    lastId: k,
    log: [...log.values()].sort((a, b) => a[0] - b[0]),
    counters: [...counters.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    tables: Object.fromEntries([...tables.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))),
  };
}
