/**
 * The existence cache primed by listing: a cold page of avatars under one folder costs one or two
 * listings instead of a check per photo, and the answers are the same as without priming, on
 * every backend: photos that appear and disappear behind the cache's back, writes through it
 * during a listing, names that are not keys, NFD/NFC twins, a folder larger than a prime lists,
 * evictions, a backend that refuses listings, and Cloudinary (whose exists() finds adopted names
 * its listings never show).
 */
import http from 'node:http';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExistenceCache, resolveAvatars, withExistenceCache, type AvatarInput } from '../../src/avatar/index.js';
import { B2Storage } from '../../src/b2/index.js';
import { CloudinaryStorage, djangoCloudinaryStorage } from '../../src/cloudinary/index.js';
import { MediaStorageError } from '../../src/core/errors.js';
import type { ListOptions, MediaStorage } from '../../src/core/types.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { startFakeB2 } from '../support/fakes/b2-server.js';
import { FakeCloudinary, type FakeAccount } from '../support/fakes/cloudinary-server.js';
import { startS3Target, type S3TestTarget } from '../support/s3-target.js';

const JPEG = Buffer.from('ffd8ffe000104a46494600010100000100010000', 'hex');
const NFC = 'profile_images/Jos\u00e9.jpg';
const NFD = 'profile_images/Jose\u0301.jpg';

/** Delegates to `inner`, counting requests by kind; `declare` overrides capabilities (a memory store playing a network one). */
function counted(
  inner: MediaStorage,
  declare: Partial<MediaStorage['capabilities']> = {},
  list?: (prefix: string | undefined, options: ListOptions | undefined) => Promise<void>,
) {
  const counts = { exists: 0, list: 0, listedObjects: 0 };
  const storage: MediaStorage = {
    name: inner.name,
    capabilities: { ...inner.capabilities, ...declare },
    save: (k, b, o) => inner.save(k, b, o),
    url: (k, o) => inner.url(k, o),
    delete: (k) => inner.delete(k),
    exists: async (k) => {
      counts.exists++;
      return inner.exists(k);
    },
    read: (k, o) => inner.read(k, o),
    readBuffer: (k, o) => inner.readBuffer(k, o),
    close: () => inner.close(),
    stat: (k) => inner.stat(k),
    list: async (p, o) => {
      counts.list++;
      await list?.(p, o);
      const page = await inner.list(p, o);
      counts.listedObjects += page.items.length;
      return page;
    },
    listAll: (p, o) => inner.listAll(p, o),
    copy: (a, b, o) => inner.copy(a, b, o),
  };
  return { storage, counts };
}

/** What a page shows: per entry, the photo's key or the default. */
async function shown(storage: MediaStorage, page: readonly AvatarInput[], options: { prime?: boolean } = {}): Promise<string[]> {
  return (await resolveAvatars(storage, page, { default: '/default.svg', ...options })).map((r) =>
    r.isDefault ? `default${r.key ? `:${r.key}` : ''}` : r.key!,
  );
}

/** 500 people, 210 distinct valid photo paths (40 never stored), duplicates, empty and invalid paths: the bench's page. */
function page500(prefix = 'profile_images/person-'): AvatarInput[] {
  return Array.from({ length: 500 }, (_, i) => {
    if (i % 10 === 3) return null;
    if (i % 25 === 7) return '';
    if (i % 50 === 11) return i % 100 === 11 ? '../../etc/passwd' : '/absolute/photo.jpg';
    return `${prefix}${(i * 7) % 250}.jpg`;
  });
}

