/**
 * Issue 8, B2: every operation and every point of an upload, broken by the fault proxies between
 * the SDK and the fake B2 (each of its three hosts behind its own chain: TCP fault proxy → HTTP
 * fault proxy → host; authorize hands out the proxies' URLs). After each fault: success or a
 * MediaStorageError with the expected code, the key holds the old or the new object whole (by
 * hash), and no unfinished large file is left, as b2_list_unfinished_large_files reports it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { B2Storage } from '../../src/b2/index.js';
import type { MediaStorage } from '../../src/core/types.js';
import { withRetry } from '../../src/layers/index.js';
import type { Fault } from '../support/fault-proxy.js';
import { outcomeOf, startProxyChain, whichBody, type Layer, type Outcome, type ProxyChain, type RequestMatch } from '../support/fault-matrix.js';
import { startFakeB2, type FakeB2Server } from '../support/fakes/b2-server.js';

const BUCKET = 'fault-bucket';
const PART = 64 * 1024;
const DEADLINE_MS = 20_000;

type Host = 'auth' | 'api' | 'content';
type Op = 'save' | 'save-stream' | 'save-blob' | 'save-large' | 'save-large-buffer' | 'read' | 'stat' | 'exists' | 'list' | 'copy' | 'delete' | 'url';

interface Injection {
  host: Host;
  layer: Layer;
  fault: Fault;
  /** http layer: which requests (default every request on the host). */
  match?: RequestMatch;
  /** Let this many matching requests through first. */
  skip?: number;
  /** How many requests (http) or connections (tcp) to break; default 1. */
  times?: number;
}

interface Row {
  op: Op;
  /** Where the fault hits, for the test name. */
  at: string;
  inject: Injection | Injection[];
  expect: readonly Outcome[];
  /** Run the operation on a storage that has not authorized yet. */
  fresh?: boolean;
}

// Requests, as the HTTP fault proxy sees them.
const call =
  (api: string): RequestMatch =>
  (req) =>
    req.url.startsWith(`/b2api/v2/${api}`);
const part =
  (n: number): RequestMatch =>
  (req) =>
    req.url.startsWith('/b2api/v2/b2_upload_part/') && req.headers['x-bz-part-number'] === String(n);
const download: RequestMatch = (req) => req.method === 'GET' && req.url.startsWith('/file/');

const reset = (direction: 'upstream' | 'downstream', afterBytes: number): Fault => ({ kind: 'reset', direction, afterBytes });
const stall = (direction: 'upstream' | 'downstream', afterBytes: number): Fault => ({ kind: 'stall', direction, afterBytes });
const unavailable: Fault = {
  kind: 'http503',
  retryAfterSeconds: 0,
  contentType: 'application/json',
  body: JSON.stringify({ status: 503, code: 'service_unavailable', message: 'c001 is too busy' }),
};
const FOREVER = Number.POSITIVE_INFINITY;

const OK = ['ok'] as const;
const DOWN = ['UNAVAILABLE'] as const;
const OK_OR_DOWN = ['ok', 'UNAVAILABLE'] as const;

