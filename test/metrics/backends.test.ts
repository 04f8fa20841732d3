/**
 * /metrics while one database replicates to every backend type at once (real servers): the
 * request counters move with the right replica_type and operation labels, every replica's WAL
 * counters move under its own name, and no credential appears in the output.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startAzurite, type AzuriteServer } from '../servers/azurite.js';
import { startGcs, type RunningGcs } from '../servers/gcs.js';
import { MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY, startMoto, type MotoServer } from '../servers/moto.js';
import { startSshd, type Sshd } from '../servers/sshd.js';
import { rig, until, type Rig } from './helpers.js';

describe('metrics for every backend type', () => {
  let moto: MotoServer;
  let azurite: AzuriteServer;
  let gcs: RunningGcs;
  let sshd: Sshd;
  let r: Rig | undefined;
  before(async () => {
    [moto, azurite, gcs, sshd] = await Promise.all([startMoto(), startAzurite(), startGcs(), startSshd({ name: 'metrics' })]);
    await moto.createBucket('metrics');
    await azurite.createContainer('metrics');
  });
  after(async () => {
    await r?.stop();
    await Promise.all([moto?.stop(), azurite?.stop(), gcs?.stop(), sshd?.cleanup()]);
  });

  it('operation and WAL counters move per replica_type and replica name', { timeout: 120_000 }, async () => {
    r = await rig('metrics-backends', `      - name: f
        path: {dir}/replica
        sync-interval: 100ms
      - name: s
        type: s3
        bucket: metrics
        path: app
        endpoint: ${moto.endpoint}
        region: us-east-1
        access-key-id: ${MOTO_ACCESS_KEY_ID}
        secret-access-key: ${MOTO_SECRET_ACCESS_KEY}
        sync-interval: 100ms
      - name: a
        type: abs
        account-name: ${azurite.accountName}
        account-key: ${azurite.accountKey}
        bucket: metrics
        path: app
        endpoint: ${azurite.endpoint}
        sync-interval: 100ms
      - name: g
        type: gcs
        bucket: ${gcs.bucket}
        path: ${gcs.prefix()}
        endpoint: ${gcs.endpoint}
        sync-interval: 100ms
      - name: p
        url: ${sshd.url(`${sshd.home}/metrics-replica`)}
        host-key: ${sshd.hostKeyLine}
        sync-interval: 100ms
`);
    const before = await r.scrape();
    r.write(50);
    const types = { f: 'file', s: 's3', a: 'abs', g: 'gcs', p: 'sftp' } as const;
    const after = await until(async () => {
      const m = await r!.scrape();
      return Object.keys(types).every((name) => (m.get('litestream_replica_wal_bytes', { db: r!.db, name }) ?? 0) > (before.get('litestream_replica_wal_bytes', { db: r!.db, name }) ?? 0)) ? m : undefined;
    }, 60_000, 'every replica to ship the new rows');
    for (const [name, type] of Object.entries(types)) {
      const puts = (m: typeof after) => m.get('litestream_replica_operation_total', { replica_type: type, operation: 'PUT' }) ?? 0;
      assert.ok(puts(after) > puts(before), `${type}: PUT counter did not move`);
      assert.ok((after.get('litestream_replica_operation_bytes', { replica_type: type, operation: 'PUT' }) ?? 0) > 0, `${type}: PUT bytes`);
      assert.ok((after.get('litestream_replica_operation_total', { replica_type: type, operation: 'LIST' }) ?? 0) > 0, `${type}: LIST`);
      assert.equal(after.get('litestream_replica_wal_index', { db: r.db, name }), after.get('litestream_shadow_wal_index', { db: r.db }), `${name}: index`);
      assert.equal(after.get('lsinit_replica_up', { db: r.db, name }), 1, `${name}: up`);
    }
    for (const secret of [MOTO_SECRET_ACCESS_KEY, azurite.accountKey, sshd.password]) {
      assert.ok(!after.text.includes(secret), 'a credential leaked into /metrics');
    }
  });
});
