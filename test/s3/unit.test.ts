/**
 * Unit tests of S3Storage's error mapping, clean-up and retry paths. The calls are mocked with
 * aws-sdk-client-mock (in addition to the real-server tests in s3.test.ts, not instead), and the
 * retry tests run the real SDK, retries included, against a tiny HTTP server that answers 503.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { S3Storage, type S3StorageOptions } from '../../src/s3/index.js';
import { withRetry } from '../../src/layers/index.js';
import { listen } from '../support/http.js';
import { CauseSummary } from '../../src/core/errors.js';
import { failure } from '../support/failure.js';

const SECRET = 'unit-test-secret-key-do-not-print';
const MiB = 1024 * 1024;

function s3Error(name: string, status: number, message = `${name} happened`, headers: Record<string, string> = {}): S3ServiceException {
  const err = new S3ServiceException({ name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status }, message });
  Object.assign(err, { $response: { statusCode: status, headers } });
  return err;
}

function mocked(options: Partial<S3StorageOptions> = {}) {
  const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'AKIDUNIT', secretAccessKey: SECRET } });
  const mock = mockClient(client);
  const storage = new S3Storage({
    bucket: 'crm-media',
    client,
    credentials: { accessKeyId: 'AKIDUNIT', secretAccessKey: SECRET },
    partSize: 5 * MiB,
    multipartThreshold: 5 * MiB,
    ...options,
  });
  return { client, mock, storage };
}

function body(bytes: number): Readable {
  const chunk = Buffer.alloc(256 * 1024, 3);
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytes) return this.push(null);
      const n = Math.min(chunk.length, bytes - sent);
      sent += n;
      this.push(chunk.subarray(0, n));
    },
  });
}

/** A mocked storage whose client mock is restored after each test. */
const mocks: Array<ReturnType<typeof mockClient>> = [];
afterEach(() => {
  for (const m of mocks.splice(0)) m.restore();
});
function setup(options: Partial<S3StorageOptions> = {}): ReturnType<typeof mocked> {
  const made = mocked(options);
  mocks.push(made.mock);
  return made;
}