// Uploads and parts are retried by the backend on a fresh upload URL (up to maxUploadAttempts);
// everything else by the retry layer (withRetry, as createMediaStorage stacks it): one fault ends
// in success, a fault on every try in UNAVAILABLE. A lost answer to a call B2 may have carried out
// is checked (start: the unfinished file is found and cancelled before the failure is reported,
// and the layer retries the save; finish: the stored file is recognised).
const MATRIX: Row[] = [
  // b2_upload_file, a Buffer (in memory)
  { op: 'save', at: 'before the upload: connection reset before any byte', inject: { host: 'content', layer: 'tcp', fault: reset('upstream', 0) }, expect: OK },
  {
    op: 'save',
    at: 'inside the upload head: connection reset after 200 bytes',
    inject: { host: 'content', layer: 'tcp', fault: reset('upstream', 200) },
    expect: OK,
  },
  { op: 'save', at: 'upload answered 503 (TCP proxy)', inject: { host: 'content', layer: 'tcp', fault: unavailable }, expect: OK },
  {
    op: 'save',
    at: 'inside the body: reset after 5,000 bytes',
    inject: { host: 'content', layer: 'http', match: call('b2_upload_file'), fault: reset('upstream', 5000) },
    expect: OK,
  },
  {
    op: 'save',
    at: 'inside the body: stall after 5,000 bytes',
    inject: { host: 'content', layer: 'http', match: call('b2_upload_file'), fault: stall('upstream', 5000) },
    expect: OK,
  },
  {
    op: 'save',
    at: 'at completion: the answer is lost after B2 stored it',
    inject: { host: 'content', layer: 'http', match: call('b2_upload_file'), fault: reset('downstream', 0) },
    expect: OK,
  },
  {
    op: 'save',
    at: 'every try reset inside the body',
    inject: { host: 'content', layer: 'http', match: call('b2_upload_file'), fault: reset('upstream', 5000), times: FOREVER },
    expect: DOWN,
  },
  {
    op: 'save',
    at: 'get_upload_url answered 503 (the pool is empty)',
    fresh: true,
    inject: { host: 'api', layer: 'http', match: call('b2_get_upload_url'), fault: unavailable },
    expect: OK,
  },
  {
    op: 'save',
    at: 'authorize reset (first call of a fresh storage)',
    fresh: true,
    inject: { host: 'auth', layer: 'tcp', fault: reset('downstream', 10) },
    expect: OK,
  },
  // b2_upload_file, streams spooled to a temp file, and Blobs streamed with hex_digits_at_end
  {
    op: 'save-stream',
    at: 'inside the body of a spooled stream: reset',
    inject: { host: 'content', layer: 'http', match: call('b2_upload_file'), fault: reset('upstream', 40_000) },
    expect: OK,
  },
  {
    op: 'save-stream',
    at: 'every try answered 503',
    inject: { host: 'content', layer: 'http', match: call('b2_upload_file'), fault: unavailable, times: FOREVER },
    expect: DOWN,
  },
  {
    op: 'save-blob',
    at: 'inside the first (streamed) try: reset',
    inject: { host: 'content', layer: 'http', match: call('b2_upload_file'), fault: reset('upstream', 30_000) },
    expect: OK,
  },
  {
    op: 'save-blob',
    at: 'inside the first (streamed) try: stall',
    inject: { host: 'content', layer: 'http', match: call('b2_upload_file'), fault: stall('upstream', 30_000) },
    expect: OK,
  },
  // the large-file API: start, parts, finish
  // b2_start_large_file: for a body it can send again, the layer repeats the save; a stream body,
  // spooled whole by then, is started again by B2 itself (the layer cannot resend it).
  {
    op: 'save-large',
    at: 'before it: start_large_file answered 503',
    inject: { host: 'api', layer: 'http', match: call('b2_start_large_file'), fault: unavailable },
    expect: OK,
  },
  {
    op: 'save-large',
    at: 'before it: start_large_file carried out, its answer lost',
    inject: { host: 'api', layer: 'http', match: call('b2_start_large_file'), fault: reset('downstream', 0) },
    expect: OK,
  },
  {
    op: 'save-large',
    at: 'before it: start_large_file answered 503 every time',
    inject: { host: 'api', layer: 'http', match: call('b2_start_large_file'), fault: unavailable, times: FOREVER },
    expect: DOWN,
  },
  {
    op: 'save-large-buffer',
    at: 'before it: start_large_file answered 503',
    inject: { host: 'api', layer: 'http', match: call('b2_start_large_file'), fault: unavailable },
    expect: OK,
  },
  {
    op: 'save-large-buffer',
    at: 'before it: start_large_file carried out, its answer lost',
    inject: { host: 'api', layer: 'http', match: call('b2_start_large_file'), fault: reset('downstream', 0) },
    expect: OK,
  },
  {
    op: 'save-large',
    at: 'get_upload_part_url reset',
    inject: { host: 'api', layer: 'http', match: call('b2_get_upload_part_url'), fault: reset('downstream', 5) },
    expect: OK,
  },
  {
    op: 'save-large',
    at: 'inside part 2: reset after 10,000 bytes',
    inject: { host: 'content', layer: 'http', match: part(2), fault: reset('upstream', 10_000) },
    expect: OK,
  },
  {
    op: 'save-large',
    at: 'inside part 3: stall after 10,000 bytes',
    inject: { host: 'content', layer: 'http', match: part(3), fault: stall('upstream', 10_000) },
    expect: OK,
  },
  { op: 'save-large', at: 'part 4 answered 503', inject: { host: 'content', layer: 'http', match: part(4), fault: unavailable }, expect: OK },
  {
    op: 'save-large',
    at: 'inside every part: reset',
    inject: { host: 'content', layer: 'http', match: call('b2_upload_part'), fault: reset('upstream', 10_000), times: FOREVER },
    expect: DOWN,
  },
  {
    op: 'save-large',
    at: 'at completion: finish never arrives',
    inject: { host: 'api', layer: 'http', match: call('b2_finish_large_file'), fault: reset('upstream', 0) },
    expect: DOWN,
  },
  {
    op: 'save-large',
    at: 'at completion: finish answered 503',
    inject: { host: 'api', layer: 'http', match: call('b2_finish_large_file'), fault: unavailable },
    expect: DOWN,
  },
  {
    op: 'save-large',
    at: 'at completion: finish carried out, its answer lost',
    inject: { host: 'api', layer: 'http', match: call('b2_finish_large_file'), fault: reset('downstream', 0) },
    expect: OK,
  },
  {
    op: 'save-large',
    at: 'at completion: finish and the first cancel never arrive',
    inject: {
      host: 'api',
      layer: 'http',
      match: (req) => call('b2_finish_large_file')(req) || call('b2_cancel_large_file')(req),
      fault: reset('upstream', 0),
      times: 2,
    },
    expect: DOWN,
  },
  // reads
  { op: 'read', at: 'download answered 503', inject: { host: 'content', layer: 'http', match: download, fault: unavailable }, expect: OK },
  { op: 'read', at: 'download reset before the answer', inject: { host: 'content', layer: 'tcp', fault: reset('upstream', 0) }, expect: OK },
  { op: 'read', at: 'download stalled before the answer', inject: { host: 'content', layer: 'tcp', fault: stall('downstream', 0) }, expect: OK },
  // readBuffer fails UNAVAILABLE on a body cut short, and the layer reads it again, whole.
  {
    op: 'read',
    at: 'inside the body: reset after 5,000 bytes',
    inject: { host: 'content', layer: 'http', match: download, fault: reset('downstream', 5000) },
    expect: OK,
  },
  {
    op: 'read',
    at: 'inside the body: stall after 5,000 bytes',
    inject: { host: 'content', layer: 'http', match: download, fault: stall('downstream', 5000) },
    expect: OK,
  },
  { op: 'stat', at: 'HEAD reset inside the answer', inject: { host: 'content', layer: 'tcp', fault: reset('downstream', 40) }, expect: OK },
  { op: 'stat', at: 'HEAD stalled', inject: { host: 'content', layer: 'tcp', fault: stall('downstream', 0) }, expect: OK },
  { op: 'exists', at: 'HEAD answered 503', inject: { host: 'content', layer: 'tcp', fault: unavailable }, expect: OK },
  { op: 'exists', at: 'every HEAD reset', inject: { host: 'content', layer: 'tcp', fault: reset('upstream', 0), times: FOREVER }, expect: DOWN },
  {
    op: 'list',
    at: 'list_file_names reset inside the answer',
    inject: { host: 'api', layer: 'http', match: call('b2_list_file_names'), fault: reset('downstream', 20) },
    expect: OK,
  },
  {
    op: 'list',
    at: 'list_file_names stalled',
    inject: { host: 'api', layer: 'http', match: call('b2_list_file_names'), fault: stall('downstream', 0) },
    expect: OK,
  },
  // Retry-After (B2 may send it with 429 and 503): waited out when short, reported at once when long.
  {
    op: 'list',
    at: 'list_file_names answered 503 with Retry-After: 1',
    inject: { host: 'api', layer: 'http', match: call('b2_list_file_names'), fault: { ...unavailable, retryAfterSeconds: 1 } },
    expect: OK,
  },
  {
    op: 'list',
    at: 'list_file_names answered 503 with Retry-After: 120',
    inject: { host: 'api', layer: 'http', match: call('b2_list_file_names'), fault: { ...unavailable, retryAfterSeconds: 120 } },
    expect: DOWN,
  },
  { op: 'list', at: 'every API connection reset', inject: { host: 'api', layer: 'tcp', fault: reset('upstream', 0), times: FOREVER }, expect: DOWN },
  // copy (b2_copy_file: not repeated, B2 may have copied)
  { op: 'copy', at: 'the source lookup answered 503', inject: { host: 'content', layer: 'tcp', fault: unavailable }, expect: OK },
  {
    op: 'copy',
    at: 'copy_file never arrives',
    inject: { host: 'api', layer: 'http', match: call('b2_copy_file'), fault: reset('upstream', 0) },
    expect: OK_OR_DOWN,
  },
  {
    op: 'copy',
    at: 'copy_file carried out, its answer lost',
    inject: { host: 'api', layer: 'http', match: call('b2_copy_file'), fault: reset('downstream', 0) },
    expect: OK_OR_DOWN,
  },
  // delete (every version)
  {
    op: 'delete',
    at: 'list_file_versions answered 503',
    inject: { host: 'api', layer: 'http', match: call('b2_list_file_versions'), fault: unavailable },
    expect: OK,
  },
  {
    op: 'delete',
    at: 'delete_file_version carried out, its answer lost',
    inject: { host: 'api', layer: 'http', match: call('b2_delete_file_version'), fault: reset('downstream', 0) },
    expect: OK,
  },
  {
    op: 'delete',
    at: 'the second version’s delete fails on every try',
    inject: { host: 'api', layer: 'http', match: call('b2_delete_file_version'), skip: 1, fault: reset('upstream', 0), times: FOREVER },
    expect: DOWN,
  },
  // url (private bucket: a download authorization), then fetched
  {
    op: 'url',
    at: 'get_download_authorization reset inside the answer',
    inject: { host: 'api', layer: 'http', match: call('b2_get_download_authorization'), fault: reset('downstream', 10) },
    expect: OK,
  },
  {
    op: 'url',
    at: 'get_download_authorization answered 503 on every try',
    inject: { host: 'api', layer: 'http', match: call('b2_get_download_authorization'), fault: unavailable, times: FOREVER },
    expect: DOWN,
  },
];

