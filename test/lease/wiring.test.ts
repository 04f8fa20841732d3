/**
 * Two `lsinit replicate` processes on one replica, through the built CLI: the wiring of the lease
 * into the controller, config and flags. Skipped until the controller has `acquireLeases` (the
 * wiring patch in the lease report), so it turns itself on when the patch lands.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Controller } from '../../src/replicate/controller.js';
import { lsinit } from '../helpers/cli.js';
import { createDB, dump, fileConfig, integrity, snapshotCopy, startReplicate, workdir, writer } from '../helpers/replicate.js';

const wired = 'acquireLeases' in Controller.prototype;

/** A database with a file replica `local` and an SFTP replica `offsite` at 127.0.0.1:`port`. */
function localAndSftp(dir: string, port: number): { db: string; replica: string; cfg: string } {
  const db = join(dir, 'app.db');
  const replica = join(dir, 'replica');
  const cfg = join(dir, 'lsinit.yml');
  writeFileSync(cfg, `dbs:
  - path: ${db}
    monitor-interval: 100ms
    replicas:
      - name: local
        path: ${replica}
        sync-interval: 100ms
      - name: offsite
        url: sftp://backup:pw@127.0.0.1:${port}/srv/app
        sync-interval: 100ms
`);
  return { db, replica, cfg };
}

