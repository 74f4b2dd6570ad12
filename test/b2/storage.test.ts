import { createHash, randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import os from 'node:os';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resolveAvatars } from '../../src/avatar/resolve.js';
import { B2Storage, type B2StorageOptions } from '../../src/b2/index.js';
import { withRetry } from '../../src/layers/index.js';
import type { MediaStorageError } from '../../src/core/errors.js';
import { startFakeB2, type FakeB2Server } from '../support/fakes/b2-server.js';
import { failure } from '../support/failure.js';
import { sendDirectUpload } from '../../src/testing/direct-upload.js';

const require = createRequire(import.meta.url);
const B2Sdk = require('backblaze-b2') as new (o: object) => {
  authorize(a: object): Promise<unknown>;
  hideFile(a: object): Promise<unknown>;
  getUploadUrl(a: object): Promise<{ data: { uploadUrl: string; authorizationToken: string } }>;
  uploadFile(a: object): Promise<unknown>;
  authorizationToken: string;
};

const BUCKET = 'crm-media';
let fake: FakeB2Server;

beforeAll(async () => {
  fake = await startFakeB2({
    buckets: { [BUCKET]: 'allPrivate', 'crm-public': 'allPublic', 'crm-locked': { type: 'allPrivate', fileLock: true }, 'crm-other': 'allPrivate' },
  });
});
afterAll(() => fake.close());
afterEach(() => {
  fake.removeAllListeners('call');
});

function storage(extra: Partial<B2StorageOptions> = {}): B2Storage {
  return new B2Storage({
    applicationKeyId: fake.applicationKeyId,
    applicationKey: fake.applicationKey,
    bucketName: BUCKET,
    apiUrl: fake.authorizeUrl,
    location: 'media',
    spoolThreshold: 64 * 1024,
    largeFileThreshold: 6_000_000,
    partSize: 5_000_000,
    ...extra,
  });
}

const uniq = (name: string): string => `t-${randomBytes(4).toString('hex')}/${name}`;
const sha1 = (b: Buffer): string => createHash('sha1').update(b).digest('hex');

/** A raw SDK client on the fake, for what the tests do behind the storage's back. */
async function rawSdk(): Promise<InstanceType<typeof B2Sdk>> {
  const sdk = new B2Sdk({ applicationKeyId: fake.applicationKeyId, applicationKey: fake.applicationKey });
  // backblaze-b2 reads only the v2 answer shape.
  await sdk.authorize({ axiosOverride: { url: fake.authorizeUrlFor('v2') } });
  return sdk;
}

describe('B2Storage: account token renewal', () => {
  it('renews an expired token mid-run, for every kind of call, and each operation succeeds', async () => {
    const s = storage();
    const key = uniq('renew.txt');
    await s.save(key, 'before expiry');
    const operations: Array<[string, () => Promise<unknown>]> = [
      ['save', () => s.save(key, 'after expiry')],
      ['stat', () => s.stat(key)],
      ['exists', () => s.exists(key)],
      ['read', () => s.readBuffer(key)],
      ['list', () => s.list(key.split('/')[0] + '/')],
      ['url', () => s.url(key, { expiresIn: 60 })],
      ['copy', () => s.copy(key, `${key}.copy`)],
      ['delete', () => s.delete(`${key}.copy`)],
    ];
    for (const [name, op] of operations) {
      const before = fake.count('b2_authorize_account');
      fake.expireTokens();
      await op().catch((err: unknown) => {
        throw new Error(`${name} failed after token expiry: ${String(err)}`, { cause: err });
      });
      expect(fake.count('b2_authorize_account'), `${name} re-authorized`).toBeGreaterThan(before);
    }
    expect((await s.readBuffer(key)).toString()).toBe('after expiry');
  });

  it('renews tokens that expire in the middle of a large upload', async () => {
    const s = storage();
    const key = uniq('large-expiry.bin');
    const body = randomBytes(16_000_000);
    let expired = false;
    fake.on('call', (api: string) => {
      if (api === 'b2_upload_part' && !expired) {
        expired = true;
        fake.expireTokens(); // the account token and every upload token, while parts are in flight
      }
    });
    const before = fake.count('b2_authorize_account');
    await s.save(key, Readable.from([body]));
    expect(expired).toBe(true);
    expect(fake.count('b2_authorize_account')).toBeGreaterThan(before);
    expect(sha1(await s.readBuffer(key))).toBe(sha1(body));
    expect(fake.unfinishedLargeFiles(BUCKET)).toEqual([]);
  });

  it('rejects bad options with CONFIG, naming the option', () => {
    const base = { applicationKeyId: 'id', applicationKey: 'key', bucketName: 'b' };
    const code = (fn: () => unknown): string | undefined => {
      try {
        fn();
      } catch (err) {
        return (err as MediaStorageError).code + ':' + (err as Error).message;
      }
      return undefined;
    };
    expect(code(() => new B2Storage({ ...base, bucketName: '' }))).toMatch(/^CONFIG:.*bucketName/);
    expect(code(() => new B2Storage({ ...base, partSize: -1 }))).toMatch(/^CONFIG:.*partSize/);
    expect(code(() => new B2Storage({ ...base, defaultExpiresIn: 700_000 }))).toMatch(/^CONFIG:.*defaultExpiresIn/);
    expect(code(() => new B2Storage({ ...base, visibility: 'open' as never }))).toMatch(/^CONFIG:.*visibility/);
    expect(code(() => new B2Storage(base))).toBeUndefined();
  });

  it('concurrent calls that all meet the expired token share one re-authorization', async () => {
    const s = storage();
    const keys = Array.from({ length: 6 }, (_, i) => uniq(`c${i}.txt`));
    await Promise.all(keys.map((k) => s.save(k, 'x')));
    fake.expireTokens();
    const before = fake.count('b2_authorize_account');
    await Promise.all(keys.map((k) => s.stat(k)));
    expect(fake.count('b2_authorize_account') - before).toBe(1);
  });

  it('a wrong application key is AUTH, and the message holds no secret', async () => {
    const s = new B2Storage({
      applicationKeyId: fake.applicationKeyId,
      applicationKey: 'Kwrong-secret-value-123',
      bucketName: BUCKET,
      apiUrl: fake.authorizeUrl,
    });
    const err = await failure(s.exists('a.txt'));
    expect(err.code).toBe('AUTH');
    expect(err.backend).toBe('b2');
    expect(err.status).toBe(401);
    expect(err.message).not.toContain('Kwrong-secret-value-123');
    expect(err.message).toMatch(/unauthorized/);
  });

  it('an unknown bucket is CONFIG', async () => {
    const err = await failure(storage({ bucketName: 'no-such-bucket' }).exists('a.txt'));
    expect(err.code).toBe('CONFIG');
    expect(err.message).toContain('no-such-bucket');
  });
});