let fake: FakeB2Server;
const chains = {} as Record<Host, ProxyChain>;
let rawToken = '';

beforeAll(async () => {
  fake = await startFakeB2({ buckets: { [BUCKET]: 'allPrivate' }, absoluteMinimumPartSize: PART, recommendedPartSize: PART });
  chains.auth = await startProxyChain(new URL(fake.authorizeUrl).origin);
  chains.api = await startProxyChain(fake.url);
  chains.content = await startProxyChain(fake.downloadUrl);
  fake.advertise({ apiUrl: chains.api.url, downloadUrl: chains.content.url });
  const auth = await fetch(fake.authorizeUrl, {
    headers: { Authorization: `Basic ${Buffer.from(`${fake.applicationKeyId}:${fake.applicationKey}`).toString('base64')}` },
  });
  rawToken = ((await auth.json()) as { authorizationToken: string }).authorizationToken;
});

afterAll(async () => {
  await Promise.all(Object.values(chains).map((c) => c.close()));
  await fake.close();
});

function storage(): MediaStorage {
  return withRetry(bare(), { maxAttempts: 3, baseDelayMs: 20 });
}

function bare(): B2Storage {
  return new B2Storage({
    applicationKeyId: fake.applicationKeyId,
    applicationKey: fake.applicationKey,
    bucketName: BUCKET,
    apiUrl: `${chains.auth.url}/b2api/v4/b2_authorize_account`,
    location: 'media',
    spoolThreshold: 32 * 1024,
    largeFileThreshold: 2 * PART,
    partSize: PART,
    maxUploadAttempts: 3,
    // Stalls fail after this much idle time, and are retried.
    timeout: 750,
  });
}

