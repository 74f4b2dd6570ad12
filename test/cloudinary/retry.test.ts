/**
 * Cloudinary failures worth retrying are UNAVAILABLE with the service's retry hint, and a save
 * retried by withRetry (the one retry layer) leaves exactly one whole asset under its key.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CloudinaryStorage, type CloudinaryStorageOptions } from '../../src/cloudinary/index.js';
import { withRetry, type RetryInfo, type RetryOptions } from '../../src/layers/retry.js';
import { FakeCloudinary } from '../support/fakes/cloudinary-server.js';
import { failure } from '../support/failure.js';
import { deliveryError } from '../../src/cloudinary/delivery.js';
import { mapCloudinaryError } from '../../src/cloudinary/errors.js';

const ACCOUNT = { cloudName: 'retry-cloud', apiKey: '333333333333333', apiSecret: 'retry-secret-0123456789abcd' };
const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63f8cfc0f01f0005000201a0d1e33a0000000049454e44ae426082',
  'hex',
);

let fake: FakeCloudinary;
const made: CloudinaryStorage[] = [];
let run = 0;

function storage(options: CloudinaryStorageOptions = {}): CloudinaryStorage {
  const s = new CloudinaryStorage({
    cloudinaryUrl: fake.cloudinaryUrl(ACCOUNT.cloudName),
    fetch: fake.fetch,
    folder: `r${++run}`,
    folderMode: 'fixed',
    ...options,
  });
  made.push(s);
  return s;
}

/** withRetry that records its retries and waits no real time (the delays it asked for are kept). */
function retrying(s: CloudinaryStorage, options: RetryOptions = {}) {
  const retries: RetryInfo[] = [];
  const delays: number[] = [];
  const layered = withRetry(s, { random: () => 0, ...options, onRetry: (info) => retries.push(info), sleep: async (ms) => void delays.push(ms) });
  return { storage: layered, retries, delays };
}

/** Every asset the fake holds under a storage's folder. */
function assetsUnder(folder: string) {
  return [...fake.assets.values()].filter((a) => a.publicId.startsWith(folder));
}

beforeAll(async () => {
  fake = await new FakeCloudinary([ACCOUNT]).start();
});

afterEach(() => {
  fake.failUploadRequest = undefined;
  fake.failUploadAnswer = {};
  fake.rateLimited = {};
});

afterAll(async () => {
  for (const s of made) s.close();
  await fake.stop();
});

describe('a save retried through withRetry', () => {
  it('a 500 on the upload, then success: saved once, whole', async () => {
    const s = storage();
    const { storage: r, retries } = retrying(s);
    fake.failUploadRequest = fake.uploadRequests + 1;
    await r.save('p/a.png', PNG);
    expect(retries.map((i) => [i.operation, i.error.code, i.error.status])).toEqual([['save', 'UNAVAILABLE', 500]]);
    const assets = assetsUnder(s.folder);
    expect(assets.map((a) => [a.resourceType, a.publicId])).toEqual([['image', `${s.folder}p/a`]]);
    expect(assets[0]!.bytes.equals(PNG)).toBe(true);
  });

  it('a 500 on the second chunk: the retry starts a new chunked session, and one whole asset appears', async () => {
    const s = storage({ chunkSize: 5 * 1024 * 1024 });
    const { storage: r, retries } = retrying(s);
    const data = randomBytes(11 * 1024 * 1024);
    const ids = fake.chunkUploadIds.length;
    const open = fake.openChunkSessions;
    fake.failUploadRequest = fake.uploadRequests + 2;
    await r.save('big/doc.bin', data);
    expect(retries).toHaveLength(1);
    const sessions = fake.chunkUploadIds.slice(ids);
    // One chunk of the failed attempt, then three of the retry under another id.
    expect(sessions).toHaveLength(4);
    expect(new Set(sessions.slice(1)).size).toBe(1);
    expect(sessions[1]).not.toBe(sessions[0]);
    // The failed session never got its last chunk, so it stays unfinished and invisible.
    expect(fake.openChunkSessions - open).toBe(1);
    const assets = assetsUnder(s.folder);
    expect(assets.map((a) => [a.resourceType, a.publicId])).toEqual([['raw', `${s.folder}big/doc.bin`]]);
    expect(assets[0]!.bytes.equals(data)).toBe(true);
    expect((await s.readBuffer('big/doc.bin')).equals(data)).toBe(true);
  });

  it('an answer lost after the upload was stored: the retry replaces that asset, one asset remains', async () => {
    const s = storage();
    const { storage: r, retries } = retrying(s);
    fake.failUploadRequest = fake.uploadRequests + 1;
    fake.failUploadAnswer = { afterStore: true };
    await r.save('lost/a.png', PNG);
    expect(retries).toHaveLength(1);
    const assets = assetsUnder(s.folder);
    expect(assets.map((a) => [a.resourceType, a.publicId])).toEqual([['image', `${s.folder}lost/a`]]);
    expect((await s.readBuffer('lost/a.png')).equals(PNG)).toBe(true);
  });

  it('a 401 is not retried', async () => {
    const s = storage({ cloudinaryUrl: fake.cloudinaryUrl(ACCOUNT.cloudName, 'wrong-secret-0123456789') });
    const { storage: r, retries } = retrying(s);
    const rejected = fake.counts.rejectedSignatures;
    const err = await failure(r.save('p/b.png', PNG));
    expect(err.code).toBe('AUTH');
    expect(retries).toHaveLength(0);
    expect(fake.counts.rejectedSignatures - rejected).toBe(1);
    expect(assetsUnder(s.folder)).toHaveLength(0);
  });
});