describe('a cold page primed by listing', () => {
  it('costs at most 3 storage requests for 210 photos under a folder of 5,000 objects, with the same answers as unprimed', async () => {
    const memory = new MemoryStorage();
    // The folder holds 5,000 photos; the page shows 170 of them and 40 that were never stored.
    for (let k = 0; k < 5050; k++) if (k >= 250 || k % 5 !== 4) await memory.save(`profile_images/person-${k}.jpg`, JPEG);
    const primed = counted(memory, { listingAnswersExists: true });
    const unprimed = counted(memory, { listingAnswersExists: true });
    const cache = withExistenceCache(primed.storage);
    const a = await shown(cache, page500());
    expect(primed.counts.exists + primed.counts.list).toBeLessThanOrEqual(3);
    expect(primed.counts).toMatchObject({ exists: 0, list: 2, listedObjects: 5000 });
    const b = await shown(withExistenceCache(unprimed.storage), page500(), { prime: false });
    expect(unprimed.counts).toMatchObject({ exists: 210, list: 0 });
    expect(a).toEqual(b);
    expect(a.filter((s) => !s.startsWith('default'))).toHaveLength(340);
    // Warm: nothing at all.
    const before = { ...primed.counts };
    expect(await shown(cache, page500())).toEqual(a);
    expect(primed.counts).toEqual(before);
  });

  it('lists only from the longest prefix the photos share up to the last of them', async () => {
    const memory = new MemoryStorage();
    for (let k = 0; k < 400; k++) await memory.save(`profile_images/a-${String(k).padStart(3, '0')}.jpg`, JPEG);
    for (let k = 0; k < 400; k++) await memory.save(`profile_images/b-${String(k).padStart(3, '0')}.jpg`, JPEG);
    const prefixes: string[] = [];
    const { storage, counts } = counted(memory, { listingAnswersExists: true }, async (p) => void prefixes.push(p!));
    const page = Array.from({ length: 30 }, (_, i) => `profile_images/b-${String(i * 3).padStart(3, '0')}.jpg`);
    await shown(withExistenceCache(storage, new ExistenceCache()), page);
    expect(prefixes).toEqual(['profile_images/b-0']);
    expect(counts.listedObjects).toBe(100);
  });

  it('never on a backend whose listing does not answer exists(), nor for a few photos, nor with prime: false', async () => {
    const memory = new MemoryStorage();
    for (let k = 0; k < 50; k++) await memory.save(`p/${k}.jpg`, JPEG);
    const plain = counted(memory);
    await shown(
      withExistenceCache(plain.storage),
      Array.from({ length: 50 }, (_, k) => `p/${k}.jpg`),
    );
    expect(plain.counts).toMatchObject({ list: 0, exists: 50 });
    const network = counted(memory, { listingAnswersExists: true });
    await shown(
      withExistenceCache(network.storage),
      Array.from({ length: 15 }, (_, k) => `p/${k}.jpg`),
    );
    expect(network.counts).toMatchObject({ list: 0, exists: 15 });
    const off = counted(memory, { listingAnswersExists: true });
    await shown(
      withExistenceCache(off.storage),
      Array.from({ length: 50 }, (_, k) => `p/${k}.jpg`),
      { prime: false },
    );
    expect(off.counts).toMatchObject({ list: 0, exists: 50 });
  });

  it('a folder larger than a prime lists: the listed part answers, the rest is checked, and the folder is not listed again', async () => {
    const memory = new MemoryStorage();
    for (let k = 0; k < 300; k++) await memory.save(`big/${String(k).padStart(3, '0')}.jpg`, JPEG);
    const { storage, counts } = counted(memory, { listingAnswersExists: true });
    const cache = withExistenceCache(storage);
    const page = Array.from({ length: 40 }, (_, i) => `big/${String(i * 7).padStart(3, '0')}.jpg`).concat(['big/050x.jpg']);
    const answers = await resolveAvatars(cache, page, { prime: { maxObjects: 100 } });
    expect(answers.every((r, i) => r.isDefault === (i === 40))).toBe(true);
    expect(counts.list).toBe(1);
    // Listed: 000-099, so 15 photos and the missing 050x answered; the 25 beyond are checked.
    expect(counts.exists).toBe(25);
    const next = Array.from({ length: 40 }, (_, i) => `big/${String(i * 7 + 1).padStart(3, '0')}.jpg`);
    await resolveAvatars(cache, next, { prime: { maxObjects: 100 } });
    expect(counts.list).toBe(1);
  });

  it('a backend that refuses to list: per-key checks, onError told once, and no listing on the next page', async () => {
    const memory = new MemoryStorage();
    for (let k = 0; k < 30; k++) await memory.save(`p/${k}.jpg`, JPEG);
    const { storage, counts } = counted(memory, { listingAnswersExists: true }, async () => {
      throw new MediaStorageError('PERMISSION', 'not allowed to list');
    });
    const errors: string[] = [];
    const cache = withExistenceCache(storage);
    const page = Array.from({ length: 30 }, (_, k) => `p/${k}.jpg`);
    expect(
      (await resolveAvatars(cache, page, { onError: (err, path) => errors.push(`${(err as MediaStorageError).code} ${path}`) })).every((r) => !r.isDefault),
    ).toBe(true);
    expect(errors).toEqual(['PERMISSION p/']);
    expect(counts.exists).toBe(30);
    await resolveAvatars(
      cache,
      Array.from({ length: 30 }, (_, k) => `p/x${k}.jpg`),
    );
    expect(counts.list).toBe(1);
  });

  it('keys outside the primed prefix are checked one by one, with the same answers as unprimed', async () => {
    const memory = new MemoryStorage();
    for (let k = 0; k < 40; k++) if (k % 4 !== 0) await memory.save(`profile_images/p${k}.jpg`, JPEG);
    // A sibling folder whose name begins like the primed one, a few photos elsewhere and one at the root.
    for (const key of ['profile_images_old/p1.jpg', 'banners/b1.jpg', 'root.jpg']) await memory.save(key, JPEG);
    const prefixes: string[] = [];
    const primed = counted(memory, { listingAnswersExists: true }, async (p) => void prefixes.push(p!));
    const page: AvatarInput[] = [
      ...Array.from({ length: 40 }, (_, k) => `profile_images/p${k}.jpg`),
      'profile_images_old/p1.jpg',
      'profile_images_old/p2.jpg',
      'banners/b1.jpg',
      'banners/b2.jpg',
      'root.jpg',
      'missing.jpg',
    ];
    const a = await shown(withExistenceCache(primed.storage), page);
    expect(prefixes).toEqual(['profile_images/p']);
    expect(primed.counts).toMatchObject({ list: 1, exists: 6 });
    expect(a).toEqual(await shown(withExistenceCache(memory), page, { prime: false }));
    expect(a.slice(40)).toEqual([
      'profile_images_old/p1.jpg',
      'default:profile_images_old/p2.jpg',
      'banners/b1.jpg',
      'default:banners/b2.jpg',
      'root.jpg',
      'default:missing.jpg',
    ]);
  });

  it('a listing failing on its second page: nothing recorded from it, per-key checks answer, onError told, and the next page lists again', async () => {
    const memory = new MemoryStorage();
    for (let k = 0; k < 60; k++) if (k % 3 !== 0) await memory.save(`p/${String(k).padStart(2, '0')}.jpg`, JPEG);
    let calls = 0;
    const { storage, counts } = counted(memory, { listingAnswersExists: true }, async (_p, o) => {
      if (++calls === 2 && o?.cursor) throw new MediaStorageError('UNAVAILABLE', 'connection reset');
    });
    const errors: string[] = [];
    const cache = withExistenceCache(storage);
    const page = Array.from({ length: 60 }, (_, k) => `p/${String(k).padStart(2, '0')}.jpg`);
    const a = (
      await resolveAvatars(cache, page, {
        prime: { maxObjects: 100, pageSize: 20 },
        onError: (err, path) => errors.push(`${(err as MediaStorageError).code} ${path}`),
      })
    ).map((r) => r.isDefault);
    expect(a).toEqual(page.map((_, k) => k % 3 === 0));
    expect(errors).toEqual(['UNAVAILABLE p/']);
    expect(counts.exists).toBe(60);
    expect(counts.list).toBe(2);
    // A transient failure does not stop listings: the next page's photos are primed.
    const next = Array.from({ length: 20 }, (_, k) => `p/x${String(k).padStart(2, '0')}.jpg`);
    await resolveAvatars(cache, next);
    expect(counts.list).toBe(3);
    expect(counts.exists).toBe(60);
  });
});