describe('S3 error mapping', () => {
  const cases: Array<[string, number, string]> = [
    ['AccessDenied', 403, 'PERMISSION'],
    ['InvalidAccessKeyId', 403, 'AUTH'],
    ['SignatureDoesNotMatch', 403, 'AUTH'],
    ['ExpiredToken', 400, 'AUTH'],
    ['SlowDown', 503, 'UNAVAILABLE'],
    ['InternalError', 500, 'UNAVAILABLE'],
    ['ServiceUnavailable', 503, 'UNAVAILABLE'],
    ['RequestTimeout', 400, 'UNAVAILABLE'],
    ['BadDigest', 400, 'UNAVAILABLE'],
    ['EntityTooLarge', 400, 'TOO_LARGE'],
    ['AccessControlListNotSupported', 400, 'CONFIG'],
    ['PermanentRedirect', 301, 'CONFIG'],
    ['NotImplemented', 501, 'UNSUPPORTED'],
    ['SomethingNew', 502, 'UNAVAILABLE'],
    ['SomethingOdd', 418, 'UNKNOWN'],
  ];
  for (const [name, status, code] of cases) {
    it(`PutObject ${name} (${status}) gives ${code}`, async () => {
      const { mock, storage } = setup();
      mock.on(PutObjectCommand).rejects(s3Error(name, status));
      const error = await failure(storage.save('a/b.txt', 'x'));
      expect(error.code).toBe(code);
      expect(error.backend).toBe('s3');
      expect(error.key).toBe('a/b.txt');
      // The SDK's error is kept as its summary (no $response, no request), with what support needs.
      expect(error.cause).toBeInstanceOf(CauseSummary);
      expect(error.cause).toMatchObject({ name, status, message: `${name} happened` });
      expect(Object.keys(error.cause as object)).not.toContain('$response');
    });
  }

  it('NoSuchKey on GetObject gives NOT_FOUND; a HEAD 404 makes stat NOT_FOUND and exists false', async () => {
    const { mock, storage } = setup();
    mock.on(GetObjectCommand).rejects(s3Error('NoSuchKey', 404));
    mock.on(HeadObjectCommand).rejects(s3Error('NotFound', 404, 'UnknownError'));
    expect((await failure(storage.read('gone.png'))).code).toBe('NOT_FOUND');
    expect((await failure(storage.stat('gone.png'))).code).toBe('NOT_FOUND');
    expect(await storage.exists('gone.png')).toBe(false);
  });

  it('a HEAD 403 is PERMISSION, not "absent"', async () => {
    const { mock, storage } = setup();
    mock.on(HeadObjectCommand).rejects(s3Error('403', 403, 'UnknownError'));
    expect((await failure(storage.exists('x.png'))).code).toBe('PERMISSION');
  });

  it("a HEAD 403 asks a one-byte GET why: a wrong secret is AUTH, a refusal PERMISSION with S3's words", async () => {
    const { mock, storage } = setup();
    mock.on(HeadObjectCommand).rejects(s3Error('403', 403, 'UnknownError'));
    mock.on(GetObjectCommand).rejects(s3Error('SignatureDoesNotMatch', 403, 'The request signature we calculated does not match'));
    const wrongSecret = await failure(storage.exists('x.png'));
    expect(wrongSecret.code).toBe('AUTH');
    expect(wrongSecret.message).toContain('the S3 credentials were rejected (SignatureDoesNotMatch)');
    expect(mock.commandCalls(GetObjectCommand)[0]!.args[0].input).toMatchObject({ Key: 'x.png', Range: 'bytes=0-0' });
    mock.on(GetObjectCommand).rejects(s3Error('AccessDenied', 403, 'Access Denied'));
    expect(await failure(storage.stat('x.png'))).toMatchObject({ code: 'PERMISSION', message: expect.stringContaining('Access Denied') });
  });

  it('NoSuchBucket gives CONFIG with a message that names the bucket', async () => {
    const { mock, storage } = setup();
    mock.on(ListObjectsV2Command).rejects(s3Error('NoSuchBucket', 404, 'The specified bucket does not exist'));
    const error = await failure(storage.list('avatars/'));
    expect(error.code).toBe('CONFIG');
    expect(error.message).toContain('"crm-media"');
    expect(error.status).toBe(404);
  });

  it('SlowDown carries retryAfter from a Retry-After header', async () => {
    const { mock, storage } = setup();
    mock.on(PutObjectCommand).rejects(s3Error('SlowDown', 503, 'Please reduce your request rate.', { 'retry-after': '7' }));
    const error = await failure(storage.save('x.txt', 'x'));
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.retryAfter!.getTime() - Date.now()).toBeGreaterThan(5000);
  });

  it('network errors and timeouts give UNAVAILABLE, an aborted request ABORTED', async () => {
    const { mock, storage } = setup();
    mock
      .on(GetObjectCommand)
      .rejectsOnce(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }))
      .rejectsOnce(Object.assign(new Error('socket timed out'), { name: 'TimeoutError' }))
      .rejectsOnce(Object.assign(new Error('The operation was aborted'), { name: 'AbortError' }));
    expect((await failure(storage.read('x.txt'))).code).toBe('UNAVAILABLE');
    expect((await failure(storage.read('x.txt'))).code).toBe('UNAVAILABLE');
    expect((await failure(storage.read('x.txt'))).code).toBe('ABORTED');
  });

  it('never puts the secret key in a message', async () => {
    const { mock, storage } = setup();
    mock.on(PutObjectCommand).rejects(s3Error('SignatureDoesNotMatch', 403, `The request signature we calculated does not match (key ${SECRET})`));
    const error = await failure(storage.save('x.txt', 'x'));
    expect(error.code).toBe('AUTH');
    expect(error.message).not.toContain(SECRET);
    expect(error.message).toContain('[redacted]');
  });

  it('rejects bad options with CONFIG', () => {
    expect(() => new S3Storage({ bucket: '' })).toThrow(/bucket/);
    expect(() => new S3Storage({ bucket: 'b', partSize: 1024 })).toThrow(/partSize/);
    expect(() => new S3Storage({ bucket: 'b', sseKmsKeyId: 'k' })).toThrow(/aws:kms/);
  });
});

