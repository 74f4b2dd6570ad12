/**
 * One retry mechanism: B2 marks temporary failures UNAVAILABLE and the retry layer retries them;
 * B2 itself only retries an upload (or a part) on a fresh upload URL, as Backblaze's "Uploading"
 * page and Integration Checklist ask. Counts are taken at the fake B2.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { B2Storage, type B2StorageOptions } from '../../src/b2/index.js';
import { createMediaStorage } from '../../src/config/index.js';
import { withRetry } from '../../src/layers/index.js';
import { startFakeB2, type FakeB2Server } from '../support/fakes/b2-server.js';
import { failure } from '../support/failure.js';

const BUCKET = 'retry-media';
let fake: FakeB2Server;

beforeAll(async () => {
  fake = await startFakeB2({ buckets: { [BUCKET]: 'allPrivate' }, absoluteMinimumPartSize: 1_000_000 });
});
afterAll(() => fake.close());
afterEach(() => {
  fake.clearFaults();
  fake.removeAllListeners('call');
});

const options = (extra: Partial<B2StorageOptions> = {}): B2StorageOptions => ({
  applicationKeyId: fake.applicationKeyId,
  applicationKey: fake.applicationKey,
  bucketName: BUCKET,
  apiUrl: fake.authorizeUrl,
  location: 'media',
  spoolThreshold: 64 * 1024,
  largeFileThreshold: 2_000_000,
  partSize: 1_000_000,
  ...extra,
});
const uniq = (name: string): string => `r-${randomBytes(4).toString('hex')}/${name}`;

/** A warmed-up bare B2Storage (authorized, bucket found) under withRetry; waits kept short. */
async function retried(extra: Partial<B2StorageOptions> = {}, maxAttempts = 3) {
  const bare = new B2Storage(options(extra));
  await bare.exists('warm-up.txt');
  return withRetry(bare, { maxAttempts, baseDelayMs: 10, maxDelayMs: 5_000 });
}

/** Calls of `api` made while `run` ran. */
async function counted(api: string, run: () => Promise<unknown>): Promise<number> {
  const before = fake.count(api);
  await run().catch(() => undefined);
  return fake.count(api) - before;
}

describe('B2 under withRetry({ maxAttempts: 3 }): attempts the fake receives', () => {
  it('an API call answering 503 every time is sent 3 times in all (the layer retries, B2 does not)', async () => {
    const s = await retried();
    fake.failCall('b2_list_file_names', { status: 503, times: 100 });
    let err: unknown;
    const sent = await counted('b2_list_file_names', () => s.list('people/').catch((e: unknown) => (err = e)));
    expect(sent).toBe(3);
    expect((err as { code?: string }).code).toBe('UNAVAILABLE');
  });

  it('a HEAD (exists) answering 500 every time is sent 3 times in all', async () => {
    const s = await retried();
    fake.failCall('download_head', { status: 500, times: 100 });
    expect(await counted('download_head', () => s.exists('a.txt'))).toBe(3);
  });

  it('a Buffer save whose uploads answer 503: maxUploadAttempts fresh URLs per layer attempt, 3 × 2 uploads at most', async () => {
    const s = await retried({ maxUploadAttempts: 2 });
    fake.failCall('b2_upload_file', { status: 503, times: 100 });
    const key = uniq('down.bin');
    const reusesBefore = fake.rejectedUploadUrlReuses;
    const err = await failure(s.save(key, randomBytes(10_000)));
    expect(err.code).toBe('UNAVAILABLE');
    expect(fake.uploadUrlLog.slice(-6).every((u) => u.status === 503)).toBe(true);
    expect(await counted('b2_upload_file', () => s.save(uniq('again.bin'), randomBytes(10_000)))).toBe(6);
    // Every try went to a URL that had not failed before (Backblaze: a URL that answered 5xx is done).
    expect(fake.rejectedUploadUrlReuses - reusesBefore).toBe(0);
  });

  it('a 429 on an upload is left to the layer: B2 gets a fresh URL only on 401, 408, 5xx and broken connections', async () => {
    const s = await retried();
    fake.failCall('b2_upload_file', { status: 429, times: 100 });
    expect(await counted('b2_upload_file', () => s.save(uniq('throttled.bin'), 'x'))).toBe(3);
  });

  it('a stream save is not retried by the layer, only on fresh upload URLs by B2 (maxUploadAttempts)', async () => {
    const s = await retried({ maxUploadAttempts: 2 });
    fake.failCall('b2_upload_file', { status: 503, times: 100 });
    expect(await counted('b2_upload_file', () => s.save(uniq('stream.bin'), Readable.from([randomBytes(1000)])))).toBe(2);
  });

  it('b2_start_large_file answering 503 is sent 3 times in all, and no unfinished large file is left', async () => {
    const s = await retried();
    fake.failCall('b2_start_large_file', { status: 503, times: 100 });
    expect(await counted('b2_start_large_file', () => s.save(uniq('large.bin'), randomBytes(2_500_000)))).toBe(3);
    expect(fake.unfinishedLargeFiles(BUCKET)).toEqual([]);
  });

  it('a stream save whose b2_start_large_file answers 503 is started again by B2 (maxAttempts in all, the layer cannot resend the stream), and none is left unfinished', async () => {
    const s = await retried({ maxAttempts: 4 });
    fake.failCall('b2_start_large_file', { status: 503, times: 100 });
    const body = randomBytes(2_500_000);
    let err: unknown;
    expect(await counted('b2_start_large_file', () => s.save(uniq('large-stream.bin'), Readable.from([body])).catch((e: unknown) => (err = e)))).toBe(4);
    expect(err).toMatchObject({ code: 'UNAVAILABLE' });
    expect(fake.unfinishedLargeFiles(BUCKET)).toEqual([]);
    fake.clearFaults();
    fake.failCall('b2_start_large_file', { status: 503, times: 2 });
    const key = uniq('large-stream-ok.bin');
    expect(await counted('b2_start_large_file', () => s.save(key, Readable.from([body])))).toBe(3);
    expect((await s.readBuffer(key)).equals(body)).toBe(true);
    expect(fake.unfinishedLargeFiles(BUCKET)).toEqual([]);
  });

  it('a save with ifExists "fail" is not repeated after a failure that may have stored it (500), and is after one that did not (503)', async () => {
    const s = await retried({ maxUploadAttempts: 1 });
    fake.failCall('b2_upload_file', { status: 500, times: 100 });
    expect(await counted('b2_upload_file', () => s.save(uniq('once.txt'), 'x', { ifExists: 'fail' }))).toBe(1);
    fake.clearFaults();
    fake.failCall('b2_upload_file', { status: 503, times: 2 });
    const key = uniq('twice.txt');
    await s.save(key, 'x', { ifExists: 'fail' });
    expect((await s.readBuffer(key)).toString()).toBe('x');
  });
});

