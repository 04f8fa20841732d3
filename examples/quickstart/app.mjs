#!/usr/bin/env node
// The example app: a tiny guestbook that writes a row every second to SQLite.
// Run it under lsinit (see README): lsinit restores the database if it is missing,
// replicates every commit, and ships the last ones when the app stops.
import Database from 'better-sqlite3';

const path = process.env.APP_DB ?? 'examples/quickstart/data/app.db';
const db = new Database(path);
db.pragma('journal_mode = wal');
db.pragma('busy_timeout = 5000'); // lsinit checkpoints now and then: wait instead of failing
db.pragma('wal_autocheckpoint = 0'); // lsinit checkpoints for us (see README)
db.exec('CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY, at TEXT NOT NULL, note TEXT)');
const insert = db.prepare('INSERT INTO visits (at, note) VALUES (?, ?)');
const count = db.prepare('SELECT COUNT(*) AS n FROM visits');

console.log(`app: ${count.get().n} visits in ${path} at start (pid ${process.pid})`);
const timer = setInterval(() => {
  insert.run(new Date().toISOString(), `hello from pid ${process.pid}`);
  console.log(`app: ${count.get().n} visits`);
}, 1000);

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    clearInterval(timer);
    insert.run(new Date().toISOString(), `goodbye (${sig})`);
    console.log(`app: ${sig}: last write done, ${count.get().n} visits; exiting`);
    db.close();
    process.exit(0);
  });
}
