/** The lease store of a resolved replica, by backend type (settings are that backend's resolved settings). */
import { LsinitError } from '../../errors.js';
import type { ABSSettings } from '../clients/abs-config.js';
import type { FileSettings } from '../clients/file-backend.js';
import type { GcsSettings } from '../clients/gcs-config.js';
import type { S3Settings } from '../clients/s3-config.js';
import type { SFTPSettings } from '../clients/sftp-conn.js';
import type { Lease, LeaseRecord, LeaseStore } from './types.js';

export * from './types.js';

/**
 * Each backend's store (and its SDK) is imported on first use, like the replica clients
 * (../lazy.ts): loading every SDK up front delayed the app's start by ~0.5 s in init mode.
 */
const LOADERS: Record<string, (settings: unknown) => Promise<LeaseStore>> = {
  file: async (s) => new (await import('./file.js')).FileLeaseStore(s as FileSettings),
  s3: async (s) => new (await import('./s3.js')).S3LeaseStore(s as S3Settings),
  abs: async (s) => new (await import('./abs.js')).ABSLeaseStore(s as ABSSettings),
  gcs: async (s) => new (await import('./gcs.js')).GcsLeaseStore(s as GcsSettings),
  sftp: async (s) => new (await import('./sftp.js')).SFTPLeaseStore(s as SFTPSettings),
};

class LazyLeaseStore implements LeaseStore {
  readonly type: string;
  private store: LeaseStore | undefined;
  private loading: Promise<LeaseStore> | undefined;
  private readonly load: () => Promise<LeaseStore>;
  constructor(type: string, load: () => Promise<LeaseStore>) {
    this.type = type;
    this.load = load;
  }
  get location(): string {
    return this.store?.location ?? `${this.type} replica lsinit-lease.json`;
  }
  private s(): Promise<LeaseStore> {
    return (this.loading ??= this.load().then((st) => (this.store = st)));
  }
  async read(): Promise<LeaseRecord | undefined> { return (await this.s()).read(); }
  async create(lease: Lease): Promise<string> { return (await this.s()).create(lease); }
  async replace(lease: Lease, token: string): Promise<string> { return (await this.s()).replace(lease, token); }
  async delete(token: string): Promise<void> { return (await this.s()).delete(token); }
  async close(): Promise<void> {
    if (this.loading) await (await this.loading).close();
  }
}

export function leaseStoreFor(type: string, settings: unknown): LeaseStore {
  const load = LOADERS[type];
  if (!load) throw new LsinitError('LSINIT_ERR_CONFIG', `no lease support for replica type ${JSON.stringify(type)}`, { fields: { type } });
  return new LazyLeaseStore(type, () => load(settings));
}