describe('an abort during a wait', () => {
  /**
   * Fails every call of `api` with 503 and Retry-After 4 s, aborts 100 ms after the first arrives,
   * and checks that `run` rejects with ABORTED at once, having sent `api` once.
   */
  async function abortsAtOnce(api: string, run: (signal: AbortSignal) => Promise<unknown>): Promise<void> {
    fake.failCall(api, { status: 503, retryAfter: 4, times: 100 });
    const controller = new AbortController();
    fake.on('call', (called: string) => {
      if (called === api) setTimeout(() => controller.abort(new Error('user left')), 100);
    });
    const started = Date.now();
    const sent = fake.count(api);
    const err = await failure(run(controller.signal));
    expect(err.code).toBe('ABORTED');
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(fake.count(api) - sent).toBe(1);
  }

  it('rejects at once with ABORTED while the layer waits out a Retry-After, and sends nothing more', async () => {
    const s = await retried({}, 3);
    await abortsAtOnce('download', (signal) => s.readBuffer(uniq('slow.txt'), { signal }));
  });

  it('rejects at once with ABORTED while B2 waits for a fresh upload URL, and sends nothing more', async () => {
    const s = await retried({}, 1);
    await abortsAtOnce('b2_upload_file', (signal) => s.save(uniq('abort.bin'), randomBytes(1000), { signal }));
  });

  it('of a large save, after b2_start_large_file answered 503: no second start, nothing left unfinished', async () => {
    const s = await retried({}, 3);
    await abortsAtOnce('b2_start_large_file', (signal) => s.save(uniq('abort-large.bin'), randomBytes(2_500_000), { signal }));
    expect(fake.unfinishedLargeFiles(BUCKET)).toEqual([]);
  });
});

describe('createMediaStorage({ backend: "b2" }) on a flaky B2', () => {
  // createMediaStorage's default stack includes withRetry (fast delays here).
  it('saves, checks, lists, reads, copies and deletes while every kind of call fails first', async () => {
    const s = await createMediaStorage({ backend: 'b2', ...options() }, { retry: { baseDelayMs: 10 } });
    for (const api of [
      'b2_authorize_account',
      'b2_list_buckets',
      'b2_get_upload_url',
      'download_head',
      'b2_list_file_names',
      'download',
      'b2_copy_file',
      'b2_list_file_versions',
      'b2_delete_file_version',
    ]) {
      fake.failCall(api, { status: api === 'b2_list_file_names' ? 429 : 503 });
    }
    // Uploads twice: B2's own fresh-URL retries absorb them.
    fake.failCall('b2_upload_file', { status: 503, times: 2 });
    const key = uniq('flaky.txt');
    await s.save(key, 'hello');
    expect(await s.exists(key)).toBe(true);
    expect((await s.list(key.split('/')[0]! + '/')).items.map((i) => i.key)).toEqual([key]);
    expect((await s.readBuffer(key)).toString()).toBe('hello');
    await s.copy(key, `${key}.copy`);
    await s.delete(key);
    expect(await s.exists(key)).toBe(false);
  });
});
