/**
 * `restore -f -config C DB`: the db's own `follow-interval` key sets the poll interval when no
 * -follow-interval flag is given; the flag wins over the key.
 */
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileConfig, startReplicate, workdir } from '../helpers/replicate.js';
import { bank, followerSeq, startFollower, waitFor } from './helpers.js';

const w = workdir('follow-cfg');
let cfg: string;
let db: string;

before(async () => {
  const c = fileConfig(w.dir, { sync: '100ms' });
  db = c.db;
  await bank(c.db, ['--tx', '1']);
  const p = await startReplicate(c.cfg);
  await bank(c.db, ['--tx', '5']);
  await waitFor(() => existsSync(join(c.replica, 'generations')), 30_000, 'the first upload');
  await new Promise((r) => setTimeout(r, 1000));
  p.child.kill('SIGTERM');
  await p.child;
  cfg = join(w.dir, 'follower.yml');
  writeFileSync(cfg, `dbs:\n  - path: ${c.db}\n    follow: true\n    follow-interval: 150ms\n    replicas:\n      - type: file\n        path: ${c.replica}\n`);
});
after(() => w.cleanup());

for (const [flags, ms] of [[[], 150], [['-follow-interval', '70ms'], 70]] as const) {
  test(`restore -f -config ${flags.join(' ') || '(no flag)'} polls every ${ms} ms`, async () => {
    const copy = join(w.dir, `copy-${ms}.db`);
    const f = startFollower([...flags, '-o', copy, '-config', cfg, db]);
    await waitFor(() => followerSeq(copy) >= 6, 60_000, `restore: ${f.output()}`);
    await waitFor(() => /following /.test(f.output()), 10_000, `the follow line: ${f.output()}`);
    f.child.kill('SIGTERM');
    assert.equal((await f.child).exitCode, 0, f.output());
    assert.match(f.output(), new RegExp(`following .*interval_ms=${ms}\\b`), f.output());
  });
}
