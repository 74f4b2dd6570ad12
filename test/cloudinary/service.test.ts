/**
 * Issue 13, point 5 (and Cloudinary's side of point 3): CloudinaryStorage against a fake that
 * behaves as the real service does where it hurts. Its CDN caches every delivery answer per exact
 * URL (a 404 for a minute, doubling up to a day) and purges only after a propagation delay; it
 * applies the public-ID naming rules (refusing or renaming); it has fixed and dynamic folder
 * modes. Each test names what the user would otherwise see.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveAvatarUrl, resolveAvatars } from '../../src/avatar/index.js';
import { CloudinaryStorage, djangoCloudinaryStorage, type CloudinaryStorageOptions } from '../../src/cloudinary/index.js';
import { isMediaStorageError } from '../../src/core/errors.js';
import { FakeCloudinary, applyPublicIdRules, type FakeAccount } from '../support/fakes/cloudinary-server.js';
import { failure as errorOf, failureCode as codeOf } from '../support/failure.js';

const FIXED: FakeAccount = { cloudName: 'fixed-cloud', apiKey: '444444444444444', apiSecret: 'fixed-secret-0123456789abc', folderMode: 'fixed' };
const DYNAMIC: FakeAccount = { cloudName: 'dynamic-cloud', apiKey: '555555555555555', apiSecret: 'dynamic-secret-0123456789a', folderMode: 'dynamic' };

const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c63f8cfc0f01f0005000201a0d1e33a0000000049454e44ae426082',
  'hex',
);
const png = (): Buffer => Buffer.concat([PNG, randomBytes(16)]);
const jpeg = (): Buffer => Buffer.concat([Buffer.from('ffd8ffe000104a46494600010100000100010000', 'hex'), randomBytes(64)]);
const MINUTE = 60_000;
const DEFAULT_AVATAR = 'data:image/svg+xml,default';

let fake: FakeCloudinary;
const made: CloudinaryStorage[] = [];
let run = 0;

function storage(account: FakeAccount = FIXED, options: CloudinaryStorageOptions = {}): CloudinaryStorage {
  const s = new CloudinaryStorage({ cloudinaryUrl: fake.cloudinaryUrl(account.cloudName), fetch: fake.fetch, folder: `s${++run}`, ...options });
  made.push(s);
  return s;
}

/** A browser (or anything else) asking the CDN for a URL. */
async function browse(url: string): Promise<{ status: number; body: Buffer }> {
  const res = await fake.fetch(url);
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

beforeAll(async () => {
  fake = await new FakeCloudinary([FIXED, DYNAMIC]).start();
});

afterAll(async () => {
  for (const s of made) s.close();
  await fake.stop();
});

describe("the fake's CDN, as Cloudinary documents it", () => {
  it('caches a 404 per exact URL for a minute, then twice as long each time it fails again, and purges only after the invalidation has propagated', async () => {
    const s = storage();
    const url = await s.url('cdn/later.png'); // a key with no asset: its plain delivery URL
    const path = new URL(url).pathname;
    expect((await browse(url)).status).toBe(404);
    expect(fake.cachedAnswer(path)).toMatchObject({ status: 404 });
    const ttl = (): number => fake.cachedAnswer(path)!.expiresAt - fake.now();
    expect(ttl()).toBeGreaterThan(59_000);
    expect(ttl()).toBeLessThanOrEqual(MINUTE);
    for (const minutes of [2, 4, 8]) {
      fake.advanceClock(ttl() + 1);
      expect(fake.cachedAnswer(path)).toBeUndefined();
      expect((await browse(url)).status).toBe(404);
      expect(ttl()).toBeGreaterThan(minutes * MINUTE - 1000);
      expect(ttl()).toBeLessThanOrEqual(minutes * MINUTE);
    }
    // Per exact URL: the same URL is answered from the cache, another one for the same asset is not.
    const hits = fake.counts.cdnHits;
    expect((await browse(url)).status).toBe(404);
    expect(fake.counts.cdnHits - hits).toBe(1);
    expect((await browse(await s.url('cdn/later.png', { transform: { width: 10 } }))).status).toBe(404);
    expect(fake.counts.cdnHits - hits).toBe(1);
    await s.save('cdn/later.png', png());
    expect((await browse(url)).status).toBe(404); // still the cached 404
    // The save claimed a free public ID, then asked for an invalidation: it lands after the delay.
    fake.advanceClock(fake.invalidationDelayMs + 1);
    expect((await browse(url)).status).toBe(200);
  });
});

describe('a photo is visible at once after its save, whatever the CDN cached before', () => {
  for (const account of [FIXED, DYNAMIC]) {
    it(`probed while missing, then saved: exists, stat, read, url and the avatar resolvers see it at once (${account.folderMode} folders)`, async () => {
      const s = storage(account);
      const key = 'people/agent-7.png';
      const photo = png();
      // Before the photo exists: the app checks, a page shows the default, browsers ask for its URLs.
      expect(await s.exists(key)).toBe(false);
      expect(await resolveAvatarUrl(s, key, { default: DEFAULT_AVATAR })).toBe(DEFAULT_AVATAR);
      const thumb = { width: 64, height: 64, crop: 'thumb' };
      for (const url of [await s.url(key), await s.url(key, { transform: thumb })]) expect((await browse(url)).status).toBe(404);

      await s.save(key, photo);
      expect(await s.exists(key)).toBe(true);
      expect(await s.stat(key)).toMatchObject({ size: photo.length, contentType: 'image/png' });
      expect((await s.readBuffer(key)).equals(photo)).toBe(true);
      const url = await s.url(key);
      expect(await browse(url)).toEqual({ status: 200, body: photo });
      expect((await browse(await s.url(key, { transform: thumb }))).status).toBe(200);
      const errors: unknown[] = [];
      const [avatar] = await resolveAvatars(s, [{ path: key, name: 'Agent Seven' }], { default: DEFAULT_AVATAR, onError: (err) => errors.push(err) });
      expect(errors).toEqual([]);
      expect(avatar!.isDefault).toBe(false);
      expect(await browse(avatar!.src)).toEqual({ status: 200, body: photo });
      // Another process (a restarted web worker) remembers nothing, and sees the same.
      const other = storage(account, { folder: s.folder.slice(0, -1) });
      expect(await other.exists(key)).toBe(true);
      expect(await resolveAvatarUrl(other, key, { default: DEFAULT_AVATAR })).toBe(url);
    });
  }

  it('re-saved: read, stat and url give the new photo at once; deleted: gone at once', async () => {
    const s = storage();
    const key = 'people/agent-8.png';
    const [first, second] = [png(), png()];
    await s.save(key, first);
    const firstUrl = await s.url(key);
    expect(await browse(firstUrl)).toEqual({ status: 200, body: first }); // now cached at the CDN for 30 days
    expect((await s.readBuffer(key)).equals(first)).toBe(true);
    await s.save(key, second);
    expect((await s.readBuffer(key)).equals(second)).toBe(true);
    expect((await s.stat(key)).etag).toBe(fake.asset(FIXED.cloudName, 'image', 'upload', `${s.folder}people/agent-8`)!.etag);
    for (const reader of [s, storage(FIXED, { folder: s.folder.slice(0, -1) })]) {
      const url = await reader.url(key);
      expect(url).not.toBe(firstUrl);
      expect(await browse(url)).toEqual({ status: 200, body: second });
    }
    await s.delete(key);
    expect(await s.exists(key)).toBe(false);
    expect(await codeOf(s.stat(key))).toBe('NOT_FOUND');
    expect(await codeOf(s.read(key))).toBe('NOT_FOUND');
    expect(await resolveAvatarUrl(s, key, { default: DEFAULT_AVATAR })).toBe(DEFAULT_AVATAR);
  });
});

describe('public IDs Cloudinary would change', () => {
  const keys = [
    "docs/it's (1) [final] ~v2!.txt",
    'people/José Müller.png',
    'people/a+b.png',
    'people/100% & more?.jpg',
    'v2/avatars/v10/x.png',
    'emoji 😀/face.txt',
    'a_x41_b.txt',
    'ends with an underscore_.txt',
  ];

  it('are escaped so the fake (renaming as the docs say) stores them as asked and they round-trip', async () => {
    const s = storage();
    for (const key of keys) {
      const body = key.endsWith('.png') ? png() : key.endsWith('.jpg') ? jpeg() : Buffer.from(`body of ${key}`);
      const info = await s.save(key, body);
      expect(info.key).toBe(key);
      expect(await s.exists(key), key).toBe(true);
      expect((await s.readBuffer(key)).equals(body), key).toBe(true);
      expect(await browse(await s.url(key))).toEqual({ status: 200, body });
    }
    const listed: string[] = [];
    for await (const info of s.listAll('')) listed.push(info.key);
    expect(listed.sort()).toEqual([...keys].sort());
    // Every public ID the storage wrote is one the naming rules leave as it is.
    const mine = [...fake.assets.values()].filter((a) => a.publicId.startsWith(s.folder));
    expect(mine).toHaveLength(keys.length);
    for (const a of mine) expect(applyPublicIdRules(a.publicId)).toEqual({ publicId: a.publicId });
  });

  it('checks the public ID Cloudinary answers: a rename (rules changed) is INVALID_KEY naming both, and leaves nothing behind', async () => {
    const s = storage();
    fake.extraSpecialCharacters = /-/;
    try {
      const err = await errorOf(s.save('people/agent-9.png', png()));
      expect(err.code).toBe('INVALID_KEY');
      expect(err.message).toContain(`${s.folder}people/agent_9`);
      expect(err.message).toContain(`${s.folder}people/agent-9`);
      const raw = await errorOf(s.save('docs/cv-2.txt', 'text'));
      expect(raw.code).toBe('INVALID_KEY');
    } finally {
      fake.extraSpecialCharacters = undefined;
    }
    expect([...fake.assets.values()].filter((a) => a.publicId.startsWith(s.folder))).toEqual([]);
    expect(await s.exists('people/agent-9.png')).toBe(false);
  });

  it('a public ID the service refuses is INVALID_KEY, not INVALID_INPUT', async () => {
    // What an adapter that sent `+` unescaped would get back.
    const { v2 } = (await import('cloudinary')) as unknown as {
      v2: { uploader: { upload_stream(o: Record<string, unknown>, cb: (e: unknown, r?: unknown) => void): NodeJS.WritableStream } };
    };
    const answer = await new Promise<unknown>((resolve) => {
      v2.uploader
        .upload_stream(
          {
            public_id: 'a+b',
            resource_type: 'raw',
            cloud_name: FIXED.cloudName,
            api_key: FIXED.apiKey,
            api_secret: FIXED.apiSecret,
            upload_prefix: fake.url,
            agent: new http.Agent(),
            disable_promises: true,
          },
          (e) => resolve(e),
        )
        .end('x');
    });
    expect(answer).toMatchObject({ http_code: 400, message: 'public_id (a+b) is invalid' });
    const { mapCloudinaryError, fromSdkRejection } = await import('../../src/cloudinary/errors.js');
    expect(mapCloudinaryError(fromSdkRejection(answer))?.code).toBe('INVALID_KEY');
  });
});

describe('folder modes', () => {
  it('dynamic: each upload goes in the asset folder of its key, the mode asked once of GET /config', async () => {
    const s = storage(DYNAMIC);
    const admin = fake.counts.admin;
    await s.save('people/agent-1.jpg', jpeg());
    await s.save('people/deep/agent-2.png', png());
    await s.save('top.txt', 'at the root');
    expect(fake.counts.admin - admin).toBe(1);
    expect(fake.asset(DYNAMIC.cloudName, 'image', 'upload', `${s.folder}people/agent-1`)).toMatchObject({
      assetFolder: `${s.folder}people`,
      displayName: 'agent-1',
    });
    expect(fake.asset(DYNAMIC.cloudName, 'image', 'upload', `${s.folder}people/deep/agent-2`)?.assetFolder).toBe(`${s.folder}people/deep`);
    expect(fake.asset(DYNAMIC.cloudName, 'raw', 'upload', `${s.folder}top.txt`)?.assetFolder).toBe(s.folder.slice(0, -1));
    // The Media Library's view (Admin API by asset folder) shows them where the keys say.
    const { v2 } = (await import('cloudinary')) as unknown as {
      v2: { api: { resources_by_asset_folder(f: string, o: Record<string, unknown>): Promise<{ resources: Array<{ public_id: string }> }> } };
    };
    const inFolder = await v2.api.resources_by_asset_folder(`${s.folder}people`, {
      cloud_name: DYNAMIC.cloudName,
      api_key: DYNAMIC.apiKey,
      api_secret: DYNAMIC.apiSecret,
      upload_prefix: fake.url,
      agent: new http.Agent(),
    });
    expect(inFolder.resources.map((r) => r.public_id)).toEqual([`${s.folder}people/agent-1`]);
    expect((await s.list('people/')).items.map((i) => i.key)).toEqual(['people/agent-1.jpg', 'people/deep/agent-2.png']);
  });

  it('fixed: no asset_folder is sent (the fake refuses it there); a configured folderMode asks nothing', async () => {
    const s = storage(FIXED, { folderMode: 'fixed' });
    const admin = fake.counts.admin;
    await s.save('people/agent-3.jpg', jpeg());
    expect(fake.counts.admin - admin).toBe(0);
    expect(fake.asset(FIXED.cloudName, 'image', 'upload', `${s.folder}people/agent-3`)?.assetFolder).toBeUndefined();
    // Telling a fixed-mode account it is dynamic gets the service's refusal, not a silent misplacement.
    expect(await codeOf(storage(FIXED, { folderMode: 'dynamic' }).save('people/agent-4.jpg', jpeg()))).toBe('INVALID_INPUT');
  });

  it('a folder-mode lookup that fails does not fail the save (it goes without asset_folder, valid in both modes)', async () => {
    const s = storage(DYNAMIC);
    fake.rateLimited.admin = true;
    try {
      await s.save('people/agent-5.jpg', jpeg());
    } finally {
      fake.rateLimited.admin = false;
    }
    expect(fake.asset(DYNAMIC.cloudName, 'image', 'upload', `${s.folder}people/agent-5`)?.assetFolder).toBe('');
    expect(await s.exists('people/agent-5.jpg')).toBe(true);
  });
});

describe('a wrong cloud name or credentials is loud on exists and stat', () => {
  const wrong = (overrides: Partial<FakeAccount>): CloudinaryStorage => {
    const a = { ...FIXED, ...overrides };
    const s = new CloudinaryStorage({
      cloudinaryUrl: `cloudinary://${a.apiKey}:${a.apiSecret}@${a.cloudName}?upload_prefix=${encodeURIComponent(fake.url)}`,
      fetch: fake.fetch,
      folder: 'wrong',
    });
    made.push(s);
    return s;
  };

  for (const [what, overrides, code] of [
    ['a misspelled cloud name', { cloudName: 'fixed-clowd' }, 'CONFIG'],
    ['a wrong API key', { apiKey: '999999999999999' }, 'AUTH'],
    ['a wrong API secret', { apiSecret: 'not-the-secret-0000000000' }, 'AUTH'],
  ] as const) {
    it(`${what}: ${code} on exists, stat, read and url, reported through resolveAvatars' onError`, async () => {
      const s = wrong(overrides);
      for (const op of [() => s.exists('people/a.jpg'), () => s.stat('people/a.jpg'), () => s.read('people/a.jpg'), () => s.url('people/a.jpg')]) {
        const err = await errorOf(op());
        expect(err.code).toBe(code);
        if ('apiSecret' in overrides) expect(err.message).not.toContain(overrides.apiSecret);
      }
      const errors: unknown[] = [];
      const [avatar] = await resolveAvatars(s, ['people/a.jpg'], { default: DEFAULT_AVATAR, onError: (err) => errors.push(err) });
      expect(avatar!.src).toBe(DEFAULT_AVATAR);
      expect(errors).toHaveLength(1);
      expect(isMediaStorageError(errors[0]) && errors[0].code).toBe(code);
    });
  }
});

describe('adopting django-cloudinary-storage data', () => {
  /**
   * What MediaCloudinaryStorage (and its video and raw siblings) send for `name`: the SDK's upload
   * with use_filename, the folder of the name, and the storage's tag; the database then holds the
   * public ID Cloudinary answers.
   */
  async function djangoSave(account: FakeAccount, name: string, body: Buffer, resourceType: 'image' | 'video' | 'raw'): Promise<string> {
    const { v2 } = (await import('cloudinary')) as unknown as {
      v2: { uploader: { upload_stream(o: Record<string, unknown>, cb: (e: unknown, r?: { public_id: string }) => void): NodeJS.WritableStream } };
    };
    const slash = name.lastIndexOf('/');
    return new Promise((resolve, reject) => {
      v2.uploader
        .upload_stream(
          {
            use_filename: true,
            folder: name.slice(0, slash),
            tags: 'media',
            resource_type: resourceType,
            filename: name.slice(slash + 1),
            cloud_name: account.cloudName,
            api_key: account.apiKey,
            api_secret: account.apiSecret,
            upload_prefix: fake.url,
            agent: new http.Agent(),
            disable_promises: true,
          },
          (err, result) => (err ? reject(err) : resolve(result!.public_id)),
        )
        .end(body);
    });
  }

  for (const account of [FIXED, DYNAMIC]) {
    it(`finds each stored name (no extension, media/ prefix, random suffix, dots, formats outside the list) without converting the database (${account.folderMode} folders)`, async () => {
      const folder = `django${++run}`;
      const photo = jpeg();
      const pdf = Buffer.from('%PDF-1.4 a CV uploaded as an image asset');
      const rows = [
        { name: await djangoSave(account, `${folder}/profile_images/abc.jpg`, photo, 'image'), body: photo, type: 'image/jpeg' },
        { name: await djangoSave(account, `${folder}/profile_images/my.photo.jpeg`, photo, 'image'), body: photo, type: 'image/jpeg' },
        { name: await djangoSave(account, `${folder}/docs/cv.pdf`, pdf, 'image'), body: pdf, type: 'application/pdf' },
        { name: await djangoSave(account, `${folder}/docs/notes.txt`, Buffer.from('raw notes'), 'raw'), body: Buffer.from('raw notes'), type: 'text/plain' },
      ];
      // What the database holds: public IDs, as Cloudinary named them.
      expect(rows[0]!.name).toMatch(new RegExp(`^${folder}/profile_images/abc_[a-z0-9]{6}$`));
      expect(rows[1]!.name).toMatch(new RegExp(`^${folder}/profile_images/my\\.photo_[a-z0-9]{6}$`));
      expect(rows[3]!.name).toMatch(new RegExp(`^${folder}/docs/notes_[a-z0-9]{6}\\.txt$`));

      const s = storage(account, { folder, adopt: djangoCloudinaryStorage({ prefix: `${folder}/` }) });
      for (const row of rows) {
        const src = await resolveAvatarUrl(s, row.name, { default: DEFAULT_AVATAR });
        expect(src, row.name).not.toBe(DEFAULT_AVATAR);
        expect(await browse(src)).toEqual({ status: 200, body: row.body });
        expect(await s.exists(row.name)).toBe(true);
        expect((await s.stat(row.name)).contentType.split(';')[0]).toBe(row.type);
        expect((await s.readBuffer(row.name)).equals(row.body)).toBe(true);
        // Django's storages also take the name without its prefix.
        expect(await s.exists(row.name.slice(folder.length + 1))).toBe(true);
      }
      expect((await browse(await s.url(rows[0]!.name, { transform: { width: 32, crop: 'fill' } }))).status).toBe(200);
      // Copying an adopted photo to a key of this storage's own mapping, then deleting the old name.
      await s.copy(rows[0]!.name, 'profile_images/abc.jpg');
      expect((await s.readBuffer('profile_images/abc.jpg')).equals(photo)).toBe(true);
      await s.delete(rows[0]!.name);
      expect(await s.exists(rows[0]!.name)).toBe(false);
      // Without `adopt`, the stored names are simply not keys of this storage.
      expect(await storage(account, { folder }).exists(rows[1]!.name)).toBe(false);
    });
  }

  it('the shorthand "django-cloudinary-storage" uses the prefix media/', async () => {
    const name = await djangoSave(FIXED, 'media/profile_images/short.png', PNG, 'image');
    const s = storage(FIXED, { folder: 'media', adopt: 'django-cloudinary-storage' });
    expect(await resolveAvatarUrl(s, name, { default: DEFAULT_AVATAR })).toMatch(new RegExp(`/image/upload/v\\d+/${name}\\.png$`));
  });
});

it('the storage never asks a delivery URL whether an object exists', async () => {
  const s = storage();
  const heads = fake.counts.deliveryHead;
  const gets = fake.counts.deliveryGet;
  await s.save('count/a.png', png());
  await s.exists('count/a.png');
  await s.exists('count/missing.png');
  await s.stat('count/a.png');
  await s.url('count/a.png');
  await s.delete('count/a.png');
  expect(fake.counts.deliveryHead - heads).toBe(0);
  expect(fake.counts.deliveryGet - gets).toBe(0);
});
