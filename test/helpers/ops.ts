/** Storage requests a replica client reports (src/metrics/ops.ts) while `fn` runs, by operation. */
import { onOp, type Operation } from '../../src/metrics/ops.js';

export type OpCounts = Record<Operation, { n: number; bytes: number }>;

export async function countDuring(replicaType: string, fn: () => Promise<unknown>): Promise<OpCounts> {
  const seen: OpCounts = { GET: { n: 0, bytes: 0 }, PUT: { n: 0, bytes: 0 }, LIST: { n: 0, bytes: 0 }, DELETE: { n: 0, bytes: 0 } };
  const off = onOp((type, op, bytes) => {
    if (type !== replicaType) return;
    seen[op].n++;
    seen[op].bytes += bytes;
  });
  try {
    await fn();
  } finally {
    off();
  }
  return seen;
}
