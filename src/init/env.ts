/**
 * The app's environment. Passed through unchanged by default (unlike s6-overlay v3's minimal env);
 * `-strip-credentials` removes what replication needs but the app should not see. Litestream itself
 * leaks these: it copies LITESTREAM_ACCESS_KEY_ID/SECRET into AWS_* and runs the app with os.Environ().
 */

/** Prefixes and names removed by `-strip-credentials`. */
export const CREDENTIAL_PREFIXES: readonly string[] = ['AWS_', 'LITESTREAM_', 'AZURE_STORAGE_'];
export const CREDENTIAL_NAMES: readonly string[] = ['GOOGLE_APPLICATION_CREDENTIALS'];

/**
 * `secrets`: values the config holds (age identities), which users pass through a variable of any
 * name (`identities: [$AGE_KEY]`); a variable containing one is removed too.
 */
export function stripCredentials(env: NodeJS.ProcessEnv, secrets: readonly string[] = []): { env: NodeJS.ProcessEnv; removed: string[] } {
  const out: NodeJS.ProcessEnv = {};
  const removed: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (CREDENTIAL_NAMES.includes(k) || CREDENTIAL_PREFIXES.some((p) => k.startsWith(p)) || secrets.some((s) => v?.includes(s))) removed.push(k);
    else out[k] = v;
  }
  return { env: out, removed };
}