describe('S3 missing bucket: a HEAD 404 cannot tell NoSuchBucket from a missing key', () => {
  afterEach(() => {
    vi.useRealTimers();
  });
  const notFound = (): S3ServiceException => s3Error('NotFound', 404, 'UnknownError');
  const heads = (mock: ReturnType<typeof mockClient>): number => mock.commandCalls(HeadObjectCommand).length;
  const bucketChecks = (mock: ReturnType<typeof mockClient>): number => mock.commandCalls(HeadBucketCommand).length;

  it('exists and stat fail with CONFIG naming the bucket when HeadBucket also answers 404', async () => {
    const { mock, storage } = setup();
    mock.on(HeadObjectCommand).rejects(notFound());
    mock.on(HeadBucketCommand).rejects(notFound());
    for (const attempt of [() => storage.exists('a.jpg'), () => storage.stat('a.jpg')]) {
      const error = await failure(attempt());
      expect(error.code).toBe('CONFIG');
      expect(error.message).toContain('the bucket "crm-media" does not exist');
      expect(error.key).toBe('a.jpg');
      expect(error.status).toBe(404);
      expect(error.message).not.toContain(SECRET);
    }
    // The answer is remembered: the second call sent no second HeadBucket.
    expect(bucketChecks(mock)).toBe(1);
  });

  it('a missing key in an existing bucket costs one HeadBucket for the first 404, then one request per call', async () => {
    const { mock, storage } = setup();
    mock.on(HeadObjectCommand).rejects(notFound());
    mock.on(HeadBucketCommand).resolves({});
    for (let i = 0; i < 50; i++) expect(await storage.exists(`missing-${i}.jpg`)).toBe(false);
    expect(heads(mock)).toBe(50);
    expect(bucketChecks(mock)).toBe(1);
  });

  it('a found object costs one request and answers the bucket question too', async () => {
    const { mock, storage } = setup();
    mock.on(HeadObjectCommand, { Key: 'here.jpg' }).resolves({ ContentLength: 3 }).on(HeadObjectCommand, { Key: 'gone.jpg' }).rejects(notFound());
    expect(await storage.exists('here.jpg')).toBe(true);
    expect(await storage.exists('gone.jpg')).toBe(false);
    expect(bucketChecks(mock)).toBe(0);
  });

  it('concurrent 404s share one HeadBucket', async () => {
    const { mock, storage } = setup();
    mock.on(HeadObjectCommand).rejects(notFound());
    mock.on(HeadBucketCommand).callsFake(() => new Promise((resolve) => setTimeout(() => resolve({}), 20)));
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => storage.exists(`p${i}.jpg`)));
    expect(answers).toEqual(Array(8).fill(false));
    expect(bucketChecks(mock)).toBe(1);
  });

  it('HeadBucket refused (403: no s3:ListBucket) counts as an existing bucket', async () => {
    const { mock, storage } = setup();
    mock.on(HeadObjectCommand).rejects(notFound());
    mock.on(HeadBucketCommand).rejects(s3Error('403', 403, 'UnknownError'));
    expect(await storage.exists('a.jpg')).toBe(false);
    expect(await storage.exists('b.jpg')).toBe(false);
    expect(bucketChecks(mock)).toBe(1);
  });

  it('HeadBucket failing (unreachable, 5xx) decides nothing: the key is absent and the next 404 asks again', async () => {
    const { mock, storage } = setup();
    mock.on(HeadObjectCommand).rejects(notFound());
    mock
      .on(HeadBucketCommand)
      .rejectsOnce(Object.assign(new Error('connect ECONNRESET'), { code: 'ECONNRESET' }))
      .rejects(notFound());
    expect(await storage.exists('a.jpg')).toBe(false);
    expect((await failure(storage.exists('b.jpg'))).code).toBe('CONFIG');
    expect(bucketChecks(mock)).toBe(2);
  });

  it('the answer is re-checked after a while, so a bucket created later works and a deleted one is noticed', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { mock, storage } = setup();
    mock.on(HeadObjectCommand).rejects(notFound());
    mock.on(HeadBucketCommand).rejectsOnce(notFound()).resolves({});
    expect((await failure(storage.exists('a.jpg'))).code).toBe('CONFIG');
    vi.advanceTimersByTime(5_000);
    expect((await failure(storage.exists('a.jpg'))).code).toBe('CONFIG');
    expect(bucketChecks(mock)).toBe(1);
    // Created meanwhile: after 10 s absence is checked again.
    vi.advanceTimersByTime(6_000);
    expect(await storage.exists('a.jpg')).toBe(false);
    expect(bucketChecks(mock)).toBe(2);
    // Existence is trusted for a minute, then checked again on a 404.
    vi.advanceTimersByTime(59_000);
    expect(await storage.exists('a.jpg')).toBe(false);
    expect(bucketChecks(mock)).toBe(2);
    mock.on(HeadBucketCommand).rejects(notFound());
    vi.advanceTimersByTime(2_000);
    expect((await failure(storage.exists('a.jpg'))).code).toBe('CONFIG');
    expect(bucketChecks(mock)).toBe(3);
  });

  it('a NoSuchBucket met by another call (a save) settles it for HEADs without a HeadBucket; a successful save settles it back', async () => {
    const { mock, storage } = setup();
    mock.on(HeadObjectCommand).rejects(notFound());
    mock.on(HeadBucketCommand).resolves({});
    expect(await storage.exists('a.jpg')).toBe(false);
    mock
      .on(PutObjectCommand)
      .rejectsOnce(s3Error('NoSuchBucket', 404, 'The specified bucket does not exist'))
      .resolves({ ETag: '"e"' });
    expect((await failure(storage.save('b.jpg', 'x'))).code).toBe('CONFIG');
    expect((await failure(storage.exists('a.jpg'))).code).toBe('CONFIG');
    await storage.save('b.jpg', 'x');
    expect(await storage.exists('a.jpg')).toBe(false);
    expect(bucketChecks(mock)).toBe(1);
  });
});