describe('ExistenceCache.prime', () => {
  it('a write through the cache while the listing is in flight wins over the listing; a forgotten key spoils it', async () => {
    const memory = new MemoryStorage();
    for (let k = 0; k < 20; k++) await memory.save(`f/${k}.jpg`, JPEG);
    let gate: Promise<void> = Promise.resolve();
    let listing!: () => void;
    let started = new Promise<void>((r) => (listing = r));
    const { storage, counts } = counted(memory, { listingAnswersExists: true }, async () => {
      listing();
      await gate;
    });
    const cache = withExistenceCache(storage);
    let release!: () => void;
    gate = new Promise<void>((r) => (release = r));
    const primed = cache.prime('f/');
    await started;
    // While the listing waits (it reads the store once released):
    await memory.delete('f/1.jpg'); // behind the cache's back: the listing will not show it
    await cache.delete('f/0.jpg'); // through the cache...
    await memory.save('f/0.jpg', JPEG); // ...then behind its back again: the listing shows it, the cache's delete came later than the listing started
    await cache.save('f/new.jpg', JPEG);
    release();
    expect(await primed).toMatchObject({ complete: true, answersMissing: true });
    expect(await cache.exists('f/0.jpg')).toBe(false);
    expect(await cache.exists('f/new.jpg')).toBe(true);
    expect(await cache.exists('f/2.jpg')).toBe(true);
    expect(await cache.exists('f/1.jpg')).toBe(false); // the listing proves it
    expect(counts.exists).toBe(0);

    // A key forgotten while a listing runs (a write whose outcome is unknown): the listing then proves no absence.
    const fresh = withExistenceCache(storage);
    gate = new Promise<void>((r) => (release = r));
    started = new Promise<void>((r) => (listing = r));
    const spoiled = fresh.prime('f/');
    await started;
    fresh.cache.delete('f/5.jpg');
    release();
    expect(await spoiled).toMatchObject({ listed: 20, answersMissing: false });
    expect(await fresh.exists('f/1.jpg')).toBe(false);
    expect(counts.exists).toBe(1);
  });

  it('answers missing keys from a listing only while every listed key is remembered', async () => {
    const memory = new MemoryStorage();
    for (let k = 0; k < 20; k++) await memory.save(`f/${k}.jpg`, JPEG);
    const { storage, counts } = counted(memory, { listingAnswersExists: true });
    const cache = withExistenceCache(storage, { maxEntries: 50 });
    expect(await cache.prime('f/')).toMatchObject({ listed: 20, complete: true, answersMissing: true, requests: 1 });
    expect(await cache.exists('f/none.jpg')).toBe(false);
    expect(await cache.exists('f/3.jpg')).toBe(true);
    expect(counts.exists).toBe(0);
    // Other keys push the listed ones out: the listing no longer answers, checks do.
    for (let k = 0; k < 50; k++) cache.cache.set(`other/${k}`, true);
    expect(await cache.exists('f/3.jpg')).toBe(true);
    expect(await cache.exists('f/none.jpg')).toBe(false);
    expect(counts.exists).toBe(2);
  });

  it('after the TTL the listing answers nothing; forgetting a key under it makes it answer nothing', async () => {
    let now = 0;
    const memory = new MemoryStorage();
    for (let k = 0; k < 5; k++) await memory.save(`f/${k}.jpg`, JPEG);
    const { storage, counts } = counted(memory, { listingAnswersExists: true });
    const cache = withExistenceCache(storage, new ExistenceCache({ positiveTtl: 1000, negativeTtl: 100, now: () => now }));
    await cache.prime('f/');
    expect(await cache.exists('f/9.jpg')).toBe(false);
    await memory.save('f/9.jpg', JPEG); // behind its back
    now = 99;
    expect(await cache.exists('f/9.jpg')).toBe(false);
    now = 100;
    expect(await cache.exists('f/9.jpg')).toBe(true);
    expect(counts.exists).toBe(1);
    await cache.prime('f/');
    cache.cache.delete('f/4.jpg');
    expect(await cache.exists('f/8.jpg')).toBe(false);
    expect(counts.exists).toBe(2);
  });

  it('on a backend whose listing does not answer exists(), records the listed keys as present and nothing as missing', async () => {
    const memory = new MemoryStorage();
    await memory.save('f/a.jpg', JPEG);
    const { storage, counts } = counted(memory);
    const cache = withExistenceCache(storage);
    expect(await cache.prime('f/')).toMatchObject({ listed: 1, answersMissing: false });
    expect(await cache.exists('f/a.jpg')).toBe(true);
    expect(counts.exists).toBe(0);
    expect(await cache.exists('f/b.jpg')).toBe(false);
    expect(counts.exists).toBe(1);
  });
});

