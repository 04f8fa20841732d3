/**
 * Environment expansion exactly as Go's os.ExpandEnv (what Litestream 0.3 runs over the whole
 * config text before parsing): `$VAR` and `${VAR}`; unset variables become ""; `${VAR:-x}` is a
 * variable literally named `VAR:-x`; `$` followed by a non-name character stays as is.
 * Returns the expanded text and the names that were referenced but unset (for a warning).
 */
const SPECIAL = new Set(['*', '#', '$', '@', '!', '?', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
const isAlnum = (c: string) => /[A-Za-z0-9_]/.test(c);

function shellName(s: string): [string, number] {
  if (s[0] === '{') {
    if (s.length > 2 && SPECIAL.has(s[1]!) && s[2] === '}') return [s[1]!, 3];
    for (let i = 1; i < s.length; i++) {
      if (s[i] === '}') {
        if (i === 1) return ['', 2];
        return [s.slice(1, i), i + 1];
      }
    }
    return ['', 1];
  }
  if (s.length > 0 && SPECIAL.has(s[0]!)) return [s[0]!, 1];
  let i = 0;
  while (i < s.length && isAlnum(s[i]!)) i++;
  return [s.slice(0, i), i];
}

export function expandEnv(text: string, env: NodeJS.ProcessEnv): { text: string; unset: string[] } {
  let out = '';
  const unset: string[] = [];
  let i = 0;
  for (let j = 0; j < text.length; j++) {
    if (text[j] === '$' && j + 1 < text.length) {
      out += text.slice(i, j);
      const [name, w] = shellName(text.slice(j + 1));
      if (name === '' && w > 0) {
        // invalid syntax: Go eats the characters
      } else if (name === '') {
        out += '$';
      } else {
        const v = env[name];
        if (v === undefined) unset.push(name);
        out += v ?? '';
      }
      j += w;
      i = j + 1;
    }
  }
  return { text: out + text.slice(i), unset };
}
