/**
 * sftp outages against a real sshd: kill the server (listener and live sessions), check that calls
 * fail fast with transient errors and never leave a partial object, restart it on the same port,
 * and check that the same client object carries on.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { after, before, beforeEach, describe, it } from 'node:test';
import { LsinitError } from '../../src/errors.js';
import type { ReplicaClient } from '../../src/replica/client.js';
import { sftpBackend } from '../../src/replica/clients/sftp.js';
import { SFTPReplicaClient } from '../../src/replica/clients/sftp-client.js';
import { isTransient } from '../../src/replica/retry.js';
import { startSshd, type Sshd } from '../servers/sshd.js';

const G = '0123456789abcdef';
let sshd: Sshd;
let n = 0;
const clients: ReplicaClient[] = [];

before(async () => {
  sshd = await startSshd({ name: 'outage' });
});
after(async () => {
  for (const c of clients) await c.close();
  await sshd?.cleanup();
});
beforeEach(() => sshd.start());

function client(): ReplicaClient {
  const r = sftpBackend.resolve({ url: new URL(sshd.url(join(sshd.home, `outage-${++n}`))), raw: { 'host-key': sshd.hostKeyLine }, global: {}, env: {}, keyPath: 't', cwd: '/' });
  // The client class itself (sftpBackend.create wraps it in a lazily loading proxy).
  const c = new SFTPReplicaClient(r.settings);
  clients.push(c);
  return c;
}

function assertTransient(err: unknown): true {
  assert.ok(err instanceof LsinitError, `want LsinitError, got ${String(err)}`);
  assert.equal(err.code, 'LSINIT_ERR_REPLICA');
  assert.equal(isTransient(err), true, err.message);
  assert.ok(!err.message.includes(sshd.password));
  return true;
}

const dirOf = (c: ReplicaClient) => (c as unknown as { settings: { path: string } }).settings.path;

const accepted = () => sshd.log().split('\n').filter((l) => l.startsWith('Accepted ')).length;

describe('sftp outages', () => {
  it('fails with transient errors while sshd is down and works again, same client, once it is back', async () => {
    const c = client();
    await c.writeWALSegment({ generation: G, index: 1, offset: 0 }, Buffer.from('before'));
    await sshd.stop();
    await assert.rejects(c.writeWALSegment({ generation: G, index: 1, offset: 6 }, Buffer.from('during')), assertTransient);
    await assert.rejects(c.generations(), assertTransient);
    await assert.rejects(c.walSegmentReader({ generation: G, index: 1, offset: 0 }), assertTransient);
    await sshd.start();
    await c.writeWALSegment({ generation: G, index: 2, offset: 0 }, Buffer.from('after'));
    assert.deepEqual((await c.walSegments(G)).map((s) => [s.index, s.offset]), [[1, 0], [2, 0]]);
    assert.deepEqual(await buffer(await c.walSegmentReader({ generation: G, index: 1, offset: 0 })), Buffer.from('before'));
  });

  it('a restart while the client idles is invisible: the next call reconnects', async () => {
    const c = client();
    await c.writeSnapshot(G, 0, Buffer.from('s'));
    await sshd.stop();
    await sshd.start();
    assert.deepEqual(await c.generations(), [G]);
  });

  it('an upload cut by the outage fails and leaves no partial object under its final name', async () => {
    const c = client();
    await c.generations();
    const chunk = randomBytes(256 * 1024);
    let sent = 0;
    const body = new Readable({
      read() {
        sent += 1;
        if (sent === 8) void sshd.stop();
        // Keep producing until the failure stops the upload.
        setTimeout(() => this.push(chunk), 5);
      },
    });
    await assert.rejects(c.writeSnapshot(G, 1, body), assertTransient);
    body.destroy();
    await sshd.start();
    assert.deepEqual(await c.snapshots(G), []);
    await assert.rejects(c.snapshotReader(G, 1), { code: 'LSINIT_ERR_NOT_FOUND' });
    // The cut upload's leftover `.tmp` is invisible to listings and goes with its generation.
    const snapDir = join(dirOf(c), 'generations', G, 'snapshots');
    assert.deepEqual(readdirSync(snapDir), ['00000001.snapshot.lz4.tmp']);
    await c.deleteGeneration(G);
    assert.equal(existsSync(join(dirOf(c), 'generations', G)), false);
  });

  it('a download cut by the outage errors instead of hanging', async () => {
    const c = client();
    const data = randomBytes(16 << 20);
    await c.writeSnapshot(G, 2, data);
    const rs = await c.snapshotReader(G, 2);
    const it = rs[Symbol.asyncIterator]();
    assert.equal((await it.next()).done, false);
    await sshd.stop();
    await assert.rejects(async () => {
      for (let r = await it.next(); !r.done; r = await it.next());
    }, assertTransient);
  });

  it('concurrent calls share one lazily opened connection', async () => {
    const c = client();
    const before = accepted();
    await Promise.all(Array.from({ length: 24 }, (_, i) => c.writeWALSegment({ generation: G, index: 0, offset: i * 100 }, Buffer.from(`seg${i}`))));
    assert.equal((await c.walSegments(G)).length, 24);
    // sshd -e logs one "Accepted password for ..." line per login.
    for (let i = 0; i < 50 && accepted() === before; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(accepted() - before, 1);
  });
});
