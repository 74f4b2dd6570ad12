// Direct uploads in a real browser (Debian's chromium, driven by playwright-core): a page on the
// app's origin asks the app for a presigned upload, sends the photo with media-storage/browser
// (XMLHttpRequest, progress, abort) straight to the store, and then shows it. Against the local
// handler always; against the S3 server named by MEDIA_STORAGE_TEST_S3_* (Ceph RGW in .ci/run),
// which is another origin, after the bucket's CORS rule is set with PutBucketCors.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, ListObjectsV2Command, PutBucketCorsCommand, S3Client } from '@aws-sdk/client-s3';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDoctor } from '../../src/cli/doctor.js';
import { LocalStorage } from '../../src/local/index.js';
import { S3Storage } from '../../src/s3/index.js';
import type { MediaStorage } from '../../src/core/types.js';
import { haveBrowser, launchChromium, reportMissingBrowser } from '../support/chromium.js';
import { listen } from '../support/http.js';
import { makePng } from '../support/png.js';
import { tempDir } from '../support/tmp.js';

const SUITE = 'direct uploads from Chromium';
reportMissingBrowser(SUITE);
const env = process.env;
const rgw = env.MEDIA_STORAGE_TEST_S3_ENDPOINT;
const HELPER = path.resolve('dist/browser/index.js');

const PAGE = `<!doctype html><meta charset="utf-8"><title>direct uploads</title>
<script type="module">
import { uploadFile } from '/media-storage-browser.js';
window.tryUpload = async ({ to, key, bytes, size, type, maxSize, abortMidway }) => {
  const query = new URLSearchParams({ to, key, type, ...(maxSize ? { maxSize: String(maxSize) } : {}) });
  const { upload, url } = await (await fetch('/presign?' + query, { method: 'POST' })).json();
  const data = bytes ? new Uint8Array(bytes) : new Uint8Array(size);
  const file = new File([data], key.split('/').pop(), { type });
  const progress = [];
  const controller = new AbortController();
  try {
    const answer = await uploadFile(upload, file, {
      signal: controller.signal,
      onProgress: (p) => {
        progress.push([p.loaded, p.total]);
        if (abortMidway && p.loaded > 0 && p.loaded < p.total) controller.abort();
      },
    });
    const img = document.createElement('img');
    img.src = url;
    document.body.append(img);
    await img.decode();
    return { ok: true, status: answer.status, progress, width: img.naturalWidth, height: img.naturalHeight, origin: new URL(upload.url, location.href).origin };
  } catch (err) {
    return { ok: false, name: err.name, status: err.status, progress, origin: new URL(upload.url, location.href).origin };
  }
};
window.ready = true;
</script>`;

interface Outcome {
  ok: boolean;
  status?: number;
  name?: string;
  progress: Array<[number, number]>;
  width?: number;
  height?: number;
  origin: string;
}