/**
 * The same page through a primed and an unprimed cache, step by step, against a real backend:
 * the answers must agree at every step.
 */
function sameAnswersOn(
  name: string,
  make: () => Promise<{ storage: MediaStorage; seedForeign?: (name: string) => Promise<void>; close: () => Promise<void> }>,
): void {
  describe(`same answers primed and unprimed: ${name}`, () => {
    let target: Awaited<ReturnType<typeof make>>;
    beforeAll(async () => {
      target = await make();
    }, 60_000);
    afterAll(async () => target?.close());

    it('for stored, missing, appearing and disappearing photos, twins and names that are not keys', async () => {
      const s = target.storage;
      for (let k = 0; k < 40; k++) if (k % 4 !== 0) await s.save(`profile_images/p${k}.jpg`, JPEG);
      await s.save(NFD, JPEG);
      // Names other software left: a folder marker and a name that is not a key.
      await target.seedForeign?.('profile_images/sub/');
      await target.seedForeign?.('profile_images/bad\u0001.jpg');
      const page: AvatarInput[] = [
        ...Array.from({ length: 40 }, (_, k) => `profile_images/p${k}.jpg`),
        NFC,
        NFD,
        'profile_images/sub',
        'profile_images/sub/',
        'profile_images/bad\u0001.jpg',
        null,
      ];
      let now = 0;
      const clock = { now: () => now, positiveTtl: 1000, negativeTtl: 1000 };
      const counting = counted(s);
      const primed = withExistenceCache(counting.storage, new ExistenceCache(clock));
      const unprimed = withExistenceCache(s, new ExistenceCache(clock));
      const both = async (): Promise<string[]> => {
        const a = await shown(primed, page);
        const b = await shown(unprimed, page, { prime: false });
        expect(a).toEqual(b);
        return a;
      };
      const first = await both();
      expect(first.slice(0, 4)).toEqual(['default:profile_images/p0.jpg', 'profile_images/p1.jpg', 'profile_images/p2.jpg', 'profile_images/p3.jpg']);
      expect(first.slice(40)).toEqual([`default:${NFC}`, NFD, 'default:profile_images/sub', 'default', 'default', 'default']);
      expect(counting.counts.list).toBe(1);
      expect(counting.counts.exists).toBe(0);
      // Behind both caches' backs: one photo goes, one comes. Both keep their answers until the TTL...
      await s.delete('profile_images/p1.jpg');
      await s.save('profile_images/p4.jpg', JPEG);
      expect(await both()).toEqual(first);
      // ...then both see the change.
      now = 1000;
      const later = await both();
      expect(later.slice(0, 5)).toEqual([
        'default:profile_images/p0.jpg',
        'default:profile_images/p1.jpg',
        'profile_images/p2.jpg',
        'profile_images/p3.jpg',
        'profile_images/p4.jpg',
      ]);
      // Through the caches: seen at once by both.
      for (const cache of [primed, unprimed]) {
        await cache.save('profile_images/p8.jpg', JPEG);
        await cache.delete('profile_images/p2.jpg');
      }
      const written = await both();
      expect(written.slice(0, 9)).toEqual([
        'default:profile_images/p0.jpg',
        'default:profile_images/p1.jpg',
        'default:profile_images/p2.jpg',
        'profile_images/p3.jpg',
        'profile_images/p4.jpg',
        'profile_images/p5.jpg',
        'profile_images/p6.jpg',
        'profile_images/p7.jpg',
        'profile_images/p8.jpg',
      ]);
    }, 120_000);
  });
}

