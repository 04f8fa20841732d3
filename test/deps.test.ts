/** `dependencies` lists exactly the packages src/ imports; everything else is a dev dependency or gone. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers/cli.js';

function importedPackages(dir: string): Set<string> {
  const out = new Set<string>();
  for (const f of readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' }).filter((x) => x.endsWith('.ts'))) {
    const text = readFileSync(join(ROOT, dir, f), 'utf8');
    for (const m of text.matchAll(/(?:^import[^'"]*?from\s*|^export[^'"]*?from\s*|import\(\s*)['"]([^'"]+)['"]/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
      out.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
    }
  }
  return out;
}

test('dependencies are exactly the packages src/ imports (type-only packages aside)', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  const used = [...importedPackages('src')].sort();
  assert.deepEqual(Object.keys(pkg.dependencies).sort(), used);
  for (const gone of ['pino', 'signal-exit']) assert.ok(!(gone in pkg.dependencies) && !(gone in pkg.devDependencies), `${gone} is not used`);
  assert.ok('execa' in pkg.devDependencies, 'execa runs lsinit in tests and benchmarks');
  // Tests and benchmarks import only what is installed for them.
  for (const p of [...importedPackages('test'), ...importedPackages('bench')]) assert.ok(p in pkg.dependencies || p in pkg.devDependencies, `${p} is imported by a test or benchmark but not declared`);
});
