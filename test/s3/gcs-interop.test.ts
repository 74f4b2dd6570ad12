// Google Cloud Storage as a target of S3Storage's interoperability mode (its XML API with HMAC
// keys). No emulator of GCS speaks the XML API offline, so what is tested here is the
// configuration docs/s3.md recommends for it: what S3Storage sends with it (captured by a local
// server standing in for storage.googleapis.com), and that the same settings work end to end on a
// real S3 server (Ceph RGW in .ci/run, when MEDIA_STORAGE_TEST_S3_* name one).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Storage, type S3StorageOptions } from '../../src/s3/index.js';
import { sendDirectUpload } from '../../src/testing/direct-upload.js';
import { externalTarget, startS3Target, type S3TestTarget } from '../support/s3-target.js';

/** The settings docs/s3.md gives for GCS, with the HMAC key of a service account. */
const gcsSettings = (endpoint: string): S3StorageOptions => ({
  bucket: 'crm-media',
  endpoint,
  region: 'auto',
  forcePathStyle: true,
  acl: false,
  credentials: { accessKeyId: 'GOOG1EXAMPLEHMACACCESSID', secretAccessKey: 'gcs-hmac-secret-example-0123456789' },
});

interface Captured {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

describe('S3Storage with the settings docs/s3.md recommends for GCS (requests captured)', () => {
  const seen: Captured[] = [];
  let server: http.Server;
  let endpoint = '';

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) });
        // Answers as GCS's XML API does for a PUT and a HEAD.
        res.writeHead(200, {
          ETag: '"5d41402abc4b2a76b9719d911017c592"',
          'Content-Type': 'image/png',
          'Content-Length': req.method === 'HEAD' ? '5' : '0',
          'Last-Modified': new Date().toUTCString(),
        });
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('signs with the region "auto", addresses the bucket in the path, and sends no ACL and no flexible checksum', async () => {
    const storage = new S3Storage(gcsSettings(endpoint));
    await storage.save('people/ada.png', Buffer.from('hello'));
    const put = seen.find((r) => r.method === 'PUT')!;
    expect(put.url.split('?')[0]).toBe('/crm-media/people/ada.png');
    expect(put.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=GOOG1EXAMPLEHMACACCESSID\/\d{8}\/auto\/s3\/aws4_request/);
    // No canned ACL (buckets with uniform bucket-level access refuse them), no aws-chunked body
    // and no x-amz-checksum-* trailer (the SDK's flexible checksums, off by default here).
    expect(put.headers['x-amz-acl']).toBeUndefined();
    expect(put.headers['content-encoding']).toBeUndefined();
    expect(Object.keys(put.headers).filter((h) => h.startsWith('x-amz-checksum') || h === 'x-amz-sdk-checksum-algorithm' || h === 'x-amz-trailer')).toEqual([]);
    // The body's SHA-256 is signed (x-amz-content-sha256), which GCS checks like S3.
    expect(put.headers['x-amz-content-sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(put.body.toString()).toBe('hello');
  });

  it('presigned URLs and direct uploads use the same scope, on the path-style URL', async () => {
    const storage = new S3Storage(gcsSettings('https://storage.googleapis.com'));
    const read = new URL(await storage.url('people/ada.png', { expiresIn: 300 }));
    expect(`${read.origin}${read.pathname}`).toBe('https://storage.googleapis.com/crm-media/people/ada.png');
    expect(read.searchParams.get('X-Amz-Credential')).toMatch(/\/auto\/s3\/aws4_request$/);
    const upload = await storage.presignUpload('people/ada.png', { contentType: 'image/png' });
    expect(upload.method).toBe('PUT');
    expect(new URL(upload.url).pathname).toBe('/crm-media/people/ada.png');
    expect(upload.headers['x-amz-acl']).toBeUndefined();
    const pub = new S3Storage({ ...gcsSettings('https://storage.googleapis.com'), visibility: 'public' });
    expect(await pub.url('people/ada.png')).toBe('https://storage.googleapis.com/crm-media/people/ada.png');
  });
});

describe.skipIf(!externalTarget)('the GCS settings end to end on a real S3 server (MEDIA_STORAGE_TEST_S3_*)', () => {
  let target: S3TestTarget;
  beforeAll(async () => {
    target = await startS3Target('gcs-settings');
  }, 60_000);
  afterAll(() => target?.stop());

  it('region "auto", path style and no ACL: save, read, a signed URL and a direct upload work', async () => {
    const storage = target.storage({ region: 'auto', forcePathStyle: true, acl: false });
    await storage.save('gcs/a.txt', 'through the interoperability settings');
    expect((await storage.readBuffer('gcs/a.txt')).toString()).toBe('through the interoperability settings');
    const res = await fetch(await storage.url('gcs/a.txt', { expiresIn: 60 }));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('through the interoperability settings');
    const sent = await sendDirectUpload(await storage.presignUpload('gcs/b.png', { contentType: 'image/png' }), Buffer.from('png bytes'));
    expect(sent.status).toBe(200);
    await sent.arrayBuffer();
    expect((await storage.stat('gcs/b.png')).contentType).toBe('image/png');
  });
});
