/**
 * A ReplicaClient whose backend module (and its SDK) is imported on first use. Loading every
 * cloud SDK up front cost ~1.5 s and ~55 MB before `lsinit -- app` could start the app; only the
 * backends a config actually uses are loaded now.
 */
import type { Readable } from 'node:stream';
import type { ByteSource } from '../format/bytereader.js';
import type { Body, ObjectInfo, Pos, ReplicaClient, SnapshotInfo, WALSegmentInfo } from './client.js';

export class LazyClient implements ReplicaClient {
  readonly type: string;
  private loading: Promise<ReplicaClient> | undefined;
  private readonly load: () => Promise<ReplicaClient>;

  constructor(type: string, load: () => Promise<ReplicaClient>) {
    this.type = type;
    this.load = load;
  }

  private get c(): Promise<ReplicaClient> {
    return (this.loading ??= this.load().then((c) => (this.loaded = c)));
  }

  async generations(): Promise<string[]> { return (await this.c).generations(); }
  async deleteGeneration(g: string): Promise<void> { return (await this.c).deleteGeneration(g); }
  async snapshots(g: string): Promise<SnapshotInfo[]> { return (await this.c).snapshots(g); }
  async writeSnapshot(g: string, i: number, b: Body): Promise<SnapshotInfo> { return (await this.c).writeSnapshot(g, i, b); }
  async deleteSnapshot(g: string, i: number): Promise<void> { return (await this.c).deleteSnapshot(g, i); }
  async snapshotReader(g: string, i: number): Promise<Readable> { return (await this.c).snapshotReader(g, i); }
  async snapshotSource(g: string, i: number, onBytes: (n: number) => void): Promise<ByteSource | undefined> {
    const c = await this.c;
    return c.snapshotSource ? c.snapshotSource(g, i, onBytes) : undefined;
  }
  async walSegments(g: string): Promise<WALSegmentInfo[]> { return (await this.c).walSegments(g); }
  async writeWALSegment(p: Pos, b: Body): Promise<WALSegmentInfo> { return (await this.c).writeWALSegment(p, b); }
  async deleteWALSegments(ps: Pos[]): Promise<void> { return (await this.c).deleteWALSegments(ps); }
  async walSegmentReader(p: Pos): Promise<Readable> { return (await this.c).walSegmentReader(p); }
  async listObjects(d: string): Promise<ObjectInfo[]> { return (await this.c).listObjects(d); }
  async objectReader(k: string): Promise<Readable> { return (await this.c).objectReader(k); }
  async writeObject(k: string, b: Body): Promise<ObjectInfo> { return (await this.c).writeObject(k, b); }
  private loaded: ReplicaClient | undefined;
  abortInFlight(): void {
    this.loaded?.abortInFlight?.();
  }
  async close(): Promise<void> {
    if (this.loading) await (await this.loading).close();
  }
}
