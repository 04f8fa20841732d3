#!/usr/bin/env node
// Torture app: commits the transactions of plan.mjs in order through several connections and
// appends "c <id> <epoch ms>" to a commit log after each commit (written straight to the file,
// so a kill -9 loses at most the line of the transaction in flight).
// It resumes after meta.last_id, so it can be killed and restarted at any time.
// usage: app.mjs --db DB --log FILE --seed S [--conns K] [--delay MS]
//        [--action truncate|restart|vacuum|longread --action-after MS --action-hold MS]
// SIGTERM/SIGINT: finish the transaction in flight, close, exit 0.
import { openSync, writeSync } from 'node:fs';
import Database from 'better-sqlite3';
import { SCHEMA, apply } from './plan.mjs';

const args = process.argv.slice(2);
const opt = (name, d) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : d;
};
const dbPath = opt('db');
const logFd = openSync(opt('log'), 'a');
const seed = Number(opt('seed', '1'));
const conns = Number(opt('conns', '3'));
const delay = Number(opt('delay', '2'));
const action = opt('action', '');
const actionAfter = Number(opt('action-after', '0'));
const actionHold = Number(opt('action-hold', '2000'));

let stopping = false;
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => { stopping = true; });

const open = () => {
  const h = new Database(dbPath, { timeout: 10000 });
  h.pragma('busy_timeout = 10000');
  h.pragma('journal_mode = wal');
  return h;
};
const handles = Array.from({ length: conns }, open);
handles[0].exec(SCHEMA);
const row = handles[0].prepare("SELECT v FROM meta WHERE k = 'last_id'").get();
let id = (row ? row.v : 0) + 1;
const note = (line) => writeSync(logFd, `${line}\n`);
note(`s ${id} ${Date.now()} ${process.pid}`);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
let acted = !action;
let reader;
while (!stopping) {
  const h = handles[id % conns];
  h.transaction(() => apply(h, seed, id))();
  note(`c ${id} ${Date.now()}`);
  id++;
  if (!acted && Date.now() - t0 >= actionAfter) {
    acted = true;
    const a0 = Date.now();
    let result;
    if (action === 'truncate' || action === 'restart') {
      handles[0].pragma('busy_timeout = 2000');
      result = handles[0].pragma(`wal_checkpoint(${action.toUpperCase()})`);
      handles[0].pragma('busy_timeout = 10000');
    } else if (action === 'vacuum') {
      handles[0].exec('VACUUM');
      result = 'ok';
    } else if (action === 'longread') {
      reader = open();
      reader.exec('BEGIN');
      result = reader.prepare('SELECT COUNT(*) AS n FROM log').get();
      setTimeout(() => { reader.exec('COMMIT'); reader.close(); note(`a longread-end ${Date.now()}`); }, actionHold);
    }
    note(`a ${action} ${a0} ${Date.now()} ${JSON.stringify(result)}`);
  }
  await sleep(delay);
}
for (const h of handles) h.close();
note(`e ${id - 1} ${Date.now()}`);
