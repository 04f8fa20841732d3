/**
 * A small Dockerfile reader for the structural tests (no engine runs here, and no Dockerfile
 * linter is a dependency). It follows the Dockerfile reference for what these files use: parser
 * directives, `#` comment lines (also inside continuations, which BuildKit drops), `\` line
 * continuations, exec (JSON) and shell forms, `ARG` defaults substituted into `FROM` and `USER`,
 * and stages named with `AS`. Plus a .dockerignore matcher with Docker's rules: last matching
 * pattern wins, `!` re-includes, a path is excluded when it or one of its parent directories is.
 */

export interface Instruction {
  keyword: string; // upper case
  args: string; // raw arguments, continuations joined with a space
  line: number; // 1-based line where the instruction starts
  /** Parsed exec form (`["a", "b"]`), when the arguments are a JSON array of strings. */
  exec?: string[];
  /** `--name=value` flags (COPY --from=build, RUN --mount=…), and the arguments without them. */
  flags: Record<string, string>;
  rest: string;
}

export interface Stage {
  index: number;
  name: string | undefined;
  /** The base image with global ARG defaults substituted. */
  from: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  directives: Record<string, string>;
  globalArgs: Record<string, string>;
  stages: Stage[];
  all: Instruction[];
}

function parseExec(args: string): string[] | undefined {
  if (!args.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(args);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    // Not JSON: Docker runs it in shell form.
  }
  return undefined;
}

function splitFlags(args: string): { flags: Record<string, string>; rest: string } {
  const flags: Record<string, string> = {};
  let rest = args;
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S*))?\s+/.exec(rest);
    if (!m) break;
    flags[m[1]!] = m[2] ?? 'true';
    rest = rest.slice(m[0].length);
  }
  return { flags, rest };
}

/** `${NAME}` / `$NAME` from `vars`; an unknown variable is left as it is. */
export function substitute(s: string, vars: Record<string, string>): string {
  return s.replace(/\$\{(\w+)\}|\$(\w+)/g, (m, a: string | undefined, b: string | undefined) => vars[(a ?? b)!] ?? m);
}

export function parseDockerfile(text: string): Dockerfile {
  const lines = text.split('\n');
  const directives: Record<string, string> = {};
  let i = 0;
  // Parser directives: `# key=value` lines at the very top, before any comment or instruction.
  for (; i < lines.length; i++) {
    const m = /^#\s*([a-z]+)\s*=\s*(\S+)\s*$/i.exec(lines[i]!);
    if (!m) break;
    directives[m[1]!.toLowerCase()] = m[2]!;
  }
  const all: Instruction[] = [];
  while (i < lines.length) {
    const first = lines[i]!;
    const start = i + 1;
    i++;
    if (/^\s*(#|$)/.test(first)) continue;
    let buf = first;
    while (/\\\s*$/.test(buf) && i < lines.length) {
      buf = buf.replace(/\\\s*$/, ' ');
      const next = lines[i]!;
      i++;
      if (/^\s*#/.test(next)) continue; // comment lines inside a continuation are dropped
      buf += next;
    }
    const m = /^\s*(\S+)\s*(.*)$/s.exec(buf)!;
    const args = m[2]!.replace(/\s+/g, ' ').trim();
    const { flags, rest } = splitFlags(args);
    const ins: Instruction = { keyword: m[1]!.toUpperCase(), args, line: start, flags, rest };
    const exec = parseExec(rest);
    if (exec) ins.exec = exec;
    all.push(ins);
  }

  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of all) {
    if (ins.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.rest);
      if (!m) throw new Error(`line ${ins.line}: cannot read FROM ${ins.args}`);
      stages.push({ index: stages.length, name: m[2]?.toLowerCase(), from: substitute(m[1]!, globalArgs), instructions: [] });
      continue;
    }
    const stage = stages.at(-1);
    if (!stage) {
      if (ins.keyword !== 'ARG') throw new Error(`line ${ins.line}: ${ins.keyword} before the first FROM`);
      const [k, v = ''] = ins.rest.split('=', 2);
      globalArgs[k!] = v;
      continue;
    }
    stage.instructions.push(ins);
  }
  return { directives, globalArgs, stages, all };
}

/** The last value an instruction of `keyword` gives in `stage` (ENTRYPOINT, CMD, USER…). */
export function last(stage: Stage, keyword: string): Instruction | undefined {
  return stage.instructions.filter((i) => i.keyword === keyword).at(-1);
}

/** The stage's ARG defaults, for substituting into its own instructions. */
export function stageArgs(stage: Stage): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const ins of stage.instructions) {
    if (ins.keyword !== 'ARG') continue;
    const [k, v = ''] = ins.rest.split('=', 2);
    vars[k!] = v;
  }
  return vars;
}

/** COPY sources and destination (shell or exec form). */
export function copyParts(ins: Instruction): { sources: string[]; dest: string } {
  const parts = ins.exec ?? ins.rest.split(' ');
  return { sources: parts.slice(0, -1), dest: parts.at(-1)! };
}

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      // `**/` matches any number of directories, including none.
      if (pattern[i + 2] === '/') {
        re += '(?:.*/)?';
        i += 2;
      } else {
        re += '.*';
        i += 1;
      }
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Docker's .dockerignore semantics, enough for the patterns in this repository. */
export function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const p = (negate ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, '');
      return { negate, re: globToRegExp(p) };
    });
  return (path: string) => {
    const parts = path.split('/');
    const candidates = parts.map((_, j) => parts.slice(0, j + 1).join('/'));
    let excluded = false;
    for (const r of rules) {
      if (candidates.some((c) => r.re.test(c))) excluded = !r.negate;
    }
    return excluded;
  };
}
