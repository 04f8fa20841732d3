import { readFileSync } from 'node:fs';
import { decodeAll } from '/work/wt/pit/src/format/lz4.js';
const dir = process.argv[2]!;
for (const f of process.argv.slice(3)) {
  const raw = await decodeAll(readFileSync(`${dir}/${f}`));
  const start = f.includes('_00000000.') ? 32 : 0;
  const ps = 4096, fs = 24 + ps;
  const n = (raw.length - start) / fs;
  const hdr = start ? raw.subarray(0, 32) : undefined;
  console.log(f, 'bytes', raw.length, 'frames', n, hdr ? `salt ${hdr.readUInt32BE(16).toString(16)} ${hdr.readUInt32BE(20).toString(16)}` : '');
  const rows: string[] = [];
  for (let k = 0; k < n; k++) {
    const o = start + k * fs;
    const pg = raw.readUInt32BE(o), c = raw.readUInt32BE(o + 4);
    if (c || k >= n - 3 || k < 3) rows.push(`${k}:p${pg}${c ? `/c${c}` : ''}`);
  }
  console.log('  ', rows.slice(0, 12).join(' '), '...', rows.slice(-12).join(' '));
}
