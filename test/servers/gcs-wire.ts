/**
 * Wire formats of the GCS JSON API for the test server: object/bucket JSON, error bodies, Range and
 * multipart/related parsing, preconditions, and CRC-32C as GCS reports it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { buffer } from 'node:stream/consumers';

export interface StoredObject {
  name: string;
  data: Buffer;
  generation: bigint;
  contentType: string;
  metadata?: Record<string, string>;
  timeCreated: string;
  md5: string;
  crc32c: string;
}

export function objectJSON(bucket: string, o: StoredObject, endpoint: string): Record<string, unknown> {
  const enc = encodeURIComponent(o.name);
  return {
    kind: 'storage#object',
    id: `${bucket}/${o.name}/${o.generation}`,
    selfLink: `${endpoint}/storage/v1/b/${bucket}/o/${enc}`,
    mediaLink: `${endpoint}/download/storage/v1/b/${bucket}/o/${enc}?generation=${o.generation}&alt=media`,
    name: o.name,
    bucket,
    generation: o.generation.toString(),
    metageneration: '1',
    contentType: o.contentType,
    storageClass: 'STANDARD',
    size: String(o.data.length),
    md5Hash: o.md5,
    crc32c: o.crc32c,
    etag: etag(o),
    timeCreated: o.timeCreated,
    updated: o.timeCreated,
    timeStorageClassUpdated: o.timeCreated,
    ...(o.metadata ? { metadata: o.metadata } : {}),
  };
}

export function bucketJSON(b: { name: string; timeCreated: string }): Record<string, unknown> {
  return {
    kind: 'storage#bucket', id: b.name, name: b.name, projectNumber: '0', metageneration: '1', location: 'US',
    storageClass: 'STANDARD', etag: 'CAE=', timeCreated: b.timeCreated, updated: b.timeCreated,
  };
}

export function etag(o: StoredObject): string {
  // GCS etags are the base64 of the generation as a varint; any stable per-generation value serves.
  return Buffer.from(o.generation.toString(16), 'hex').toString('base64');
}

export function preconditionsHold(q: URLSearchParams, existing: StoredObject | undefined): boolean {
  const gen = existing ? existing.generation : 0n;
  const match = q.get('ifGenerationMatch');
  // ifGenerationMatch=0 means "only if no live object exists" (the lease relies on it).
  if (match !== null && BigInt(match) !== gen) return false;
  const notMatch = q.get('ifGenerationNotMatch');
  if (notMatch !== null && BigInt(notMatch) === gen) return false;
  return true;
}

export function parseRange(h: string, total: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const n = Math.min(Number(m[2]), total);
    if (n === 0) return 'unsatisfiable';
    return { start: total - n, end: total - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? total - 1 : Math.min(Number(m[2]), total - 1);
  if (start >= total || end < start) return 'unsatisfiable';
  return { start, end };
}

export function parseMultipart(body: Buffer, boundary: string): { headers: Record<string, string>; body: Buffer }[] {
  const delim = Buffer.from(`--${boundary}`);
  const parts: { headers: Record<string, string>; body: Buffer }[] = [];
  let pos = body.indexOf(delim);
  while (pos >= 0) {
    let start = pos + delim.length;
    if (body.subarray(start, start + 2).toString() === '--') break;
    if (body.subarray(start, start + 2).toString() === '\r\n') start += 2;
    const next = body.indexOf(delim, start);
    if (next < 0) break;
    // The part ends with the CRLF that precedes the next delimiter.
    const part = body.subarray(start, next - 2);
    const sep = part.indexOf('\r\n\r\n');
    const headers: Record<string, string> = {};
    for (const line of part.subarray(0, Math.max(sep, 0)).toString('utf8').split('\r\n')) {
      const i = line.indexOf(':');
      if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
    }
    parts.push({ headers, body: sep >= 0 ? part.subarray(sep + 4) : Buffer.alloc(0) });
    pos = next;
  }
  return parts;
}

export function byteCmp(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export async function drain(req: IncomingMessage): Promise<void> {
  await buffer(req).catch(() => undefined);
}

export function incomplete(res: ServerResponse, size: number): void {
  const h: Record<string, string> = { 'content-length': '0' };
  if (size > 0) h['range'] = `bytes=0-${size - 1}`;
  res.writeHead(308, h).end();
}

export function sendJSON(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': String(data.length), ...headers });
  res.end(data);
}

export function sendError(res: ServerResponse, code: number, message: string, reason: string, headers: Record<string, string> = {}): void {
  sendJSON(res, code, { error: { code, message, errors: [{ message, domain: 'global', reason }] } }, headers);
}

export function bucketNotFound(res: ServerResponse): void {
  sendError(res, 404, 'The specified bucket does not exist.', 'notFound');
}

export function objectNotFound(res: ServerResponse, bucket: string, name: string): void {
  sendError(res, 404, `No such object: ${bucket}/${name}`, 'notFound');
}

export function preconditionFailed(res: ServerResponse): void {
  const message = 'At least one of the pre-conditions you specified did not hold.';
  sendJSON(res, 412, {
    error: { code: 412, message, errors: [{ message, domain: 'global', reason: 'conditionNotMet', locationType: 'header', location: 'If-Match' }] },
  });
}

// CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, as GCS reports it: 4 bytes big-endian, base64.
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32c(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function crc32cBase64(data: Uint8Array): string {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(crc32c(data));
  return b.toString('base64');
}
