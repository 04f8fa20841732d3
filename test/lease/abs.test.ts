import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { after, before } from 'node:test';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { makeABSSettings } from '../../src/replica/clients/abs-config.js';
import { ABSLeaseStore } from '../../src/replica/lease/abs.js';
import { LEASE_NAME } from '../../src/replica/lease/index.js';
import { startAzurite, type AzuriteServer } from '../servers/azurite.js';
import { runLeaseSuite } from './suite.js';

const CONTAINER = 'lsinit-lease';
let azurite: AzuriteServer;

before(async () => {
  azurite = await startAzurite();
  await azurite.createContainer(CONTAINER);
});
after(async () => {
  await azurite?.stop();
});

runLeaseSuite('abs (azurite)', async () => {
  const settings = makeABSSettings({ accountName: azurite.accountName, container: CONTAINER, path: `lease/${randomBytes(6).toString('hex')}`, endpoint: azurite.endpoint }, azurite.accountKey);
  return {
    open: () => new ABSLeaseStore(settings),
    rawWrite: async (data) => {
      const svc = new BlobServiceClient(azurite.endpoint, new StorageSharedKeyCredential(azurite.accountName, azurite.accountKey));
      await svc.getContainerClient(CONTAINER).getBlockBlobClient(posix.join(settings.path, LEASE_NAME)).upload(data, data.byteLength);
    },
  };
});
