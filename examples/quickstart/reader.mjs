#!/usr/bin/env node
// The example read-node app: reads the guestbook that app.mjs writes on the primary, from the
// copy lsinit keeps in step (`lsinit -follow -- node reader.mjs`). It opens the database
// read-only: writes belong to the primary, and the follower refuses a copy written by anyone else.
import Database from 'better-sqlite3';

const path = process.env.APP_DB ?? 'examples/quickstart/data/app.db';
const db = new Database(path, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 5000'); // the follower holds its lock for a moment per applied transaction
const count = db.prepare('SELECT COUNT(*) AS n, MAX(at) AS last FROM visits');

const timer = setInterval(() => {
  const { n, last } = count.get();
  console.log(`reader: ${n} visits, last at ${last}`);
}, 1000);

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    clearInterval(timer);
    db.close();
    process.exit(0);
  });
}
