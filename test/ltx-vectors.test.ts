/**
 * Restores every case of the Litestream 0.5.16 LTX vectors through the CLI and compares bytes
 * with what Litestream's own restore gave; refusals must exit non-zero and leave nothing. Then
 * the same replicas changed on purpose: pages stored as LZ4 frames, a corrupt file, a missing
 * file, point-in-time restores.
 */
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { parseLTXHeader } from '../src/format/ltx.js';
import { lsinit } from './helpers/cli.js';
import { LTX_SCENARIOS, LTX_VECTORS, loadLTXCases, rewriteAsFrames, sha256 } from './helpers/ltx.js';

let work: string;
before(() => {
  work = mkdtempSync(join(tmpdir(), 'lsinit-ltx-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
async function restore(replica: string, args: string[]) {
  const dir = mkdtempSync(join(work, `out-${n++}-`));
  const out = join(dir, 'restored.db');
  const r = await lsinit(['restore', ...args, '-o', out, `file://${replica}`]);
  // Nothing but the output beside it: no temp, -wal or -shm file.
  assert.deepEqual(readdirSync(dir).filter((f) => f !== 'restored.db'), [], 'files left beside the output');
  return { ...r, out, sha: existsSync(out) ? sha256(readFileSync(out)) : undefined };
}

function integrity(p: string): string {
  const copy = `${p}.copy`;
  copyFileSync(p, copy);
  const db = new Database(copy, { readonly: true });
  try {
    return (db.pragma('integrity_check') as { integrity_check: string }[]).map((x) => x.integrity_check).join('\n');
  } finally {
    db.close();
  }
}

function assertRefused(r: { exitCode: number; stderr: string; sha: string | undefined }, re: RegExp) {
  assert.notEqual(r.exitCode, 0, `expected a refusal; stderr: ${r.stderr}`);
  assert.match(r.stderr, re);
  assert.equal(r.sha, undefined, 'a refused restore left an output');
}

/** A copy of a scenario's replica that a test may change. */
function stage(scenario: string): string {
  const dest = mkdtempSync(join(work, `${scenario}-`));
  cpSync(join(LTX_VECTORS, scenario, 'replica'), join(dest, 'replica'), { recursive: true });
  return join(dest, 'replica');
}

function headerTime(replica: string, key: string): number {
  return parseLTXHeader(readFileSync(join(replica, key)), key).timestamp;
}

for (const scenario of LTX_SCENARIOS) {
  describe(`Litestream 0.5.16 LTX vectors: ${scenario}`, () => {
    const replica = join(LTX_VECTORS, scenario, 'replica');
    for (const c of loadLTXCases(scenario)) {
      it(`restore ${c.args.join(' ') || '(latest)'} ${c.refused ? 'is refused' : 'gives Litestream\'s bytes'}`, async () => {
        const r = await restore(replica, c.args);
        if (c.refused) return assertRefused(r, /no matching backup files available/);
        assert.equal(r.exitCode, 0, r.stderr);
        assert.equal(r.sha, c.sha256, 'restored bytes differ from Litestream 0.5.16\'s restore');
        assert.equal(integrity(r.out), 'ok');
        if (c.args.length === 0) assert.equal(r.sha, sha256(readFileSync(join(LTX_VECTORS, scenario, 'source.db'))));
      });
    }
  });
}

describe('LTX restore beyond the vectors', () => {
  it('pages stored as LZ4 frames (older writers) restore to the same bytes, every case', async () => {
    const replica = stage('pagesize8k');
    for (const level of readdirSync(join(replica, 'ltx'))) {
      for (const f of readdirSync(join(replica, 'ltx', level))) {
        const p = join(replica, 'ltx', level, f);
        writeFileSync(p, await rewriteAsFrames(readFileSync(p), f));
      }
    }
    for (const c of loadLTXCases('pagesize8k').filter((x) => !x.refused)) {
      const r = await restore(replica, c.args);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.sha, c.sha256, c.args.join(' '));
    }
  });

  it('a corrupt file is refused naming it; a restore point before it still works', async () => {
    const replica = stage('basic');
    const key = 'ltx/0/0000000000000005-0000000000000005.ltx';
    const bytes = readFileSync(join(replica, key));
    bytes[33]! ^= 0x01; // header timestamp: only the file checksum can tell
    writeFileSync(join(replica, key), bytes);
    const cases = loadLTXCases('basic');
    assertRefused(await restore(replica, ['-txid', '0000000000000005']), /ltx\/0\/0000000000000005-0000000000000005\.ltx: file checksum mismatch/);
    assertRefused(await restore(replica, []), /0000000000000005-0000000000000005\.ltx: file checksum mismatch/);
    const ok = await restore(replica, ['-txid', '0000000000000003']);
    assert.equal(ok.sha, cases.find((c) => c.args[1] === '0000000000000003')!.sha256);
  });

  it('a missing file breaks the chain: latest and later points are refused, earlier ones restore', async () => {
    const replica = stage('basic');
    rmSync(join(replica, 'ltx/0/0000000000000004-0000000000000004.ltx'));
    assertRefused(await restore(replica, []), /non-contiguous ltx files: have up to 0000000000000003 but ltx\/0\/0000000000000005-0000000000000005\.ltx starts at 0000000000000005/);
    assertRefused(await restore(replica, ['-txid', '0000000000000005']), /no matching backup files available/);
    const ok = await restore(replica, ['-txid', '0000000000000003']);
    assert.equal(ok.sha, loadLTXCases('basic').find((c) => c.args[1] === '0000000000000003')!.sha256);
  });

  it('-timestamp restores the files written before it (header times, which survive a copy)', async () => {
    for (const [scenario, txid] of [['basic', '0000000000000005'], ['compaction', '0000000000000024'], ['compaction', '0000000000000008']] as const) {
      const replica = join(LTX_VECTORS, scenario, 'replica');
      const at = headerTime(replica, `ltx/0/${txid}-${txid}.ltx`) + 1;
      const r = await restore(replica, ['-timestamp', new Date(at).toISOString()]);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.sha, loadLTXCases(scenario).find((c) => c.args[1] === txid)!.sha256, `${scenario} at ${txid}`);
    }
    const replica = join(LTX_VECTORS, 'basic', 'replica');
    const first = headerTime(replica, 'ltx/0/0000000000000001-0000000000000001.ltx');
    assertRefused(await restore(replica, ['-timestamp', new Date(first).toISOString()]), /no matching backup files available/);
  });

  it('never overwrites an existing output, and rejects bad or conflicting -txid flags before reading anything', async () => {
    const replica = join(LTX_VECTORS, 'basic', 'replica');
    const dir = mkdtempSync(join(work, 'exists-'));
    const out = join(dir, 'db');
    writeFileSync(out, 'mine');
    const r = await lsinit(['restore', '-o', out, `file://${replica}`]);
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /already exists/);
    assert.equal(readFileSync(out, 'utf8'), 'mine');
    for (const args of [['-txid', '5'], ['-txid', 'zz00000000000005'], ['-txid', '0000000000000005', '-index', '1'], ['-txid', '0000000000000005', '-timestamp', '2026-01-01T00:00:00Z']]) {
      const x = await lsinit(['restore', ...args, '-o', join(dir, 'x.db'), `file://${replica}`]);
      assert.equal(x.exitCode, 2, `${args.join(' ')}: ${x.stderr}`); // usage errors exit 2 (docs/errors.md)
      assert.match(x.stderr, /-txid/);
      assert.equal(existsSync(join(dir, 'x.db')), false);
    }
  });
});

describe('generations, snapshots and wal on an LTX replica', () => {
  const url = `file://${join(LTX_VECTORS, 'compaction', 'replica')}`;
  it('say it is a Litestream 0.5 replica and list its files by level', async () => {
    const g = await lsinit(['generations', url]);
    assert.equal(g.exitCode, 0, g.stderr);
    assert.match(g.stdout, /^file\s+ltx\s+/m);
    assert.match(g.stderr, /Litestream 0\.5 \(LTX\) replica up to TXID 0000000000000048 \(85 files\)/);
    const s = await lsinit(['snapshots', '-json', url]);
    assert.deepEqual((JSON.parse(s.stdout) as { level: number; max_txid: string }[]).map((x) => [x.level, x.max_txid]), [[9, '0000000000000001'], [9, '0000000000000008'], [9, '0000000000000026'], [9, '0000000000000045']]);
    const w = await lsinit(['wal', url]);
    assert.equal(w.exitCode, 0, w.stderr);
    assert.match(w.stdout, /LTX replica \(Litestream 0\.5\) transaction files \(levels 0-8\):/);
    assert.match(w.stdout, /^file\s+2\s+000000000000001d\s+000000000000003a\s+39686\s/m);
    assert.equal(w.stdout.split('\n').filter((l) => /^file\s+[0-8]\s/.test(l)).length, 72 + 7 + 2);
  });
});
