/**
 * An in-memory Google Cloud Storage JSON-API server: exactly the calls `@google-cloud/storage` 7
 * makes for lsinit's gcs client (reference test-servers.md, "GCS"), with the real service's
 * response shapes: string `size`/`generation`, base64 `md5Hash` and big-endian `crc32c`,
 * RFC 3339 times, `{"error":{...}}` bodies, 412 `conditionNotMet`. No auth is checked (the client
 * sends none to a custom endpoint). `stop()` keeps the data, so `start()` again on the same port
 * simulates an outage of the service, not a loss of the bucket.
 *
 * Not a fake of the client: the client library runs unmodified against it over real HTTP.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { buffer } from 'node:stream/consumers';
import {
  bucketJSON, bucketNotFound, byteCmp, crc32cBase64, drain, etag, incomplete, objectJSON, objectNotFound, parseMultipart,
  parseRange, preconditionFailed, preconditionsHold, sendError, sendJSON, type StoredObject,
} from './gcs-wire.js';

export { crc32c, crc32cBase64, type StoredObject } from './gcs-wire.js';

interface Bucket {
  name: string;
  timeCreated: string;
  objects: Map<string, StoredObject>;
}

interface UploadSession {
  bucket: string;
  name: string;
  contentType: string;
  metadata?: Record<string, string>;
  preconditions: URLSearchParams;
  chunks: Buffer[];
  size: number;
  done?: StoredObject;
}

export interface LoggedRequest {
  method: string;
  /** Decoded path, e.g. `/storage/v1/b/bkt/o/generations/0123/wal/x`. */
  path: string;
  query: Record<string, string>;
  status: number;
}

export class GcsTestServer {
  readonly buckets = new Map<string, Bucket>();
  readonly requests: LoggedRequest[] = [];
  private readonly uploads = new Map<string, UploadSession>();
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private lastGeneration = 0n;
  /**
   * Test hook: return an HTTP status to fail a request with (e.g. 503, 403) before it is served,
   * the way the real service fails during an incident or for a caller without permission.
   */
  fault: ((method: string, path: string, query: URLSearchParams) => number | 'hang' | undefined) | undefined;
  private portNum = 0;

