/**
 * Issue 8, Cloudinary: every operation and every point of an upload (plain and chunked), broken by
 * the fault proxies between the SDK (and the delivery fetch) and the fake Cloudinary: TCP fault
 * proxy → HTTP fault proxy → fake, for the Upload and Admin APIs (upload_prefix) and delivery URLs
 * alike. After each fault: success or a MediaStorageError with the expected code (the backend does
 * not retry; compose `withRetry` for that), the key holds the old or the new object whole (by
 * hash, in every home it may live in), and no half-assembled chunked upload became an asset.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudinaryStorage } from '../../src/cloudinary/index.js';
import { homesOf } from '../../src/cloudinary/mapping.js';
import type { Fault } from '../support/fault-proxy.js';
import { outcomeOf, sha256, startProxyChain, whichBody, type Layer, type Outcome, type ProxyChain, type RequestMatch } from '../support/fault-matrix.js';
import { FakeCloudinary } from '../support/fakes/cloudinary-server.js';

const ACCOUNT = { cloudName: 'fault-cloud', apiKey: '333333333333333', apiSecret: 'fault-secret-0123456789abc' };
const CHUNK = 5 * 1024 * 1024; // Cloudinary's smallest chunk
const DEADLINE_MS = 20_000;

type Op = 'save' | 'save-stream' | 'save-image' | 'save-chunked' | 'read' | 'stat' | 'exists' | 'list' | 'copy' | 'delete' | 'url';

interface Row {
  op: Op;
  at: string;
  layer: Layer;
  fault: Fault;
  match?: RequestMatch;
  /** Requests (http) or connections (tcp) to break; default 1. */
  times?: number;
  /** The storage is not told its folder mode, so its first save asks the Admin API. */
  detectFolderMode?: boolean;
  expect: readonly Outcome[];
}

// Requests, as the HTTP fault proxy sees them.
const upload: RequestMatch = (req) => req.method === 'POST' && /^\/v1_1\/[^/]+\/(image|video|raw)\/upload/.test(req.url);
const chunkAt =
  (offset: number): RequestMatch =>
  (req) =>
    upload(req) && String(req.headers['content-range']).startsWith(`bytes ${offset}-`);
const lastChunk: RequestMatch = (req) => upload(req) && /^bytes \d+-\d+\/\d+$/.test(String(req.headers['content-range']));
const destroy: RequestMatch = (req) => req.method === 'POST' && req.url.includes('/destroy');
const explicit: RequestMatch = (req) => req.method === 'POST' && req.url.includes('/explicit');
const folderModeLookup: RequestMatch = (req) => req.url.startsWith(`/v1_1/${ACCOUNT.cloudName}/config`);
const admin: RequestMatch = (req) => req.url.startsWith(`/v1_1/${ACCOUNT.cloudName}/resources`);
const deliveryGet: RequestMatch = (req) => req.method === 'GET' && req.url.startsWith(`/${ACCOUNT.cloudName}/`);
/** A whole read (stat asks for the first bytes only, with a Range). */
const deliveryRead: RequestMatch = (req) => deliveryGet(req) && req.headers.range === undefined;

const reset = (direction: 'upstream' | 'downstream', afterBytes: number): Fault => ({ kind: 'reset', direction, afterBytes });
const stall = (direction: 'upstream' | 'downstream', afterBytes: number): Fault => ({ kind: 'stall', direction, afterBytes });
const unavailable: Fault = {
  kind: 'http503',
  retryAfterSeconds: 0,
  contentType: 'application/json',
  body: JSON.stringify({ error: { message: 'Service Unavailable' } }),
};

const DOWN = ['UNAVAILABLE'] as const;

