#!/usr/bin/env node
// Thin launcher: the CLI bundled by `npm run build` (scripts/bundle.mjs; built by `npm ci` through
// the prepare script). One file loads much faster than the ~80 modules tsc leaves in dist/.
import '../dist/lsinit.js';
