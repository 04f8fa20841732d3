/**
 * Memory stays bounded whatever the transaction or database size (Litestream OOMed on huge
 * transactions, #474): one 200 MB transaction and a 2 GB database replicate with lsinit's peak
 * RSS (VmHWM) under the documented bound.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createDB, fileConfig, sleep, startReplicate, workdir } from '../helpers/replicate.js';

const BOUND_MB = 300;
const hwmMB = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

describe(`lsinit's memory stays under ${BOUND_MB} MB`, () => {
  const w = workdir('bounded');
  after(() => w.cleanup());

  it('while replicating one 200 MB transaction', { timeout: 300_000 }, async (t) => {
    const { cfg, db, replica } = fileConfig(w.dir, { db: join(w.dir, 'tx.db'), replica: join(w.dir, 'r-tx'), sync: '1s' });
    createDB(db);
    const rep = await startReplicate(cfg);
    t.after(() => rep.child.kill('SIGKILL')); // a failed assertion must not leave it running
    const d = new Database(db);
    d.pragma('busy_timeout = 10000');
    const ins = d.prepare('INSERT INTO log (id, conn, data) VALUES (?, 0, randomblob(100000))');
    d.transaction(() => { for (let i = 1; i <= 2000; i++) ins.run(i); })();
    d.close();
    // Wait until the transaction is on the replica (the segment holding it is ~200 MB uncompressed).
    const gen = readdirSync(join(replica, 'generations'))[0]!;
    const walDir = join(replica, 'generations', gen, 'wal');
    const shipped = () => readdirSync(walDir).filter((f) => f.endsWith('.lz4')).reduce((a, f) => a + statSync(join(walDir, f)).size, 0);
    for (let i = 0; i < 600 && shipped() < 190e6; i++) await sleep(200);
    assert.ok(shipped() >= 190e6, `only ${shipped()} bytes shipped`);
    const peak = hwmMB(rep.child.pid!);
    rep.child.kill('SIGTERM');
    assert.equal((await rep.child).exitCode, 0, rep.output());
    assert.ok(peak < BOUND_MB, `peak RSS ${peak.toFixed(0)} MB`);
  });

  it('while taking the first snapshot of a 2 GB database', { timeout: 600_000 }, async (t) => {
    const db = join(w.dir, 'big.db');
    const d = new Database(db);
    d.pragma('journal_mode = wal');
    d.exec('CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)');
    const ins = d.prepare('INSERT INTO blobs (b) VALUES (randomblob(64000))');
    const tx = d.transaction(() => { for (let i = 0; i < 1000; i++) ins.run(); });
    for (let i = 0; i < 33; i++) tx();
    d.pragma('wal_checkpoint(TRUNCATE)');
    d.close();
    assert.ok(statSync(db).size > 2e9);
    const { cfg, replica } = fileConfig(w.dir, { db, replica: join(w.dir, 'r-big') });
    const rep = await startReplicate(cfg);
    t.after(() => rep.child.kill('SIGKILL')); // a failed assertion must not leave it running
    // Start-up waits for the first sync only a few seconds, then the snapshot goes on in the
    // background: wait for the finished object (written beside its name, then renamed).
    const snapshots = () => {
      const gens = existsSync(join(replica, 'generations')) ? readdirSync(join(replica, 'generations')) : [];
      const dir = gens[0] === undefined ? undefined : join(replica, 'generations', gens[0], 'snapshots');
      return dir === undefined || !existsSync(dir) ? [] : readdirSync(dir).filter((f) => f.endsWith('.snapshot.lz4')).map((f) => statSync(join(dir, f)).size);
    };
    for (let i = 0; i < 1500 && snapshots().length === 0; i++) await sleep(200);
    const snaps = snapshots();
    assert.equal(snaps.length, 1);
    assert.ok(snaps[0]! > 2e9, `snapshot of ${snaps[0]} bytes`);
    const peak = hwmMB(rep.child.pid!);
    rep.child.kill('SIGTERM');
    assert.equal((await rep.child).exitCode, 0, rep.output());
    assert.ok(peak < BOUND_MB, `peak RSS ${peak.toFixed(0)} MB`);
  });
});