describe('B2Storage: uploads', () => {
  it('an upload URL that fails twice is replaced, and the save succeeds', async () => {
    const s = storage();
    const key = uniq('retry.bin');
    const body = randomBytes(50_000);
    const logStart = fake.uploadUrlLog.length;
    fake.failCall('b2_upload_file', { times: 2, status: 503 });
    const info = await s.save(key, body);
    expect(info.size).toBe(body.length);
    const attempts = fake.uploadUrlLog.slice(logStart);
    expect(attempts.map((a) => a.status)).toEqual([503, 503, 200]);
    // Each try went to a fresh upload URL.
    expect(new Set(attempts.map((a) => a.uploadUrl)).size).toBe(3);
    expect((await s.readBuffer(key)).equals(body)).toBe(true);
  });

  it('a connection cut mid-body is retried on a fresh URL, and nothing partial is stored', async () => {
    const s = storage();
    const key = uniq('cut.bin');
    const body = randomBytes(300_000);
    fake.cutConnection('b2_upload_file', 100_000);
    await s.save(key, Readable.from([body.subarray(0, 150_000), body.subarray(150_000)]));
    expect(fake.versionsOf(BUCKET, `media/${key}`)).toHaveLength(1);
    expect((await s.readBuffer(key)).equals(body)).toBe(true);
  });

  it('expired upload tokens (401) get a fresh upload URL', async () => {
    const s = storage();
    await s.save(uniq('warm.txt'), 'warm the pool');
    fake.expireTokens();
    const key = uniq('after-401.txt');
    await s.save(key, 'fresh url');
    expect((await s.readBuffer(key)).toString()).toBe('fresh url');
  });

  it('gives up after maxUploadAttempts with UNAVAILABLE and stores nothing', async () => {
    const s = storage({ maxUploadAttempts: 3 });
    const key = uniq('down.txt');
    fake.failCall('b2_upload_file', { times: 3, status: 500 });
    const err = await failure(s.save(key, 'never lands'));
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.status).toBe(500);
    expect(await s.exists(key)).toBe(false);
  });

  it('concurrent saves never share an upload URL, and reuse URLs afterwards', async () => {
    const s = storage();
    const shared = fake.sharedUploadUrlUses;
    const before = fake.count('b2_get_upload_url');
    await Promise.all(Array.from({ length: 12 }, (_, i) => s.save(uniq(`p${i}.bin`), randomBytes(200_000))));
    expect(fake.sharedUploadUrlUses).toBe(shared);
    const fetched = fake.count('b2_get_upload_url') - before;
    expect(fetched).toBeGreaterThan(1);
    expect(fetched).toBeLessThanOrEqual(12);
    // Sequential saves reuse the pooled URLs instead of asking for new ones.
    const mid = fake.count('b2_get_upload_url');
    for (let i = 0; i < 5; i++) await s.save(uniq(`seq${i}.txt`), 'x');
    expect(fake.count('b2_get_upload_url')).toBe(mid);
  });

  it('sends the SHA-1 of every upload, which the fake verifies', async () => {
    const s = storage();
    const body = randomBytes(10_000);
    const info = await s.save(uniq('sha.bin'), body);
    expect(info.etag).toBe(sha1(body));
  });

  describe('bodies of known length that are not in memory (Blob, File)', () => {
    const blobOf = (data: Buffer): Blob => new Blob([new Uint8Array(data)]);

    it('streams straight to B2 with the SHA-1 after the bytes (hex_digits_at_end)', async () => {
      const s = storage();
      const key = uniq('blob.bin');
      const data = randomBytes(3_000_000);
      const modes = fake.sha1Modes.length;
      const info = await s.save(key, blobOf(data));
      expect(fake.sha1Modes.slice(modes)).toEqual(['hex_digits_at_end']);
      expect(info.etag).toBe(sha1(data));
      expect(sha1(await s.readBuffer(key))).toBe(sha1(data));
    });

    it('after a failed first try, resends from the spool with the SHA-1 up front', async () => {
      const s = storage();
      for (const fault of ['status', 'cut'] as const) {
        const key = uniq(`blob-retry-${fault}.bin`);
        const data = randomBytes(2_000_000);
        if (fault === 'status') fake.failCall('b2_upload_file', { status: 503 });
        else fake.cutConnection('b2_upload_file', 500_000);
        const modes = fake.sha1Modes.length;
        await s.save(key, new File([new Uint8Array(data)], 'photo.bin'));
        expect(fake.sha1Modes.slice(modes).at(-1)).toBe('given');
        expect(fake.versionsOf(BUCKET, `media/${key}`)).toHaveLength(1);
        expect(sha1(await s.readBuffer(key))).toBe(sha1(data));
      }
    });

    it('an abort or a size limit midway stores nothing', async () => {
      const s = storage();
      const key = uniq('blob-abort.bin');
      const controller = new AbortController();
      const err = await failure(
        s.save(key, blobOf(randomBytes(4_000_000)), {
          signal: controller.signal,
          onProgress: (p) => {
            if (p.loaded > 1_000_000) controller.abort();
          },
        }),
      );
      expect(err.code).toBe('ABORTED');
      expect((await failure(s.save(key, blobOf(randomBytes(4_000_000)), { maxSize: 3_000_000 }))).code).toBe('TOO_LARGE');
      expect(fake.versionsOf(BUCKET, `media/${key}`)).toHaveLength(0);
    });
  });

  it('spools large streams to a temp file and removes it, on success and on failure', async () => {
    const s = storage();
    const tmpFiles = async (): Promise<string[]> => (await readdir(os.tmpdir())).filter((f) => f.startsWith(`media-storage-b2-${process.pid}-`));
    await s.save(uniq('spooled.bin'), Readable.from([randomBytes(500_000), randomBytes(500_000)]));
    expect(await tmpFiles()).toEqual([]);
    fake.failCall('b2_upload_file', { times: 5, status: 503 });
    await failure(s.save(uniq('spooled-fail.bin'), Readable.from([randomBytes(500_000), randomBytes(500_000)])));
    expect(await tmpFiles()).toEqual([]);
    // A Buffer is already in memory: no temp file even while the upload is in flight.
    let during: Promise<string[]> | undefined;
    fake.on('call', (api: string) => {
      if (api === 'b2_upload_file') during ??= tmpFiles();
    });
    await s.save(uniq('buffer.bin'), randomBytes(1_000_000));
    expect(during).toBeDefined();
    expect(await during).toEqual([]);
  });
});

