import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { lsinit } from '../helpers/cli.js';
import { loadScenario, stageReplica } from '../helpers/vectors.js';

describe('generations, snapshots and wal on a Litestream replica', () => {
  let work: string;
  let url: string;
  const { manifest } = loadScenario('multigen');
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'lsinit-list-'));
    url = `file://${stageReplica('multigen', work)}`;
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  it('print Litestream columns', async () => {
    const g = await lsinit(['generations', url]);
    assert.equal(g.exitCode, 0, g.stderr);
    assert.match(g.stdout.split('\n')[0]!, /^name\s+generation\s+lag\s+start\s+end$/);
    for (const gen of manifest.generations) assert.match(g.stdout, new RegExp(`^file\\s+${gen}\\s+\\S+\\s+\\d{4}-\\d\\d-\\d\\dT\\S+Z\\s+\\d{4}-\\S+Z$`, 'm'));
    const s = await lsinit(['snapshots', url]);
    assert.match(s.stdout.split('\n')[0]!, /^replica\s+generation\s+index\s+size\s+created$/);
    const w = await lsinit(['wal', url]);
    assert.match(w.stdout.split('\n')[0]!, /^replica\s+generation\s+index\s+offset\s+size\s+created$/);
    assert.equal(w.stdout.trim().split('\n').length - 1, manifest.files.filter((f) => f.path.includes('/wal/')).length);
  });

  it('-json output parses and matches the replica', async () => {
    const g = JSON.parse((await lsinit(['generations', '-json', url])).stdout) as { generation: string; snapshots: number }[];
    assert.deepEqual(g.map((x) => x.generation).sort(), [...manifest.generations].sort());
    const s = JSON.parse((await lsinit(['snapshots', '-json', url])).stdout) as { generation: string; index: number; size: number }[];
    const w = JSON.parse((await lsinit(['wal', '-json', url])).stdout) as { generation: string; index: number; offset: number; size: number }[];
    const files = manifest.files.map((f) => f.path);
    for (const x of s) assert.ok(files.some((f) => f.endsWith(`${x.generation}/snapshots/${x.index.toString(16).padStart(8, '0')}.snapshot.lz4`)));
    for (const x of w) assert.ok(files.some((f) => f.endsWith(`${x.generation}/wal/${x.index.toString(16).padStart(8, '0')}_${x.offset.toString(16).padStart(8, '0')}.wal.lz4`)));
    assert.equal(s.length + w.length, files.length);
    const only = JSON.parse((await lsinit(['wal', '-json', '-generation', manifest.generations[0]!, url])).stdout) as { generation: string }[];
    assert.ok(only.length > 0 && only.every((x) => x.generation === manifest.generations[0]));
  });
});
