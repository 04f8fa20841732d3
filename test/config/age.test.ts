/**
 * The per-replica `age:` key: what Litestream 0.3.10+ accepts (lists of strings, each parsed like
 * an age key file), the refusals that name the key path and line, and that secret keys never show
 * in an error, a serialized config or util.inspect — but do reach the log scrubber.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { loadConfig, parseConfig } from '../../src/config/file.js';
import { secretValues } from '../../src/config/secrets.js';

const yml = (age: string) => `dbs:\n  - path: /data/app.db\n    replicas:\n      - url: file:///backups/app\n${age}`;
const parse = (text: string, env: NodeJS.ProcessEnv = {}) => parseConfig(Buffer.from(text), { file: '/etc/t.yml', expandEnv: true, env, cwd: '/' });

let id1: string, id2: string, rc1: string, rc2: string;
let dir: string;
before(async () => {
  id1 = await generateX25519Identity();
  id2 = await generateX25519Identity();
  rc1 = await identityToRecipient(id1);
  rc2 = await identityToRecipient(id2);
  dir = mkdtempSync(join(tmpdir(), 'lsinit-age-config-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A config error whose key path is `key` and whose message never contains a secret key. */
function refused(fn: () => unknown, key: string | RegExp) {
  assert.throws(fn, (err: { code: string; message: string; fields: { key: string } }) => {
    assert.equal(err.code, 'LSINIT_ERR_CONFIG');
    if (typeof key === 'string') assert.equal(err.fields.key, key);
    else assert.match(err.fields.key, key);
    assert.doesNotMatch(err.message, /AGE-SECRET-KEY-1[0-9A-Z]{20}/, 'a secret key leaked into the message');
    return true;
  });
}