describe('B2Storage: large files', () => {
  it('uses start/parts/finish above the threshold, with each part SHA-1 checked', async () => {
    const s = storage();
    const key = uniq('large.bin');
    const body = randomBytes(12_000_000);
    const starts = fake.count('b2_start_large_file');
    const parts = fake.count('b2_upload_part');
    const info = await s.save(key, Readable.from([body.subarray(0, 7_000_000), body.subarray(7_000_000)]));
    expect(info.size).toBe(body.length);
    expect(info.etag).toBe(sha1(body)); // from large_file_sha1
    expect(fake.count('b2_start_large_file') - starts).toBe(1);
    expect(fake.count('b2_upload_part') - parts).toBe(3);
    expect(fake.unfinishedLargeFiles(BUCKET)).toEqual([]);
    expect(sha1(await s.readBuffer(key))).toBe(sha1(body));
    expect((await s.readBuffer(key, { range: { start: 4_999_990, end: 5_000_009 } })).equals(body.subarray(4_999_990, 5_000_010))).toBe(true);
  });

  it('keeps ten metadata entries on a large file (large_file_sha1 only when there is room)', async () => {
    const s = storage();
    const key = uniq('large-meta.bin');
    const metadata = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`k${i}`, `v${i}`]));
    await s.save(key, Readable.from([randomBytes(7_000_000)]), { metadata, cacheControl: 'max-age=1' });
    expect(await s.stat(key)).toMatchObject({ metadata, cacheControl: 'max-age=1', size: 7_000_000 });
    expect((await failure(s.save(key, 'x', { metadata: { ...metadata, k9: 'v', k10: 'v' } }))).code).toBe('INVALID_INPUT');
  });

  it('retries a failed part on a fresh part URL', async () => {
    const s = storage();
    const key = uniq('large-retry.bin');
    const body = randomBytes(11_000_000);
    fake.failCall('b2_upload_part', { nth: 2, times: 2, status: 503 });
    await s.save(key, body);
    expect(sha1(await s.readBuffer(key))).toBe(sha1(body));
    // And a connection cut inside a part.
    fake.cutConnection('b2_upload_part', 1_000_000);
    const cutKey = uniq('large-cut.bin');
    await s.save(cutKey, Readable.from([body]));
    expect(sha1(await s.readBuffer(cutKey))).toBe(sha1(body));
    expect(fake.unfinishedLargeFiles(BUCKET)).toEqual([]);
  });

  it('an aborted large upload leaves no unfinished large file at the fake', async () => {
    const s = storage();
    const key = uniq('aborted-large.bin');
    const controller = new AbortController();
    fake.on('call', (api: string) => {
      if (api === 'b2_upload_part') controller.abort();
    });
    const cancels = fake.count('b2_cancel_large_file');
    const err = await failure(s.save(key, Readable.from([randomBytes(6_000_000), randomBytes(6_000_000)]), { signal: controller.signal }));
    expect(err.code).toBe('ABORTED');
    expect(fake.count('b2_cancel_large_file') - cancels).toBe(1);
    expect(fake.unfinishedLargeFiles(BUCKET)).toEqual([]);
    expect(await s.exists(key)).toBe(false);
    // And as B2 itself reports it:
    const sdk = await rawSdk();
    const res = await fetch(`${fake.url}/b2api/v2/b2_list_unfinished_large_files`, {
      method: 'POST',
      headers: { Authorization: sdk.authorizationToken },
      body: JSON.stringify({ bucketId: fake.bucket(BUCKET).bucketId }),
    });
    expect(((await res.json()) as { files: unknown[] }).files).toEqual([]);
  });

  it('a part that keeps failing cancels the large file and gives UNAVAILABLE', async () => {
    const s = storage({ maxUploadAttempts: 2 });
    const key = uniq('large-fail.bin');
    fake.failCall('b2_upload_part', { times: 50, status: 500 });
    const err = await failure(s.save(key, randomBytes(11_000_000)));
    fake.failCall('b2_upload_part', { times: 0 });
    expect(err.code).toBe('UNAVAILABLE');
    expect(fake.unfinishedLargeFiles(BUCKET)).toEqual([]);
    expect(await s.exists(key)).toBe(false);
  });
});

describe('B2Storage: versions and hidden files', () => {
  it('deleting a name with 3 versions leaves none', async () => {
    const s = storage();
    const key = uniq('versions.txt');
    for (const v of ['one', 'two', 'three']) await s.save(key, v);
    expect(fake.versionsOf(BUCKET, `media/${key}`)).toHaveLength(3);
    await s.delete(key);
    expect(fake.versionsOf(BUCKET, `media/${key}`)).toHaveLength(0);
    expect(await s.exists(key)).toBe(false);
  });

  it('deletes versions past one page of b2_list_file_versions, hide markers included', async () => {
    const s = storage();
    const key = uniq('many-versions.txt');
    for (let i = 0; i < 105; i++) await s.save(key, `v${i}`);
    const sdk = await rawSdk();
    await sdk.hideFile({ bucketId: fake.bucket(BUCKET).bucketId, fileName: `media/${key}` });
    expect(fake.versionsOf(BUCKET, `media/${key}`)).toHaveLength(106);
    await s.delete(key);
    expect(fake.versionsOf(BUCKET, `media/${key}`)).toHaveLength(0);
  });

  it('treats a hidden file as absent in exists, stat, read, list and copy', async () => {
    const s = storage();
    const key = uniq('hidden.txt');
    await s.save(key, 'secret');
    const sdk = await rawSdk();
    await sdk.hideFile({ bucketId: fake.bucket(BUCKET).bucketId, fileName: `media/${key}` });
    expect(await s.exists(key)).toBe(false);
    expect((await failure(s.stat(key))).code).toBe('NOT_FOUND');
    expect((await failure(s.readBuffer(key))).code).toBe('NOT_FOUND');
    expect((await failure(s.copy(key, `${key}.2`))).code).toBe('NOT_FOUND');
    expect((await s.list(key.split('/')[0] + '/')).items).toEqual([]);
    // Saving again makes it visible again.
    await s.save(key, 'back');
    expect((await s.readBuffer(key)).toString()).toBe('back');
  });
});

describe('B2Storage: reads, copies and urls', () => {
  it('a connection cut mid-download fails the read stream with UNAVAILABLE', async () => {
    const s = storage();
    const key = uniq('cut-read.bin');
    await s.save(key, randomBytes(400_000));
    fake.cutConnection('download', 100_000);
    const err = await failure(s.readBuffer(key));
    expect(err.code).toBe('UNAVAILABLE');
  });

  it('copy is server-side (b2_copy_file) and keeps content type and metadata', async () => {
    const s = storage();
    const from = uniq('src.bin');
    await s.save(from, 'copied bytes', { contentType: 'application/x-thing', metadata: { owner: 'lead-9' }, cacheControl: 'max-age=5' });
    const copies = fake.count('b2_copy_file');
    const downloads = fake.count('download');
    const info = await s.copy(from, `${from}.copy`);
    expect(fake.count('b2_copy_file') - copies).toBe(1);
    expect(fake.count('download')).toBe(downloads);
    expect(info).toMatchObject({ size: 12, contentType: 'application/x-thing', metadata: { owner: 'lead-9' }, cacheControl: 'max-age=5' });
  });

  it('private URLs carry a download authorization bound to the file, with an expiry', async () => {
    const s = storage({ defaultExpiresIn: 1 });
    const key = uniq('private.txt');
    await s.save(key, 'private bytes');
    const plain = `${fake.downloadUrl}/file/${BUCKET}/media/${key}`;
    expect((await fetch(plain)).status).toBe(401);
    const url = await s.url(key);
    expect(url).toMatch(/[?&]Authorization=/);
    expect(await (await fetch(url)).text()).toBe('private bytes');
    await new Promise((r) => setTimeout(r, 1100));
    expect((await fetch(url)).status).toBe(401);
    expect((await failure(s.url(key, { expiresIn: 700_000 }))).code).toBe('INVALID_INPUT');
  });

  it('public URLs use the CDN base when configured', async () => {
    const s = storage({ bucketName: 'crm-public', visibility: 'public', publicBaseUrl: 'https://cdn.example.com/' });
    expect(await s.url('people/ana maria.jpg')).toBe('https://cdn.example.com/media/people/ana%20maria.jpg');
    const direct = storage({ bucketName: 'crm-public', visibility: 'public' });
    await direct.save('people/p.txt', 'public bytes');
    const url = await direct.url('people/p.txt');
    expect(url).toBe(`${fake.downloadUrl}/file/crm-public/media/people/p.txt`);
    expect(await (await fetch(url)).text()).toBe('public bytes');
  });
});

