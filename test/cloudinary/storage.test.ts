import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CloudinaryStorage, type CloudinaryStorageOptions } from '../../src/cloudinary/index.js';
import { CloudinaryApiError, fromSdkRejection, mapCloudinaryError, rateLimitRetryAfter } from '../../src/cloudinary/errors.js';
import { escapePublicId, homesOf, keyOf, unescapePublicId } from '../../src/cloudinary/mapping.js';
import type { MediaStorageError } from '../../src/core/errors.js';
import { FakeCloudinary, deliverySignature } from '../support/fakes/cloudinary-server.js';
import { failure as errorOf, failureCode as codeOf } from '../support/failure.js';
import { sendDirectUpload } from '../../src/testing/direct-upload.js';

const ACCOUNT = { cloudName: 'unit-cloud', apiKey: '111111111111111', apiSecret: 'unit-secret-0123456789abcd' };
const OTHER = { cloudName: 'other-cloud', apiKey: '222222222222222', apiSecret: 'other-secret-9876543210zyxw' };

const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63f8cfc0f01f0005000201a0d1e33a0000000049454e44ae426082',
  'hex',
);
const JPEG = Buffer.concat([Buffer.from('ffd8ffe000104a46494600010100000100010000', 'hex'), randomBytes(64)]);
const MP4 = Buffer.concat([Buffer.from('0000001866747970', 'hex'), Buffer.from('isom0000', 'latin1'), randomBytes(64)]);

let fake: FakeCloudinary;
const made: CloudinaryStorage[] = [];
let run = 0;

function storage(options: CloudinaryStorageOptions = {}): CloudinaryStorage {
  const s = new CloudinaryStorage({ cloudinaryUrl: fake.cloudinaryUrl(ACCOUNT.cloudName), fetch: fake.fetch, folder: `t${++run}`, ...options });
  made.push(s);
  return s;
}

beforeAll(async () => {
  fake = await new FakeCloudinary([ACCOUNT, OTHER]).start();
});

afterAll(async () => {
  for (const s of made) s.close();
  await fake.stop();
});

