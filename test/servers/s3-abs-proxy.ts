/**
 * A plain HTTP forwarding proxy in front of moto or azurite, for end-to-end tests:
 * - it logs every request (method, path, query), so a test can count what a sync or a restore
 *   costs when lsinit runs as a separate process;
 * - `stop()` / `start()` make the store unreachable and back on the same port without losing its
 *   data (moto and azurite run in memory, so restarting them would empty the replica).
 * Path-style addressing only (the bucket/account is in the path); the Host header is forwarded as
 * sent, which moto (no signature check by default) and azurite (shared key signs the path) accept.
 */
import { once } from 'node:events';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';

export interface LoggedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  status?: number | undefined;
}

export interface StoreProxy {
  endpoint: string;
  port: number;
  requests: LoggedRequest[];
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<StoreProxy> {
  const requests: LoggedRequest[] = [];
  let server: Server | undefined;
  let port = 0;

  const listen = async () => {
    const s = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://proxy');
      const entry: LoggedRequest = { method: req.method ?? 'GET', path: u.pathname, query: u.searchParams, headers: req.headers };
      requests.push(entry);
      const up = request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        entry.status = ur.statusCode;
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    });
    s.keepAliveTimeout = 60_000;
    s.listen(port, '127.0.0.1');
    await once(s, 'listening');
    port = (s.address() as { port: number }).port;
    server = s;
  };

  await listen();
  return {
    get endpoint() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    requests,
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      const closed = once(s, 'close');
      s.close();
      // Kill kept-alive connections too: a stopped store refuses and resets, it does not linger.
      s.closeAllConnections();
      await closed;
    },
    async start() {
      if (!server) await listen();
    },
  };
}