describe('S3 listing', () => {
  it("fills a page of more than 1,000 keys from several ListObjectsV2 requests and returns S3's token as the cursor", async () => {
    const { mock, storage } = mocked({ location: 'media/' });
    const page = (from: number, count: number) =>
      Array.from({ length: count }, (_, i) => ({ Key: `media/a/${String(from + i).padStart(5, '0')}.png`, Size: 1 }));
    mock
      .on(ListObjectsV2Command)
      .resolvesOnce({ Contents: page(0, 1000), IsTruncated: true, NextContinuationToken: 't1' })
      .resolvesOnce({ Contents: page(1000, 500), IsTruncated: true, NextContinuationToken: 't2' });
    const result = await storage.list('a/', { limit: 1500 });
    expect(result.items).toHaveLength(1500);
    expect(result.items[0]).toMatchObject({ key: 'a/00000.png', contentType: 'image/png', size: 1 });
    expect(result.cursor).toBe('t2');
    const calls = mock.commandCalls(ListObjectsV2Command).map((c) => c.args[0].input);
    expect(calls).toEqual([
      { Bucket: 'crm-media', Prefix: 'media/a/', MaxKeys: 1000, ContinuationToken: undefined, EncodingType: 'url' },
      { Bucket: 'crm-media', Prefix: 'media/a/', MaxKeys: 500, ContinuationToken: 't1', EncodingType: 'url' },
    ]);
    mock.restore();
  });

  it('decodes URL-encoded names (a "+" is a space) and reports a name that is not UTF-8', async () => {
    const { mock, storage } = mocked({ location: 'media/' });
    mock.on(ListObjectsV2Command).resolves({
      EncodingType: 'url',
      Contents: [
        { Key: 'media/Jose%CC%81+photo.jpg', Size: 1 },
        { Key: 'media/ctl%01.txt', Size: 1 },
        { Key: 'media/bad%FF.txt', Size: 1 },
      ],
    });
    const page = await storage.list();
    expect(page.items.map((i) => i.key)).toEqual(['Jose\u0301 photo.jpg']);
    expect(page.skipped?.map((o) => [o.name, o.reason])).toEqual([
      ['bad%FF.txt', 'invalid-key'],
      ['ctl\u0001.txt', 'invalid-key'],
    ]);
    mock.restore();
  });
});