describe('B2Storage: B2 name limits', () => {
  it('keys past B2 name limits are INVALID_KEY before any upload', async () => {
    const s = storage();
    const uploads = fake.count('b2_upload_file');
    expect((await failure(s.save(`${'a'.repeat(251)}.txt`.slice(0, 253), 'x'))).code).toBe('INVALID_KEY');
    // 1,020 bytes: a valid key for the core, 1,026 with the "media/" prefix.
    const deep = [...Array.from({ length: 4 }, () => 'b'.repeat(250)), 'c'.repeat(16)].join('/');
    expect(Buffer.byteLength(deep)).toBe(1020);
    expect((await failure(s.save(deep, 'x'))).code).toBe('INVALID_KEY');
    expect(fake.count('b2_upload_file')).toBe(uploads);
  });
});

describe('B2Storage: error mapping from B2 JSON error bodies', () => {
  const cases: Array<[number, string, string]> = [
    [400, 'bad_request', 'INVALID_INPUT'],
    [401, 'unauthorized', 'PERMISSION'],
    [403, 'cap_exceeded', 'PERMISSION'],
    [404, 'not_found', 'NOT_FOUND'],
    [400, 'bad_bucket_id', 'CONFIG'],
    [429, 'too_many_requests', 'UNAVAILABLE'],
    [503, 'service_unavailable', 'UNAVAILABLE'],
  ];
  for (const [status, code, expected] of cases) {
    it(`${status} ${code} → ${expected}`, async () => {
      const s = storage({ maxUploadAttempts: 1 });
      await s.exists('warm-up.txt');
      fake.failCall('b2_list_file_names', { status, code });
      const err = await failure(s.list('people/'));
      expect(err.code).toBe(expected);
      expect(err.status).toBe(status);
      expect(err.message).toContain(code);
      expect(err.operation).toBe('list');
    });
  }

  it('transient failures of API calls are UNAVAILABLE at once, and withRetry retries them', async () => {
    const bare = storage();
    await bare.exists('warm-up.txt');
    fake.failCall('b2_list_file_names', { status: 503 });
    expect((await failure(bare.list('whatever/'))).code).toBe('UNAVAILABLE');
    const s = withRetry(bare, { baseDelayMs: 10 });
    fake.failCall('b2_list_file_names', { times: 2, status: 503 });
    await expect(s.list('whatever/')).resolves.toEqual({ items: [] });
    fake.failCall('download_head', { times: 2, status: 503 });
    await expect(s.exists('whatever.txt')).resolves.toBe(false);
  });

  it('exists and stat cost one HEAD (class B), no listing (class C)', async () => {
    const s = storage();
    const key = uniq('cheap.txt');
    await s.save(key, 'x', { metadata: { owner: 'agent-1' }, cacheControl: 'max-age=9' });
    const lists = fake.count('b2_list_file_names');
    const heads = fake.count('download_head');
    expect(await s.exists(key)).toBe(true);
    expect(await s.stat(key)).toMatchObject({
      key,
      size: 1,
      contentType: 'text/plain',
      etag: sha1(Buffer.from('x')),
      metadata: { owner: 'agent-1' },
      cacheControl: 'max-age=9',
    });
    expect(fake.count('download_head') - heads).toBe(2);
    expect(fake.count('b2_list_file_names')).toBe(lists);
  });
});

describe('B2Storage and the SDK shared axios client', () => {
  it('keeps typed errors, renewal and retries when another B2 instance reconfigured the shared client', async () => {
    const s = storage();
    const key = uniq('shared.txt');
    await s.save(key, 'ok');
    // Some other part of the app: every status counts as success, and no retries.
    new B2Sdk({ applicationKeyId: 'x', applicationKey: 'y', axios: { validateStatus: () => true }, retry: { retries: 0 } });
    expect((await failure(s.readBuffer(uniq('missing.txt')))).code).toBe('NOT_FOUND');
    fake.expireTokens();
    expect((await s.readBuffer(key)).toString()).toBe('ok');
    fake.failCall('b2_upload_file', { times: 2, status: 503 });
    await s.save(key, 'still ok');
    expect((await s.readBuffer(key)).toString()).toBe('still ok');
  });
});

describe('fake B2 checks what arrives', () => {
  it('rejects a wrong key on authorize with 401 and a B2 error body', async () => {
    const res = await fetch(fake.authorizeUrl, { headers: { Authorization: `Basic ${Buffer.from(`${fake.applicationKeyId}:nope`).toString('base64')}` } });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ status: 401, code: 'unauthorized' });
  });

  it('serves authorize, the API and downloads on separate hosts, as B2 does', async () => {
    const sdk = await rawSdk();
    const onApiHost = await fetch(`${fake.url}/file/${BUCKET}/anything.txt`, { headers: { Authorization: sdk.authorizationToken } });
    expect(onApiHost.status).toBe(404);
    expect(((await onApiHost.json()) as { message: string }).message).toMatch(/not served on this host/);
    const apiOnDownloadHost = await fetch(`${fake.downloadUrl}/b2api/v2/b2_list_buckets`, {
      method: 'POST',
      headers: { Authorization: sdk.authorizationToken },
      body: '{}',
    });
    expect(apiOnDownloadHost.status).toBe(404);
    expect(new URL(fake.authorizeUrl).host).not.toBe(new URL(fake.url).host);
  });

  it('answers get_file_info, and Range downloads with 206 or 416', async () => {
    const s = storage({ bucketName: 'crm-public', visibility: 'public' });
    const key = uniq('ranged.txt');
    await s.save(key, '0123456789');
    const url = await s.url(key);
    const part = await fetch(url, { headers: { Range: 'bytes=2-4' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 2-4/10');
    expect(await part.text()).toBe('234');
    const past = await fetch(url, { headers: { Range: 'bytes=20-' } });
    expect(past.status).toBe(416);
    expect(await past.json()).toMatchObject({ status: 416, code: 'range_not_satisfiable' });
    const fileId = part.headers.get('x-bz-file-id')!;
    const sdk = await rawSdk();
    const info = await fetch(`${fake.url}/b2api/v2/b2_get_file_info`, {
      method: 'POST',
      headers: { Authorization: sdk.authorizationToken },
      body: JSON.stringify({ fileId }),
    });
    expect(await info.json()).toMatchObject({ fileId, fileName: `media/${key}`, action: 'upload', contentLength: 10, contentType: 'text/plain' });
    const expired = await fetch(`${fake.url}/b2api/v2/b2_get_file_info`, {
      method: 'POST',
      headers: { Authorization: 'not-a-token' },
      body: JSON.stringify({ fileId }),
    });
    expect(expired.status).toBe(401);
  });

  it('rejects an upload whose SHA-1 does not match, and one with a wrong token', async () => {
    const sdk = await rawSdk();
    const { data: target } = await sdk.getUploadUrl({ bucketId: fake.bucket(BUCKET).bucketId });
    const send = (headers: Record<string, string>, body: Buffer): Promise<Response> =>
      fetch(target.uploadUrl, {
        method: 'POST',
        headers: { Authorization: target.authorizationToken, 'X-Bz-File-Name': 'raw.txt', 'Content-Type': 'text/plain', ...headers },
        body: new Uint8Array(body),
      });
    const body = Buffer.from('hello');
    const bad = await send({ 'X-Bz-Content-Sha1': sha1(Buffer.from('other')) }, body);
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/Sha1/);
    const badEnd = await send({ 'X-Bz-Content-Sha1': 'hex_digits_at_end' }, Buffer.concat([body, Buffer.from(sha1(Buffer.from('x')))]));
    expect(badEnd.status).toBe(400);
    const goodEnd = await send({ 'X-Bz-Content-Sha1': 'hex_digits_at_end' }, Buffer.concat([body, Buffer.from(sha1(body))]));
    expect(goodEnd.status).toBe(200);
    expect(await goodEnd.json()).toMatchObject({ fileName: 'raw.txt', contentLength: 5, contentSha1: sha1(body) });
    const wrongToken = await fetch(target.uploadUrl, {
      method: 'POST',
      headers: { Authorization: 'nope', 'X-Bz-File-Name': 'raw.txt', 'X-Bz-Content-Sha1': sha1(body) },
      body: new Uint8Array(body),
    });
    expect(wrongToken.status).toBe(401);
  });
});

