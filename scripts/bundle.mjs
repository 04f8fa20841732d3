/**
 * Bundle the CLI (dist/cli/main.js's source) into dist/lsinit.js, what bin/lsinit.js runs: one
 * file instead of ~80 modules (and yaml's ~60) to resolve, read and compile at every start. Code
 * reached only through `await import()` (each backend, init mode, metrics, …) lands in
 * dist/chunks/ and still loads only when used. Native addons and the cloud SDKs stay in
 * node_modules: they are loaded lazily, and only by the configs that use them.
 * Run by `npm run build` after tsc (tests and benches import tsc's dist/ modules directly).
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
rmSync(join(root, 'dist/chunks'), { recursive: true, force: true });
const common = {
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  // CommonJS dependencies bundled here call require() for node's own modules.
  banner: { js: "import { createRequire as __lsinitRequire } from 'node:module'; const require = __lsinitRequire(import.meta.url);" },
  logLevel: 'warning',
  external: [
    'better-sqlite3', 'lz4-napi', 'koffi', // native addons
    '@aws-sdk/*', '@azure/*', '@google-cloud/*', 'ssh2-sftp-client', 'age-encryption', // loaded per backend, on first use
  ],
};
await build({ ...common, entryPoints: { lsinit: join(root, 'src/cli/main.ts') }, outdir: join(root, 'dist'), chunkNames: 'chunks/[name]-[hash]' });
// The replication worker (replicate/worker-controller.ts starts `new URL('./worker.js',
// import.meta.url)`) is a bundle of its own, placed beside the chunks that start it (checked below).
// Built with the CLI, its modules would be split into the chunks it shares with the CLI's lazy
// imports (27 files to resolve and link where 12 do): a worker is an isolate of its own, it never
// shares loaded modules with the main thread, so sharing files only costs it start-up time.
await build({ ...common, entryPoints: { worker: join(root, 'src/replicate/worker.ts') }, outdir: join(root, 'dist/chunks'), chunkNames: 'w-[name]-[hash]' });

// Every chunk that starts the worker must resolve './worker.js' to dist/chunks/worker.js.
const dir = join(root, 'dist/chunks');
for (const f of [join(root, 'dist/lsinit.js'), ...readdirSync(dir).map((x) => join(dir, x))]) {
  if (readFileSync(f, 'utf8').includes('"./worker.js"') && !f.startsWith(`${dir}/`)) {
    throw new Error(`bundle: ${f} starts ./worker.js but is not in dist/chunks/: move the worker entry beside it`);
  }
}
