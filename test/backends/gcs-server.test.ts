/**
 * The GCS test server speaks the real JSON API: checked with raw HTTP where the exact wire shape
 * matters (preconditions, list pagination, ranges, resumable 308s), and with the real client library.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Storage } from '@google-cloud/storage';
import { crc32c, crc32cBase64 } from '../servers/gcs-server.js';
import { startGcs, type RunningGcs } from '../servers/gcs.js';

let gcs: RunningGcs;
let storage: Storage;
before(async () => {
  gcs = await startGcs({ bucket: 'srv' });
  storage = new Storage({ apiEndpoint: gcs.endpoint, projectId: 'test', retryOptions: { autoRetry: false } });
});
after(async () => {
  await gcs.stop();
});

const base = () => `${gcs.endpoint}/storage/v1/b/srv`;
const upload = () => `${gcs.endpoint}/upload/storage/v1/b/srv/o`;

async function multipart(name: string, data: string, query = ''): Promise<Response> {
  const boundary = 'xyzzy';
  const body = `--${boundary}\r\nContent-Type: application/json\r\n\r\n${JSON.stringify({ name })}\r\n--${boundary}\r\nContent-Type: application/octet-stream\r\n\r\n${data}\r\n--${boundary}--`;
  return fetch(`${upload()}?uploadType=multipart${query}`, { method: 'POST', headers: { 'content-type': `multipart/related; boundary=${boundary}` }, body });
}

describe('gcs test server', () => {
  it('computes CRC-32C (Castagnoli) like GCS: the check value of "123456789" is 0xE3069283', () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32cBase64(Buffer.from('123456789')), Buffer.from([0xe3, 0x06, 0x92, 0x83]).toString('base64'));
  });

  it('creates and gets buckets as the library asks (POST /b?project=, GET /b/NAME), 409 on a duplicate', async () => {
    const [bucket] = await storage.createBucket('made-by-client');
    const [meta] = await bucket.getMetadata();
    assert.equal(meta.name, 'made-by-client');
    assert.deepEqual(await storage.bucket('made-by-client').exists(), [true]);
    assert.deepEqual(await storage.bucket('never-made').exists(), [false]);
    await assert.rejects(storage.createBucket('made-by-client'), (err: { code?: number }) => err.code === 409);
  });

  it('ifGenerationMatch=0 on an existing object is 412 conditionNotMet (the lease relies on it)', async () => {
    const first = await multipart('lease', 'a', '&ifGenerationMatch=0');
    assert.equal(first.status, 200);
    const meta = (await first.json()) as { generation: string };
    const second = await multipart('lease', 'b', '&ifGenerationMatch=0');
    assert.equal(second.status, 412);
    const body = (await second.json()) as { error: { code: number; errors: { reason: string }[] } };
    assert.equal(body.error.code, 412);
    assert.equal(body.error.errors[0]!.reason, 'conditionNotMet');
    // Matching the current generation replaces it; a stale generation is refused.
    assert.equal((await multipart('lease', 'c', `&ifGenerationMatch=${meta.generation}`)).status, 200);
    assert.equal((await multipart('lease', 'd', `&ifGenerationMatch=${meta.generation}`)).status, 412);
    assert.equal(gcs.server.object('srv', 'lease')!.data.toString(), 'c');
    const cur = gcs.server.object('srv', 'lease')!.generation.toString();
    assert.equal((await fetch(`${base()}/o/lease?ifGenerationNotMatch=${cur}`)).status, 412);
    assert.equal((await fetch(`${base()}/o/lease?ifGenerationMatch=${cur}`, { method: 'DELETE' })).status, 204);
  });

  it('the client library sees the same 412 through preconditionOpts, on simple and resumable uploads', async () => {
    const file = storage.bucket('srv').file('lease2');
    await file.save('x', { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
    for (const resumable of [false, true]) {
      await assert.rejects(file.save('y', { resumable, preconditionOpts: { ifGenerationMatch: 0 } }), (err: { code?: unknown; status?: number; response?: { status?: number } }) =>
        (err.code ?? err.status ?? err.response?.status) === 412 || err.status === 412 || err.response?.status === 412);
    }
    assert.equal(gcs.server.object('srv', 'lease2')!.data.toString(), 'x');
  });

  it('object JSON has the real shapes: string size/generation, base64 hashes, RFC 3339 times', async () => {
    await multipart('shape/obj', 'hello');
    const m = (await (await fetch(`${base()}/o/${encodeURIComponent('shape/obj')}`)).json()) as Record<string, unknown>;
    assert.equal(m['size'], '5');
    assert.equal(typeof m['generation'], 'string');
    assert.equal(m['md5Hash'], createHash('md5').update('hello').digest('base64'));
    assert.equal(m['crc32c'], crc32cBase64(Buffer.from('hello')));
    assert.match(String(m['timeCreated']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const missing = await fetch(`${base()}/o/nope`);
    assert.equal(missing.status, 404);
    assert.deepEqual(((await missing.json()) as { error: { code: number } }).error.code, 404);
    const noBucket = await fetch(`${gcs.endpoint}/storage/v1/b/absent/o`);
    assert.equal(noBucket.status, 404);
    assert.match(((await noBucket.json()) as { error: { message: string } }).error.message, /bucket does not exist/);
  });

  it('downloads carry x-goog-hash and honour Range', async () => {
    await multipart('range', '0123456789');
    const full = await fetch(`${base()}/o/range?alt=media`);
    assert.equal(full.headers.get('x-goog-hash'), `crc32c=${crc32cBase64(Buffer.from('0123456789'))},md5=${createHash('md5').update('0123456789').digest('base64')}`);
    assert.equal(full.headers.get('x-goog-stored-content-encoding'), 'identity');
    const part = await fetch(`${base()}/o/range?alt=media`, { headers: { range: 'bytes=2-4' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 2-4/10');
    assert.equal(await part.text(), '234');
    assert.equal(await (await fetch(`${base()}/o/range?alt=media`, { headers: { range: 'bytes=-3' } })).text(), '789');
    assert.equal((await fetch(`${base()}/o/range?alt=media`, { headers: { range: 'bytes=20-' } })).status, 416);
  });

  it('lists with prefix, delimiter, pagination, start/endOffset and includeTrailingDelimiter', async () => {
    for (const n of ['l/a/1', 'l/a/2', 'l/b/1', 'l/c', 'l/d', 'l/e/']) await multipart(n, 'x');
    type Page = { items?: { name: string }[]; prefixes?: string[]; nextPageToken?: string };
    const get = async (qs: string) => (await (await fetch(`${base()}/o?${qs}`)).json()) as Page;
    const all: string[] = [];
    let token: string | undefined;
    do {
      const p = await get(`prefix=l/&delimiter=/&maxResults=2${token ? `&pageToken=${token}` : ''}`);
      assert.ok((p.items?.length ?? 0) + (p.prefixes?.length ?? 0) <= 2);
      all.push(...(p.prefixes ?? []), ...(p.items ?? []).map((i) => i.name));
      token = p.nextPageToken;
    } while (token);
    assert.deepEqual(all.sort(), ['l/a/', 'l/b/', 'l/c', 'l/d', 'l/e/']);
    const flat = await get('prefix=l/&startOffset=l/a/2&endOffset=l/d');
    assert.deepEqual(flat.items!.map((i) => i.name), ['l/a/2', 'l/b/1', 'l/c']);
    const trailing = await get('prefix=l/&delimiter=/&includeTrailingDelimiter=true');
    assert.deepEqual(trailing.items!.map((i) => i.name), ['l/c', 'l/d', 'l/e/']);
    assert.ok(trailing.prefixes!.includes('l/e/'));
  });

  it('resumable uploads answer 308 with the persisted Range for middle chunks, then 200', async () => {
    const init = await fetch(`${upload()}?uploadType=resumable&name=resum`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(init.status, 200);
    const loc = init.headers.get('location')!;
    assert.match(loc, /upload_id=/);
    const mid = await fetch(loc, { method: 'PUT', headers: { 'content-range': 'bytes 0-3/*' }, body: 'abcd' });
    assert.equal(mid.status, 308);
    assert.equal(mid.headers.get('range'), 'bytes=0-3');
    const status = await fetch(loc, { method: 'PUT', headers: { 'content-range': 'bytes */*' } });
    assert.equal(status.status, 308);
    assert.equal(status.headers.get('range'), 'bytes=0-3');
    const fin = await fetch(loc, { method: 'PUT', headers: { 'content-range': 'bytes 4-5/6', 'x-goog-hash': `crc32c=${crc32cBase64(Buffer.from('abcdef'))}` }, body: 'ef' });
    assert.equal(fin.status, 200);
    assert.equal(((await fin.json()) as { size: string }).size, '6');
    assert.equal(gcs.server.object('srv', 'resum')!.data.toString(), 'abcdef');
    // A final chunk whose X-Goog-Hash does not match the bytes is refused and nothing is stored.
    const init2 = await fetch(`${upload()}?uploadType=resumable&name=resum2`, { method: 'POST', body: '' });
    const bad = await fetch(init2.headers.get('location')!, { method: 'PUT', headers: { 'content-range': 'bytes 0-1/2', 'x-goog-hash': 'crc32c=AAAAAA==' }, body: 'ef' });
    assert.equal(bad.status, 400);
    assert.equal(gcs.server.object('srv', 'resum2'), undefined);
  });

  it('stops and restarts on the same port with its objects intact', async () => {
    await multipart('survivor', 'still here');
    const port = gcs.server.port;
    await gcs.server.stop();
    await assert.rejects(fetch(`${base()}/o/survivor?alt=media`));
    await gcs.server.start();
    assert.equal(gcs.server.port, port);
    assert.equal(await (await fetch(`${base()}/o/survivor?alt=media`)).text(), 'still here');
  });
});
