/**
 * S3-specific behaviour against a real server (s3rver here, Ceph RGW in .ci/run, MinIO in
 * GitHub Actions): multipart uploads and their clean-up, faults and corruption in transit,
 * credentials, private objects, direct browser uploads. Tests that need what s3rver does not
 * implement (signatures, ACLs, Content-MD5, ListMultipartUploads) skip visibly there.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { CreateBucketCommand, DeleteBucketCommand, HeadObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveAvatars } from '../../src/avatar/index.js';
import { runDoctor } from '../../src/cli/doctor.js';
import type { MediaStorageError } from '../../src/core/errors.js';
import type { S3Storage } from '../../src/s3/index.js';
import { SPECIAL_KEYS } from '../../src/testing/keys.js';
import { startHttpFaultProxy, type HttpFault } from '../support/http-fault-proxy.js';
import {
  serverChecksPayloadHashes,
  serverChecksSignatures,
  serverEnforcesAcls,
  serverListsMultipartUploads,
  startS3Target,
  targetLabel,
  type S3TestTarget,
} from '../support/s3-target.js';
import { failure } from '../support/failure.js';
import { makePng } from '../support/png.js';

const MiB = 1024 * 1024;
const PART = 5 * MiB;

/** `total` pseudo-random bytes in 64 KiB chunks, with a pause every so often; its length is unknown to the reader. */
function generated(total: number, seed = 1): { stream: () => Readable; sha256: string } {
  const block = createHash('sha512').update(String(seed)).digest();
  const chunk = Buffer.alloc(64 * 1024);
  for (let i = 0; i < chunk.length; i += block.length) block.copy(chunk, i);
  const hash = createHash('sha256');
  for (let sent = 0; sent < total; sent += chunk.length) hash.update(chunk.subarray(0, Math.min(chunk.length, total - sent)));
  return {
    sha256: hash.digest('hex'),
    stream: () => {
      let sent = 0;
      return new Readable({
        read() {
          if (sent >= total) return this.push(null);
          const n = Math.min(chunk.length, total - sent);
          sent += n;
          if (sent % (4 * MiB) === 0) setTimeout(() => this.push(chunk.subarray(0, n)), 1);
          else this.push(chunk.subarray(0, n));
        },
      });
    },
  };
}

const isPartUpload = (method: string, url: string): boolean => method === 'PUT' && /[?&]partNumber=/.test(url);
const isMultipartAbort = (method: string, url: string): boolean => method === 'DELETE' && /[?&]uploadId=/.test(url);

