/** End to end through the CLI with an abs replica on azurite (scenarios in s3-abs-e2e.ts). */
import { makeABSSettings } from '../../src/replica/clients/abs-config.js';
import { ABSReplicaClient } from '../../src/replica/clients/abs.js';
import { AZURITE_ACCOUNT, AZURITE_KEY, startAzurite } from '../servers/azurite.js';
import { defineE2E } from './s3-abs-e2e.js';

const CONTAINER = 'lsinit-e2e';

defineE2E('abs (azurite)', async () => {
  const azurite = await startAzurite();
  await azurite.createContainer(CONTAINER);
  return {
    type: 'abs',
    port: azurite.port,
    replicaYaml: (endpoint, prefix) => [`url: abs://${AZURITE_ACCOUNT}@${CONTAINER}/${prefix}`, `endpoint: ${endpoint}/${AZURITE_ACCOUNT}`],
    env: { LITESTREAM_AZURE_ACCOUNT_KEY: AZURITE_KEY },
    secret: AZURITE_KEY,
    client: (prefix) => new ABSReplicaClient(makeABSSettings({ accountName: AZURITE_ACCOUNT, container: CONTAINER, path: prefix, endpoint: azurite.endpoint }, AZURITE_KEY)),
    classify: (r) => {
      if (r.query.get('comp') === 'list') return 'LIST';
      if (r.method === 'PUT') return 'PUT';
      if (r.method === 'DELETE') return 'DELETE';
      return 'GET';
    },
    stop: () => azurite.stop(),
  };
});