describe('S3 writes', () => {
  it('a key that fits alone but not with the location prefix (S3: 1,024 bytes) is INVALID_KEY in every operation, before any request', async () => {
    const { mock, storage } = setup({ location: 'tenant-0123456789/media/' });
    const key = `${'abcdefgh/'.repeat(111)}x.txt`; // 1,004 bytes: within the core's 1,024, over S3's with the prefix
    for (const op of [
      () => storage.save(key, 'x'),
      () => storage.readBuffer(key),
      () => storage.stat(key),
      () => storage.exists(key),
      () => storage.delete(key),
      () => storage.url(key),
      () => storage.copy('a.txt', key),
    ]) {
      expect((await failure(op())).code).toBe('INVALID_KEY');
    }
    expect(mock.calls()).toHaveLength(0);
  });

  it('a single put sends the type, ACL and encryption, and a Content-MD5 only with contentMd5', async () => {
    const { mock, storage } = setup({ visibility: 'public', serverSideEncryption: 'AES256', cacheControl: 'max-age=60' });
    mock.on(PutObjectCommand).resolves({ ETag: '"e"' });
    await storage.save('avatars/a.txt', 'hello');
    const input = mock.commandCalls(PutObjectCommand)[0]!.args[0].input;
    expect(input.ContentMD5).toBeUndefined();
    const withMd5 = setup({ contentMd5: true });
    withMd5.mock.on(PutObjectCommand).resolves({});
    await withMd5.storage.save('avatars/a.txt', 'hello');
    expect(withMd5.mock.commandCalls(PutObjectCommand)[0]!.args[0].input.ContentMD5).toBe(createHash('md5').update('hello').digest('base64'));
    expect(input).toMatchObject({
      Bucket: 'crm-media',
      Key: 'avatars/a.txt',
      ContentType: 'text/plain',
      ACL: 'public-read',
      ServerSideEncryption: 'AES256',
      CacheControl: 'max-age=60',
      ContentLength: 5,
    });
    expect(input.IfNoneMatch).toBeUndefined();
  });

  it('acl: false sends no ACL; a private storage sends none either', async () => {
    for (const options of [{ visibility: 'public' as const, acl: false as const }, { visibility: 'private' as const }]) {
      const { mock, storage } = setup(options);
      mock.on(PutObjectCommand).resolves({});
      await storage.save('a.txt', 'x');
      expect(mock.commandCalls(PutObjectCommand)[0]!.args[0].input.ACL).toBeUndefined();
      mock.restore();
    }
  });

  it("an explicit acl is sent by a private storage too (Django's AWS_DEFAULT_ACL with signed URLs), on writes and copies", async () => {
    const { mock, storage } = setup({ visibility: 'private', acl: 'public-read' });
    mock.on(PutObjectCommand).resolves({});
    mock.on(CopyObjectCommand).resolves({});
    mock.on(HeadObjectCommand).resolves({ ContentLength: 1 });
    await storage.save('a.txt', 'x');
    await storage.copy('a.txt', 'b.txt');
    expect(mock.commandCalls(PutObjectCommand)[0]!.args[0].input.ACL).toBe('public-read');
    expect(mock.commandCalls(CopyObjectCommand)[0]!.args[0].input.ACL).toBe('public-read');
    expect(await storage.url('a.txt')).toMatch(/X-Amz-Signature=/);
  });

  it('the ifExists option is the default of save (rename: a free name_abc1234.ext, as AWS_S3_FILE_OVERWRITE=False); save options still win', async () => {
    const { mock, storage } = setup({ ifExists: 'rename' });
    mock.on(HeadObjectCommand).rejects(s3Error('NotFound', 404, 'UnknownError'));
    mock.on(HeadObjectCommand, { Key: 'p/a.png' }).resolves({ ContentLength: 1 });
    mock.on(HeadBucketCommand).resolves({});
    mock.on(PutObjectCommand).resolves({});
    expect((await storage.save('p/a.png', 'x')).key).toMatch(/^p\/a_[a-z0-9]{7}\.png$/);
    expect((await storage.save('p/a.png', 'x', { ifExists: 'overwrite' })).key).toBe('p/a.png');
    expect((await storage.save('p/free.png', 'x')).key).toBe('p/free.png');
    expect(() => new S3Storage({ bucket: 'b', ifExists: 'replace' as never })).toThrow(/ifExists must be/);
  });

  it("public URLs encode keys as boto3 on the bucket's own URL and as Django on a custom domain", async () => {
    const key = "p/a b'()!*~+é.png";
    const own = setup({ visibility: 'public', endpoint: 'https://objects.example.test' }).storage;
    expect(await own.url(key)).toBe('https://objects.example.test/crm-media/p/a%20b%27%28%29%21%2A~%2B%C3%A9.png');
    const cdn = setup({ visibility: 'public', publicBaseUrl: 'https://cdn.example.com/media/' }).storage;
    expect(await cdn.url(key)).toBe("https://cdn.example.com/media/p/a%20b'()!*~%2B%C3%A9.png");
  });

  it('ifExists "fail" sends If-None-Match with conditionalWrites, and maps 412 to ALREADY_EXISTS', async () => {
    const { mock, storage } = setup({ conditionalWrites: true });
    mock.on(PutObjectCommand).rejects(s3Error('PreconditionFailed', 412));
    const error = await failure(storage.save('taken.txt', 'x', { ifExists: 'fail' }));
    expect(error.code).toBe('ALREADY_EXISTS');
    expect(mock.commandCalls(PutObjectCommand)[0]!.args[0].input.IfNoneMatch).toBe('*');
    expect(mock.commandCalls(HeadObjectCommand)).toHaveLength(0);
    expect(storage.capabilities.atomicCreate).toBe(true);
  });

  it('ifExists "fail" without conditionalWrites checks with HEAD first and does not claim atomicity', async () => {
    const { mock, storage } = setup();
    mock.on(HeadObjectCommand).resolves({ ContentLength: 1 });
    expect((await failure(storage.save('taken.txt', 'x', { ifExists: 'fail' }))).code).toBe('ALREADY_EXISTS');
    expect(mock.commandCalls(PutObjectCommand)).toHaveLength(0);
    expect(storage.capabilities.atomicCreate).toBe(false);
  });

  it('a failed part aborts the multipart upload, stops sending parts and never completes', async () => {
    const { mock, storage } = setup({ contentMd5: true });
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-1' });
    mock.on(UploadPartCommand).resolves({ ETag: '"part"' });
    mock.on(UploadPartCommand, { PartNumber: 2 }).rejects(s3Error('InternalError', 500));
    mock.on(AbortMultipartUploadCommand).resolves({});
    const error = await failure(storage.save('big.bin', body(60 * MiB)));
    expect(error.code).toBe('UNAVAILABLE');
    expect(mock.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);
    const aborts = mock.commandCalls(AbortMultipartUploadCommand);
    expect(aborts).toHaveLength(1);
    expect(aborts[0]!.args[0].input).toMatchObject({ Bucket: 'crm-media', Key: 'big.bin', UploadId: 'upload-1' });
    expect(mock.commandCalls(UploadPartCommand).length).toBeLessThan(12);
    // Every part carried its own MD5.
    for (const call of mock.commandCalls(UploadPartCommand)) {
      const input = call.args[0].input;
      expect(input.ContentMD5).toBe(
        createHash('md5')
          .update(input.Body as Buffer)
          .digest('base64'),
      );
    }
  });

  it('a failed CompleteMultipartUpload aborts the upload too', async () => {
    const { mock, storage } = setup();
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-2' });
    mock.on(UploadPartCommand).resolves({ ETag: '"part"' });
    mock.on(CompleteMultipartUploadCommand).rejects(s3Error('InternalError', 500));
    mock.on(AbortMultipartUploadCommand).resolves({});
    expect((await failure(storage.save('big.bin', body(11 * MiB)))).code).toBe('UNAVAILABLE');
    expect(mock.commandCalls(AbortMultipartUploadCommand)).toHaveLength(1);
  });

  it('with contentMd5, an assembled object whose ETag does not match the parts sent is removed and reported', async () => {
    const { mock, storage } = setup({ contentMd5: true });
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-3' });
    mock.on(UploadPartCommand).resolves({ ETag: '"part"' });
    mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '' });
    mock.on(HeadObjectCommand).resolves({ ContentLength: 11 * MiB, ETag: `"${'0'.repeat(32)}-3"` });
    mock.on(DeleteObjectCommand).resolves({});
    const error = await failure(storage.save('big.bin', body(11 * MiB)));
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toMatch(/does not match/);
    expect(mock.commandCalls(DeleteObjectCommand)).toHaveLength(1);
  });

  it('after the SDK retried CreateMultipartUpload, the upload a lost answer created is aborted, and only that one', async () => {
    const { mock, storage } = setup();
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'ours', $metadata: { attempts: 2 } });
    const at = (ms: number): Date => new Date(Date.parse('2026-01-01T12:00:00Z') + ms);
    const initiator = { ID: 'me' };
    mock.on(ListMultipartUploadsCommand).resolves({
      Uploads: [
        { Key: 'big.bin', UploadId: 'ours', Initiated: at(0), Initiator: initiator },
        { Key: 'big.bin', UploadId: 'lost', Initiated: at(-200), Initiator: initiator },
        { Key: 'big.bin', UploadId: 'an hour older', Initiated: at(-3_600_000), Initiator: initiator },
        { Key: 'big.bin', UploadId: 'someone else', Initiated: at(-200), Initiator: { ID: 'other' } },
        { Key: 'big.bin.old', UploadId: 'another key', Initiated: at(-200), Initiator: initiator },
      ],
    });
    mock.on(UploadPartCommand).resolves({ ETag: '"part"' });
    mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"x-3"' });
    mock.on(HeadObjectCommand).resolves({ ContentLength: 11 * MiB });
    mock.on(AbortMultipartUploadCommand).resolves({});
    await storage.save('big.bin', body(11 * MiB));
    expect(mock.commandCalls(ListMultipartUploadsCommand)[0]!.args[0].input).toMatchObject({ Bucket: 'crm-media', Prefix: 'big.bin' });
    expect(mock.commandCalls(AbortMultipartUploadCommand).map((c) => c.args[0].input.UploadId)).toEqual(['lost']);
    expect(mock.commandCalls(CompleteMultipartUploadCommand)[0]!.args[0].input.UploadId).toBe('ours');
  });

  it('a first-try CreateMultipartUpload lists nothing', async () => {
    const { mock, storage } = setup();
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-5', $metadata: { attempts: 1 } });
    mock.on(UploadPartCommand).resolves({ ETag: '"part"' });
    mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '"x-3"' });
    mock.on(HeadObjectCommand).resolves({ ContentLength: 11 * MiB });
    await storage.save('big.bin', body(11 * MiB));
    expect(mock.commandCalls(ListMultipartUploadsCommand)).toHaveLength(0);
  });

  it('an empty ETag from CompleteMultipartUpload (Ceph RGW) is taken from HeadObject and checked', async () => {
    const { mock, storage } = setup({ contentMd5: true });
    const data = Buffer.alloc(11 * MiB, 3);
    const parts = [data.subarray(0, 5 * MiB), data.subarray(5 * MiB, 10 * MiB), data.subarray(10 * MiB)];
    const etag = `${createHash('md5')
      .update(Buffer.concat(parts.map((p) => createHash('md5').update(p).digest())))
      .digest('hex')}-3`;
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'upload-4' });
    mock.on(UploadPartCommand).resolves({ ETag: '"part"' });
    mock.on(CompleteMultipartUploadCommand).resolves({ ETag: '' });
    mock.on(HeadObjectCommand).resolves({ ContentLength: data.length, ETag: `"${etag}"` });
    const info = await storage.save('big.bin', body(data.length));
    expect(info.etag).toBe(etag);
    expect(info.size).toBe(data.length);
  });
});

