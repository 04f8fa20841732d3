/**
 * Go `flag`-package compatible parsing, the one flag parser of every lsinit command and of init mode:
 * `-x v`, `-x=v`, `--x`; booleans take no value unless written `-x=false` (Go's strconv.ParseBool
 * spellings); parsing stops at the first positional argument or `--`.
 * Hand-written because the usual parsers (commander, mri, yargs) treat `-abc` as short
 * flags and accept flags after positionals, which would change Litestream's command lines.
 */
import { LsinitError } from '../errors.js';

export interface FlagSpec {
  type: 'string' | 'bool';
  help: string;
  /** Repeatable string flag: values collect into an array. */
  multi?: boolean;
}

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

export interface Parsed {
  flags: FlagValues;
  args: string[];
  /** Arguments after a literal `--`, when there was one. */
  rest?: string[];
  help: boolean;
}

export function parseFlags(argv: string[], specs: Record<string, FlagSpec>, command: string): Parsed {
  const flags: FlagValues = {};
  let i = 0;
  let help = false;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      return { flags, args: [], rest: argv.slice(i + 1), help };
    }
    if (!a.startsWith('-') || a === '-') break;
    const body = a.replace(/^--?/, '');
    const eq = body.indexOf('=');
    const name = eq >= 0 ? body.slice(0, eq) : body;
    if (name === 'h' || name === 'help') {
      help = true;
      continue;
    }
    const spec = specs[name];
    if (!spec) throw new LsinitError('LSINIT_ERR_USAGE', `${command}: flag provided but not defined: -${name} (see \`lsinit ${command} -h\`)`);
    if (spec.type === 'bool') {
      if (eq >= 0) {
        const v = parseGoBool(body.slice(eq + 1));
        if (v === undefined) throw new LsinitError('LSINIT_ERR_USAGE', `${command}: invalid boolean value ${JSON.stringify(body.slice(eq + 1))} for -${name} (use true or false)`);
        flags[name] = v;
      } else flags[name] = true;
      continue;
    }
    let v: string;
    if (eq >= 0) v = body.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new LsinitError('LSINIT_ERR_USAGE', `${command}: flag needs an argument: -${name}`);
      v = argv[++i]!;
    }
    if (spec.multi) flags[name] = [...((flags[name] as string[] | undefined) ?? []), v];
    else flags[name] = v;
  }
  const args = argv.slice(i);
  const dd = args.indexOf('--');
  if (dd >= 0) return { flags, args: args.slice(0, dd), rest: args.slice(dd + 1), help };
  return { flags, args, help };
}

/** Go's strconv.ParseBool: 1 t T TRUE true True / 0 f F FALSE false False; anything else undefined. */
export function parseGoBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

/**
 * The one positional argument of `command` (synopsis e.g. "DB_PATH|REPLICA_URL"). Extra arguments
 * are refused, and a flag among them gets the flag-order hint: Go's flag package stops at the first
 * positional, so `lsinit wal URL -json` never sees -json.
 */
export function oneArg(args: readonly string[], command: string, synopsis: string): string {
  if (args.length === 1) return args[0]!;
  if (args.length === 0) throw new LsinitError('LSINIT_ERR_USAGE', `${command}: ${synopsis} required (see \`lsinit ${command} -h\`)`);
  throw tooMany(args.slice(1), command, synopsis);
}

/** For commands with several positionals (`replicate DB_PATH URL...`): a flag among them gets the flag-order hint. */
export function noLateFlags(args: readonly string[], command: string, synopsis: string): void {
  const flag = args.find((a) => a.startsWith('-') && a !== '-');
  if (flag !== undefined) throw new LsinitError('LSINIT_ERR_USAGE', `${command}: flag ${flag} after the arguments; flags must come before ${synopsis}, e.g. lsinit ${command} ${flag} ${synopsis}`, { fields: { args: [...args] } });
}

/** `command` takes no positional argument. */
export function noArgs(args: readonly string[], command: string): void {
  if (args.length > 0) throw tooMany(args, command, '');
}

function tooMany(extra: readonly string[], command: string, synopsis: string): LsinitError {
  const flag = extra.find((a) => a.startsWith('-') && a !== '-');
  const hint = flag !== undefined ? `; flags must come before ${synopsis || 'any argument'}, e.g. lsinit ${command} ${flag}${synopsis ? ` ${synopsis}` : ''}` : '';
  return new LsinitError('LSINIT_ERR_USAGE', `${command}: too many arguments: ${extra.join(' ')}${hint}`, { fields: { args: [...extra] } });
}

export function usage(command: string, synopsis: string, specs: Record<string, FlagSpec>, extra = ''): string {
  const lines = [`Usage: lsinit ${command} ${synopsis}`, ''];
  if (extra) lines.push(extra, '');
  const names = Object.keys(specs).sort();
  if (names.length) lines.push('Flags:');
  for (const n of names) {
    const s = specs[n]!;
    lines.push(`  -${n}${s.type === 'string' ? ' VALUE' : ''}`, `      ${s.help}`);
  }
  return `${lines.join('\n')}\n`;
}

export const str = (f: FlagValues, k: string): string | undefined => (typeof f[k] === 'string' ? (f[k] as string) : undefined);
export const bool = (f: FlagValues, k: string): boolean => f[k] === true;