describe('lease wiring (lsinit replicate)', { skip: wired ? false : 'controller wiring of the lease not applied yet' }, () => {
  it('a second replicate on the same replica refuses naming the first; after SIGTERM it starts', async () => {
    const w = workdir('wire1');
    try {
      const { cfg, db, replica } = fileConfig(w.dir, { replicaExtra: '        lease: { ttl: 3s }\n' });
      createDB(db);
      // Another host's copy of the database (its own file and meta directory), same replica: only
      // the lease stands between them (on one database, the meta lock refuses first: second-instance.test.ts).
      mkdirSync(join(w.dir, 'host2'));
      const { cfg: cfg2, db: db2 } = fileConfig(join(w.dir, 'host2'), { replica, replicaExtra: '        lease: { ttl: 3s }\n' });
      createDB(db2);
      const a = await startReplicate(cfg);
      assert.ok(existsSync(join(replica, 'lsinit-lease.json')));
      const b = await lsinit(['replicate', '-config', cfg2], { timeout: 20_000 });
      assert.equal(b.exitCode, 75, b.stdout + b.stderr);
      assert.match(b.stderr, /^lsinit: LSINIT_ERR_LEASE: replica .*in use by another lsinit: host .*pid \d+/m);
      assert.equal(existsSync(join(w.dir, 'host2', '.app.db-litestream', 'generations')), false, 'refused before its first sync');
      a.child.kill('SIGTERM');
      assert.equal((await a.child).exitCode, 0, a.output());
      assert.ok(!existsSync(join(replica, 'lsinit-lease.json')), 'released on shutdown');
      const c = await startReplicate(cfg);
      await writer(db, ['--tx', '20']);
      c.child.kill('SIGTERM');
      assert.equal((await c.child).exitCode, 0, c.output());
    } finally {
      w.cleanup();
    }
  });

  it('-lease-wait: the second waits for the first to shut down, then replicates', async () => {
    const w = workdir('wire2');
    try {
      const { cfg, db } = fileConfig(w.dir, { replicaExtra: '        lease: { ttl: 3s }\n' });
      createDB(db);
      const a = await startReplicate(cfg);
      const { spawnLsinit } = await import('../helpers/cli.js');
      const b = spawnLsinit(['replicate', '-config', cfg, '-lease-wait', '-lease-max-wait', '30s'], { all: true, buffer: true });
      let out = '';
      b.all!.on('data', (d: Buffer) => (out += d.toString()));
      try {
        for (let i = 0; i < 200 && !out.includes('waiting for it'); i++) await sleep(50);
        assert.match(out, /waiting for it/);
        assert.doesNotMatch(out, /msg=replicating/);
        a.child.kill('SIGTERM');
        await a.child;
        for (let i = 0; i < 300 && !out.includes('msg=replicating'); i++) await sleep(50);
        assert.match(out, /msg=replicating/);
      } finally {
        b.kill('SIGTERM');
        a.child.kill('SIGTERM');
        await a.child;
      }
      assert.equal((await b).exitCode, 0, out);
    } finally {
      w.cleanup();
    }
  });

  it('SIGTERM while waiting for a lease (-lease-wait) or for the database lock ends the wait at once: exit 0, the holder untouched', async () => {
    const w = workdir('wire6');
    try {
      const replica = join(w.dir, 'replica');
      mkdirSync(join(w.dir, 'a'));
      mkdirSync(join(w.dir, 'b'));
      const a = fileConfig(join(w.dir, 'a'), { replica });
      // Another database on the same replica: only the lease is in the way.
      const b = fileConfig(join(w.dir, 'b'), { replica });
      createDB(a.db);
      createDB(b.db);
      const first = await startReplicate(a.cfg);
      const { spawnLsinit } = await import('../helpers/cli.js');
      try {
        for (const cfg of [b.cfg, a.cfg]) {
          // b.cfg waits for the replica lease; a.cfg (the same database) for the database's lock.
          const waiter = spawnLsinit(['replicate', '-config', cfg, '-lease-wait', '-lease-max-wait', '5m'], { all: true, buffer: true });
          let out = '';
          waiter.all!.on('data', (d: Buffer) => (out += d.toString()));
          for (let i = 0; i < 600 && !/waiting for it/.test(out); i++) await sleep(50);
          assert.match(out, /waiting for it/);
          const t0 = Date.now();
          waiter.kill('SIGTERM'); // execa sends SIGKILL 5 s later if it is still running
          const r = await waiter;
          assert.equal(r.exitCode, 0, out);
          assert.ok(Date.now() - t0 < 4000, `took ${Date.now() - t0} ms:\n${out}`);
          assert.doesNotMatch(out, /msg=replicating/);
        }
        // The first instance still holds its lease and replicates.
        await writer(a.db, ['--tx', '5']);
        assert.equal(JSON.parse(readFileSync(join(replica, 'lsinit-lease.json'), 'utf8')).holder.pid, first.child.pid);
      } finally {
        first.child.kill('SIGTERM');
      }
      assert.equal((await first.child).exitCode, 0, first.output());
    } finally {
      w.cleanup();
    }
  });

  it('a lease stolen mid-run stops replication to that replica loudly; shutdown reports it', async () => {
    const w = workdir('wire3');
    try {
      const { cfg, db, replica } = fileConfig(w.dir, { replicaExtra: '        lease: { ttl: 3s }\n' });
      createDB(db);
      const a = await startReplicate(cfg);
      await writer(db, ['--tx', '10']);
      const thief = { holder: { hostname: 'thief-host', pid: 77, id: 'feedface', startedAt: new Date().toISOString() }, expiresAt: new Date(Date.now() + 60_000).toISOString(), version: 1 };
      writeFileSync(join(replica, 'lsinit-lease.json'), JSON.stringify(thief));
      for (let i = 0; i < 60 && !a.output().includes('lease lost'); i++) await sleep(100);
      assert.match(a.output(), /replica lease lost.*thief-host/);
      await writer(db, ['--tx', '10', '--start', '11']);
      await sleep(500);
      a.child.kill('SIGTERM');
      const r = await a.child;
      assert.equal(r.exitCode, 1, a.output());
      assert.match(a.output(), /final sync failed.*lost the lease/);
      // The thief's lease is untouched.
      assert.equal(JSON.parse(readFileSync(join(replica, 'lsinit-lease.json'), 'utf8')).holder.id, 'feedface');
    } finally {
      w.cleanup();
    }
  });

  it('a replica whose store does not answer at start does not block the others or the start', async () => {
    const w = workdir('wire5');
    try {
      const { db, replica, cfg } = localAndSftp(w.dir, 1);
      createDB(db);
      const a = await startReplicate(cfg);
      assert.ok(existsSync(join(replica, 'lsinit-lease.json')));
      await writer(db, ['--tx', '10']);
      a.child.kill('SIGTERM');
      const r = await a.child;
      assert.equal(r.exitCode, 1, 'the final sync to the unreachable replica failed');
      assert.match(a.output(), /replica sync failed.*offsite.*ECONNREFUSED/);
      const out = join(w.dir, 'restored.db');
      assert.equal((await lsinit(['restore', '-o', out, `file://${replica}`])).exitCode, 0);
      assert.deepEqual(dump(out), dump(snapshotCopy(db, join(w.dir, 'src.db'))));
    } finally {
      w.cleanup();
    }
  });

  it('a lease store whose server accepts and never answers does not hold the shutdown past its budget', async () => {
    const w = workdir('wire7');
    // Accepts, never sends the SSH banner: a connection attempt waits for its dial timeout (30 s).
    const sockets: Socket[] = [];
    const silent = createServer((s) => void sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const { db, cfg } = localAndSftp(w.dir, (silent.address() as AddressInfo).port);
      createDB(db);
      const a = await startReplicate(cfg, ['-shutdown-timeout', '2s']);
      await writer(db, ['--tx', '5']);
      const t0 = Date.now();
      a.child.kill('SIGTERM'); // execa sends SIGKILL 5 s later if it is still running
      const r = await a.child;
      assert.equal(r.exitCode, 1, a.output());
      assert.ok(Date.now() - t0 < 4000, `took ${Date.now() - t0} ms:\n${a.output()}`);
      assert.match(a.output(), /final sync failed.*offsite/);
      assert.match(a.output(), /final sync done.*replica=local/);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
      w.cleanup();
    }
  });

  it('after kill -9 a restart on the same host takes the lease over at once', async () => {
    const w = workdir('wire4');
    try {
      const { cfg, db } = fileConfig(w.dir);
      createDB(db);
      const a = await startReplicate(cfg);
      await writer(db, ['--tx', '10']);
      a.child.kill('SIGKILL');
      await a.child;
      const t0 = Date.now();
      const b = await startReplicate(cfg);
      assert.ok(Date.now() - t0 < 5000);
      assert.match(b.output(), /earlier process on this host/);
      b.child.kill('SIGTERM');
      assert.equal((await b.child).exitCode, 0, b.output());
      const out = join(w.dir, 'restored.db');
      assert.equal((await lsinit(['restore', '-config', cfg, '-o', out, db])).exitCode, 0);
      assert.equal(integrity(out), 'ok');
      assert.deepEqual(dump(out), dump(snapshotCopy(db, join(w.dir, 'src.db'))));
    } finally {
      w.cleanup();
    }
  });
});
