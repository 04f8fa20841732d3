#!/usr/bin/env node
// Test app: writes numbered transactions through several connections.
// usage: writer.mjs DB --tx N [--conns K] [--start S] [--truncate-at I] [--blob BYTES] [--delay MS]
// Prints "committed <id>" for every committed transaction (the app's log).
import Database from 'better-sqlite3';

const args = process.argv.slice(2);
const db = args[0];
const opt = (name, d) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : d;
};
const n = opt('tx', 100);
const conns = opt('conns', 3);
const start = opt('start', 1);
const truncateAt = opt('truncate-at', -1);
const blob = opt('blob', 0);
const delay = opt('delay', 0);

const handles = Array.from({ length: conns }, () => {
  const h = new Database(db, { timeout: 10000 });
  h.pragma('journal_mode = wal');
  h.pragma('busy_timeout = 10000');
  return h;
});
handles[0].exec(`CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY, conn INTEGER, payload TEXT, data BLOB);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER);`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
for (let id = start; id < start + n; id++) {
  const h = handles[id % conns];
  h.transaction(() => {
    h.prepare('INSERT INTO log (id, conn, payload, data) VALUES (?, ?, ?, ?)').run(id, id % conns, `tx-${id}-${'p'.repeat(id % 50)}`, blob ? Buffer.alloc(blob, id % 251) : null);
    h.prepare('INSERT INTO counters (name, value) VALUES (?, 1) ON CONFLICT(name) DO UPDATE SET value = value + 1').run(`c${id % 7}`);
    if (id % 10 === 0) h.prepare('DELETE FROM log WHERE id = ?').run(id - 5);
    if (id % 13 === 0) h.prepare("UPDATE log SET payload = payload || '-u' WHERE id = ?").run(id - 1);
  })();
  process.stdout.write(`committed ${id}\n`);
  if (id === truncateAt) {
    handles[0].pragma('busy_timeout = 300');
    const r = handles[0].pragma('wal_checkpoint(TRUNCATE)');
    handles[0].pragma('busy_timeout = 10000');
    process.stdout.write(`checkpoint ${JSON.stringify(r)}\n`);
  }
  if (delay) await sleep(delay);
}
for (const h of handles) h.close();