describe('config: age', () => {
  it('reads inline identities and recipients into the replica', () => {
    const c = parse(yml(`        age:\n          identities:\n            - ${id1}\n          recipients:\n            - ${rc1}\n            - ${rc2}\n`));
    const age = c.dbs[0]!.replicas[0]!.age!;
    assert.deepEqual(age.identities, [id1]);
    assert.deepEqual(age.recipients, [rc1, rc2]);
    assert.equal(age.keyPath, 'dbs[0].replicas[0].age');
    assert.deepEqual(c.warnings, []);
  });

  it('an entry may hold a whole age-keygen key file (comments, blank lines, CRLF), or come from $VAR', () => {
    const file = `# created: 2026-01-01T00:00:00Z\r\n# public key: ${rc1}\r\n${id1}\r\n\n${id2}\n`;
    const c = parse(yml(`        age:\n          identities:\n            - $AGE_IDENTITY\n          recipients: [ "${rc1}" ]\n`), { AGE_IDENTITY: JSON.stringify(file) });
    assert.deepEqual(c.dbs[0]!.replicas[0]!.age!.identities, [id1, id2]);
    assert.deepEqual(c.dbs[0]!.replicas[0]!.age!.at.identities, ['identities[0] line 3', 'identities[0] line 5']);
  });

  it('an absent, empty or null age: means no encryption', () => {
    for (const a of ['', '        age:\n', '        age: {}\n', '        age:\n          identities: []\n          recipients: []\n']) {
      assert.equal(parse(yml(a)).dbs[0]!.replicas[0]!.age, undefined, a);
    }
  });

  it('identities alone are accepted (a restore-only config)', () => {
    assert.deepEqual(parse(yml(`        age:\n          identities: [${id1}]\n`)).dbs[0]!.replicas[0]!.age!.recipients, []);
  });

  it('refuses bad shapes and bad lines, naming the key path', () => {
    const A = 'dbs[0].replicas[0].age';
    refused(() => parse(yml('        age: yes\n')), A);
    refused(() => parse(yml('        age: [a]\n')), A);
    refused(() => parse(yml(`        age:\n          identities: ${id1}\n          recipients: [${rc1}]\n`)), `${A}.identities`);
    refused(() => parse(yml(`        age:\n          identities: [42]\n          recipients: [${rc1}]\n`)), `${A}.identities[0]`);
    refused(() => parse(yml(`        age:\n          identities: [${id1}, "# nothing but a comment"]\n          recipients: [${rc1}]\n`)), `${A}.identities[1]`);
    // An unset variable expands to "" (as in Litestream): an empty entry is refused, not ignored.
    refused(() => parse(yml(`        age:\n          identities: ["$UNSET"]\n          recipients: [${rc1}]\n`)), `${A}.identities[0]`);
    refused(() => parse(yml(`        age:\n          identities: [${id1.slice(0, -1)}]\n          recipients: [${rc1}]\n`)), `${A}.identities[0]`);
    refused(() => parse(yml(`        age:\n          identities: [" ${id1}"]\n          recipients: [${rc1}]\n`)), `${A}.identities[0]`);
    refused(() => parse(yml(`        age:\n          identities: [${id1.toLowerCase()}]\n          recipients: [${rc1}]\n`)), `${A}.identities[0]`);
    refused(() => parse(yml(`        age:\n          identities: [${rc1}]\n          recipients: [${rc1}]\n`)), `${A}.identities[0]`);
    refused(() => parse(yml(`        age:\n          identities: [${id1}]\n          recipients: [${id1}]\n`)), `${A}.recipients[0]`);
    refused(() => parse(yml(`        age:\n          identities: [${id1}]\n          recipients: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"]\n`)), `${A}.recipients[0]`);
    refused(() => parse(yml(`        age:\n          identities: [${id1}]\n          recipients: [age1pq1${'q'.repeat(60)}]\n`)), `${A}.recipients[0]`);
    refused(() => parse(yml(`        age:\n          identities: [AGE-SECRET-KEY-PQ-1${'Q'.repeat(58)}]\n          recipients: [${rc1}]\n`)), `${A}.identities[0]`);
  });

  it('refuses recipients without identities: lsinit reads its newest segment back after a restart', () => {
    refused(() => parse(yml(`        age:\n          recipients: [${rc1}]\n`)), 'dbs[0].replicas[0].age.identities');
  });

  it('warns about an unknown key under age:', () => {
    const c = parse(yml(`        age:\n          identities: [${id1}]\n          recipients: [${rc1}]\n          identity-file: /x\n`));
    assert.ok(c.warnings.some((w) => w.startsWith('dbs[0].replicas[0].age.identity-file: unknown key')), c.warnings.join('\n'));
  });

  it('loadConfig decodes every key: a bad bech32 checksum is refused without echoing the key', async () => {
    // Same shape, wrong checksum: change one data character.
    const flip = (k: string, i: number, q: string, p: string) => k.slice(0, i) + (k[i] === q ? p : q) + k.slice(i + 1);
    const bad = flip(id1, 30, 'Q', 'P');
    const p = join(dir, 'bad.yml');
    writeFileSync(p, yml(`        age:\n          identities: [${bad}]\n          recipients: [${rc1}]\n`));
    await assert.rejects(loadConfig({ path: p, expandEnv: false }), (err: { code: string; message: string; fields: { key: string } }) => {
      assert.equal(err.code, 'LSINIT_ERR_CONFIG');
      assert.equal(err.fields.key, 'dbs[0].replicas[0].age.identities[0] line 1');
      assert.equal(err.message.includes(bad), false);
      assert.equal(err.message.includes(bad.slice(16, 40)), false);
      return true;
    });
    const badRc = flip(rc1, 10, 'q', 'p');
    writeFileSync(p, yml(`        age:\n          identities: [${id1}]\n          recipients: [${rc1}, ${badRc}]\n`));
    await assert.rejects(loadConfig({ path: p, expandEnv: false }), { code: 'LSINIT_ERR_CONFIG', fields: { key: 'dbs[0].replicas[0].age.recipients[1] line 1' } });
  });

  it('loadConfig refuses recipients that none of the identities can open', async () => {
    const p = join(dir, 'mismatch.yml');
    writeFileSync(p, yml(`        age:\n          identities: [${id1}]\n          recipients: [${rc2}]\n`));
    await assert.rejects(loadConfig({ path: p, expandEnv: false }), { code: 'LSINIT_ERR_CONFIG', fields: { key: 'dbs[0].replicas[0].age.recipients' } });
    // One matching recipient is enough; the others may be escrow keys held elsewhere.
    writeFileSync(p, yml(`        age:\n          identities: [${id1}]\n          recipients: [${rc2}, ${rc1}]\n`));
    assert.deepEqual((await loadConfig({ path: p, expandEnv: false })).dbs[0]!.replicas[0]!.age!.recipients, [rc2, rc1]);
  });

  it('identities are never serialized or inspected, but the log scrubber knows them', () => {
    const c = parse(yml(`        age:\n          identities: [${id1}]\n          recipients: [${rc1}]\n`));
    assert.equal(JSON.stringify(c).includes(id1), false);
    assert.equal(inspect(c, { depth: 10 }).includes(id1), false);
    assert.ok(secretValues(c, {}).includes(id1));
  });
});