const MATRIX: Row[] = [
  // a plain upload (one multipart request)
  { op: 'save', at: 'before the upload: connection reset before any byte', layer: 'tcp', fault: reset('upstream', 0), expect: DOWN },
  { op: 'save', at: 'upload answered 503 (TCP proxy)', layer: 'tcp', fault: unavailable, expect: DOWN },
  { op: 'save', at: 'inside the body: reset after 5,000 bytes', layer: 'http', match: upload, fault: reset('upstream', 5000), expect: DOWN },
  { op: 'save', at: 'inside the body: stall after 5,000 bytes', layer: 'http', match: upload, fault: stall('upstream', 5000), expect: DOWN },
  { op: 'save', at: 'at completion: stored, the answer lost', layer: 'http', match: upload, fault: reset('downstream', 0), expect: DOWN },
  { op: 'save', at: 'at completion: stored, the answer stalled', layer: 'http', match: upload, fault: stall('downstream', 0), expect: DOWN },
  { op: 'save-stream', at: 'inside a stream of unknown length: reset', layer: 'http', match: upload, fault: reset('upstream', 10_000), expect: DOWN },
  // the one-time folder-mode lookup is best effort: the save goes on without asset_folder
  {
    op: 'save',
    at: 'the folder-mode lookup reset',
    layer: 'http',
    match: folderModeLookup,
    fault: reset('downstream', 0),
    detectFolderMode: true,
    expect: ['ok'],
  },
  { op: 'save', at: 'the folder-mode lookup answered 503', layer: 'http', match: folderModeLookup, fault: unavailable, detectFolderMode: true, expect: ['ok'] },
  // an image: a probe of its media home, the upload, then the raw home's copy destroyed
  { op: 'save-image', at: 'before it: the media-home lookup reset', layer: 'tcp', fault: reset('downstream', 30), expect: DOWN },
  { op: 'save-image', at: 'before it: the media-home lookup stalled', layer: 'tcp', fault: stall('downstream', 0), expect: DOWN },
  { op: 'save-image', at: 'inside the image upload: reset', layer: 'http', match: upload, fault: reset('upstream', 5000), expect: DOWN },
  { op: 'save-image', at: 'after the upload: destroying the old home fails', layer: 'http', match: destroy, fault: reset('upstream', 0), expect: DOWN },
  // the chunked upload protocol: 5 MiB chunks, the asset appears with the last one
  { op: 'save-chunked', at: 'inside chunk 1: reset', layer: 'http', match: chunkAt(0), fault: reset('upstream', 100_000), expect: DOWN },
  { op: 'save-chunked', at: 'chunk 1 answered 503', layer: 'http', match: chunkAt(0), fault: unavailable, expect: DOWN },
  { op: 'save-chunked', at: 'inside chunk 2: reset', layer: 'http', match: chunkAt(CHUNK), fault: reset('upstream', 1_000_000), expect: DOWN },
  { op: 'save-chunked', at: 'inside chunk 2: stall', layer: 'http', match: chunkAt(CHUNK), fault: stall('upstream', 1_000_000), expect: DOWN },
  {
    op: 'save-chunked',
    at: 'at completion: the last chunk never arrives whole',
    layer: 'http',
    match: lastChunk,
    fault: reset('upstream', 1000),
    expect: DOWN,
  },
  { op: 'save-chunked', at: 'at completion: assembled, the answer lost', layer: 'http', match: lastChunk, fault: reset('downstream', 0), expect: DOWN },
  // reads through delivery URLs
  { op: 'read', at: 'delivery answered 503', layer: 'tcp', fault: unavailable, expect: DOWN },
  { op: 'read', at: 'delivery reset before the answer', layer: 'tcp', fault: reset('upstream', 0), expect: DOWN },
  { op: 'read', at: 'delivery stalled before the answer', layer: 'tcp', fault: stall('downstream', 0), expect: DOWN },
  { op: 'read', at: 'inside the body: reset after 5,000 bytes', layer: 'http', match: deliveryRead, fault: reset('downstream', 5000), expect: DOWN },
  { op: 'read', at: 'inside the body: stall after 5,000 bytes', layer: 'http', match: deliveryRead, fault: stall('downstream', 5000), expect: DOWN },
  { op: 'stat', at: 'the first bytes reset', layer: 'http', match: deliveryGet, fault: reset('downstream', 100), expect: DOWN },
  { op: 'stat', at: 'the first bytes stalled', layer: 'http', match: deliveryGet, fault: stall('downstream', 100), expect: DOWN },
  // exists and stat ask the Upload API (explicit), never a delivery URL
  { op: 'exists', at: 'the lookup answered 503', layer: 'tcp', fault: unavailable, expect: DOWN },
  { op: 'exists', at: 'the lookup reset inside the answer', layer: 'tcp', fault: reset('downstream', 30), expect: DOWN },
  { op: 'exists', at: 'the lookup stalled', layer: 'http', match: explicit, fault: stall('downstream', 0), expect: DOWN },
  { op: 'stat', at: 'the lookup reset', layer: 'http', match: explicit, fault: reset('downstream', 0), expect: DOWN },
  // the Admin API
  { op: 'list', at: 'Admin API reset inside the answer', layer: 'http', match: admin, fault: reset('downstream', 5), expect: DOWN },
  { op: 'list', at: 'Admin API stalled', layer: 'http', match: admin, fault: stall('downstream', 0), expect: DOWN },
  { op: 'list', at: 'Admin API answered 503', layer: 'http', match: admin, fault: unavailable, expect: DOWN },
  // copy (read, then save): a source read cut midway must not store a partial copy
  { op: 'copy', at: 'the source read reset inside the body', layer: 'http', match: deliveryRead, fault: reset('downstream', 5000), expect: DOWN },
  { op: 'copy', at: 'the source read stalled inside the body', layer: 'http', match: deliveryRead, fault: stall('downstream', 5000), expect: DOWN },
  { op: 'copy', at: 'inside the upload of the copy: reset', layer: 'http', match: upload, fault: reset('upstream', 5000), expect: DOWN },
  // delete
  { op: 'delete', at: 'destroy never arrives', layer: 'http', match: destroy, fault: reset('upstream', 0), expect: DOWN },
  { op: 'delete', at: 'destroyed, the answer lost', layer: 'http', match: destroy, fault: reset('downstream', 0), expect: DOWN },
  // url of an image key not seen before (its home and version are looked up), then fetched
  { op: 'url', at: 'the lookup answered 503', layer: 'tcp', fault: unavailable, expect: DOWN },
  { op: 'url', at: 'the lookup reset', layer: 'tcp', fault: reset('downstream', 30), expect: DOWN },
];

