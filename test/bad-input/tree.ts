/** Directory-tree fingerprints (path → type, size, mtime, content hash) to prove a command changed nothing. */
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join, relative } from 'node:path';

export type Tree = Record<string, string>;

export function tree(...roots: string[]): Tree {
  const out: Tree = {};
  const walk = (root: string, p: string) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    const key = `${root}:${relative(root, p) || '.'}`;
    if (st.isDirectory()) {
      out[key] = `dir mtime=${st.mtimeMs}`;
      for (const n of readdirSync(p).sort()) walk(root, join(p, n));
    } else if (st.isSymbolicLink()) {
      out[key] = `link → ${readlinkSync(p)}`;
    } else {
      out[key] = `file ${st.size} mtime=${st.mtimeMs} sha1=${createHash('sha1').update(readFileSync(p)).digest('hex')}`;
    }
  };
  for (const r of roots) walk(r, r);
  return out;
}

/** What differs between two fingerprints, one line per path (empty when nothing changed). */
export function treeDiff(before: Tree, after: Tree): string[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return keys.filter((k) => before[k] !== after[k]).map((k) => `${k}: ${before[k] ?? '(none)'} → ${after[k] ?? '(none)'}`);
}
