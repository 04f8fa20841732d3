/**
 * Splits an `exec:` / `-exec` command line into argv the way Litestream does (go-shellwords with its
 * defaults): whitespace separates words, single quotes are literal, double quotes allow \" \\ \$ \`,
 * a backslash outside quotes escapes the next character. No shell runs and no $VAR is expanded here
 * (the config layer already expanded env in `exec:`; for `-exec` the calling shell did).
 */
import { LsinitError } from '../errors.js';

export function splitCommand(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (quote === "'") {
      if (c === "'") quote = null;
      else cur += c;
      continue;
    }
    if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && i + 1 < line.length && '"\\$`\n'.includes(line[i + 1] as string)) cur += line[++i];
      else cur += c;
      continue;
    }
    if (c === '\\') {
      if (i + 1 < line.length) cur += line[++i];
      inWord = true;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote !== null) throw new LsinitError('LSINIT_ERR_USAGE', `exec: unterminated ${quote} quote in ${JSON.stringify(line)}`);
  if (inWord) words.push(cur);
  return words;
}
