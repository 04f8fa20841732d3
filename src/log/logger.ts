/**
 * Logger interface used everywhere, with Litestream 0.3.12+'s slog text shape by default:
 *   time=... level=INFO msg="wal segment written" db=/path replica=file position=...
 * or one JSON object per line (`logging.type: json`). Fields are bound with `child()`
 * (one child per db and per replica). Never pass secrets: replicas are logged by their
 * redacted display string.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  child(fields: Fields): Logger;
}

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  level?: Level;
  type?: 'text' | 'json';
  /** Where lines go; default process.stderr. */
  write?: (line: string) => void;
  /**
   * Credential values (passwords, secret keys) replaced by `xxxxx` wherever they appear in a line,
   * also percent-encoded and JSON-escaped: a last line of defence for messages built by SDKs.
   */
  redact?: readonly string[];
}

function scrubber(values: readonly string[] | undefined): ((line: string) => string) | undefined {
  const forms = new Set<string>();
  for (const v of values ?? []) {
    if (v.length < 4) continue; // masking "abc" everywhere would garble logs and hide nothing
    forms.add(v).add(encodeURIComponent(v)).add(JSON.stringify(v).slice(1, -1));
  }
  if (forms.size === 0) return undefined;
  const list = [...forms].sort((a, b) => b.length - a.length);
  return (line) => {
    for (const f of list) if (line.includes(f)) line = line.split(f).join('xxxxx');
    return line;
  };
}

function fmtValue(v: unknown): string {
  const s = v instanceof Error ? v.message : typeof v === 'string' ? v : JSON.stringify(v);
  return s !== undefined && /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s ?? String(v));
}

export function createLogger(opts: LoggerOptions = {}, bound: Fields = {}): Logger {
  const min = ORDER[opts.level ?? 'info'];
  const type = opts.type ?? 'text';
  const out = opts.write ?? ((line: string) => void process.stderr.write(line));
  const scrub = scrubber(opts.redact);
  const write = scrub ? (line: string) => out(scrub(line)) : out;
  const emit = (level: Level, msg: string, fields?: Fields) => {
    if (ORDER[level] < min) return;
    const all = { ...bound, ...fields };
    const time = new Date().toISOString();
    if (type === 'json') {
      const obj: Fields = { time, level: level.toUpperCase(), msg };
      for (const [k, v] of Object.entries(all)) obj[k] = v instanceof Error ? v.message : v;
      write(`${JSON.stringify(obj)}\n`);
    } else {
      let line = `time=${time} level=${level.toUpperCase()} msg=${fmtValue(msg)}`;
      for (const [k, v] of Object.entries(all)) if (v !== undefined) line += ` ${k}=${fmtValue(v)}`;
      write(`${line}\n`);
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (f) => createLogger(opts, { ...bound, ...f }),
  };
}

/** A logger that drops everything (library default, tests). */
export const nullLogger: Logger = {
  debug() {}, info() {}, warn() {}, error() {},
  child() { return nullLogger; },
};
