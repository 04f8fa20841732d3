/** Objects by key (listObjects/objectReader/writeObject) on an age-encrypted replica are sealed and opened like the rest. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buffer } from 'node:stream/consumers';
import { after, it } from 'node:test';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { parseAge } from '../../src/config/age.js';
import { AgeClient } from '../../src/replica/age.js';
import { FileReplicaClient } from '../../src/replica/clients/file.js';

const work = mkdtempSync(join(tmpdir(), 'lsinit-age-objects-'));
after(() => rmSync(work, { recursive: true, force: true }));

it('an object written by key is stored as an age file and reads back as written', async () => {
  const id = await generateX25519Identity();
  const keys = parseAge({ identities: [id], recipients: [await identityToRecipient(id)] }, 'dbs[0].replicas[0].age', [])!;
  const c = new AgeClient(new FileReplicaClient({ path: work }), keys);
  const body = Buffer.from('LTX1 and more bytes');
  await c.writeObject('ltx/0/0000000000000001-0000000000000001.ltx', body);
  const stored = readFileSync(join(work, 'ltx/0/0000000000000001-0000000000000001.ltx'));
  assert.match(stored.toString('latin1'), /^age-encryption\.org\/v1\n/);
  assert.deepEqual((await c.listObjects('ltx')).map((o) => [o.key, o.size]), [['ltx/0/0000000000000001-0000000000000001.ltx', stored.length]]);
  assert.deepEqual(await buffer(await c.objectReader('ltx/0/0000000000000001-0000000000000001.ltx')), body);
});
