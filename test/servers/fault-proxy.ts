/**
 * A fault-injecting HTTP proxy in front of a real store (moto, azurite, the GCS server): the store
 * misbehaves the way a user's infrastructure does, while its data stays real.
 *
 * Faults (each optionally limited to matching requests and to a number of requests):
 * - `status`: answer at once with an error status (S3's `503 SlowDown` by default), nothing forwarded;
 * - `delay`: forward after a pause (a slow store);
 * - `drop`: forward the request, let the store apply it, then reset the connection instead of
 *   answering (a lost response: the client retries a write that already landed);
 * - `hang`: accept the request and never answer (a store that accepts connections and stalls);
 * - `down()` / `up()`: stop listening (connections refused, kept-alive ones reset) and come back
 *   on the same port.
 * Path-style addressing; the Host header is forwarded as sent (moto does not check signatures).
 */
import { once } from 'node:events';
import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export type Fault =
  | { kind: 'status'; status?: number; code?: string }
  | { kind: 'delay'; ms: number }
  | { kind: 'drop' }
  | { kind: 'hang' };

export interface ProxiedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** The fault applied to it, if any. */
  fault?: Fault['kind'];
  status?: number | undefined;
}

export interface FaultRule {
  fault: Fault;
  /** Which requests it applies to (default: all). */
  match?: (r: ProxiedRequest) => boolean;
  /** How many matching requests it applies to (default: until removed). */
  times?: number;
}

export interface FaultProxy {
  readonly endpoint: string;
  readonly port: number;
  readonly requests: ProxiedRequest[];
  /** Add a rule (first matching rule wins); returns a function that removes it. */
  inject(rule: FaultRule): () => void;
  /** Remove every rule and reset the requests held by `hang`. */
  clear(): void;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

const SLOW_DOWN = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

export async function startFaultProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<FaultProxy> {
  const requests: ProxiedRequest[] = [];
  let rules: (FaultRule & { left: number })[] = [];
  const hung = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;

  const pick = (r: ProxiedRequest): Fault | undefined => {
    for (const rule of rules) {
      if (rule.left <= 0 || (rule.match && !rule.match(r))) continue;
      rule.left--;
      return rule.fault;
    }
    return undefined;
  };

  const forward = (req: IncomingMessage, res: ServerResponse, entry: ProxiedRequest, drop: boolean) => {
    const up = request({ host: targetHost, port: targetPort, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      entry.status = ur.statusCode;
      if (drop) {
        // The store applied it; the client never hears back.
        ur.resume();
        ur.on('end', () => res.socket?.destroy());
        return;
      }
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://proxy');
    const entry: ProxiedRequest = { method: req.method ?? 'GET', path: u.pathname, query: u.searchParams, headers: req.headers };
    requests.push(entry);
    const fault = pick(entry);
    if (fault) entry.fault = fault.kind;
    switch (fault?.kind) {
      case undefined:
        return forward(req, res, entry, false);
      case 'drop':
        return forward(req, res, entry, true);
      case 'delay':
        setTimeout(() => forward(req, res, entry, false), fault.ms);
        return;
      case 'hang': {
        req.resume();
        const s = req.socket;
        hung.add(s);
        s.once('close', () => hung.delete(s));
        return;
      }
      case 'status': {
        req.resume();
        const status = fault.status ?? 503;
        entry.status = status;
        const body = status === 503 && fault.code === undefined ? SLOW_DOWN : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${fault.code ?? 'InternalError'}</Code><Message>injected</Message></Error>`;
        req.on('end', () => res.writeHead(status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) }).end(body));
        return;
      }
    }
  };

  const listen = async () => {
    const s = createServer(handle);
    s.keepAliveTimeout = 60_000;
    s.listen(port, '127.0.0.1');
    await once(s, 'listening');
    port = (s.address() as { port: number }).port;
    server = s;
  };

  const releaseHung = () => {
    for (const s of hung) s.destroy();
    hung.clear();
  };

  const down = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    const closed = once(s, 'close');
    s.close();
    s.closeAllConnections();
    releaseHung();
    await closed;
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
    inject(rule) {
      const r = { ...rule, left: rule.times ?? Infinity };
      rules.push(r);
      return () => {
        rules = rules.filter((x) => x !== r);
      };
    },
    clear() {
      rules = [];
      releaseHung();
    },
    down,
    async up() {
      if (!server) await listen();
    },
    async close() {
      rules = [];
      await down();
    },
  };
}