  /** Listen on 127.0.0.1; the first start picks a free port, later starts reuse it. */
  async start(port = this.portNum): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) sendError(res, 500, `internal error: ${String(err)}`, 'backendError');
        else res.destroy();
      });
    });
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    if (addr && typeof addr === 'object') this.portNum = addr.port;
    this.server = server;
  }

  /** Close the listener and every open connection; stored objects survive for a later start(). */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  get port(): number {
    return this.portNum;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.portNum}`;
  }

  createBucket(name: string): void {
    if (!this.buckets.has(name)) this.buckets.set(name, { name, timeCreated: new Date().toISOString(), objects: new Map() });
  }

  object(bucket: string, name: string): StoredObject | undefined {
    return this.buckets.get(bucket)?.objects.get(name);
  }

  private nextGeneration(): bigint {
    // Real GCS generations are microsecond timestamps; keep them strictly increasing.
    const now = BigInt(Date.now()) * 1000n;
    this.lastGeneration = now > this.lastGeneration ? now : this.lastGeneration + 1n;
    return this.lastGeneration;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const segs = url.pathname.split('/').slice(1).map((s) => decodeURIComponent(s));
    const method = req.method ?? 'GET';
    const q = url.searchParams;
    res.on('finish', () => {
      this.requests.push({ method, path: '/' + segs.join('/'), query: Object.fromEntries(q), status: res.statusCode });
    });
    const injected = this.fault?.(method, '/' + segs.join('/'), q);
    // 'hang': accept the request and never answer (a stuck connection); stop() ends it.
    if (injected === 'hang') return;
    if (injected !== undefined) {
      await drain(req);
      const reason = injected === 403 ? 'forbidden' : injected === 401 ? 'required' : 'backendError';
      return sendError(res, injected, injected === 403 ? 'caller does not have storage.objects.create access' : `injected ${injected}`, reason);
    }

    // /storage/v1/b[/{bucket}[/o[/{name...}]]]
    if (segs[0] === 'storage' && segs[1] === 'v1' && segs[2] === 'b') {
      const bucketName = segs[3];
      if (bucketName === undefined || bucketName === '') {
        if (method === 'POST') return this.createBucketReq(req, res);
        return sendError(res, 405, 'method not allowed', 'invalid');
      }
      if (segs.length === 4) {
        if (method !== 'GET') return sendError(res, 405, 'method not allowed', 'invalid');
        const b = this.buckets.get(bucketName);
        if (!b) return bucketNotFound(res);
        return sendJSON(res, 200, bucketJSON(b));
      }
      if (segs[4] !== 'o') return sendError(res, 404, 'Not Found', 'notFound');
      const b = this.buckets.get(bucketName);
      if (!b) {
        await drain(req);
        return bucketNotFound(res);
      }
      if (segs.length === 5 || (segs.length === 6 && segs[5] === '')) {
        if (method !== 'GET') return sendError(res, 405, 'method not allowed', 'invalid');
        return this.list(b, q, res);
      }
      const name = segs.slice(5).join('/');
      const obj = b.objects.get(name);
      if (method === 'DELETE') {
        if (!obj) return objectNotFound(res, b.name, name);
        if (!preconditionsHold(q, obj)) return preconditionFailed(res);
        b.objects.delete(name);
        res.writeHead(204).end();
        return;
      }
      if (method !== 'GET') return sendError(res, 405, 'method not allowed', 'invalid');
      if (!obj) return objectNotFound(res, b.name, name);
      if (!preconditionsHold(q, obj)) return preconditionFailed(res);
      if (q.get('alt') === 'media') return this.download(req, res, obj);
      return sendJSON(res, 200, objectJSON(b.name, obj, this.endpoint));
    }

    // /upload/storage/v1/b/{bucket}/o
    if (segs[0] === 'upload' && segs[1] === 'storage' && segs[2] === 'v1' && segs[3] === 'b' && segs[5] === 'o') {
      const b = this.buckets.get(segs[4] ?? '');
      if (!b) {
        await drain(req);
        return bucketNotFound(res);
      }
      const uploadType = q.get('uploadType');
      const uploadId = q.get('upload_id');
      if (method === 'PUT' && uploadId !== null) return this.resumableChunk(req, res, b, uploadId);
      if (method === 'POST' && uploadType === 'multipart') return this.multipartUpload(req, res, b, q);
      if (method === 'POST' && uploadType === 'resumable') return this.startResumable(req, res, b, q);
      await drain(req);
      return sendError(res, 400, `unsupported upload: ${method} uploadType=${uploadType ?? ''}`, 'invalid');
    }
    await drain(req);
    sendError(res, 404, 'Not Found', 'notFound');
  }

  private async createBucketReq(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = JSON.parse((await buffer(req)).toString('utf8') || '{}') as { name?: string };
    if (!body.name) return sendError(res, 400, 'Required', 'required');
    if (this.buckets.has(body.name)) {
      return sendError(res, 409, 'Your previous request to create the named bucket succeeded and you already own it.', 'conflict');
    }
    this.createBucket(body.name);
    sendJSON(res, 200, bucketJSON(this.buckets.get(body.name)!));
  }

  private list(b: Bucket, q: URLSearchParams, res: ServerResponse): void {
    const prefix = q.get('prefix') ?? '';
    const delimiter = q.get('delimiter') ?? '';
    const startOffset = q.get('startOffset') ?? '';
    const endOffset = q.get('endOffset') ?? '';
    const trailing = q.get('includeTrailingDelimiter') === 'true';
    const max = Math.min(Math.max(Number(q.get('maxResults') ?? 1000) || 1000, 1), 1000);
    const token = q.get('pageToken');
    const after = token ? Buffer.from(token, 'base64url').toString('utf8') : undefined;

    // Names compare as UTF-8 bytes in GCS; Buffer.compare gives exactly that order.
    const names = [...b.objects.keys()]
      .filter((n) => n.startsWith(prefix) && (!startOffset || byteCmp(n, startOffset) >= 0) && (!endOffset || byteCmp(n, endOffset) < 0))
      .sort(byteCmp);
    const items: unknown[] = [];
    const prefixes: string[] = [];
    let last: string | undefined;
    let more = false;
    for (const n of names) {
      // A page ending on a prefix resumes after every name under that prefix.
      if (after !== undefined && (byteCmp(n, after) <= 0 || (after.endsWith(delimiter) && delimiter && n.startsWith(after)))) continue;
      const rest = n.slice(prefix.length);
      const cut = delimiter ? rest.indexOf(delimiter) : -1;
      if (cut >= 0) {
        const p = prefix + rest.slice(0, cut + delimiter.length);
        if (prefixes.at(-1) === p) {
          if (trailing && p === n) items.push(objectJSON(b.name, b.objects.get(n)!, this.endpoint));
          continue;
        }
        if (items.length + prefixes.length >= max) {
          more = true;
          break;
        }
        prefixes.push(p);
        last = p;
        if (trailing && p === n) items.push(objectJSON(b.name, b.objects.get(n)!, this.endpoint));
        continue;
      }
      if (items.length + prefixes.length >= max) {
        more = true;
        break;
      }
      items.push(objectJSON(b.name, b.objects.get(n)!, this.endpoint));
      last = n;
    }
    const out: Record<string, unknown> = { kind: 'storage#objects' };
    if (more && last !== undefined) out['nextPageToken'] = Buffer.from(last, 'utf8').toString('base64url');
    if (prefixes.length) out['prefixes'] = prefixes;
    if (items.length) out['items'] = items;
    sendJSON(res, 200, out);
  }

  private download(req: IncomingMessage, res: ServerResponse, obj: StoredObject): void {
    const total = obj.data.length;
    const headers: Record<string, string> = {
      'content-type': obj.contentType,
      'x-goog-hash': `crc32c=${obj.crc32c},md5=${obj.md5}`,
      'x-goog-generation': obj.generation.toString(),
      'x-goog-metageneration': '1',
      'x-goog-stored-content-encoding': 'identity',
      'x-goog-stored-content-length': String(total),
      'x-goog-storage-class': 'STANDARD',
      etag: etag(obj),
      'last-modified': new Date(obj.timeCreated).toUTCString(),
      'accept-ranges': 'bytes',
    };
    const range = req.headers.range;
    if (range) {
      const r = parseRange(range, total);
      if (r === 'unsatisfiable') {
        return sendError(res, 416, 'The requested range cannot be satisfied.', 'requestedRangeNotSatisfiable', { 'content-range': `bytes */${total}` });
      }
      if (r) {
        const body = obj.data.subarray(r.start, r.end + 1);
        res.writeHead(206, { ...headers, 'content-range': `bytes ${r.start}-${r.end}/${total}`, 'content-length': String(body.length) });
        res.end(body);
        return;
      }
    }
    res.writeHead(200, { ...headers, 'content-length': String(total) });
    res.end(obj.data);
  }

  private async multipartUpload(req: IncomingMessage, res: ServerResponse, b: Bucket, q: URLSearchParams): Promise<void> {
    const body = await buffer(req);
    const m = /boundary="?([^";]+)"?/i.exec(req.headers['content-type'] ?? '');
    if (!m) return sendError(res, 400, 'multipart upload without a boundary', 'invalid');
    const parts = parseMultipart(body, m[1]!);
    if (parts.length !== 2) return sendError(res, 400, `multipart upload needs 2 parts, got ${parts.length}`, 'invalid');
    const meta = JSON.parse(parts[0]!.body.toString('utf8') || '{}') as { name?: string; contentType?: string; metadata?: Record<string, string> };
    const name = q.get('name') ?? meta.name;
    if (!name) return sendError(res, 400, 'Required', 'required');
    const contentType = meta.contentType ?? parts[1]!.headers['content-type'] ?? 'application/octet-stream';
    this.finish(res, b, name, parts[1]!.body, contentType, meta.metadata, q, req.headers['x-goog-hash']);
  }

  private async startResumable(req: IncomingMessage, res: ServerResponse, b: Bucket, q: URLSearchParams): Promise<void> {
    const raw = (await buffer(req)).toString('utf8');
    const meta = (raw ? JSON.parse(raw) : {}) as { name?: string; contentType?: string; metadata?: Record<string, string> };
    const name = q.get('name') ?? meta.name;
    if (!name) return sendError(res, 400, 'Required', 'required');
    // Preconditions are checked when the session starts and again when the object is finalized.
    if (!preconditionsHold(q, b.objects.get(name))) return preconditionFailed(res);
    const id = randomBytes(16).toString('hex');
    const contentType = meta.contentType ?? (req.headers['x-upload-content-type'] as string | undefined) ?? 'application/octet-stream';
    this.uploads.set(id, { bucket: b.name, name, contentType, ...(meta.metadata ? { metadata: meta.metadata } : {}), preconditions: q, chunks: [], size: 0 });
    const loc = `http://${req.headers.host ?? `127.0.0.1:${this.portNum}`}/upload/storage/v1/b/${encodeURIComponent(b.name)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
    res.writeHead(200, { location: loc, 'content-length': '0' });
    res.end();
  }

  private async resumableChunk(req: IncomingMessage, res: ServerResponse, b: Bucket, id: string): Promise<void> {
    const body = await buffer(req);
    const s = this.uploads.get(id);
    if (!s || s.bucket !== b.name) return sendError(res, 404, 'No such upload session.', 'notFound');
    if (s.done) return sendJSON(res, 200, objectJSON(b.name, s.done, this.endpoint));
    const cr = String(req.headers['content-range'] ?? '');
    const status = /^bytes \*\/(\*|\d+)$/.exec(cr);
    if (status) {
      // Status query (`bytes */*`), or finalize an upload whose bytes are all here (`bytes */TOTAL`).
      if (status[1] !== '*' && Number(status[1]) === s.size) return this.finishSession(res, b, id, s, req.headers['x-goog-hash']);
      return incomplete(res, s.size);
    }
    const m = /^bytes (\d+)-(-?\d+|\*)\/(\*|\d+)$/.exec(cr);
    if (!m) return sendError(res, 400, `invalid Content-Range ${JSON.stringify(cr)}`, 'invalid');
    const start = Number(m[1]);
    const total = m[3] === '*' ? undefined : Number(m[3]);
    if (m[2] !== '*' && Number(m[2]) - start + 1 !== body.length && !(total === 0 && body.length === 0)) {
      return sendError(res, 400, `Content-Range ${cr} does not match a body of ${body.length} bytes`, 'invalid');
    }
    if (start > s.size) return sendError(res, 400, `chunk starts at ${start} but only ${s.size} bytes were persisted`, 'invalid');
    // A client that re-sends bytes already persisted (after a lost response) gets them ignored.
    const fresh = body.subarray(Math.min(s.size - start, body.length));
    s.chunks.push(fresh);
    s.size += fresh.length;
    const final = m[2] === '*' ? total === undefined || total === s.size : total !== undefined && total === s.size;
    if (total !== undefined && s.size > total) return sendError(res, 400, `upload exceeds the declared ${total} bytes`, 'invalid');
    if (!final) return incomplete(res, s.size);
    this.finishSession(res, b, id, s, req.headers['x-goog-hash']);
  }

  private finishSession(res: ServerResponse, b: Bucket, id: string, s: UploadSession, hash: string | string[] | undefined): void {
    const obj = this.finish(res, b, s.name, Buffer.concat(s.chunks), s.contentType, s.metadata, s.preconditions, hash);
    if (obj) s.done = obj;
    else this.uploads.delete(id);
  }

  /** Store an object after checking the client's X-Goog-Hash and the preconditions, as GCS does on finalize. */
  private finish(
    res: ServerResponse, b: Bucket, name: string, data: Buffer, contentType: string,
    metadata: Record<string, string> | undefined, q: URLSearchParams, hash: string | string[] | undefined,
  ): StoredObject | undefined {
    const crc = crc32cBase64(data);
    const md5 = createHash('md5').update(data).digest('base64');
    for (const pair of String(hash ?? '').split(',').filter(Boolean)) {
      const i = pair.indexOf('=');
      const [k, v] = [pair.slice(0, i).trim(), pair.slice(i + 1).trim()];
      if (k === 'crc32c' && v !== crc) {
        sendError(res, 400, `Provided CRC32C "${v}" doesn't match calculated CRC32C "${crc}".`, 'invalid');
        return undefined;
      }
      if (k === 'md5' && v !== md5) {
        sendError(res, 400, `Provided MD5 hash "${v}" doesn't match calculated MD5 hash "${md5}".`, 'invalid');
        return undefined;
      }
    }
    if (!preconditionsHold(q, b.objects.get(name))) {
      preconditionFailed(res);
      return undefined;
    }
    const obj: StoredObject = {
      name, data, generation: this.nextGeneration(), contentType, timeCreated: new Date().toISOString(), md5, crc32c: crc,
      ...(metadata ? { metadata } : {}),
    };
    b.objects.set(name, obj);
    sendJSON(res, 200, objectJSON(b.name, obj, this.endpoint));
    return obj;
  }
}
