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
await build({
  // The replication worker (replicate/worker-controller.ts starts `new URL('./worker.js',
  // import.meta.url)`) is an entry of its own, placed beside the chunks that start it (checked below).
  entryPoints: { lsinit: join(root, 'src/cli/main.ts'), 'chunks/worker': join(root, 'src/replicate/worker.ts') },
  outdir: join(root, 'dist'),
  chunkNames: 'chunks/[name]-[hash]',
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
});

// Every chunk that starts the worker must resolve './worker.js' to dist/chunks/worker.js.
const dir = join(root, 'dist/chunks');
for (const f of [join(root, 'dist/lsinit.js'), ...readdirSync(dir).map((x) => join(dir, x))]) {
  if (readFileSync(f, 'utf8').includes('"./worker.js"') && !f.startsWith(`${dir}/`)) {
    throw new Error(`bundle: ${f} starts ./worker.js but is not in dist/chunks/: move the worker entry beside it`);
  }
}
