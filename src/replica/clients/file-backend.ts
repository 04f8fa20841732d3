/** Config resolution for `file` replicas: `file:///dir`, a plain `path`, or `url` without scheme rules. */
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { configError, optString, type Backend } from '../backend.js';
import { FileReplicaClient } from './file.js';

export interface FileSettings {
  path: string;
}

export const fileBackend: Backend<FileSettings> = {
  type: 'file',
  keys: [],
  resolve({ url, raw, keyPath, cwd }) {
    let p: string | undefined;
    if (url) {
      if (url.host !== '') throw configError(`${keyPath}.url`, `"${url.host}" would be the host of this file URL, and a file URL has none: write three slashes and an absolute path, e.g. file:///${url.host}${url.pathname}`);
      p = decodeURIComponent(url.pathname);
      // Litestream cleans "file://" to "/": replicating into the filesystem root is never meant.
      if (p === '' || p === '/') throw configError(`${keyPath}.url`, 'file replica needs a path: write file:///absolute/path');
    } else {
      p = optString(raw, 'path', keyPath);
    }
    if (!p) throw configError(keyPath, 'file replica needs a path: set `path: /backup/dir` or `url: file:///backup/dir`');
    if (p.startsWith('~/')) p = resolve(homedir(), p.slice(2));
    const abs = isAbsolute(p) ? resolve(p) : resolve(cwd, p);
    return { settings: { path: abs }, display: `file://${abs}`, warnings: [] };
  },
  create(settings) {
    return new FileReplicaClient({ path: settings.path });
  },
};