describe('retry hints', () => {
  it("a 503 with Retry-After: the error's retryAfter, and the layer waits that long", async () => {
    const s = storage();
    fake.failUploadRequest = fake.uploadRequests + 1;
    fake.failUploadAnswer = { status: 503, message: 'Service Unavailable', headers: { 'retry-after': '3' } };
    const before = Date.now();
    const err = await failure(s.save('h/a.png', PNG));
    expect([err.code, err.status]).toEqual(['UNAVAILABLE', 503]);
    expect(err.retryAfter!.getTime() - before).toBeGreaterThanOrEqual(3000);
    expect(err.retryAfter!.getTime() - Date.now()).toBeLessThanOrEqual(3000);

    fake.failUploadRequest = fake.uploadRequests + 1;
    const { storage: r, delays } = retrying(s);
    await r.save('h/b.png', PNG);
    expect(delays).toHaveLength(1);
    expect(delays[0]).toBeGreaterThan(2000);
    expect(delays[0]).toBeLessThanOrEqual(3000);
  });

  it('a 420 carries the X-FeatureRateLimit-Reset of that very answer, on an instance that never saw one before', async () => {
    const s = storage();
    const reset = new Date(Math.ceil(Date.now() / 1000) * 1000 + 7 * 60_000 + 13_000);
    fake.rateLimit.resetAt = reset;
    fake.rateLimited.admin = true;
    const err = await failure(s.list('x/'));
    expect([err.code, err.status]).toEqual(['UNAVAILABLE', 420]);
    expect(err.retryAfter?.getTime()).toBe(reset.getTime());

    const { storage: r, delays } = retrying(storage(), { maxAttempts: 2, maxDelayMs: 3600_000 });
    await failure(r.list('x/'));
    expect(delays).toHaveLength(1);
    expect(Math.abs(delays[0]! - (reset.getTime() - Date.now()))).toBeLessThan(2000);
  });

  it('a delivery answer of 503 with Retry-After keeps it (reads are retried too)', () => {
    const before = Date.now();
    const mapped = mapCloudinaryError(deliveryError(new Response(null, { status: 503, headers: { 'retry-after': '5' } }), 'reading "a.txt"'));
    expect(mapped).toMatchObject({ code: 'UNAVAILABLE', status: 503 });
    expect(mapped!.retryAfter!.getTime() - before).toBeGreaterThanOrEqual(5000);
    expect(mapped!.retryAfter!.getTime() - Date.now()).toBeLessThanOrEqual(5000);
  });
});
