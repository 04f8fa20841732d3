/** Build the client for a resolved replica config. */
import type { ReplicaConfig } from '../config/types.js';
import type { ReplicaClient } from './client.js';
import { backendFor } from './clients/registry.js';

export function createClient(rc: ReplicaConfig): ReplicaClient {
  const b = backendFor(rc.type);
  if (!b) throw new Error(`unknown replica type ${rc.type}`);
  return b.create(rc.settings);
}
