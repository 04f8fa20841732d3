/**
 * util/koffi.ts loads koffi's prebuilt addon by path on glibc Linux (this machine), without the
 * package's wrapper modules, and it is the same addon the package hands out.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import { loadKoffi } from '../../src/util/koffi.js';

const require = createRequire(import.meta.url);
const loadedFiles = () => Object.keys(require.cache);

test('koffi is loaded by its addon alone; it calls into libc; the package gives the same addon', () => {
  const koffi = loadKoffi();
  assert.equal(loadKoffi(), koffi, 'loaded once');
  assert.ok(loadedFiles().some((f) => f.endsWith(`/linux_${process.arch}/koffi.node`)), loadedFiles().join('\n'));
  assert.deepEqual(loadedFiles().filter((f) => /\/(koffi|koffi-linux-[^/]+)\/.*\.c?js$/.test(f)), [], "koffi's wrapper modules are not loaded");
  const getpid = koffi.load('libc.so.6').func('int getpid()') as () => number;
  assert.equal(getpid(), process.pid);
  // Loaded later through the package (as util/libc.ts does), it is the same native object.
  assert.equal((require('koffi') as { default: unknown }).default, koffi);
});
