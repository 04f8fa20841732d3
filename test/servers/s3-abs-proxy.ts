/**
 * A plain HTTP forwarding proxy in front of moto or azurite, for end-to-end tests:
 * - it logs every request (method, path, query, headers, status), so a test can count what a
 *   sync or a restore costs when lsinit runs as a separate process;
 * - `stop()` / `start()` make the store unreachable and back on the same port without losing its
 *   data (moto and azurite run in memory, so restarting them would empty the replica).
 * It is the fault proxy (fault-proxy.ts) with no faults injected.
 */
import { startFaultProxy, type ProxiedRequest } from './fault-proxy.js';

export type LoggedRequest = ProxiedRequest;

export interface StoreProxy {
  endpoint: string;
  port: number;
  requests: LoggedRequest[];
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startProxy(targetPort: number): Promise<StoreProxy> {
  const p = await startFaultProxy(targetPort);
  return {
    get endpoint() {
      return p.endpoint;
    },
    get port() {
      return p.port;
    },
    requests: p.requests,
    stop: () => p.down(),
    start: () => p.up(),
  };
}