describe(`S3Storage against ${targetLabel}`, () => {
  let target: S3TestTarget;
  let storage: S3Storage;
  const key = (name: string): string => `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}/${name}`;

  beforeAll(async () => {
    target = await startS3Target('s3');
    storage = target.storage({ partSize: PART, multipartThreshold: PART });
  }, 120_000);
  afterAll(async () => {
    await target?.stop();
  }, 120_000);

  const FAULTS: Record<'pass' | 'fail' | 'corrupt', HttpFault> = {
    pass: { kind: 'pass' },
    fail: { kind: 'httpError', status: 500 },
    corrupt: { kind: 'corrupt' },
  };

  /** A storage whose requests pass through a proxy that fails (500 InternalError) or corrupts those `decide` names. */
  async function proxied(decide: (method: string, url: string) => keyof typeof FAULTS, options: Parameters<S3TestTarget['storage']>[0] = {}) {
    const proxy = await startHttpFaultProxy(target.endpoint);
    proxy.setFault((req) => FAULTS[decide(req.method, req.url)]);
    return { proxy, storage: target.storage({ endpoint: proxy.url, partSize: PART, multipartThreshold: PART, ...options }) };
  }

  describe('multipart uploads', () => {
    it('streams a body of unknown length in parts, checks the assembled object and reads ranges across parts', async () => {
      const k = key('unknown-length.bin');
      const body = generated(12 * MiB + 123);
      const { proxy, storage: viaProxy } = await proxied(() => 'pass', { contentMd5: true });
      try {
        const info = await viaProxy.save(k, body.stream());
        expect(info.size).toBe(12 * MiB + 123);
        const parts = proxy.requests.filter((r) => isPartUpload(r.method, r.url));
        expect(parts).toHaveLength(3);
        // Every part carries the signed SHA-256 of its bytes (never UNSIGNED-PAYLOAD) and, with
        // contentMd5, their MD5, for the server to check.
        for (const part of parts) {
          expect(part.headers['x-amz-content-sha256']).toMatch(/^[0-9a-f]{64}$/);
          expect(part.headers['content-md5']).toMatch(/^[A-Za-z0-9+/]{22}==$/);
        }
        const head = await target.client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: target.location + k }));
        expect(head.ContentLength).toBe(12 * MiB + 123);
        if (info.etag) expect(head.ETag?.replace(/"/g, '')).toBe(info.etag);
      } finally {
        await proxy.close();
      }
      const back = await storage.readBuffer(k);
      expect(createHash('sha256').update(back).digest('hex')).toBe(body.sha256);
      const across = await storage.readBuffer(k, { range: { start: PART - 3, end: PART + 2 } });
      expect(across.equals(back.subarray(PART - 3, PART + 3))).toBe(true);
    }, 120_000);

    it('an abort after some parts were sent gives ABORTED, aborts the multipart upload and keeps the old object', async () => {
      const k = key('aborted.bin');
      await storage.save(k, 'the old version');
      const { proxy, storage: viaProxy } = await proxied(() => 'pass');
      try {
        const controller = new AbortController();
        const error = await failure(
          viaProxy.save(k, generated(40 * MiB).stream(), {
            signal: controller.signal,
            // Abort once the server has received parts (reading stalls until part uploads finish).
            onProgress: () => {
              if (proxy.requests.some((r) => isPartUpload(r.method, r.url))) controller.abort();
            },
          }),
        );
        expect(error.code).toBe('ABORTED');
        expect(proxy.requests.some((r) => isPartUpload(r.method, r.url))).toBe(true);
        expect(proxy.requests.filter((r) => isMultipartAbort(r.method, r.url))).toHaveLength(1);
      } finally {
        await proxy.close();
      }
      expect((await storage.readBuffer(k)).toString()).toBe('the old version');
    }, 120_000);

    it('a body over maxSize found mid-upload gives TOO_LARGE and aborts the multipart upload', async () => {
      const k = key('too-large.bin');
      const { proxy, storage: viaProxy } = await proxied(() => 'pass');
      try {
        const error = await failure(viaProxy.save(k, generated(20 * MiB).stream(), { maxSize: 12 * MiB }));
        expect(error.code).toBe('TOO_LARGE');
        expect(proxy.requests.filter((r) => isMultipartAbort(r.method, r.url))).toHaveLength(1);
      } finally {
        await proxy.close();
      }
      expect(await storage.exists(k)).toBe(false);
    }, 120_000);

    it('a server fault on a part (after the SDK retries) gives UNAVAILABLE, stops sending parts and aborts the upload', async () => {
      const k = key('server-fault.bin');
      await storage.save(k, 'intact');
      const { proxy, storage: viaProxy } = await proxied((method, url) => (isPartUpload(method, url) && /[?&]partNumber=2(&|$)/.test(url) ? 'fail' : 'pass'));
      try {
        const error = await failure(viaProxy.save(k, generated(160 * MiB).stream()));
        expect(error.code).toBe('UNAVAILABLE');
        expect(error.status).toBe(500);
        // Part 2 was tried three times (the SDK's retries); no more parts were sent after that
        // (those already on their way finish), so far fewer than the body's 32 parts went out.
        expect(proxy.requests.filter((r) => r.fault === 'httpError')).toHaveLength(3);
        expect(proxy.requests.filter((r) => isPartUpload(r.method, r.url)).length).toBeLessThan(32);
        expect(proxy.requests.filter((r) => isMultipartAbort(r.method, r.url))).toHaveLength(1);
      } finally {
        await proxy.close();
      }
      expect((await storage.readBuffer(k)).toString()).toBe('intact');
    }, 120_000);

    it.skipIf(!serverChecksPayloadHashes)(
      'a part or a single put corrupted in transit is refused by the server (signed SHA-256) and nothing is stored [needs a server that checks payload hashes]',
      async () => {
        const multi = key('corrupt-part.bin');
        const single = key('corrupt-single.bin');
        const { proxy, storage: viaProxy } = await proxied((method, url) =>
          (isPartUpload(method, url) && /[?&]partNumber=2(&|$)/.test(url)) || (method === 'PUT' && url.includes('corrupt-single')) ? 'corrupt' : 'pass',
        );
        try {
          const a = await failure(viaProxy.save(multi, generated(11 * MiB).stream()));
          expect(a.code).toBe('UNAVAILABLE');
          expect(a.message).toMatch(/checksum|digest/i);
          const b = await failure(viaProxy.save(single, randomBytes(1000)));
          expect(b.code).toBe('UNAVAILABLE');
          expect(proxy.requests.filter((r) => isMultipartAbort(r.method, r.url))).toHaveLength(1);
        } finally {
          await proxy.close();
        }
        expect(await storage.exists(multi)).toBe(false);
        expect(await storage.exists(single)).toBe(false);
      },
      120_000,
    );

    it.skipIf(!serverListsMultipartUploads)(
      'after the failed and aborted uploads above, ListMultipartUploads is empty [needs ListMultipartUploads]',
      async () => {
        const uploads = await target.client.send(new ListMultipartUploadsCommand({ Bucket: target.bucket, Prefix: target.location }));
        expect(uploads.Uploads ?? []).toEqual([]);
      },
    );
  });

  describe('credentials and configuration', () => {
    it.skipIf(!serverChecksSignatures)('a wrong secret gives AUTH without the secret in the message [needs a server that checks signatures]', async () => {
      const secret = 'this-is-the-wrong-secret-0123456789';
      const wrong = target.storage({ credentials: { accessKeyId: target.credentials.accessKeyId, secretAccessKey: secret } });
      for (const attempt of [() => wrong.save(key('auth.txt'), 'x'), () => wrong.readBuffer(key('auth.txt')), () => wrong.list('')]) {
        const error = await failure(attempt());
        expect(error.code).toBe('AUTH');
        expect(error.message).not.toContain(secret);
        expect(String(error.stack)).not.toContain(secret);
      }
    });

    it.skipIf(!serverChecksSignatures)(
      'exists and stat with a wrong secret say the credentials were rejected (AUTH), never "failed: Unknown" [needs a server that checks signatures]',
      async () => {
        const wrong = target.storage({ credentials: { accessKeyId: target.credentials.accessKeyId, secretAccessKey: 'this-is-the-wrong-secret-0123456789' } });
        const present = key('present.txt');
        await storage.save(present, 'x');
        for (const attempt of [() => wrong.exists(present), () => wrong.stat(present), () => wrong.exists(key('absent.txt'))]) {
          const error = await failure(attempt());
          expect(error.code).toBe('AUTH');
          expect(error.message).toContain('the S3 credentials were rejected (SignatureDoesNotMatch)');
          expect(error.message).not.toMatch(/Unknown/);
        }
      },
    );

    it('a missing bucket gives CONFIG with a message that names it, for exists and stat too', async () => {
      const bucket = `media-storage-missing-${randomBytes(4).toString('hex')}`;
      const missing = target.storage({ bucket });
      for (const attempt of [
        () => missing.save('a.txt', 'x'),
        () => missing.list(''),
        () => missing.exists('a.txt'),
        () => missing.stat('a.txt'),
        () => missing.readBuffer('a.txt'),
      ]) {
        const error = await failure(attempt());
        expect(error.code).toBe('CONFIG');
        expect(error.message).toContain(`the bucket "${bucket}" does not exist`);
      }
    });

    it('a missing bucket reaches resolveAvatars through onError, and the doctor names it', async () => {
      const bucket = `media-storage-missing-${randomBytes(4).toString('hex')}`;
      const missing = target.storage({ bucket });
      const errors: Array<[MediaStorageError, string]> = [];
      const avatars = await resolveAvatars(missing, ['profile_images/a.jpg', 'profile_images/b.jpg', null], {
        onError: (err, path) => errors.push([err as MediaStorageError, path]),
      });
      expect(avatars.map((a) => a.isDefault)).toEqual([true, true, true]);
      // The two checks run concurrently, so their errors arrive in either order.
      expect(errors.map(([err, path]) => [err.code, path]).sort()).toEqual([
        ['CONFIG', 'profile_images/a.jpg'],
        ['CONFIG', 'profile_images/b.jpg'],
      ]);
      expect(errors[0]![0].message).toContain(`"${bucket}"`);
      const report = await runDoctor({ storage: missing, env: {} });
      expect(report.healthy).toBe(false);
      expect(report.checks.find((c) => c.level === 'fail')?.detail).toContain(`the bucket "${bucket}" does not exist`);
    });

    it('one request per exists in the usual case: a HeadBucket only on the first 404, and a bucket created later is seen', async () => {
      /** The commands a storage's client sends, in order. */
      const sentBy = (storage: S3Storage): string[] => {
        const names: string[] = [];
        storage.client.middlewareStack.add(
          (next, context) => (args) => {
            names.push(context.commandName!);
            return next(args);
          },
          { step: 'build' },
        );
        return names;
      };
      const counted = target.storage();
      const sent = sentBy(counted);
      const k = key('present.txt');
      await counted.save(k, 'here');
      sent.length = 0;
      for (let i = 0; i < 20; i++) expect(await counted.exists(k)).toBe(true);
      for (let i = 0; i < 20; i++) expect(await counted.exists(key(`absent-${i}.txt`))).toBe(false);
      // A found object proves the bucket exists: even the first 404 needed no HeadBucket here.
      expect(sent.filter((c) => c === 'HeadObjectCommand')).toHaveLength(40);
      expect(sent.filter((c) => c === 'HeadBucketCommand')).toHaveLength(0);

      const fresh = target.storage();
      const freshSent = sentBy(fresh);
      for (let i = 0; i < 20; i++) expect(await fresh.exists(key(`absent-${i}.txt`))).toBe(false);
      expect(freshSent.filter((c) => c === 'HeadBucketCommand')).toHaveLength(1);
      expect(freshSent).toHaveLength(21);

      // Missing, then created: the next save succeeds and from then on a missing key is just absent.
      const bucket = `media-storage-later-${randomBytes(4).toString('hex')}`;
      const later = target.storage({ bucket, location: '' });
      expect((await failure(later.exists('a.txt'))).code).toBe('CONFIG');
      await target.client.send(new CreateBucketCommand({ Bucket: bucket }));
      try {
        await later.save('a.txt', 'x');
        expect(await later.exists('b.txt')).toBe(false);
        expect(await later.exists('a.txt')).toBe(true);
        await later.delete('a.txt');
      } finally {
        await target.client.send(new DeleteBucketCommand({ Bucket: bucket }));
      }
    });
  });

  describe('urls and visibility', () => {
    it.skipIf(!serverEnforcesAcls)(
      "an anonymous fetch of a private object's plain URL is refused while its signed URL works [needs a server that enforces ACLs]",
      async () => {
        const k = key('private.png');
        const secret = target.storage({ visibility: 'private' });
        await secret.save(k, 'private bytes', { contentType: 'image/png' });
        const plain = await target.storage({ visibility: 'public' }).url(k);
        const refused = await fetch(plain);
        expect(refused.status).toBe(403);
        await refused.arrayBuffer();
        const signed = await secret.url(k);
        expect(signed).toMatch(/X-Amz-Signature=/);
        const served = await fetch(signed);
        expect(served.status).toBe(200);
        expect(await served.text()).toBe('private bytes');
      },
    );

    it('a copy of a public object is public too, with the same type and metadata', async () => {
      const pub = target.storage({ visibility: 'public' });
      const from = key('public-src.png');
      const to = key('public-copy.png');
      await pub.save(from, 'png-ish', { contentType: 'image/png', metadata: { owner: 'lead-42' } });
      const info = await pub.copy(from, to);
      expect(info.contentType).toBe('image/png');
      expect(info.metadata).toMatchObject({ owner: 'lead-42' });
      const res = await fetch(await pub.url(to));
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('png-ish');
    });

    it('private signed URLs serve every special key', async () => {
      const secret = target.storage({ visibility: 'private' });
      const prefix = key('special/');
      for (const special of SPECIAL_KEYS) {
        const k = `${prefix}${special}`;
        await secret.save(k, `content of ${special}`);
        const res = await fetch(await secret.url(k));
        expect(res.status, special).toBe(200);
        expect(await res.text()).toBe(`content of ${special}`);
      }
    });

    it('stores active content as a binary attachment, so browsers neither render nor run it from the bucket', async () => {
      const k = key('avatar.svg');
      const pub = target.storage({ visibility: 'public' });
      await pub.save(k, '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');
      const head = await target.client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: target.location + k }));
      expect(head.ContentType).toBe('application/octet-stream');
      expect(head.ContentDisposition).toBe(`attachment; filename="avatar.svg"; filename*=UTF-8''avatar.svg`);
      const res = await fetch(await pub.url(k));
      expect(res.headers.get('content-disposition')).toMatch(/^attachment/);
      await res.arrayBuffer();
    });

    it("stores the serving rule's headers: raster images inline, other types as attachments, executable kinds as binary", async () => {
      const stored: Record<string, { type?: string; disposition?: string }> = {};
      for (const [name, body, contentType] of [
        ['photo.png', makePng(2, 2), undefined],
        ['notes.txt', 'words', undefined],
        ['doc.pdf', '%PDF-1.7 body', undefined],
        ['app.js', 'window.__pwned = 1', undefined],
        ['js-as.jpg', 'window.__pwned = 1', 'application/x-javascript'],
        ['style.css', 'body{}', undefined],
        ['comment.jpg', '<!-- x --><html><script>alert(1)</script></html>', undefined],
      ] as const) {
        const k = key(name);
        const info = await storage.save(k, body, contentType ? { contentType } : {});
        const head = await target.client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: target.location + k }));
        expect(info.contentType).toBe(head.ContentType);
        stored[name] = { type: head.ContentType, disposition: head.ContentDisposition?.replace(/;.*/, '') };
      }
      expect(stored).toEqual({
        'photo.png': { type: 'image/png', disposition: undefined },
        'notes.txt': { type: 'text/plain', disposition: 'attachment' },
        'doc.pdf': { type: 'application/pdf', disposition: 'attachment' },
        'app.js': { type: 'application/octet-stream', disposition: 'attachment' },
        'js-as.jpg': { type: 'application/octet-stream', disposition: 'attachment' },
        'style.css': { type: 'application/octet-stream', disposition: 'attachment' },
        'comment.jpg': { type: 'application/octet-stream', disposition: 'attachment' },
      });
      // An app that opts PDF in gets it inline.
      const k = key('inline.pdf');
      await target.storage({ inlineContentTypes: ['application/pdf'] }).save(k, '%PDF-1.7 body');
      const head = await target.client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: target.location + k }));
      expect(head).toMatchObject({ ContentType: 'application/pdf' });
      expect(head.ContentDisposition).toBeUndefined();
    });

    it('keeps objects under the location prefix and lists them relative to it', async () => {
      const k = key('located.txt');
      await storage.save(k, 'here');
      const head = await target.client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: `${target.location}${k}` }));
      expect(head.ContentLength).toBe(4);
      expect((await storage.list(k)).items.map((i) => i.key)).toEqual([k]);
    });
  });

  describe('direct uploads', () => {
    it('a presigned PUT uploads with the signed content type', async () => {
      const k = key('direct.png');
      const request = await storage.presignUpload(k, { contentType: 'image/png', expiresIn: 300 });
      expect(request.method).toBe('PUT');
      const res = await fetch(request.url, { method: 'PUT', headers: request.headers, body: 'uploaded by a browser' });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      expect((await storage.readBuffer(k)).toString()).toBe('uploaded by a browser');
      expect((await storage.stat(k)).contentType).toBe('image/png');
    });

    it('a presigned PUT of an executable kind must send it as a binary attachment, and is stored so', async () => {
      const k = key('direct.js');
      const request = await storage.presignUpload(k, { contentType: 'text/javascript' });
      expect(request.headers['Content-Type']).toBe('application/octet-stream');
      expect(request.headers['Content-Disposition']).toBe(`attachment; filename="direct.js"; filename*=UTF-8''direct.js`);
      expect(await failure(storage.presignUpload(key('bad.png'), { contentType: 'image/png\r\nX-Injected: 1' }))).toMatchObject({ code: 'INVALID_INPUT' });
      const res = await fetch(request.url, { method: 'PUT', headers: request.headers, body: 'window.__pwned = 1' });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      const head = await target.client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: target.location + k }));
      expect(head).toMatchObject({ ContentType: 'application/octet-stream', ContentDisposition: request.headers['Content-Disposition'] });
    });

    it.skipIf(!serverChecksSignatures)('a presigned PUT refuses to go without its Content-Disposition [needs a server that checks signatures]', async () => {
      const k = key('direct-no-disposition.html');
      const request = await storage.presignUpload(k);
      const { 'Content-Disposition': _dropped, ...headers } = request.headers;
      const res = await fetch(request.url, { method: 'PUT', headers, body: '<html><script>alert(1)</script>' });
      expect(res.status).toBe(403);
      await res.arrayBuffer();
      expect(await storage.exists(k)).toBe(false);
    });

    it.skipIf(!serverChecksSignatures)('a presigned PUT refuses another content type [needs a server that checks signatures]', async () => {
      const k = key('direct-type.png');
      const request = await storage.presignUpload(k, { contentType: 'image/png' });
      const res = await fetch(request.url, {
        method: 'PUT',
        headers: { ...request.headers, 'Content-Type': 'text/html' },
        body: '<html><script>alert(1)</script>',
      });
      expect(res.status).toBe(403);
      await res.arrayBuffer();
      expect(await storage.exists(k)).toBe(false);
    });

    it('a POST policy with maxSize accepts a file within the limit', async () => {
      const k = key('posted.jpg');
      const request = await storage.presignUpload(k, { contentType: 'image/jpeg', maxSize: 1000 });
      expect(request.method).toBe('POST');
      const form = new FormData();
      for (const [name, value] of Object.entries(request.fields ?? {})) form.append(name, value);
      form.append('file', new Blob([Buffer.alloc(1000, 7)], { type: 'image/jpeg' }), 'photo.jpg');
      const res = await fetch(request.url, { method: 'POST', body: form });
      expect(res.status).toBeLessThan(300);
      await res.arrayBuffer();
      expect((await storage.stat(k)).size).toBe(1000);
    });

    it.skipIf(!serverChecksSignatures)('a POST policy with maxSize refuses a larger file [needs a server that checks POST policies]', async () => {
      const k = key('posted-big.jpg');
      const request = await storage.presignUpload(k, { contentType: 'image/jpeg', maxSize: 1000 });
      const form = new FormData();
      for (const [name, value] of Object.entries(request.fields ?? {})) form.append(name, value);
      form.append('file', new Blob([Buffer.alloc(1001, 7)], { type: 'image/jpeg' }), 'photo.jpg');
      const res = await fetch(request.url, { method: 'POST', body: form });
      expect(res.status).toBe(400);
      await res.arrayBuffer();
      expect(await storage.exists(k)).toBe(false);
    });
  });
});
