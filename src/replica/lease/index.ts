/** The lease store of a resolved replica, by backend type (settings are that backend's resolved settings). */
import { LsinitError } from '../../errors.js';
import type { ABSSettings } from '../clients/abs-config.js';
import type { FileSettings } from '../clients/file-backend.js';
import type { GcsSettings } from '../clients/gcs-config.js';
import type { S3Settings } from '../clients/s3-config.js';
import type { SFTPSettings } from '../clients/sftp-conn.js';
import { ABSLeaseStore } from './abs.js';
import { FileLeaseStore } from './file.js';
import { GcsLeaseStore } from './gcs.js';
import { S3LeaseStore } from './s3.js';
import { SFTPLeaseStore } from './sftp.js';
import type { LeaseStore } from './types.js';

export * from './types.js';

export function leaseStoreFor(type: string, settings: unknown): LeaseStore {
  switch (type) {
    case 'file':
      return new FileLeaseStore(settings as FileSettings);
    case 's3':
      return new S3LeaseStore(settings as S3Settings);
    case 'abs':
      return new ABSLeaseStore(settings as ABSSettings);
    case 'gcs':
      return new GcsLeaseStore(settings as GcsSettings);
    case 'sftp':
      return new SFTPLeaseStore(settings as SFTPSettings);
    default:
      throw new LsinitError('LSINIT_ERR_CONFIG', `no lease support for replica type ${JSON.stringify(type)}`, { fields: { type } });
  }
}
