/**
 * Credential values known to this process, for the logger's last-line-of-defence scrub: replica
 * settings fields that hold secrets (some are non-enumerable on purpose, so walk own property
 * names), age identities (non-enumerable too) and the backends' secret environment variables.
 */
import { backends } from '../replica/clients/registry.js';
import type { Config } from './types.js';

const SECRET_FIELD = /^(password|accountKey|secretAccessKey|sessionToken|secret|token)$/i;

function collect(v: unknown, out: Set<string>, depth: number): void {
  if (depth > 4 || typeof v !== 'object' || v === null) return;
  for (const k of Object.getOwnPropertyNames(v)) {
    const x = (v as Record<string, unknown>)[k];
    if (typeof x === 'string' && SECRET_FIELD.test(k) && x) out.add(x);
    else if (typeof x === 'object') collect(x, out, depth + 1);
  }
}

export function secretValues(config: Config | null, env: NodeJS.ProcessEnv = process.env): string[] {
  const out = new Set<string>();
  for (const db of config?.dbs ?? []) {
    for (const r of db.replicas) {
      collect(r.settings, out, 0);
      for (const id of r.age?.identities ?? []) out.add(id);
    }
  }
  const names = new Set(['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'LITESTREAM_SECRET_ACCESS_KEY', 'LITESTREAM_AZURE_ACCOUNT_KEY', 'LITESTREAM_SFTP_PASSWORD']);
  for (const b of Object.values(backends)) for (const n of b.secretEnv ?? []) if (/SECRET|KEY|PASSWORD|TOKEN/.test(n) && !/KEY_ID$/.test(n)) names.add(n);
  for (const n of names) if (env[n]) out.add(env[n]!);
  return [...out];
}
