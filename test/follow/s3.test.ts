/**
 * Issue 12 on S3 (moto): a real `lsinit replicate` writes to the store, `lsinit restore -f
 * -config` (the config form) follows it through a TCP proxy, readers in other processes query
 * the copy throughout. "What must hold" 4: the proxy is cut for a few seconds (the store is
 * unreachable): the follower keeps serving the last state (readers see no error), logs the
 * failed polls, and catches up when the store is back.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { sleep, startReplicate, workdir } from '../helpers/replicate.js';
import { MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY, startMoto, type MotoServer } from '../servers/moto.js';
import { bank, followerSeq, rows, startBank, startFollower, startProxy, startReader, waitFor } from './helpers.js';

const BUCKET = 'lsinit-follow';
const w = workdir('follow-s3');
let moto: MotoServer;
const creds = { AWS_ACCESS_KEY_ID: MOTO_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: MOTO_SECRET_ACCESS_KEY };

before(async () => {
  moto = await startMoto();
  await moto.createBucket(BUCKET);
});
after(async () => {
  await moto?.stop();
  w.cleanup();
});

function s3Config(dbPath: string, endpoint: string, file: string): string {
  writeFileSync(file, `dbs:
  - path: ${dbPath}
    monitor-interval: 100ms
    replicas:
      - type: s3
        bucket: ${BUCKET}
        path: bank
        endpoint: ${endpoint}
        region: us-east-1
        sync-interval: 200ms
`);
  return file;
}

test('follower on S3: readers see only committed states, an outage is served from the last state and caught up', { timeout: 240_000 }, async () => {
  const db = join(w.dir, 'primary.db');
  const copy = join(w.dir, 'copy.db');
  await bank(db, ['--tx', '1']);
  Object.assign(process.env, creds); // inherited by the lsinit children
  const primary = await startReplicate(s3Config(db, moto.endpoint, join(w.dir, 'primary.yml')));
  const proxy = await startProxy(moto.port);
  try {
    await sleep(1000); // the first snapshot
    const f = startFollower(['-follow-interval', '200ms', '-config', s3Config(copy, proxy.endpoint, join(w.dir, 'follower.yml')), copy]);
    await waitFor(() => followerSeq(copy) >= 1, 60_000, `the first restore: ${f.output()}`);
    const readers = [startReader(copy, 'node'), startReader(copy, 'python'), startReader(copy, 'cli')];
    const writes = startBank(db, ['--tx', '900', '--delay', '10']);
    await waitFor(() => followerSeq(copy) >= 100, 60_000, `progress before the outage: ${f.output().slice(-1500)}`);
    await proxy.down();
    const cut = followerSeq(copy);
    await sleep(3000);
    const during = followerSeq(copy);
    assert.ok(during - cut <= 1, `nothing new arrives while the store is unreachable (${cut} → ${during})`);
    assert.match(f.output(), /follow poll failed; serving the last applied state/);
    await proxy.up();
    const final = Number(String((await writes).stdout).trim().split('\n').pop()!.split(' ')[1]);
    await waitFor(() => followerSeq(copy) === final, 90_000, `catch-up to ${final}: ${f.output().slice(-1500)}`);
    const results = await Promise.all(readers.map((r) => r.finish()));
    for (const r of results) {
      assert.deepEqual(r.bad, [], r.out.slice(0, 2000));
      assert.deepEqual(r.errors, [], r.out.slice(0, 2000));
      assert.ok(r.distinct >= 3, r.out.slice(-300));
    }
    f.child.kill('SIGINT');
    assert.equal((await f.child).exitCode, 0, f.output().slice(-1500));
    assert.ok(!f.output().includes(MOTO_SECRET_ACCESS_KEY));
    const a = rows(db);
    const b = rows(copy);
    assert.equal(b.integrity, 'ok');
    assert.deepEqual(b.ledger, a.ledger);
    assert.deepEqual(b.accounts, a.accounts);
  } finally {
    primary.child.kill('SIGTERM');
    await primary.child;
    // A listening proxy would keep this test file's process alive (the runner waits for it).
    await proxy.down();
  }
});