/** What B2 serves under a name now: the newest version's bytes, or undefined when absent or hidden. */
function held(key: string): Buffer | undefined {
  const latest = fake.versionsOf(BUCKET, `media/${key}`).at(-1);
  return latest?.action === 'upload' ? latest.data : undefined;
}

/** Unfinished large files, as B2 itself reports them (b2_list_unfinished_large_files, straight to the fake). */
async function unfinishedLargeFiles(): Promise<unknown[]> {
  const res = await fetch(`${fake.url}/b2api/v2/b2_list_unfinished_large_files`, {
    method: 'POST',
    headers: { Authorization: rawToken },
    body: JSON.stringify({ bucketId: fake.bucket(BUCKET).bucketId }),
  });
  return ((await res.json()) as { files: unknown[] }).files;
}

const newBody = (op: Op): Buffer => randomBytes(op === 'save-large' || op === 'save-large-buffer' ? 4 * PART + 12_345 : op === 'save' ? 20_000 : 100_000);
const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('hex');

describe('B2 under injected faults (proxies between the SDK and the fake B2)', () => {
  let n = 0;
  for (const row of MATRIX) {
    it(`${row.op}: ${row.at} → ${row.expect.join(' or ')}`, async () => {
      const base = `row${++n}-${randomBytes(3).toString('hex')}`;
      const key = `${base}/object.bin`;
      const copyTo = `${base}/copy.bin`;
      const warm = storage();
      const older = randomBytes(3000);
      const old = randomBytes(10_000);
      const destOld = randomBytes(2000);
      // Two versions, so a delete that stops halfway could bring the older one back.
      if (row.op === 'delete') await warm.save(key, older);
      await warm.save(key, old);
      if (row.op === 'copy') await warm.save(copyTo, destOld);
      const body = newBody(row.op);
      const s = row.fresh ? storage() : warm;

      for (const injection of [row.inject].flat()) await chains[injection.host].inject(injection.layer, injection.fault, injection);
      const ops: Record<Op, () => Promise<unknown>> = {
        save: () => s.save(key, body),
        'save-stream': () => s.save(key, Readable.from([body.subarray(0, 50_000), body.subarray(50_000)])),
        'save-blob': () => s.save(key, new Blob([new Uint8Array(body)])),
        'save-large': () => s.save(key, Readable.from([body.subarray(0, 100_000), body.subarray(100_000)])),
        'save-large-buffer': () => s.save(key, body),
        read: () => s.readBuffer(key),
        stat: () => s.stat(key),
        exists: () => s.exists(key),
        list: () => s.list(`${base}/`),
        copy: () => s.copy(key, copyTo),
        delete: () => s.delete(key),
        url: () => s.url(key, { expiresIn: 60 }),
      };
      let result: Awaited<ReturnType<typeof outcomeOf>>;
      try {
        result = await outcomeOf(ops[row.op], DEADLINE_MS);
      } finally {
        await Promise.all(Object.values(chains).map((c) => c.heal()));
      }
      for (const injection of [row.inject].flat()) expect(chains[injection.host].broke(), `the fault on the ${injection.host} host took effect`).toBe(true);
      expect(row.expect, `outcome ${result.outcome}: ${result.message ?? ''}`).toContain(result.outcome);

      // What the operation gave back is whole.
      if (result.outcome === 'ok') {
        const value = result.value;
        if (row.op === 'read') expect(sha1(value as Buffer)).toBe(sha1(old));
        if (row.op === 'stat') expect(value).toMatchObject({ size: old.length, etag: sha1(old) });
        if (row.op === 'exists') expect(value).toBe(true);
        if (row.op === 'list')
          expect((value as { items: Array<{ key: string; size: number }> }).items).toEqual([expect.objectContaining({ key, size: old.length })]);
        if (row.op === 'url') expect(sha1(Buffer.from(await (await fetch(value as string)).arrayBuffer()))).toBe(sha1(old));
      }
      // What B2 holds afterwards: the old object or the new one, whole; never a part, never an older version.
      const candidates: Record<string, Buffer> = { old, ...(row.op.startsWith('save') ? { new: body } : {}) };
      const allowed = row.op === 'delete' ? ['old', 'absent'] : row.op.startsWith('save') && result.outcome === 'ok' ? ['new'] : Object.keys(candidates);
      expect(allowed).toContain(whichBody(held(key), candidates));
      if (row.op === 'copy')
        expect(result.outcome === 'ok' ? ['source'] : ['source', 'destination as it was']).toContain(
          whichBody(held(copyTo), { source: old, 'destination as it was': destOld }),
        );
      if (row.op === 'delete' && result.outcome === 'ok') expect(fake.versionsOf(BUCKET, `media/${key}`)).toEqual([]);
      expect(await unfinishedLargeFiles()).toEqual([]);
    }, 30_000);
  }
});