describe.skipIf(!haveBrowser)(SUITE, () => {
  let local: LocalStorage;
  let s3: S3Storage | undefined;
  let s3Client: S3Client | undefined;
  let bucket = '';
  let app: Awaited<ReturnType<typeof listen>>;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let page: Page;
  let tmp: Awaited<ReturnType<typeof tempDir>>;

  const storageFor = (to: string): MediaStorage => (to === 's3' ? s3! : local);

  beforeAll(async () => {
    tmp = await tempDir('direct-upload-browser');
    local = new LocalStorage({ root: tmp.dir, baseUrl: '/media', secret: 'browser-test-secret-0123456789', warnOnEphemeralDisk: false });
    if (rgw) {
      const credentials = { accessKeyId: env.MEDIA_STORAGE_TEST_S3_ACCESS_KEY!, secretAccessKey: env.MEDIA_STORAGE_TEST_S3_SECRET_KEY! };
      const region = env.MEDIA_STORAGE_TEST_S3_REGION ?? 'us-east-1';
      bucket = `ms-browser-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
      s3Client = new S3Client({ endpoint: rgw, region, credentials, forcePathStyle: true });
      await s3Client.send(new CreateBucketCommand({ Bucket: bucket }));
      s3 = new S3Storage({ bucket, endpoint: rgw, region, credentials, visibility: 'public' });
    }
    const handler = local.handler();
    const helper = await readFile(HELPER, 'utf8');
    app = await listen((req, res) => {
      const url = new URL(req.url ?? '/', 'http://app');
      if (url.pathname === '/') {
        res.setHeader('Content-Type', 'text/html; charset=utf-8');
        return res.end(PAGE);
      }
      if (url.pathname === '/media-storage-browser.js') {
        res.setHeader('Content-Type', 'text/javascript');
        return res.end(helper);
      }
      if (url.pathname === '/presign' && req.method === 'POST') {
        const storage = storageFor(url.searchParams.get('to') ?? 'local');
        const key = url.searchParams.get('key')!;
        const maxSize = url.searchParams.get('maxSize');
        void (async () => {
          const upload = await storage.presignUpload!(key, { contentType: url.searchParams.get('type')!, ...(maxSize ? { maxSize: Number(maxSize) } : {}) });
          res.setHeader('Content-Type', 'application/json');
          res.end(JSON.stringify({ upload, url: await storage.url(key) }));
        })().catch((err: unknown) => {
          res.statusCode = 500;
          res.end(String(err));
        });
        return;
      }
      handler(req, res);
    });
    browser = await launchChromium();
    page = await browser.context.newPage();
    await page.goto(`${app.url}/`);
    await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await tmp?.remove();
    if (s3Client && bucket) {
      const listed = await s3Client.send(new ListObjectsV2Command({ Bucket: bucket }));
      for (const o of listed.Contents ?? []) await s3Client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key! }));
      await s3Client.send(new DeleteBucketCommand({ Bucket: bucket }));
    }
  }, 60_000);

  const tryUpload = (args: {
    to: string;
    key: string;
    bytes?: number[];
    size?: number;
    type: string;
    maxSize?: number;
    abortMidway?: boolean;
  }): Promise<Outcome> => page.evaluate((a) => (window as unknown as { tryUpload: (x: typeof a) => Promise<Outcome> }).tryUpload(a), args);

  it('uploads a photo straight to the local handler with progress, and the photo renders', async () => {
    const photo = makePng(48, 32);
    const outcome = await tryUpload({ to: 'local', key: 'people/ada/photo.png', bytes: [...photo], type: 'image/png' });
    expect(outcome).toMatchObject({ ok: true, status: 200, width: 48, height: 32, origin: app.url });
    expect(outcome.progress.at(-1)).toEqual([photo.length, photo.length]);
    expect((await local.readBuffer('people/ada/photo.png')).equals(photo)).toBe(true);
  });

  it('a file over the signed maxSize is refused by the handler (413) and nothing is stored', async () => {
    const outcome = await tryUpload({ to: 'local', key: 'people/big.png', size: 5000, type: 'image/png', maxSize: 1000 });
    expect(outcome).toMatchObject({ ok: false, name: 'DirectUploadError', status: 413 });
    expect(await local.exists('people/big.png')).toBe(false);
  });

  it('aborting midway rejects with AbortError and the handler stores nothing', async () => {
    const outcome = await tryUpload({ to: 'local', key: 'people/aborted.png', size: 64 * 1024 * 1024, type: 'image/png', abortMidway: true });
    expect(outcome).toMatchObject({ ok: false, name: 'AbortError' });
    expect(outcome.progress.length).toBeGreaterThan(0);
    // The handler's save is aborted when the connection drops; give it a moment to clean up.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await local.exists('people/aborted.png')).toBe(false);
  }, 60_000);

  it.skipIf(!rgw)(
    `a page on one origin uploads a photo straight to the S3 server on another (${rgw ?? 'MEDIA_STORAGE_TEST_S3_ENDPOINT not set'}) once the bucket allows it by CORS, and the photo renders`,
    async () => {
      const photo = makePng(40, 40, [30, 120, 200]);
      // Without a CORS rule the browser refuses to send it (status 0), and the app learns nothing more.
      const blocked = await tryUpload({ to: 's3', key: 'people/grace/photo.png', bytes: [...photo], type: 'image/png' });
      expect(blocked).toMatchObject({ ok: false, name: 'DirectUploadError', status: 0 });
      expect(blocked.origin).not.toBe(app.url);
      const doctorBefore = await runDoctor({ storage: s3!, origin: app.url });
      expect(doctorBefore.checks.find((c) => c.name === 'cors')?.level).toBe('warn');

      await s3Client!.send(
        new PutBucketCorsCommand({
          Bucket: bucket,
          CORSConfiguration: {
            CORSRules: [
              { AllowedOrigins: [app.url], AllowedMethods: ['GET', 'PUT', 'POST'], AllowedHeaders: ['*'], ExposeHeaders: ['ETag'], MaxAgeSeconds: 600 },
            ],
          },
        }),
      );
      const doctorAfter = await runDoctor({ storage: s3!, origin: app.url });
      expect(doctorAfter.checks.find((c) => c.name === 'cors')).toMatchObject({ level: 'ok' });

      const outcome = await tryUpload({ to: 's3', key: 'people/grace/photo.png', bytes: [...photo], type: 'image/png' });
      expect(outcome).toMatchObject({ ok: true, status: 200, width: 40, height: 40 });
      expect(outcome.origin).toBe(new URL(rgw!).origin);
      expect((await s3!.readBuffer('people/grace/photo.png')).equals(photo)).toBe(true);
      expect((await s3!.stat('people/grace/photo.png')).contentType).toBe('image/png');

      // With maxSize it is a POST policy, which the server enforces.
      const capped = await tryUpload({ to: 's3', key: 'people/grace/big.png', size: 5000, type: 'image/png', maxSize: 1000 });
      expect(capped).toMatchObject({ ok: false, name: 'DirectUploadError' });
      expect(capped.status).toBeGreaterThanOrEqual(400);
      expect(await s3!.exists('people/grace/big.png')).toBe(false);
      const posted = await tryUpload({ to: 's3', key: 'people/grace/small.png', bytes: [...photo], type: 'image/png', maxSize: 100_000 });
      expect(posted).toMatchObject({ ok: true, width: 40 });
    },
    120_000,
  );
});
