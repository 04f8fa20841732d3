/**
 * better-sqlite3, the one way every module opens a SQLite connection. Two start-up costs avoided
 * (the replication worker opens the database on the path from the app's exit to lsinit's):
 *  - it is loaded with require(), not an ESM import: importing a CommonJS package from ESM makes
 *    Node lex its source (cjs-module-lexer) to find named exports and wrap it in a module facade;
 *  - the addon is named by its path when the package holds it where its install puts it
 *    (build/Release), sparing the `bindings` package's search of a dozen directories (~1.5 ms in
 *    a worker); anywhere else the package finds it itself, as before.
 * Loaded on the first open, or by `loadSqlite()` ahead of it.
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

export type SqliteConnection = BetterSqlite3.Database;
export type OpenOptions = Omit<BetterSqlite3.Options, 'nativeBinding'>;

const load = createRequire(import.meta.url);
let loaded: { Database: typeof BetterSqlite3; addon: { nativeBinding?: string } } | undefined;

/** Load the package and its addon now (the worker does it while it waits for its config). */
export function loadSqlite(): void {
  loaded ??= loadNow();
}

/** `new Database(path, opts)` of better-sqlite3. */
export function openDatabase(path: string, opts: OpenOptions = {}): SqliteConnection {
  const { Database, addon } = (loaded ??= loadNow());
  return new Database(path, { ...opts, ...addon });
}

function loadNow(): NonNullable<typeof loaded> {
  const Database = load('better-sqlite3') as typeof BetterSqlite3;
  try {
    const path = load.resolve('better-sqlite3/build/Release/better_sqlite3.node');
    load(path); // the package requires the same file: from the module cache then
    return { Database, addon: { nativeBinding: path } };
  } catch {
    return { Database, addon: {} }; // elsewhere (a build from source): the package's own search
  }
}