describe('key ↔ asset mapping', () => {
  const keys = [
    'profile_images/abc.jpg',
    'a.png',
    'clips/intro.mp4',
    'voice/note.mp3',
    'docs/cv.pdf',
    'README',
    'photo.jpeg',
    'IMG_0001.JPG',
    'me.v2.jpg',
    'a b+c%d#e?f&g=h.txt',
    'tilde~7E~.txt',
    ' leading and trailing .txt',
    'trailing space ',
    '中文/头像.png',
    'emoji 😀/x<y>.gif',
  ];

  it('maps profile_images/abc.jpg to image profile_images/abc, format jpg, and raw files with their extension', () => {
    expect(homesOf('profile_images/abc.jpg', '')).toEqual({
      media: { resourceType: 'image', publicId: 'profile_images/abc', format: 'jpg' },
      raw: { resourceType: 'raw', publicId: 'profile_images/abc.jpg' },
    });
    expect(homesOf('clips/intro.mp4', 'media/').media).toEqual({ resourceType: 'video', publicId: 'media/clips/intro', format: 'mp4' });
    expect(homesOf('docs/cv.pdf', '')).toEqual({ raw: { resourceType: 'raw', publicId: 'docs/cv.pdf' } });
    // Extensions Cloudinary would report under another name, and stems with dots, stay raw.
    for (const key of ['photo.jpeg', 'IMG_0001.JPG', 'me.v2.jpg']) expect(homesOf(key, '').media).toBeUndefined();
  });

  it('gives every key back from each of its homes, with and without a folder', () => {
    for (const folder of ['', 'media/', 'deep/er/']) {
      for (const key of keys) {
        const homes = homesOf(key, folder);
        expect(keyOf(homes.raw, folder), `${folder}${key} raw`).toBe(key);
        if (homes.media) expect(keyOf(homes.media, folder), `${folder}${key} media`).toBe(key);
        // Public IDs never carry what Cloudinary forbids.
        expect(homes.raw.publicId).not.toMatch(/[?&#\\%<>]|^ | $/);
      }
    }
  });

  it('escapes and unescapes reversibly, and refuses public IDs it did not write', () => {
    for (const text of ['a~b', '~3F', '100%', 'x?y&z#w', ' a ', '<>', 'plain/path.txt']) expect(unescapePublicId(escapePublicId(text))).toBe(text);
    expect(unescapePublicId('has%percent')).toBeUndefined();
    expect(unescapePublicId('lone~tilde')).toBeUndefined();
    expect(keyOf({ resourceType: 'image', publicId: 'other-folder/x', format: 'png' }, 'media/')).toBeUndefined();
    expect(keyOf({ resourceType: 'image', publicId: 'x', format: 'pdf' }, '')).toBeUndefined();
    expect(keyOf({ resourceType: 'image', publicId: 'x.v2', format: 'jpg' }, '')).toBeUndefined();
  });

  it('refuses keys whose public ID would exceed 255 characters with INVALID_KEY', async () => {
    const s = storage({ folder: 'f'.repeat(100) });
    const key = `${'k'.repeat(120)}/${'n'.repeat(40)}.txt`;
    expect(await codeOf(s.save(key, 'x'))).toBe('INVALID_KEY');
    expect(await codeOf(s.exists(key))).toBe('INVALID_KEY');
  });

  it('stores each body in the home its bytes and key decide, and lists the keys back', async () => {
    const s = storage();
    await s.save('m/photo.png', PNG);
    // Markup is refused: Cloudinary would serve it inline from its domain.
    await expect(s.save('m/fake.jpg', '<html><script>alert(1)</script></html>')).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    await s.save('m/notes.jpg', 'plain words under a .jpg name');
    await s.save('m/clip.mp4', MP4);
    await s.save('m/cv.pdf', '%PDF-1.4 not really');
    const f = s.folder;
    expect(fake.asset(ACCOUNT.cloudName, 'image', 'upload', `${f}m/photo`)?.format).toBe('png');
    expect(fake.asset(ACCOUNT.cloudName, 'raw', 'upload', `${f}m/fake.jpg`)).toBeUndefined();
    expect(fake.asset(ACCOUNT.cloudName, 'image', 'upload', `${f}m/fake`)).toBeUndefined();
    expect(fake.asset(ACCOUNT.cloudName, 'raw', 'upload', `${f}m/notes.jpg`)).toBeDefined();
    expect(fake.asset(ACCOUNT.cloudName, 'video', 'upload', `${f}m/clip`)?.format).toBe('mp4');
    expect(fake.asset(ACCOUNT.cloudName, 'raw', 'upload', `${f}m/cv.pdf`)).toBeDefined();
    // Listed in key order across the three resource types.
    expect((await s.list('m/')).items.map((i) => i.key)).toEqual(['m/clip.mp4', 'm/cv.pdf', 'm/notes.jpg', 'm/photo.png']);
    expect((await s.readBuffer('m/photo.png')).equals(PNG)).toBe(true);
    expect((await s.readBuffer('m/clip.mp4')).equals(MP4)).toBe(true);
    expect(await s.exists('m/fake.jpg')).toBe(false);
  });

  it('lists media keys in key order even where public-ID order differs (a-b.jpg before a.jpg)', async () => {
    const s = storage();
    for (const key of ['o/a.jpg', 'o/a-b.jpg', 'o/a.txt', 'o/a0.png']) await s.save(key, key.endsWith('.txt') ? 'text' : key.endsWith('.png') ? PNG : JPEG);
    const keys = ['o/a-b.jpg', 'o/a.jpg', 'o/a.txt', 'o/a0.png'];
    expect((await s.list('o/')).items.map((i) => i.key)).toEqual(keys);
    const paged: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await s.list('o/', { cursor, limit: 1 });
      paged.push(...page.items.map((i) => i.key));
      cursor = page.cursor;
    } while (cursor);
    expect(paged).toEqual(keys);
    expect((await s.list('o/a.j')).items.map((i) => i.key)).toEqual(['o/a.jpg']);
    expect(await codeOf(s.list('o/', { cursor: 'not-a-cursor' }))).toBe('INVALID_INPUT');
  });

  it('merges images and raw files page by page, past the Admin API page of 500', async () => {
    const s = storage();
    const keys: string[] = [];
    for (let i = 0; i < 530; i++) {
      const n = String(i).padStart(5, '0');
      keys.push(`mix/${n}.png`);
      if (i % 40 === 0) keys.push(`mix/${n}.txt`);
    }
    for (let i = 0; i < keys.length; i += 32) await Promise.all(keys.slice(i, i + 32).map((key) => s.save(key, key.endsWith('.png') ? PNG : 'text')));
    const sorted = [...keys].sort();
    const all: string[] = [];
    for await (const info of s.listAll('mix/', { pageSize: 250 })) all.push(info.key);
    expect(all).toEqual(sorted);
    const first = await s.list('mix/');
    expect(first.items.map((i) => i.key)).toEqual(sorted);
    expect(first.cursor).toBeUndefined();
    expect(first.items.find((i) => i.key === 'mix/00040.txt')).toMatchObject({ size: 4, contentType: 'text/plain' });
    expect(first.items.find((i) => i.key === 'mix/00040.png')).toMatchObject({ size: PNG.length, contentType: 'image/png' });
  }, 60_000);

  it('moves a key between its homes when its content changes kind, leaving one copy', async () => {
    const s = storage();
    const f = s.folder;
    await s.save('mv/pic.png', PNG);
    await s.save('mv/pic.png', 'now it is text');
    expect(fake.asset(ACCOUNT.cloudName, 'image', 'upload', `${f}mv/pic`)).toBeUndefined();
    expect((await s.readBuffer('mv/pic.png')).toString()).toBe('now it is text');
    await s.save('mv/pic.png', PNG);
    expect(fake.asset(ACCOUNT.cloudName, 'raw', 'upload', `${f}mv/pic.png`)).toBeUndefined();
    expect((await s.readBuffer('mv/pic.png')).equals(PNG)).toBe(true);
    expect((await s.list('mv/')).items.map((i) => i.key)).toEqual(['mv/pic.png']);
  });
});

describe('a.jpg and a.png share one public ID', () => {
  it('never overwrites the other key: ALREADY_EXISTS, whatever the policy, and the first stays whole', async () => {
    const s = storage();
    await s.save('c/a.png', PNG);
    for (const ifExists of ['overwrite', 'fail'] as const) {
      const err = await errorOf(s.save('c/a.jpg', JPEG, { ifExists }));
      expect(err.code).toBe('ALREADY_EXISTS');
      expect(err.message).toMatch(/public ID/);
    }
    expect((await s.readBuffer('c/a.png')).equals(PNG)).toBe(true);
    expect(await s.exists('c/a.jpg')).toBe(false);
    expect(await codeOf(s.stat('c/a.jpg'))).toBe('NOT_FOUND');
    expect(await codeOf(s.read('c/a.jpg'))).toBe('NOT_FOUND');
    // Deleting the sibling key must not touch a.png.
    await s.delete('c/a.jpg');
    expect(await s.exists('c/a.png')).toBe(true);
  });

  it('ifExists "rename" picks a free name that does not collide', async () => {
    const s = storage();
    await s.save('r/a.png', PNG);
    const info = await s.save('r/a.jpg', JPEG, { ifExists: 'rename' });
    expect(info.key).toMatch(/^r\/a_[a-z0-9]{7}\.jpg$/);
    expect((await s.readBuffer(info.key)).equals(JPEG)).toBe(true);
    expect((await s.readBuffer('r/a.png')).equals(PNG)).toBe(true);
  });

  it('a body that is not an image goes to the raw home, so it does not collide', async () => {
    const s = storage();
    await s.save('t/a.png', PNG);
    await s.save('t/a.jpg', 'text, not a JPEG');
    expect((await s.readBuffer('t/a.jpg')).toString()).toBe('text, not a JPEG');
    expect((await s.readBuffer('t/a.png')).equals(PNG)).toBe(true);
  });
});

describe('uploads', () => {
  it('uploads bodies above chunkSize with the chunked protocol, for streams of unknown length and for Blobs', async () => {
    const s = storage({ chunkSize: 5 * 1024 * 1024 });
    const data = randomBytes(12 * 1024 * 1024 + 123);
    const before = fake.counts.uploadChunks;
    const pieces: Buffer[] = [];
    for (let i = 0; i < data.length; i += 300_000) pieces.push(data.subarray(i, i + 300_000));
    const info = await s.save('big/stream.bin', Readable.from(pieces));
    expect(info.size).toBe(data.length);
    expect(fake.counts.uploadChunks - before).toBe(3);
    expect((await s.readBuffer('big/stream.bin')).equals(data)).toBe(true);
    await s.save('big/blob.bin', new Blob([data]));
    expect(fake.counts.uploadChunks - before).toBe(6);
    expect(fake.asset(ACCOUNT.cloudName, 'raw', 'upload', `${s.folder}big/blob.bin`)?.bytes.equals(data)).toBe(true);
    // At or under the threshold: one plain upload.
    const single = fake.counts.upload;
    await s.save('big/small.bin', Readable.from([randomBytes(1000)]));
    expect(fake.counts.upload - single).toBe(1);
  }, 60_000);

  it('an abort in the middle of a chunked upload leaves nothing under the key', async () => {
    const s = storage({ chunkSize: 5 * 1024 * 1024 });
    const controller = new AbortController();
    let sent = 0;
    const body = new Readable({
      read() {
        sent += 256 * 1024;
        if (sent > 40 * 1024 * 1024) return this.push(null);
        setImmediate(() => this.push(Buffer.alloc(256 * 1024, 7)));
      },
    });
    const promise = s.save('abort/big.bin', body, {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.loaded > 11 * 1024 * 1024) controller.abort();
      },
    });
    expect(await codeOf(promise)).toBe('ABORTED');
    expect(fake.asset(ACCOUNT.cloudName, 'raw', 'upload', `${s.folder}abort/big.bin`)).toBeUndefined();
    expect(await s.exists('abort/big.bin')).toBe(false);
  }, 60_000);

  it('an abort in the middle of a plain (single-request) upload cuts the request, and nothing is stored', async () => {
    const s = storage();
    const controller = new AbortController();
    const incomplete = fake.counts.incompleteBodies;
    await s.save('abort/old.bin', 'the old version');
    // A Blob (known size, so it streams in one request) whose bytes arrive slowly.
    const data = randomBytes(3 * 1024 * 1024);
    class SlowBlob extends Blob {
      override stream(): ReadableStream<Uint8Array<ArrayBuffer>> {
        let offset = 0;
        return new ReadableStream({
          async pull(controller) {
            await new Promise((r) => setTimeout(r, 2));
            if (offset >= data.length) return controller.close();
            controller.enqueue(new Uint8Array(data.subarray(offset, offset + 64 * 1024)));
            offset += 64 * 1024;
          },
        });
      }
    }
    const promise = s.save('abort/old.bin', new SlowBlob([data]), {
      signal: controller.signal,
      onProgress: (p) => {
        if (p.loaded > 1024 * 1024) controller.abort();
      },
    });
    expect(await codeOf(promise)).toBe('ABORTED');
    await expect.poll(() => fake.counts.incompleteBodies - incomplete).toBe(1);
    expect((await s.readBuffer('abort/old.bin')).toString()).toBe('the old version');
  });

  it('concurrent saves of one image key all succeed and leave one whole version', async () => {
    const s = storage();
    const bodies = Array.from({ length: 8 }, (_, i) => Buffer.concat([PNG, Buffer.alloc(i + 1, i)]));
    await Promise.all(bodies.map((b) => s.save('race/same.png', b)));
    const back = await s.readBuffer('race/same.png');
    expect(bodies.some((b) => b.equals(back))).toBe(true);
  });

  it('of concurrent saves of a.jpg and a.png, one wins and the other gets ALREADY_EXISTS, never an overwrite', async () => {
    const s = storage();
    for (let round = 0; round < 5; round++) {
      const [jpg, png] = await Promise.allSettled([s.save(`race${round}/a.jpg`, JPEG), s.save(`race${round}/a.png`, PNG)]);
      const outcomes = [jpg.status, png.status].sort();
      expect(outcomes).toEqual(['fulfilled', 'rejected']);
      const loser = (jpg.status === 'rejected' ? jpg : png) as PromiseRejectedResult;
      expect((loser.reason as MediaStorageError).code).toBe('ALREADY_EXISTS');
      const winnerKey = jpg.status === 'fulfilled' ? `race${round}/a.jpg` : `race${round}/a.png`;
      expect((await s.readBuffer(winnerKey)).equals(jpg.status === 'fulfilled' ? JPEG : PNG)).toBe(true);
    }
  });

  it('a server fault halfway through a chunked upload gives UNAVAILABLE and leaves the old object whole', async () => {
    const s = storage({ chunkSize: 5 * 1024 * 1024 });
    await s.save('fault/doc.bin', 'old contents');
    const data = randomBytes(11 * 1024 * 1024);
    const chunksBefore = fake.counts.uploadChunks;
    // The first chunk goes through, the second gets a 500.
    fake.failUploadRequest = fake.uploadRequests + 2;
    try {
      const err = await errorOf(s.save('fault/doc.bin', Readable.from([data.subarray(0, 6e6), data.subarray(6e6)])));
      expect(err.code).toBe('UNAVAILABLE');
      expect(err.status).toBe(500);
    } finally {
      fake.failUploadRequest = undefined;
    }
    expect(fake.counts.uploadChunks - chunksBefore).toBe(1);
    expect((await s.readBuffer('fault/doc.bin')).toString()).toBe('old contents');
  });

  it('refuses zero-byte bodies with UNSUPPORTED (Cloudinary stores no empty files)', async () => {
    const s = storage();
    expect(await codeOf(s.save('empty.txt', '', { allowEmpty: true }))).toBe('UNSUPPORTED');
    expect(await s.exists('empty.txt')).toBe(false);
  });

  it('deletes with invalidate, so CDN copies do not outlive the asset', async () => {
    const s = storage();
    await s.save('d/p.png', PNG);
    await s.delete('d/p.png');
    const mine = fake.destroys.filter((d) => d.publicId.startsWith(s.folder));
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((d) => d.invalidate)).toBe(true);
    expect(mine.some((d) => d.publicId === `${s.folder}d/p` && d.resourceType === 'image')).toBe(true);
  });
});

