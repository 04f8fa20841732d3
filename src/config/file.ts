/**
 * A config file → `Config`: read, expand $VAR, parse the YAML, then build and validate (load.ts).
 * Its own module so that the YAML parser (the largest part of the CLI bundle, ~20 ms to load) is
 * loaded only by commands that read a config file.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import YAML from 'yaml';
import { LsinitError } from '../errors.js';
import { verifyAgeKeys } from './age.js';
import { expandEnv } from './expand.js';
import { buildConfig, defaultConfigPath, expandHome, type LoadOptions } from './load.js';
import type { Config } from './types.js';

export async function loadConfig(opts: LoadOptions): Promise<Config> {
  const env = opts.env ?? process.env;
  const path = resolve(expandHome(opts.path ?? defaultConfigPath(env)));
  if (!existsSync(path)) {
    throw new LsinitError('LSINIT_ERR_CONFIG', `config file not found: ${path} (pass -config PATH or set LITESTREAM_CONFIG)`, { fields: { path } });
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new LsinitError('LSINIT_ERR_CONFIG', `cannot read config file ${path}: ${(err as Error).message}`, { cause: err, fields: { path } });
  }
  const config = parseConfig(bytes, { ...opts, env, file: path });
  await verifyAgeKeys(config);
  return config;
}

/** Parse and validate; age keys are checked for shape only here (loadConfig decodes them too). */
export function parseConfig(bytes: Uint8Array, opts: LoadOptions & { file: string }): Config {
  const env = opts.env ?? process.env;
  const file = opts.file;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new LsinitError('LSINIT_ERR_CONFIG', `${file}: not valid UTF-8 text (is it a YAML file?)`, { fields: { path: file } });
  }
  const warnings: string[] = [];
  if (opts.expandEnv) {
    const r = expandEnv(text, env);
    text = r.text;
    for (const name of new Set(r.unset)) warnings.push(`${file}: environment variable $${name} is not set; it expands to ""`);
  }
  let doc: unknown;
  try {
    const d = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    if (d.errors.length) throw d.errors[0];
    doc = d.toJS();
  } catch (err) {
    throw new LsinitError('LSINIT_ERR_CONFIG', `${file}: invalid YAML: ${(err as Error).message.split('\n')[0]}`, { cause: err, fields: { path: file } });
  }
  if (doc === null || doc === undefined) {
    throw new LsinitError('LSINIT_ERR_CONFIG', `${file}: config is empty; it needs at least a dbs: list`, { fields: { path: file } });
  }
  return buildConfig(doc, { env, cwd: opts.cwd ?? process.cwd(), file, warnings });
}
