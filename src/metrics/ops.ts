/**
 * Storage request counters by replica type and operation (Litestream's
 * litestream_replica_operation_total / _bytes). Clients call `countOp` for every request they make;
 * the metrics endpoint reads `opSnapshot()`. Kept dependency-free so clients need no registry.
 */
export type Operation = 'GET' | 'PUT' | 'LIST' | 'DELETE';

interface Counter {
  total: number;
  bytes: number;
}

const counters = new Map<string, Counter>();
type Listener = (replicaType: string, op: Operation, bytes: number) => void;
const listeners = new Set<Listener>();

export function countOp(replicaType: string, op: Operation, bytes = 0): void {
  const key = `${replicaType}\u0000${op}`;
  let c = counters.get(key);
  if (!c) {
    c = { total: 0, bytes: 0 };
    counters.set(key, c);
  }
  c.total += 1;
  c.bytes += bytes;
  for (const l of listeners) l(replicaType, op, bytes);
}

export function onOp(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export interface OpCount {
  replicaType: string;
  operation: Operation;
  total: number;
  bytes: number;
}

export function opSnapshot(): OpCount[] {
  return [...counters.entries()].map(([k, v]) => {
    const [replicaType, operation] = k.split('\u0000') as [string, Operation];
    return { replicaType, operation, total: v.total, bytes: v.bytes };
  });
}

export function resetOps(): void {
  counters.clear();
}