describe('authentication at the fake', () => {
  it('rejects a wrong secret with 401 → AUTH, on the Upload API and on the Admin API, without the secret in the message', async () => {
    const wrong = 'wrong-secret-zzzzzzzzzzzz';
    const s = new CloudinaryStorage({ cloudinaryUrl: fake.cloudinaryUrl(ACCOUNT.cloudName, wrong), fetch: fake.fetch, folder: 'wrong' });
    made.push(s);
    const rejected = fake.counts.rejectedSignatures;
    const upload = await errorOf(s.save('x.txt', 'data'));
    expect(upload.code).toBe('AUTH');
    expect(upload.status).toBe(401);
    expect(upload.message).toMatch(/Invalid Signature/);
    expect(upload.message).not.toContain(wrong);
    const admin = await errorOf(s.list(''));
    expect(admin.code).toBe('AUTH');
    expect(admin.message).not.toContain(wrong);
    expect(JSON.stringify(admin.cause ?? null)).not.toContain(wrong);
    expect(fake.counts.rejectedSignatures - rejected).toBeGreaterThanOrEqual(2);
    expect(fake.asset(ACCOUNT.cloudName, 'raw', 'upload', 'wrong/x.txt')).toBeUndefined();
  });

  it('rejects a stale timestamp (outside the one-hour window) even with a valid signature', async () => {
    const { v2 } = (await import('cloudinary')) as unknown as { v2: { utils: { api_sign_request(p: Record<string, unknown>, secret: string): string } } };
    const timestamp = Math.floor(Date.now() / 1000) - 2 * 3600;
    const params = { public_id: 'stale', timestamp: String(timestamp) };
    const form = new FormData();
    for (const [k, v] of Object.entries(params)) form.set(k, v);
    form.set('api_key', ACCOUNT.apiKey);
    form.set('signature', v2.utils.api_sign_request(params, ACCOUNT.apiSecret));
    form.set('file', new Blob(['x']), 'file');
    const res = await fetch(`${fake.url}/v1_1/${ACCOUNT.cloudName}/raw/upload`, { method: 'POST', body: form });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/Stale request/);
    form.set('timestamp', String(Math.floor(Date.now() / 1000)));
    form.set('signature', v2.utils.api_sign_request({ ...params, timestamp: form.get('timestamp') }, ACCOUNT.apiSecret));
    expect((await fetch(`${fake.url}/v1_1/${ACCOUNT.cloudName}/raw/upload`, { method: 'POST', body: form })).status).toBe(200);
  });

  it('verifies SHA-256 API and delivery signatures too', async () => {
    const s = storage({ signatureAlgorithm: 'sha256', deliveryType: 'authenticated' });
    await s.save('sha/p.png', PNG);
    const url = await s.url('sha/p.png', { transform: { width: 64, crop: 'fill' } });
    expect((await fake.fetch(url)).status).toBe(200);
    expect((await s.readBuffer('sha/p.png')).equals(PNG)).toBe(true);
  });

  it('refuses a tampered signed delivery URL of an authenticated asset', async () => {
    const s = storage({ deliveryType: 'authenticated' });
    await s.save('secure/p.png', PNG);
    await s.save('secure/q.png', PNG);
    const url = await s.url('secure/p.png', { transform: { width: 128, height: 128, crop: 'thumb', gravity: 'face' } });
    expect(url).toMatch(/\/image\/authenticated\/s--[A-Za-z0-9_-]{8}--\/c_thumb,g_face,h_128,w_128\/v\d+\//);
    const ok = await fake.fetch(url);
    expect(ok.status).toBe(200);
    expect(Buffer.from(await ok.arrayBuffer()).equals(PNG)).toBe(true);
    const rejected = fake.counts.rejectedSignatures;
    const forgeries = [
      url.replace('w_128', 'w_1280'),
      url.replace('/p.png', '/q.png'),
      url.replace(/s--([A-Za-z0-9_-])/, (_m, c: string) => `s--${c === 'A' ? 'B' : 'A'}`),
      url.replace(/\/s--[A-Za-z0-9_-]+--/, ''),
    ];
    for (const forged of forgeries) {
      expect(forged).not.toBe(url);
      const res = await fake.fetch(forged);
      expect(res.status, forged).toBe(401);
      expect(res.headers.get('x-cld-error')).toBeTruthy();
    }
    expect(fake.counts.rejectedSignatures - rejected).toBe(forgeries.length);
    // The fake computes the same signature the SDK wrote.
    const toSign = url.split(/\/s--[A-Za-z0-9_-]+--\//)[1]!.replace(/\/v\d+\//, '/');
    expect(url).toContain(`s--${deliverySignature(toSign, ACCOUNT.apiSecret)}--`);
  });

  it('expiring URLs stop working after expiresIn', async () => {
    const s = storage({ deliveryType: 'authenticated' });
    await s.save('exp/p.png', PNG);
    const url = await s.url('exp/p.png', { expiresIn: 1 });
    expect(url).toMatch(/expires_at=\d+/);
    expect((await fetch(url)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 2100));
    expect((await fetch(url)).status).toBe(401);
  });
});

describe('accounts that block delivery of some files', () => {
  it('reads of a file the account refuses to deliver (PDF/ZIP setting) answer PERMISSION, naming the reason; exists and stat still see it', async () => {
    const s = storage();
    await s.save('blocked/cv.pdf', '%PDF-1.4 minimal');
    fake.denyDelivery = /\.pdf$/;
    try {
      const err = await errorOf(s.read('blocked/cv.pdf'));
      expect(err.code).toBe('PERMISSION');
      expect(err.message).toMatch(/deny or ACL failure/);
      // Existence comes from the Upload API, which the delivery setting does not touch.
      expect(await s.exists('blocked/cv.pdf')).toBe(true);
      expect(await s.stat('blocked/cv.pdf')).toMatchObject({ size: 16, contentType: 'application/pdf' });
      const viaAdmin = storage({ existsVia: 'admin', folder: s.folder.slice(0, -1) });
      expect(await viaAdmin.exists('blocked/cv.pdf')).toBe(true);
    } finally {
      fake.denyDelivery = undefined;
    }
  });
});

describe('exists, stat and the Admin API budget', () => {
  it('exists, stat, read, url, save and delete make no Admin API call by default besides the one folder-mode lookup (counted at the fake)', async () => {
    const s = storage();
    const before = fake.counts.admin;
    const explicitBefore = fake.counts.explicit;
    const headsBefore = fake.counts.deliveryHead;
    await s.save('budget/p.png', PNG);
    await s.save('budget/t.txt', 'text');
    expect(await s.exists('budget/p.png')).toBe(true);
    expect(await s.exists('budget/t.txt')).toBe(true);
    expect(await s.exists('budget/missing.png')).toBe(false);
    expect((await s.stat('budget/p.png')).size).toBe(PNG.length);
    await s.readBuffer('budget/t.txt');
    await s.url('budget/p.png');
    await s.delete('budget/p.png');
    expect(await s.exists('budget/p.png')).toBe(false);
    // GET /config once, at the first save; existence never from a delivery URL.
    expect(fake.counts.admin - before).toBe(1);
    expect(fake.counts.explicit - explicitBefore).toBeGreaterThan(0);
    expect(fake.counts.deliveryHead - headsBefore).toBe(0);
    await storage({ folderMode: 'fixed' }).save('budget/q.png', PNG);
    expect(fake.counts.admin - before).toBe(1);
  });

  it('existsVia "admin" asks the Admin API instead', async () => {
    const s = storage({ existsVia: 'admin' });
    await s.save('adm/p.png', PNG);
    await s.save('adm/t.txt', 'words');
    const before = fake.counts.admin;
    expect(await s.exists('adm/p.png')).toBe(true);
    expect(await s.exists('adm/nope.txt')).toBe(false);
    const info = await s.stat('adm/t.txt');
    expect(info.size).toBe(5);
    expect(info.contentType.split(';')[0]).toBe('text/plain');
    expect(fake.counts.admin - before).toBeGreaterThanOrEqual(3);
  });
});

describe('rate limiting', () => {
  it('maps 420 from the Admin API to UNAVAILABLE with retryAfter at the reset time Cloudinary last reported', async () => {
    const s = storage();
    await s.save('rl/a.txt', 'a');
    const reset = new Date(Math.ceil(Date.now() / 1000) * 1000 + 17 * 60_000);
    fake.rateLimit.resetAt = reset;
    await s.list('rl/'); // a successful call reports X-FeatureRateLimit-Reset
    fake.rateLimited.admin = true;
    try {
      const err = await errorOf(s.list('rl/'));
      expect(err.code).toBe('UNAVAILABLE');
      expect(err.status).toBe(420);
      expect(err.retryAfter?.getTime()).toBe(reset.getTime());
      // A fresh instance has seen no successful call: the 420 answer's own X-FeatureRateLimit-Reset.
      const fresh = storage();
      const err2 = await errorOf(fresh.list('rl/'));
      expect(err2.retryAfter?.getTime()).toBe(reset.getTime());
    } finally {
      fake.rateLimited.admin = false;
    }
  });

  it('spends the hourly budget and answers 420 when it is gone', async () => {
    const s = storage();
    const saved = { ...fake.rateLimit };
    fake.rateLimit.remaining = 1;
    try {
      await s.list('x/').catch(() => undefined); // three resource types: the budget runs out on the way
      expect(await codeOf(s.list('x/'))).toBe('UNAVAILABLE');
    } finally {
      Object.assign(fake.rateLimit, saved);
    }
  });

  it('maps 420 from the Upload API too', async () => {
    const s = storage();
    fake.rateLimited.upload = true;
    try {
      expect(await codeOf(s.save('rl/u.txt', 'u'))).toBe('UNAVAILABLE');
    } finally {
      fake.rateLimited.upload = false;
    }
  });

  it('reads a stated wait from the message, else the last reset, else the next hour', () => {
    const now = new Date('2026-01-01T10:20:30Z');
    expect(rateLimitRetryAfter('Rate Limit Exceeded. Please try again in 20 minutes', undefined, now).toISOString()).toBe('2026-01-01T10:40:30.000Z');
    expect(rateLimitRetryAfter('Rate Limit Exceeded', new Date('2026-01-01T10:45:00Z'), now).toISOString()).toBe('2026-01-01T10:45:00.000Z');
    expect(rateLimitRetryAfter('Rate Limit Exceeded', new Date('2026-01-01T09:00:00Z'), now).toISOString()).toBe('2026-01-01T11:00:00.000Z');
    expect(mapCloudinaryError(new CloudinaryApiError('Too many', 429))).toMatchObject({ code: 'UNAVAILABLE', status: 429 });
  });
});

describe('error shapes', () => {
  it('normalises both rejection shapes of the SDK and drops request_options (which hold the secret)', () => {
    const uploader = fromSdkRejection({ message: 'Invalid image file', http_code: 400, name: 'Error' });
    expect(uploader).toBeInstanceOf(CloudinaryApiError);
    expect((uploader as CloudinaryApiError).httpCode).toBe(400);
    const admin = fromSdkRejection({
      error: { message: 'Resource not found - x', http_code: 404 },
      request_options: { auth: 'key:supersecret' },
      query_params: '',
    });
    expect((admin as CloudinaryApiError).httpCode).toBe(404);
    expect(JSON.stringify(admin)).not.toContain('supersecret');
    expect(admin.cause).toBeUndefined();
    const socket = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(fromSdkRejection({ error: socket })).toBe(socket);
    expect(fromSdkRejection(socket)).toBe(socket);
    const cutAnswer = Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
    expect(fromSdkRejection({ message: cutAnswer, http_code: 200, request_options: { auth: 'key:supersecret' } })).toBe(cutAnswer);
    expect(mapCloudinaryError(fromSdkRejection({ message: 'Request Timeout', http_code: 499, name: 'TimeoutError' }))?.code).toBe('UNAVAILABLE');
    expect(mapCloudinaryError(new CloudinaryApiError('File size too large. Got 2000. Maximum is 1000.', 400))?.code).toBe('TOO_LARGE');
    expect(mapCloudinaryError(new CloudinaryApiError('nope', 403))?.code).toBe('PERMISSION');
  });

  it('cuts the range out itself when a CDN ignores the Range header', async () => {
    const noRanges = (url: string, init?: RequestInit): Promise<Response> => {
      const headers = { ...(init?.headers as Record<string, string> | undefined) };
      delete headers.range;
      return fake.fetch(url, { ...init, headers });
    };
    const s = storage({ fetch: noRanges });
    await s.save('range/r.txt', '0123456789abcdefghij');
    expect((await s.readBuffer('range/r.txt', { range: { start: 2, end: 5 } })).toString()).toBe('2345');
    expect((await s.readBuffer('range/r.txt', { range: { start: 15 } })).toString()).toBe('fghij');
    expect(await s.stat('range/r.txt')).toMatchObject({ size: 20, contentType: expect.stringMatching(/^text\/plain/) });
  });

  it('a delivery URL that never answers gives UNAVAILABLE after the timeout', async () => {
    const hanging = (_url: string, init?: RequestInit): Promise<Response> =>
      new Promise((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)));
    const s = storage({ fetch: hanging, timeout: 200 });
    await s.save('slow.txt', 'never delivered');
    const started = Date.now();
    const err = await errorOf(s.read('slow.txt'));
    expect(err.code).toBe('UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('maps an unreachable API to UNAVAILABLE', async () => {
    const s = new CloudinaryStorage({ ...ACCOUNT, uploadPrefix: 'http://127.0.0.1:9', fetch: fake.fetch, folder: 'down' });
    made.push(s);
    expect(await codeOf(s.list(''))).toBe('UNAVAILABLE');
    expect(await codeOf(s.save('down.txt', 'x'))).toBe('UNAVAILABLE');
  });
});

describe('urls', () => {
  it('gives stable public URLs, with the asset version, avatar transformations and no analytics parameter', async () => {
    const s = storage();
    const version = await s.save('av/agent.png', PNG).then(() => fake.asset(ACCOUNT.cloudName, 'image', 'upload', `${s.folder}av/agent`)!.version);
    const avatar = { width: 128, height: 128, crop: 'thumb', gravity: 'face' };
    const url = await s.url('av/agent.png', { transform: avatar });
    expect(url).toBe(`https://res.cloudinary.com/${ACCOUNT.cloudName}/image/upload/c_thumb,g_face,h_128,w_128/v${version}/${s.folder}av/agent.png`);
    expect(url).not.toContain('_a=');
    expect(await s.url('av/agent.png', { transform: avatar })).toBe(url);
    const res = await fake.fetch(url);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-fake-transformation')).toBe('c_thumb,g_face,h_128,w_128');
    expect(await s.url('av/agent.png')).toBe(`https://res.cloudinary.com/${ACCOUNT.cloudName}/image/upload/v${version}/${s.folder}av/agent.png`);
    // Another instance (nothing remembered) looks the version up and gives the same URL.
    expect(await storage({ folder: s.folder.slice(0, -1) }).url('av/agent.png')).toBe(
      `https://res.cloudinary.com/${ACCOUNT.cloudName}/image/upload/v${version}/${s.folder}av/agent.png`,
    );
  });

  it('uses a custom delivery domain when configured', async () => {
    const s = storage({ secureDistribution: 'media.example.com', privateCdn: true });
    expect(await s.url('x/y.txt')).toBe(`https://media.example.com/raw/upload/v1/${s.folder}x/y.txt`);
  });

  it('refuses transformations of raw files and expiring transformed URLs with UNSUPPORTED', async () => {
    const s = storage();
    await s.save('u/doc.txt', 'text');
    await s.save('u/p.png', PNG);
    expect(await codeOf(s.url('u/doc.txt', { transform: { width: 10 } }))).toBe('UNSUPPORTED');
    expect(await codeOf(s.url('u/p.png', { transform: { width: 10 }, expiresIn: 60 }))).toBe('UNSUPPORTED');
    expect(await codeOf(s.url('u/p.png', { transform: { width: 10 }, download: true }))).toBe('UNSUPPORTED');
  });
});

describe('configuration and isolation', () => {
  it('reads CLOUDINARY_URL by default', async () => {
    const saved = process.env.CLOUDINARY_URL;
    process.env.CLOUDINARY_URL = fake.cloudinaryUrl(ACCOUNT.cloudName);
    try {
      const s = new CloudinaryStorage({ fetch: fake.fetch, folder: 'env' });
      made.push(s);
      await s.save('e.txt', 'from env');
      expect(fake.asset(ACCOUNT.cloudName, 'raw', 'upload', 'env/e.txt')?.bytes.toString()).toBe('from env');
    } finally {
      if (saved === undefined) delete process.env.CLOUDINARY_URL;
      else process.env.CLOUDINARY_URL = saved;
    }
  });

  it('gives CONFIG errors that name what is missing and never print the secret', () => {
    const saved = process.env.CLOUDINARY_URL;
    delete process.env.CLOUDINARY_URL;
    try {
      const missing = (() => {
        try {
          new CloudinaryStorage({ cloudName: 'c', apiSecret: 'top-secret-value' });
        } catch (err) {
          return err as MediaStorageError;
        }
        throw new Error('expected CONFIG');
      })();
      expect(missing.code).toBe('CONFIG');
      expect(missing.message).toMatch(/apiKey/);
      expect(missing.message).toMatch(/CLOUDINARY_URL/);
      expect(missing.message).not.toContain('top-secret-value');
      expect(() => new CloudinaryStorage({ cloudinaryUrl: 'https://key:top-secret-value@cloud' })).toThrow(/cloudinary:\/\//);
      try {
        new CloudinaryStorage({ cloudinaryUrl: 'https://key:top-secret-value@cloud' });
      } catch (err) {
        expect((err as Error).message).not.toContain('top-secret-value');
      }
      expect(() => new CloudinaryStorage({ ...ACCOUNT, chunkSize: 1000 })).toThrow(/chunkSize/);
    } finally {
      if (saved !== undefined) process.env.CLOUDINARY_URL = saved;
    }
  });

  it('two instances on two accounts work side by side without touching the SDK global config', async () => {
    const a = new CloudinaryStorage({ cloudinaryUrl: fake.cloudinaryUrl(ACCOUNT.cloudName), fetch: fake.fetch, folder: 'iso' });
    const b = new CloudinaryStorage({ cloudinaryUrl: fake.cloudinaryUrl(OTHER.cloudName), fetch: fake.fetch, folder: 'iso' });
    made.push(a, b);
    await Promise.all(Array.from({ length: 10 }, (_, i) => Promise.all([a.save(`k${i}.txt`, `A${i}`), b.save(`k${i}.txt`, `B${i}`)])));
    for (let i = 0; i < 10; i++) {
      expect((await a.readBuffer(`k${i}.txt`)).toString()).toBe(`A${i}`);
      expect((await b.readBuffer(`k${i}.txt`)).toString()).toBe(`B${i}`);
    }
    expect((await a.list('')).items).toHaveLength(10);
    expect((await b.list('')).items).toHaveLength(10);
    const { v2 } = (await import('cloudinary')) as unknown as { v2: { config(): Record<string, unknown> } };
    expect(v2.config().cloud_name).toBeUndefined();
    expect(v2.config().api_secret).toBeUndefined();
    // The SDK was loaded without an upload_prefix, so it picked its https module; every call still
    // reached the fake over plain http, through the agent of the prefix's protocol each call carries.
    expect(v2.config().upload_prefix).toBeUndefined();
  });
});

describe('direct uploads (signed Upload API parameters)', () => {
  it('signs the public ID, overwrite and allowed_formats; an image of another format is refused by allowed_formats', async () => {
    const s = storage();
    const upload = await s.presignUpload('people/ada.png', { contentType: 'image/png' });
    expect(upload.url).toBe(`${fake.url}/v1_1/${ACCOUNT.cloudName}/image/upload`);
    expect(upload.fields).toMatchObject({ public_id: `t${run}/people/ada`, allowed_formats: 'png', overwrite: 'false', api_key: ACCOUNT.apiKey });
    expect(upload.fields?.api_secret).toBeUndefined();
    expect(JSON.stringify(upload)).not.toContain(ACCOUNT.apiSecret);
    // A real image, but a JPEG: Cloudinary would store it as format jpg under the PNG key's public ID.
    const refused = await sendDirectUpload(upload, JPEG, { contentType: 'image/png' });
    expect(refused.status).toBe(400);
    expect((await refused.json()) as unknown).toMatchObject({ error: { message: expect.stringMatching(/format jpg not allowed/) } });
    expect(await s.exists('people/ada.png')).toBe(false);
    const sent = await sendDirectUpload(upload, PNG);
    expect(sent.status).toBe(200);
    expect((await s.readBuffer('people/ada.png')).equals(PNG)).toBe(true);
  });

  it('a parameter the browser changes breaks the signature', async () => {
    const s = storage();
    const upload = await s.presignUpload('people/bob.png', { contentType: 'image/png' });
    const rejected = fake.counts.rejectedSignatures;
    const res = await sendDirectUpload({ ...upload, fields: { ...upload.fields!, overwrite: 'true' } }, PNG);
    expect(res.status).toBe(401);
    expect(fake.counts.rejectedSignatures).toBe(rejected + 1);
  });

  it("never replaces a sibling key's asset: a.png is refused while a.jpg is stored", async () => {
    const s = storage();
    await s.save('a.jpg', JPEG);
    expect(await codeOf(s.presignUpload('a.png', { contentType: 'image/png' }))).toBe('ALREADY_EXISTS');
  });

  it('a key stored as a raw file is uploaded to its raw home again, so it never lives in both', async () => {
    const s = storage();
    await s.save('notes.jpg', 'text, not a JPEG');
    const upload = await s.presignUpload('notes.jpg', { contentType: 'image/jpeg' });
    expect(upload.url).toMatch(/\/raw\/upload$/);
    expect(upload.enforced.contentType).toBe(false);
    expect((await sendDirectUpload(upload, JPEG)).status).toBe(200);
    expect((await s.readBuffer('notes.jpg')).equals(JPEG)).toBe(true);
    expect((await s.list('')).items.map((i) => i.key)).toEqual(['notes.jpg']);
  });

  it('expires when asked: the timestamp is set back so that the hour Cloudinary allows ends then', async () => {
    const s = storage();
    const before = Math.floor(Date.now() / 1000);
    const upload = await s.presignUpload('soon.png', { contentType: 'image/png', expiresIn: 120 });
    expect(Number(upload.fields!.timestamp)).toBeGreaterThanOrEqual(before + 120 - 3600);
    expect(upload.expiresAt.getTime()).toBe((Number(upload.fields!.timestamp) + 3600) * 1000);
    expect(await codeOf(s.presignUpload('late.png', { expiresIn: 3601 }))).toBe('INVALID_INPUT');
  });
});
