import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { makeABSSettings } from '../../src/replica/clients/abs-config.js';
import { ABSReplicaClient } from '../../src/replica/clients/abs.js';
import { startAzurite, type AzuriteServer } from '../servers/azurite.js';
import { runConformance } from './suite.js';

const CONTAINER = 'lsinit-conformance';
let azurite: AzuriteServer;

before(async () => {
  azurite = await startAzurite();
  await azurite.createContainer(CONTAINER);
});
after(async () => {
  await azurite?.stop();
});

runConformance('abs (azurite)', async () => ({
  client: new ABSReplicaClient(
    // A fresh prefix per test: the tests share one container.
    makeABSSettings({ accountName: azurite.accountName, container: CONTAINER, path: `conf/${randomBytes(6).toString('hex')}`, endpoint: azurite.endpoint }, azurite.accountKey),
    // Azure pages hold up to 5000 blobs; a small page makes the 1100-object test cross pages.
    { listPageSize: 250 },
  ),
}), { requests: { replicaType: 'abs', deletes: 2 } }); // one Delete Blob per blob
