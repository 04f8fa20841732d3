/** Helpers for age tests: a fresh X25519 key pair, and a config with a file and an S3 replica. */
import { writeFileSync } from 'node:fs';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY } from '../servers/moto.js';

export async function ageKeyPair(): Promise<{ identity: string; recipient: string }> {
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

/** The `age:` block of a replica, indented for `fileAndS3Config`. */
export function ageBlock(identities: string[], recipients: string[]): string {
  const list = (k: string, v: string[]) => (v.length ? `          ${k}: [${v.join(', ')}]\n` : '');
  return `        age:\n${list('identities', identities)}${list('recipients', recipients)}`;
}

/**
 * Write a config (read by lsinit and by Litestream 0.3.13) for `db` with two replicas: `disk`
 * (file, at `replica`) and `s3` (moto at `endpoint`, bucket `bucket`, path `app`), both with `age`.
 */
export function fileAndS3Config(cfg: string, o: { db: string; replica: string; endpoint: string; bucket: string; age: string }): void {
  writeFileSync(cfg, `dbs:
  - path: ${o.db}
    monitor-interval: 100ms
    min-checkpoint-page-count: 60
    replicas:
      - name: disk
        type: file
        path: ${o.replica}
        sync-interval: 100ms
${o.age}      - name: s3
        type: s3
        bucket: ${o.bucket}
        path: app
        endpoint: ${o.endpoint}
        region: us-east-1
        force-path-style: true
        access-key-id: ${MOTO_ACCESS_KEY_ID}
        secret-access-key: ${MOTO_SECRET_ACCESS_KEY}
        sync-interval: 100ms
${o.age}`);
}
