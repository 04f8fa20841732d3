/** Build the client for a resolved replica config: the backend's, wrapped for age when `age:` is set. */
import type { ReplicaConfig } from '../config/types.js';
import { AgeClient } from './age.js';
import type { ReplicaClient } from './client.js';
import { backendFor } from './clients/registry.js';

export function createClient(rc: ReplicaConfig): ReplicaClient {
  const b = backendFor(rc.type);
  if (!b) throw new Error(`unknown replica type ${rc.type}`);
  const client = b.create(rc.settings);
  return rc.age ? new AgeClient(client, rc.age) : client;
}