/** A storage on the fake under another application key (see fake.createKey). */
function storageWithKey(key: { applicationKeyId: string; applicationKey: string }, extra: Partial<B2StorageOptions> = {}): B2Storage {
  return storage({ applicationKeyId: key.applicationKeyId, applicationKey: key.applicationKey, ...extra });
}

describe('B2Storage: b2_authorize_account v4 (and v3, v2)', () => {
  for (const version of ['v4', 'v3', 'v2'] as const) {
    it(`works with the ${version} answer shape: save, exists, stat, read, list, url, copy, delete`, async () => {
      const s = storage({ apiUrl: fake.authorizeUrlFor(version) });
      const key = uniq(`${version}.txt`);
      await s.save(key, `through ${version}`, { metadata: { owner: 'ana' } });
      expect(await s.exists(key)).toBe(true);
      expect(await s.stat(key)).toMatchObject({ size: `through ${version}`.length, metadata: { owner: 'ana' } });
      expect((await s.readBuffer(key)).toString()).toBe(`through ${version}`);
      expect((await s.list(key.split('/')[0] + '/')).items.map((i) => i.key)).toEqual([key]);
      expect(await (await fetch(await s.url(key))).text()).toBe(`through ${version}`);
      await s.copy(key, `${key}.copy`);
      await s.delete(key);
      expect(await s.exists(key)).toBe(false);
    });
  }

  it('authorizes through v4 by default', async () => {
    const calls: string[] = [];
    const proxy = http.createServer((req, res) => {
      calls.push(req.url ?? '');
      res.writeHead(401, { 'Content-Type': 'application/json' }).end(JSON.stringify({ status: 401, code: 'unauthorized', message: 'no' }));
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      // Only the host is replaced, as a proxy in front of api.backblazeb2.com would be.
      const { DEFAULT_AUTHORIZE_URL } = await import('../../src/b2/auth.js');
      expect(DEFAULT_AUTHORIZE_URL).toBe('https://api.backblazeb2.com/b2api/v4/b2_authorize_account');
      const s = storage({ apiUrl: DEFAULT_AUTHORIZE_URL.replace('https://api.backblazeb2.com', `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`) });
      expect((await failure(s.exists('a.txt'))).code).toBe('AUTH');
      expect(calls).toEqual(['/b2api/v4/b2_authorize_account']);
    } finally {
      proxy.close();
    }
  });

  it('a multi-bucket key works through v4, and is CONFIG (not INVALID_INPUT) through v2', async () => {
    const key = fake.createKey({ buckets: [BUCKET, 'crm-other'] });
    const lookups = fake.count('b2_list_buckets');
    for (const bucketName of [BUCKET, 'crm-other']) {
      const s = storageWithKey(key, { bucketName });
      const k = uniq('multi.txt');
      await s.save(k, bucketName);
      expect((await s.readBuffer(k)).toString()).toBe(bucketName);
    }
    // The buckets and their IDs came with the authorization: no lookup.
    expect(fake.count('b2_list_buckets')).toBe(lookups);
    const old = await failure(storageWithKey(key, { apiUrl: fake.authorizeUrlFor('v2') }).exists('a.txt'));
    expect(old.code).toBe('CONFIG');
    expect(old.message).toMatch(/v4/);
  });

  it('an authorize answer without usable URLs is CONFIG at once, not a transient "Invalid URL"', async () => {
    let hits = 0;
    const server = http.createServer((_req, res) => {
      hits++;
      res
        .writeHead(200, { 'Content-Type': 'application/json' })
        .end(JSON.stringify({ accountId: 'a', authorizationToken: 't', apiInfo: { storageApi: { apiUrl: 'not a url' } } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const err = await failure(
        storage({ apiUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}/b2api/v4/b2_authorize_account` }).exists('a.txt'),
      );
      expect(err.code).toBe('CONFIG');
      expect(err.message).toMatch(/apiUrl, downloadUrl/);
      expect(hits).toBe(1);
    } finally {
      server.close();
    }
  });
});

describe('B2Storage: restricted application keys', () => {
  it('a key restricted to another bucket is PERMISSION naming the buckets it has, before any lookup', async () => {
    const key = fake.createKey({ buckets: ['crm-other'] });
    const lookups = fake.count('b2_list_buckets');
    const err = await failure(storageWithKey(key).exists('a.txt'));
    expect(err.code).toBe('PERMISSION');
    expect(err.message).toContain('"crm-other"');
    expect(err.message).toContain(`"${BUCKET}"`);
    expect(fake.count('b2_list_buckets')).toBe(lookups);
  });

  it('a name prefix: keys outside it are PERMISSION before any request, keys inside work', async () => {
    const key = fake.createKey({ buckets: [BUCKET], namePrefix: 'media/people/' });
    const s = storageWithKey(key);
    const inside = `people/${uniq('ana.jpg')}`;
    await s.save(inside, 'inside');
    expect(await s.exists(inside)).toBe(true);
    await s.copy(inside, `${inside}.copy`);
    const outside = uniq('company.jpg');
    const before = {
      uploads: fake.count('b2_get_upload_url') + fake.count('b2_upload_file'),
      heads: fake.count('download_head'),
      downloads: fake.count('download'),
      versions: fake.count('b2_list_file_versions'),
      shares: fake.count('b2_get_download_authorization'),
      copies: fake.count('b2_copy_file'),
    };
    const operations: Array<[string, () => Promise<unknown>]> = [
      ['save', () => s.save(outside, 'x')],
      ['exists', () => s.exists(outside)],
      ['stat', () => s.stat(outside)],
      ['read', () => s.readBuffer(outside)],
      ['delete', () => s.delete(outside)],
      ['url', () => s.url(outside)],
      ['copy from', () => s.copy(outside, `people/${uniq('x.jpg')}`)],
      ['copy to', () => s.copy(inside, outside)],
    ];
    for (const [name, op] of operations) {
      const err = await failure(op());
      expect(err.code, name).toBe('PERMISSION');
      expect(err.message, name).toContain('"media/people/"');
    }
    expect({
      uploads: fake.count('b2_get_upload_url') + fake.count('b2_upload_file'),
      heads: fake.count('download_head'),
      downloads: fake.count('download'),
      versions: fake.count('b2_list_file_versions'),
      shares: fake.count('b2_get_download_authorization'),
      copies: fake.count('b2_copy_file'),
    }).toEqual(before);
    // Listing a parent shows what the key can see; a disjoint prefix is PERMISSION.
    expect((await s.list('')).items.map((i) => i.key)).toContain(inside);
    expect((await failure(s.list('company/'))).code).toBe('PERMISSION');
  });

  const missing: Array<[string, string[], (s: B2Storage, key: string) => Promise<unknown>, string]> = [
    ['deleteFiles', ['listBuckets', 'listFiles', 'readFiles', 'shareFiles', 'writeFiles'], (s, k) => s.delete(k), 'b2_list_file_versions'],
    ['listFiles', ['listBuckets', 'readFiles', 'shareFiles', 'writeFiles', 'deleteFiles'], (s) => s.list('people/'), 'b2_list_file_names'],
    ['writeFiles', ['listBuckets', 'listFiles', 'readFiles', 'shareFiles', 'deleteFiles'], (s, k) => s.save(k, 'x'), 'b2_get_upload_url'],
    ['readFiles', ['listBuckets', 'listFiles', 'shareFiles', 'writeFiles', 'deleteFiles'], (s, k) => s.exists(k), 'download_head'],
    ['shareFiles', ['listBuckets', 'listFiles', 'readFiles', 'writeFiles', 'deleteFiles'], (s, k) => s.url(k), 'b2_get_download_authorization'],
    ['listBuckets', ['listFiles', 'readFiles', 'shareFiles', 'writeFiles', 'deleteFiles'], (s, k) => s.exists(k), 'b2_list_buckets'],
  ];
  for (const [capability, capabilities, op, call] of missing) {
    it(`a key without ${capability} gets PERMISSION naming it, without calling ${call}`, async () => {
      const s = storageWithKey(fake.createKey({ capabilities }));
      const before = fake.count(call);
      const err = await failure(op(s, uniq('p.txt')));
      expect(err.code).toBe('PERMISSION');
      expect(err.message).toContain(`"${capability}"`);
      expect(fake.count(call)).toBe(before);
    });
  }

  it('PERMISSION from a 401 the service answers names the capability the call needs', async () => {
    const s = storage({ maxUploadAttempts: 1 });
    await s.exists('warm-up.txt');
    fake.failCall('b2_delete_file_version', { status: 401, code: 'unauthorized' });
    const key = uniq('refused.txt');
    await s.save(key, 'x');
    const err = await failure(s.delete(key));
    expect(err.code).toBe('PERMISSION');
    expect(err.message).toContain('"deleteFiles"');
    // A HEAD's 401 carries no body: after a fresh token it is PERMISSION, not AUTH (the key is valid).
    fake.failCall('download_head', { status: 401, code: 'unauthorized', times: 3 });
    const head = await failure(s.exists(key));
    expect(head.code).toBe('PERMISSION');
    expect(head.message).toContain('"readFiles"');
  });
});

describe('B2Storage: a misspelled bucket is CONFIG on exists and stat too', () => {
  it('with the bucketId option, a bucketName that is not that bucket fails CONFIG, checked once', async () => {
    const s = storage({ bucketId: fake.bucket(BUCKET).bucketId, bucketName: 'crm-mediaa' });
    const lookups = fake.count('b2_list_buckets');
    for (const op of [() => s.exists('people/a.jpg'), () => s.stat('people/a.jpg'), () => s.readBuffer('people/a.jpg')]) {
      const err = await failure(op());
      expect(err.code).toBe('CONFIG');
      expect(err.message).toContain('"crm-mediaa"');
      expect(err.message).toContain(`"${BUCKET}"`);
    }
    expect(fake.count('b2_list_buckets') - lookups).toBe(1);
    // The right pair: a missing key is just absent, and the pair is checked once.
    const right = storage({ bucketId: fake.bucket(BUCKET).bucketId });
    const before = fake.count('b2_list_buckets');
    expect(await right.exists('people/none-1.jpg')).toBe(false);
    expect(await right.exists('people/none-2.jpg')).toBe(false);
    expect(fake.count('b2_list_buckets') - before).toBe(1);
  });

  it('resolveAvatars reports it through onError instead of showing every default avatar silently', async () => {
    const s = storage({ bucketId: fake.bucket(BUCKET).bucketId, bucketName: 'crm-mediaa' });
    const errors: Array<{ code: string; path: string }> = [];
    const results = await resolveAvatars(s, ['people/a.jpg', 'people/b.jpg'], {
      default: '/default.png',
      onError: (err, path) => errors.push({ code: (err as MediaStorageError).code, path }),
    });
    expect(results.map((r) => r.src)).toEqual(['/default.png', '/default.png']);
    expect(errors.map((e) => e.code)).toEqual(['CONFIG', 'CONFIG']);
  });

  it('a key restricted to a bucket whose ID is not the bucketName is CONFIG', async () => {
    const key = fake.createKey({ buckets: [BUCKET] });
    const err = await failure(storageWithKey(key, { bucketId: fake.bucket(BUCKET).bucketId, bucketName: 'crm-mediaa' }).stat('a.jpg'));
    expect(err.code).toBe('CONFIG');
  });
});

describe('B2Storage: file info limits, before any request', () => {
  const uploads = (): number => fake.count('b2_upload_file') + fake.count('b2_start_large_file');

  it('name and info past 7,000 bytes of headers (percent-encoded) are INVALID_INPUT; just under, they save', async () => {
    const s = storage();
    const key = uniq('big-meta.txt');
    const before = uploads();
    // 1,200 "é" are 2,400 UTF-8 bytes, 7,200 once percent-encoded as the header carries them.
    for (const metadata of [{ note: 'é'.repeat(1200) }, { note: 'x'.repeat(6900) }]) {
      const err = await failure(s.save(key, 'x', { metadata }));
      expect(err.code).toBe('INVALID_INPUT');
      expect(err.message).toMatch(/7000/);
    }
    expect((await failure(s.save(key, Readable.from([randomBytes(7_000_000)]), { metadata: { note: 'x'.repeat(6900) } }))).code).toBe('INVALID_INPUT');
    expect(uploads()).toBe(before);
    const fits = { a: 'y'.repeat(3000), b: 'z'.repeat(3000) };
    await s.save(key, 'x', { metadata: fits });
    expect((await s.stat(key)).metadata).toEqual(fits);
  });

  it('an Object Lock bucket allows 2,048 bytes', async () => {
    const locked = storage({ bucketName: 'crm-locked' });
    const key = uniq('locked.txt');
    const before = uploads();
    const err = await failure(locked.save(key, 'x', { metadata: { note: 'x'.repeat(2000) } }));
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.message).toMatch(/2048 on a bucket with server-side encryption or Object Lock/);
    expect(uploads()).toBe(before);
    await locked.save(key, 'x', { metadata: { note: 'x'.repeat(1000) } });
    // With the bucketId given (no lookup at start), the bucket's settings are looked up when needed.
    const byId = storage({ bucketName: 'crm-locked', bucketId: fake.bucket('crm-locked').bucketId });
    expect((await failure(byId.save(key, 'x', { metadata: { note: 'x'.repeat(2000) } }))).code).toBe('INVALID_INPUT');
    expect(uploads()).toBe(before + 1);
  });

  it('info keys over 50 bytes and an 11th entry are INVALID_INPUT', async () => {
    const s = storage();
    const before = uploads();
    expect((await failure(s.save(uniq('k.txt'), 'x', { metadata: { ['k'.repeat(51)]: 'v' } }))).code).toBe('INVALID_INPUT');
    await s.save(uniq('k50.txt'), 'x', { metadata: { ['k'.repeat(50)]: 'v' } });
    const ten = Object.fromEntries(Array.from({ length: 9 }, (_, i) => [`m${i}`, 'v']));
    await s.save(uniq('ten.txt'), 'x', { metadata: ten, cacheControl: 'max-age=60' });
    const err = await failure(s.save(uniq('eleven.txt'), 'x', { metadata: { ...ten, m9: 'v' }, cacheControl: 'max-age=60' }));
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.message).toMatch(/at most 10/);
    expect(uploads()).toBe(before + 2);
  });

  it('a stored X-Bz-Info value that is not valid percent-encoding reads, never throws', async () => {
    const s = storage();
    const key = uniq('foreign.jpg');
    fake.seedFile(BUCKET, `media/${key}`, Buffer.from('foreign'), {
      contentType: 'image/jpeg',
      infoHeaders: { discount: '100%', city: 'S%C3%A3o Paulo', broken: '%E9t%C3', plus: 'a+b' },
    });
    expect(await s.exists(key)).toBe(true);
    expect((await s.stat(key)).metadata).toEqual({ discount: '100%', city: 'São Paulo', broken: '\uFFFDt\uFFFD', plus: 'a b' });
  });
});

describe('B2Storage: Retry-After', () => {
  it('waits what Retry-After says (seconds or an HTTP date) before the retry', async () => {
    const s = storage();
    await s.exists('warm-up.txt');
    fake.failCall('b2_list_file_names', { status: 429, retryAfter: 1 });
    let started = Date.now();
    // An API call: B2 gives UNAVAILABLE with retryAfter, the layer waits it out.
    await withRetry(s).list('people/');
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    // An upload: B2 waits it out itself before trying a fresh upload URL.
    fake.failCall('b2_upload_file', { status: 503, retryAfter: new Date(Date.now() + 2000).toUTCString() });
    started = Date.now();
    await s.save(uniq('after-503.txt'), 'x');
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('a Retry-After longer than withRetry waits (maxDelayMs) fails at once with UNAVAILABLE and retryAfter', async () => {
    const bare = storage();
    await bare.exists('warm-up.txt');
    const s = withRetry(bare, { maxDelayMs: 10_000 });
    const before = fake.count('b2_list_file_names');
    fake.failCall('b2_list_file_names', { status: 429, retryAfter: 120, times: 5 });
    const started = Date.now();
    const err = await failure(s.list('people/'));
    fake.clearFaults();
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.status).toBe(429);
    expect(err.retryAfter!.getTime() - started).toBeGreaterThan(110_000);
    expect(fake.count('b2_list_file_names') - before).toBe(1);
    expect(Date.now() - started).toBeLessThan(5000);
  }, 10_000);
});

describe('fake B2 models restricted keys, the authorize shapes and the file info rules', () => {
  const basic = (key: { applicationKeyId: string; applicationKey: string }): string =>
    `Basic ${Buffer.from(`${key.applicationKeyId}:${key.applicationKey}`).toString('base64')}`;
  const master = (): { applicationKeyId: string; applicationKey: string } => ({ applicationKeyId: fake.applicationKeyId, applicationKey: fake.applicationKey });
  async function authorize(version: 'v2' | 'v3' | 'v4', key = master()): Promise<Response> {
    return fetch(fake.authorizeUrlFor(version), { headers: { Authorization: basic(key) } });
  }
  async function token(key = master()): Promise<string> {
    return ((await (await authorize('v4', key)).json()) as { authorizationToken: string }).authorizationToken;
  }
  async function api(name: string, auth: string, body: unknown): Promise<Response> {
    return fetch(`${fake.url}/b2api/v2/${name}`, { method: 'POST', headers: { Authorization: auth }, body: JSON.stringify(body) });
  }
  async function uploadTarget(auth: string, bucket = BUCKET): Promise<{ uploadUrl: string; authorizationToken: string }> {
    return (await (await api('b2_get_upload_url', auth, { bucketId: fake.bucket(bucket).bucketId })).json()) as {
      uploadUrl: string;
      authorizationToken: string;
    };
  }
  async function upload(target: { uploadUrl: string; authorizationToken: string }, fileName: string, headers: Record<string, string> = {}): Promise<Response> {
    const body = Buffer.from('bytes');
    return fetch(target.uploadUrl, {
      method: 'POST',
      headers: {
        Authorization: target.authorizationToken,
        'X-Bz-File-Name': encodeURIComponent(fileName),
        'Content-Type': 'text/plain',
        'X-Bz-Content-Sha1': sha1(body),
        ...headers,
      },
      body: new Uint8Array(body),
    });
  }

  it('answers authorize in the v2, v3 and v4 shapes, and refuses a multi-bucket key before v4', async () => {
    const key = fake.createKey({ buckets: [BUCKET], namePrefix: 'media/', capabilities: ['listFiles', 'readFiles'] });
    const v2 = (await (await authorize('v2', key)).json()) as Record<string, any>;
    expect(v2).toMatchObject({
      apiUrl: fake.url,
      downloadUrl: fake.downloadUrl,
      allowed: { bucketId: fake.bucket(BUCKET).bucketId, bucketName: BUCKET, namePrefix: 'media/', capabilities: ['listFiles', 'readFiles'] },
    });
    const v3 = (await (await authorize('v3', key)).json()) as Record<string, any>;
    expect(v3.apiUrl).toBeUndefined();
    expect(v3.apiInfo.storageApi).toMatchObject({
      apiUrl: fake.url,
      downloadUrl: fake.downloadUrl,
      bucketId: fake.bucket(BUCKET).bucketId,
      bucketName: BUCKET,
      namePrefix: 'media/',
      infoType: 'storageApi',
    });
    const v4 = (await (await authorize('v4', key)).json()) as Record<string, any>;
    expect(v4.apiInfo.storageApi.bucketId).toBeUndefined();
    expect(v4.apiInfo.storageApi.allowed).toEqual({
      buckets: [{ id: fake.bucket(BUCKET).bucketId, name: BUCKET }],
      capabilities: ['listFiles', 'readFiles'],
      namePrefix: 'media/',
    });
    const multi = fake.createKey({ buckets: [BUCKET, 'crm-other'] });
    expect((await authorize('v3', multi)).status).toBe(400);
    expect((await authorize('v4', multi)).status).toBe(200);
  });

  it('enforces capabilities, bucket restrictions and the name prefix with 401 unauthorized', async () => {
    const restricted = await token(
      fake.createKey({ buckets: [BUCKET], namePrefix: 'media/people/', capabilities: ['listBuckets', 'listFiles', 'readFiles', 'writeFiles'] }),
    );
    const bucketId = fake.bucket(BUCKET).bucketId;
    // b2_list_buckets: a restricted key must name its bucket.
    expect((await api('b2_list_buckets', restricted, { accountId: fake.accountId })).status).toBe(401);
    expect((await api('b2_list_buckets', restricted, { accountId: fake.accountId, bucketName: BUCKET })).status).toBe(200);
    expect((await api('b2_list_buckets', restricted, { accountId: fake.accountId, bucketName: 'crm-other' })).status).toBe(401);
    expect((await api('b2_get_upload_url', restricted, { bucketId: fake.bucket('crm-other').bucketId })).status).toBe(401);
    expect((await api('b2_list_file_names', restricted, { bucketId, prefix: 'media/' })).status).toBe(401);
    expect((await api('b2_list_file_names', restricted, { bucketId, prefix: 'media/people/' })).status).toBe(200);
    const denied = await api('b2_get_download_authorization', restricted, { bucketId, fileNamePrefix: 'media/people/a', validDurationInSeconds: 60 });
    expect(denied.status).toBe(401);
    expect(await denied.json()).toMatchObject({ code: 'unauthorized', message: expect.stringContaining('shareFiles') });
    const target = await uploadTarget(restricted);
    expect((await upload(target, 'media/other.txt')).status).toBe(401);
    expect((await upload(target, 'media/people/ok.txt')).status).toBe(200);
    expect((await fetch(`${fake.downloadUrl}/file/${BUCKET}/media/people/ok.txt`, { headers: { Authorization: restricted } })).status).toBe(200);
    fake.seedFile(BUCKET, 'media/secret.txt', Buffer.from('s'));
    expect((await fetch(`${fake.downloadUrl}/file/${BUCKET}/media/secret.txt`, { headers: { Authorization: restricted } })).status).toBe(401);
  });

  it('checks the file info rules on upload: 10 entries, 50-byte keys, percent-encoding, headers within 7,000 (2,048 with Object Lock)', async () => {
    const auth = await token();
    const target = await uploadTarget(auth);
    const info = (n: number): Record<string, string> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`X-Bz-Info-k${i}`, 'v']));
    expect((await upload(target, 'raw/ten.txt', info(10))).status).toBe(200);
    expect((await upload(target, 'raw/eleven.txt', info(11))).status).toBe(400);
    expect((await upload(target, 'raw/long-key.txt', { [`X-Bz-Info-${'k'.repeat(51)}`]: 'v' })).status).toBe(400);
    expect((await upload(target, 'raw/b2-unknown.txt', { 'X-Bz-Info-b2-whatever': 'v' })).status).toBe(400);
    expect((await upload(target, 'raw/bad-percent.txt', { 'X-Bz-Info-note': '100%' })).status).toBe(400);
    expect((await upload(target, 'raw/disposition.txt', { 'Content-Disposition': 'attachment' })).status).toBe(400);
    const big = await upload(target, 'raw/big.txt', { 'X-Bz-Info-note': 'x'.repeat(6900) });
    expect(big.status).toBe(400);
    expect(((await big.json()) as { message: string }).message).toMatch(/limit is 7000/);
    expect((await upload(target, 'raw/fits.txt', { 'X-Bz-Info-note': 'x'.repeat(6000) })).status).toBe(200);
    expect((await upload(await uploadTarget(auth, 'crm-locked'), 'raw/locked.txt', { 'X-Bz-Info-note': 'x'.repeat(2000) })).status).toBe(400);
    // Values come back as they were sent, and keys lower-cased.
    expect((await upload(target, 'raw/as-sent.txt', { 'X-Bz-Info-City': 'S%c3%a3o+Paulo' })).status).toBe(200);
    const head = await fetch(`${fake.downloadUrl}/file/${BUCKET}/raw/as-sent.txt`, { method: 'HEAD', headers: { Authorization: auth } });
    expect(head.headers.get('x-bz-info-city')).toBe('S%c3%a3o+Paulo');
    // b2_start_large_file applies the same rules to its JSON fileInfo.
    const start = await api('b2_start_large_file', auth, {
      bucketId: fake.bucket(BUCKET).bucketId,
      fileName: 'raw/large.bin',
      contentType: 'b2/x-auto',
      fileInfo: { note: 'x'.repeat(7000) },
    });
    expect(start.status).toBe(400);
  });

  it('refuses a second upload on an upload URL while the first is in flight (auth_token_limit)', async () => {
    const target = await uploadTarget(await token());
    const body = Buffer.from('first upload body');
    const url = new URL(target.uploadUrl);
    const first = http.request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: 'POST',
      headers: {
        Authorization: target.authorizationToken,
        'X-Bz-File-Name': 'raw/first.txt',
        'Content-Type': 'text/plain',
        'X-Bz-Content-Sha1': sha1(body),
        'Content-Length': body.length,
      },
    });
    const firstStatus = new Promise<number>((resolve, reject) => {
      first.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      first.on('error', reject);
    });
    first.write(body.subarray(0, 5));
    await new Promise((r) => setTimeout(r, 100));
    const second = await upload(target, 'raw/second.txt');
    expect(second.status).toBe(400);
    expect(await second.json()).toMatchObject({ code: 'auth_token_limit' });
    first.end(body.subarray(5));
    expect(await firstStatus).toBe(200);
  });

  it('sends Retry-After with an injected 429 when asked', async () => {
    const auth = await token();
    fake.failCall('b2_list_file_names', { status: 429, retryAfter: 7 });
    const res = await api('b2_list_file_names', auth, { bucketId: fake.bucket(BUCKET).bucketId });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(await res.json()).toMatchObject({ status: 429, code: 'too_many_requests' });
  });
});

describe('direct uploads (b2_get_upload_url)', () => {
  it('gives a fresh upload URL and token with the file name, type and disposition headers; B2 checks the SHA-1 the sender computes', async () => {
    const s = storage();
    const upload = await s.presignUpload('people/ada lovelace.pdf', { contentType: 'application/pdf' });
    expect(upload.method).toBe('POST');
    expect(upload.fields).toBeUndefined();
    expect(upload.headers).toMatchObject({ 'X-Bz-File-Name': 'media/people/ada%20lovelace.pdf', 'Content-Type': 'application/pdf' });
    expect(decodeURIComponent(upload.headers['X-Bz-Info-b2-content-disposition']!)).toMatch(/^attachment; filename="ada lovelace.pdf"/);
    expect(upload.digestHeaders).toEqual({ 'X-Bz-Content-Sha1': 'sha1-hex' });
    expect(upload.enforced).toEqual({ key: false, contentType: false, maxSize: false, expiry: false });
    expect(JSON.stringify(upload)).not.toContain(fake.applicationKey);
    const pdf = Buffer.from('%PDF-1.4 direct upload');
    // A body that is not the one the SHA-1 was computed from (corrupted on the way) is refused.
    const wrongSha1 = await fetch(upload.url, {
      method: 'POST',
      headers: { ...upload.headers, 'X-Bz-Content-Sha1': createHash('sha1').update('other bytes').digest('hex') },
      body: pdf,
    });
    expect(wrongSha1.status).toBe(400);
    await wrongSha1.arrayBuffer();
    expect(await s.exists('people/ada lovelace.pdf')).toBe(false);
    const sent = await sendDirectUpload(upload, pdf);
    expect(sent.status, await sent.text()).toBe(200);
    expect((await s.readBuffer('people/ada lovelace.pdf')).equals(pdf)).toBe(true);
    expect(fake.sha1Modes.at(-1)).toBe('given');
  });

  it("a key outside the application key's name prefix is PERMISSION before any upload URL is asked for", async () => {
    const key = fake.createKey({
      buckets: [BUCKET],
      namePrefix: 'media/people/',
      capabilities: ['listBuckets', 'listFiles', 'readFiles', 'writeFiles', 'deleteFiles'],
    });
    const s = storage({ ...key });
    const before = fake.calls.get('b2_get_upload_url') ?? 0;
    expect((await failure(s.presignUpload('other/x.png'))).code).toBe('PERMISSION');
    expect(fake.calls.get('b2_get_upload_url') ?? 0).toBe(before);
  });
});
