/**
 * Crash torture, short fixed set for CI: one seeded trial per fault kind (see harness.ts for
 * what each trial checks). `npm run torture -- --trials N` runs the long randomized version;
 * a failure prints its seed, and `--seed S --faults KIND --trials 1` replays its schedule.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MOTO_ACCESS_KEY_ID, MOTO_SECRET_ACCESS_KEY, startMoto, type MotoServer } from '../servers/moto.js';
import { FAULTS, privateBuild, runTrial } from './harness.js';
import { isStoreFault } from './store-faults.js';

// Seeds are arbitrary but fixed: with a single kind the seed only draws the timings.
const SEED_BASE = 4242;

describe('crash torture (one seeded trial per fault kind)', () => {
  // A private copy of the build: another `npm run build` in this tree cannot break a trial.
  let drop = () => {};
  // Store faults replicate to S3 as well, through a fault proxy in front of this moto.
  let moto: MotoServer | undefined;
  before(async () => {
    drop = privateBuild();
    moto = await startMoto();
    await moto.createBucket('torture');
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: MOTO_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: MOTO_SECRET_ACCESS_KEY });
  });
  after(async () => {
    drop();
    await moto?.stop();
  });
  FAULTS.forEach((kind, i) => {
    it(`${kind}: every restore is a committed prefix, nothing synced before the fault is lost, the final restore equals the source`, { timeout: 180_000 }, async () => {
      const r = await runTrial({ seed: SEED_BASE + i, kinds: [kind], ...(isStoreFault(kind) ? { s3: { endpoint: moto!.endpoint, bucket: 'torture' } } : {}) });
      assert.deepEqual(
        r.failures.map((f) => `${f.check}: ${f.detail}`),
        [],
        `seed ${r.seed} (${kind}) failed; replay: node --import tsx scripts/torture.ts --trials 1 --seed ${r.seed} --faults ${kind}; kept ${r.dir}\n${r.notes.join('\n')}`,
      );
      assert.ok(r.committed > 0, 'the app committed nothing');
    });
  });
});
