/**
 * Restores every case of the Litestream 0.3.13 vectors (test/fixtures) through the CLI and
 * compares bytes, page size, integrity_check and the logical fingerprint; refusals must exit
 * non-zero and leave no output (or leave an existing one untouched). `age` cases marked
 * `via: config` restore through the scenario's config file (its age identities), with the
 * VECTOR_* variables the file expands.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { fingerprint } from './helpers/fingerprint.js';
import { lsinit } from './helpers/cli.js';
import { loadScenario, sha256File, stageReplica } from './helpers/vectors.js';

for (const scenario of ['basic', 'multigen', 'snapshots', 'schema', 'age']) {
  describe(`Litestream 0.3.13 vectors: ${scenario}`, () => {
    let work: string;
    let replica: string;
    const { dir, cases } = loadScenario(scenario);
    before(() => {
      work = mkdtempSync(join(tmpdir(), `lsinit-vec-${scenario}-`));
      replica = stageReplica(scenario, work);
    });
    after(() => rmSync(work, { recursive: true, force: true }));

    for (const c of cases) {
      it(`${c.id}: ${c.description}`, async () => {
        const outDir = mkdtempSync(join(work, `case-${c.id}-`));
        const out = join(outDir, 'restored.db');
        if (c.setup?.output_exists) writeFileSync(out, 'not a database\n');
        const args = ['restore', '-o', out];
        if (c.args.generation) args.push('-generation', c.args.generation);
        if (c.args.index) args.push('-index', c.args.index);
        if (c.args.timestamp) args.push('-timestamp', c.args.timestamp);
        let env: Record<string, string> = {};
        if (c.via === 'config') {
          const dbPath = join(work, 'app.db');
          args.splice(1, 0, '-config', join(dir, c.config_file!));
          args.push(dbPath);
          env = { VECTOR_REPLICA_PATH: replica, VECTOR_DB_PATH: dbPath };
        } else {
          args.push(`file://${replica}`);
        }
        const r = await lsinit(args, { env });
        // No temp, -wal or -shm files left beside the output.
        assert.deepEqual(readdirSync(outDir).filter((f) => f !== 'restored.db'), []);
        if (c.expect.outcome === 'error') {
          assert.notEqual(r.exitCode, 0, `expected a refusal, got exit 0; stderr: ${r.stderr}`);
          assert.match(r.stderr, /lsinit: /);
          if (c.setup?.output_exists) assert.equal(readFileSync(out, 'utf8'), 'not a database\n');
          else assert.equal(existsSync(out), false, 'refused restore left an output file');
        } else {
          assert.equal(r.exitCode, 0, `restore failed: ${r.stderr}`);
          assert.equal(statSync(out).size, c.expect.size);
          assert.equal(sha256File(out), c.expect.sha256, 'restored bytes differ from Litestream');
          // Inspect a copy, as the vectors README says: opening a WAL-mode file creates -shm.
          const copy = join(outDir, 'copy.db');
          copyFileSync(out, copy);
          const db = new Database(copy, { readonly: true });
          try {
            assert.equal(db.pragma('page_size', { simple: true }), c.expect.page_size);
            assert.equal((db.pragma('integrity_check') as { integrity_check: string }[]).map((x) => x.integrity_check).join('\n'), c.expect.integrity_check);
          } finally {
            db.close();
          }
          assert.deepEqual(fingerprint(copy), c.expect.fingerprint);
        }
      });
    }
  });
}