sameAnswersOn('memory (declared a network store)', async () => {
  const memory = new MemoryStorage();
  const storage = counted(memory, { listingAnswersExists: true }).storage;
  return { storage, seedForeign: async (name) => memory.putForeignObject(name, name.endsWith('/') ? Buffer.alloc(0) : JPEG), close: async () => undefined };
});

sameAnswersOn('s3', async () => {
  const target: S3TestTarget = await startS3Target('prime');
  return {
    storage: target.storage(),
    seedForeign: async (name) => {
      await target.client.send(new PutObjectCommand({ Bucket: target.bucket, Key: target.location + name, Body: name.endsWith('/') ? Buffer.alloc(0) : JPEG }));
    },
    close: () => target.stop(),
  };
});

sameAnswersOn('b2 (fake)', async () => {
  const fake = await startFakeB2({ buckets: { 'prime-bucket': 'allPrivate' } });
  const storage = new B2Storage({
    applicationKeyId: fake.applicationKeyId,
    applicationKey: fake.applicationKey,
    bucketName: 'prime-bucket',
    apiUrl: fake.authorizeUrl,
  });
  // Foreign names go through the contract's seeders on B2; here the B2 side runs without them.
  return { storage, close: () => fake.close() };
});

describe('Cloudinary (exists through the Upload API, listings through the rate-limited Admin API)', () => {
  const ACCOUNT: FakeAccount = { cloudName: 'prime-cloud', apiKey: '777777777777777', apiSecret: 'prime-secret-0123456789abcd', folderMode: 'fixed' };
  let fake: FakeCloudinary;
  beforeAll(async () => {
    fake = await new FakeCloudinary([ACCOUNT]).start();
  });
  afterAll(async () => fake?.stop());

  it('is never primed automatically, and an explicit prime keeps adopted names found', async () => {
    // A photo another tool (django-cloudinary-storage) uploaded: exists() finds it by its stored name, listings never show it.
    const { v2 } = (await import('cloudinary')) as unknown as {
      v2: { uploader: { upload_stream(o: Record<string, unknown>, cb: (e: unknown, r?: { public_id: string }) => void): NodeJS.WritableStream } };
    };
    const adopted = await new Promise<string>((resolve, reject) => {
      v2.uploader
        .upload_stream(
          {
            use_filename: true,
            folder: 'media/profile_images',
            resource_type: 'image',
            filename: 'old.jpg',
            cloud_name: ACCOUNT.cloudName,
            api_key: ACCOUNT.apiKey,
            api_secret: ACCOUNT.apiSecret,
            upload_prefix: fake.url,
            agent: new http.Agent(),
            disable_promises: true,
          },
          (err, result) => (err ? reject(err) : resolve(result!.public_id)),
        )
        .end(JPEG);
    });
    const made: CloudinaryStorage[] = [];
    const make = (): CloudinaryStorage => {
      const s = new CloudinaryStorage({
        cloudinaryUrl: fake.cloudinaryUrl(ACCOUNT.cloudName),
        fetch: fake.fetch,
        folder: 'media',
        adopt: djangoCloudinaryStorage(),
      });
      made.push(s);
      return s;
    };
    const storage = make();
    for (let k = 0; k < 20; k++) await storage.save(`profile_images/c${k}.jpg`, JPEG);
    const page: AvatarInput[] = [...Array.from({ length: 24 }, (_, k) => `profile_images/c${k}.jpg`), adopted];
    const admin = fake.counts.admin;
    const auto = await shown(withExistenceCache(make()), page);
    expect(fake.counts.admin).toBe(admin); // no Admin API call: no listing
    const explicit = withExistenceCache(make());
    // The adopted asset is listed too, under the key its public ID maps to (profile_images/old_….jpg), not its stored name.
    expect(await explicit.prime('profile_images/')).toMatchObject({ listed: 21, answersMissing: false });
    expect(fake.counts.admin).toBeGreaterThan(admin);
    expect(await shown(explicit, page)).toEqual(auto);
    expect(auto.at(-1)).toBe(adopted);
    expect(auto.filter((a) => a.startsWith('default'))).toHaveLength(4);
    for (const s of made) s.close();
  });
});