const PNG_HEAD = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
/** Bytes the fake takes for a PNG (it checks the magic number only). */
const png = (size: number): Buffer => Buffer.concat([PNG_HEAD, randomBytes(size - PNG_HEAD.length)]);

let fake: FakeCloudinary;
let chain: ProxyChain;
const made: CloudinaryStorage[] = [];

beforeAll(async () => {
  fake = await new FakeCloudinary([ACCOUNT]).start();
  chain = await startProxyChain(fake.url);
});

afterAll(async () => {
  for (const s of made) s.close();
  await chain.close();
  await fake.stop();
});

/** A storage whose every request (API and delivery) crosses the proxies; `direct` bypasses them, for checking. */
function storage(folder: string, direct = false, detectFolderMode = false, timeout = 2_000): CloudinaryStorage {
  const origin = direct ? fake.url : chain.url;
  const s = new CloudinaryStorage({
    ...(detectFolderMode ? {} : { folderMode: 'fixed' as const }),
    cloudinaryUrl: `cloudinary://${ACCOUNT.apiKey}:${ACCOUNT.apiSecret}@${ACCOUNT.cloudName}?upload_prefix=${encodeURIComponent(origin)}`,
    fetch: (url, init) => fetch(url.replace(/^https?:\/\/res\.cloudinary\.com\//, `${origin}/`), init),
    folder,
    chunkSize: CHUNK,
    // Stalls fail after this much idle time. Rows that inject no stall get a long one: on a loaded
    // machine a healthy 5 MB chunk can sit unanswered past any short timeout before the fault is
    // reached (chunk 1 of the chunk-2 rows did, at 750 ms and at 2 s, load 10 on two cores).
    timeout,
  });
  made.push(s);
  return s;
}

/** Every asset the key may live in (its raw and media homes), by what they hold. */
function assetsOf(key: string, folder: string): Array<Buffer> {
  const homes = homesOf(key, `${folder}/`);
  const refs = [homes.raw, ...(homes.media ? [homes.media] : [])];
  return refs.flatMap((ref) => {
    const asset = fake.asset(ACCOUNT.cloudName, ref.resourceType, 'upload', ref.publicId);
    return asset ? [asset.bytes] : [];
  });
}

describe('Cloudinary under injected faults (proxies between the SDK and the fake Cloudinary)', () => {
  let n = 0;
  for (const row of MATRIX) {
    it(`${row.op}: ${row.at} → ${row.expect.join(' or ')}`, async () => {
      const folder = `row${++n}-${randomBytes(3).toString('hex')}`;
      const image = row.op === 'save-image' || row.op === 'url';
      const key = image ? 'people/agent.png' : 'docs/object.bin';
      const copyTo = 'docs/copy.bin';
      const s = storage(folder, false, row.detectFolderMode, row.fault.kind === 'stall' ? 2_000 : DEADLINE_MS);
      const direct = storage(folder, true);
      // An image key's old object is a raw file, so a save moves it between homes.
      const old = image && row.op === 'url' ? png(10_000) : randomBytes(10_000);
      const destOld = randomBytes(2000);
      await direct.save(key, old);
      if (row.op === 'copy') await direct.save(copyTo, destOld);
      const body = row.op === 'save-chunked' ? randomBytes(2 * CHUNK + 300_000) : row.op === 'save-image' ? png(20_000) : randomBytes(20_000);
      const assetsBefore = fake.assets.size;

      await chain.inject(row.layer, row.fault, { times: row.times, match: row.match });
      const ops: Record<Op, () => Promise<unknown>> = {
        save: () => s.save(key, body),
        'save-stream': () => s.save(key, Readable.from([body.subarray(0, 10_000), body.subarray(10_000)])),
        'save-image': () => s.save(key, body),
        'save-chunked': () => s.save(key, Readable.from([body.subarray(0, 3_000_000), body.subarray(3_000_000)])),
        read: () => s.readBuffer(key),
        stat: () => s.stat(key),
        exists: () => s.exists(key),
        list: () => s.list('docs/'),
        copy: () => s.copy(key, copyTo),
        delete: () => s.delete(key),
        url: () => s.url(key),
      };
      let result: Awaited<ReturnType<typeof outcomeOf>>;
      try {
        result = await outcomeOf(ops[row.op], DEADLINE_MS);
      } finally {
        await chain.heal();
      }
      expect(chain.broke(), `the fault took effect (outcome ${result.outcome}: ${result.message ?? ''})`).toBe(true);
      expect(row.expect, `outcome ${result.outcome}: ${result.message ?? ''}`).toContain(result.outcome);

      if (result.outcome === 'ok') {
        const value = result.value;
        if (row.op === 'read') expect(sha256(value as Buffer)).toBe(sha256(old));
        if (row.op === 'stat') expect(value).toMatchObject({ size: old.length });
        if (row.op === 'exists') expect(value).toBe(true);
        if (row.op === 'list')
          expect((value as { items: Array<{ key: string; size: number }> }).items).toEqual([expect.objectContaining({ key, size: old.length })]);
        if (row.op === 'url') expect(sha256(Buffer.from(await (await fake.fetch(value as string)).arrayBuffer()))).toBe(sha256(old));
      }
      // Afterwards the key reads as the old or the new object, whole, and every asset in its homes
      // is one of them: a partial upload or a half-assembled chunked upload never became an asset.
      const candidates: Record<string, Buffer> = { old, ...(row.op.startsWith('save') ? { new: body } : {}) };
      const read = await direct.readBuffer(key).catch(() => undefined);
      expect(row.op === 'delete' ? ['old', 'absent'] : Object.keys(candidates)).toContain(whichBody(read, candidates));
      for (const held of assetsOf(key, folder)) expect(Object.keys(candidates)).toContain(whichBody(held, candidates));
      if (row.op === 'copy') {
        expect(['source', 'destination as it was']).toContain(
          whichBody(await direct.readBuffer(copyTo).catch(() => undefined), { source: old, 'destination as it was': destOld }),
        );
        for (const held of assetsOf(copyTo, folder))
          expect(['source', 'destination as it was']).toContain(whichBody(held, { source: old, 'destination as it was': destOld }));
      }
      // No asset appeared anywhere else either (a chunked upload assembled under another name).
      expect(fake.assets.size - assetsBefore).toBeLessThanOrEqual(1);
    }, 30_000);
  }
});