describe('S3 retries (the real SDK against a server that answers 503)', () => {
  async function flakyServer(failures: number, status = 503) {
    let requests = 0;
    const server = await listen((req, res) => {
      requests++;
      req.resume();
      req.on('end', () => {
        if (requests <= failures) {
          res.writeHead(status, { 'content-type': 'application/xml' });
          res.end(
            `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${status === 503 ? 'SlowDown' : 'InvalidArgument'}</Code><Message>injected</Message></Error>`,
          );
        } else {
          res.writeHead(200, { etag: '"5d41402abc4b2a76b9719d911017c592"' });
          res.end();
        }
      });
    });
    return { server, requests: () => requests };
  }
  const storageAt = (url: string) => new S3Storage({ bucket: 'crm-media', endpoint: url, credentials: { accessKeyId: 'AKIDUNIT', secretAccessKey: SECRET } });

  // Clients S3Storage builds make one attempt per call; the retry layer retries (a body given as
  // bytes is sent again whole), so the attempts are the layer's and do not multiply.
  it("succeeds when the server recovers within the retry layer's attempts", async () => {
    const { server, requests } = await flakyServer(2);
    try {
      const info = await withRetry(storageAt(server.url), { maxAttempts: 3, baseDelayMs: 1 }).save('a.txt', 'hello');
      expect(info.etag).toBe('5d41402abc4b2a76b9719d911017c592');
      expect(requests()).toBe(3);
    } finally {
      await server.close();
    }
  }, 30_000);

  it("gives UNAVAILABLE after the retry layer's attempts are spent, one request each", async () => {
    const { server, requests } = await flakyServer(100);
    try {
      const error = await failure(withRetry(storageAt(server.url), { maxAttempts: 3, baseDelayMs: 1 }).save('a.txt', 'hello'));
      expect(error.code).toBe('UNAVAILABLE');
      expect(error.status).toBe(503);
      expect(requests()).toBe(3);
    } finally {
      await server.close();
    }
  }, 30_000);

  it('a streamed body has its requests retried by the upload (the layer cannot replay a stream)', async () => {
    const { server, requests } = await flakyServer(2);
    try {
      const info = await storageAt(server.url).save('a.txt', Readable.from([Buffer.from('hello')]));
      expect(info.size).toBe(5);
      expect(requests()).toBe(3);
    } finally {
      await server.close();
    }
  }, 30_000);

  it('a server that accepts the connection and never answers gives UNAVAILABLE after the idle timeout', async () => {
    const silent = net.createServer((socket) => socket.resume());
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    // S3Storage's own client waits 120 s; a shorter idle timeout on a given client keeps this test quick.
    const client = new S3Client({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIDUNIT', secretAccessKey: SECRET },
      requestHandler: { socketTimeout: 500 },
      maxAttempts: 2,
    });
    try {
      const error = await failure(new S3Storage({ bucket: 'crm-media', client }).save('a.txt', 'hello'));
      expect(error.code).toBe('UNAVAILABLE');
      expect(error.message).toMatch(/timed out/);
    } finally {
      client.destroy();
      silent.close();
    }
  }, 30_000);

  it('does not retry a client error', async () => {
    const { server, requests } = await flakyServer(100, 400);
    try {
      expect((await failure(storageAt(server.url).save('a.txt', 'hello'))).code).toBe('INVALID_INPUT');
      expect(requests()).toBe(1);
    } finally {
      await server.close();
    }
  });
});
