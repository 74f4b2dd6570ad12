import { describe, expect, it } from 'vitest';
import {
  ExistenceCache,
  initialsAvatarDataUrl,
  resolveAvatar,
  resolveAvatarUrl,
  resolveAvatarUrls,
  resolveAvatars,
  withExistenceCache,
} from '../../src/avatar/index.js';
import { MediaStorageError } from '../../src/core/errors.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { countingExists } from '../support/counting-storage.js';

async function seeded(keys: string[]) {
  const storage = new MemoryStorage({ baseUrl: '/media' });
  for (const key of keys) await storage.save(key, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]));
  return storage;
}

describe('resolveAvatarUrl', () => {
  it('gives the object URL when it exists and the default otherwise', async () => {
    const storage = await seeded(['profile_images/ada.png']);
    expect(await resolveAvatarUrl(storage, 'profile_images/ada.png')).toBe('/media/profile_images/ada.png');
    expect(await resolveAvatarUrl(storage, 'profile_images/gone.png', { default: '/static/default.png' })).toBe('/static/default.png');
    const person = { id: 42, name: 'Grace Hopper' };
    expect(await resolveAvatarUrl(storage, 'profile_images/gone.png', { person })).toBe(initialsAvatarDataUrl(person));
    expect(await resolveAvatarUrl(storage, 'x.png', { person, default: (p) => `/d/${p.id}.png` })).toBe('/d/42.png');
  });

  it('passes url options through (signed URLs)', async () => {
    const storage = await seeded(['a.png']);
    const url = await resolveAvatarUrl(storage, 'a.png', { url: { expiresIn: 60 } });
    expect(url).toMatch(/^\/media\/a\.png\?.*signature=/);
  });

  it('makes no storage call for empty, null, undefined or invalid paths', async () => {
    const storage = await seeded([]);
    const stats = countingExists(storage, 0);
    let urlCalls = 0;
    const url = storage.url.bind(storage);
    storage.url = (...args) => (urlCalls++, url(...args));
    for (const bad of ['', null, undefined, '../etc/passwd', '/abs.png', 'a//b.png', 'nul\u0000.png', 'C:\\x.png', 42 as unknown as string]) {
      const r = await resolveAvatar(storage, bad, { default: '/d.png' });
      expect(r).toMatchObject({ src: '/d.png', fallback: '/d.png', isDefault: true });
    }
    expect(stats.total).toBe(0);
    expect(urlCalls).toBe(0);
  });

  it('shows the default, and reports, when the storage fails', async () => {
    const storage = await seeded(['a.png']);
    storage.exists = async () => {
      throw new MediaStorageError('UNAVAILABLE', 'down');
    };
    const errors: string[] = [];
    const r = await resolveAvatar(storage, 'a.png', { default: '/d.png', onError: (_e, key) => errors.push(key) });
    expect(r.isDefault).toBe(true);
    expect(errors).toEqual(['a.png']);
  });
});

describe('resolveAvatarUrls', () => {
  it('checks each distinct path once, keeps order, bounds concurrency', async () => {
    const present = Array.from({ length: 30 }, (_, i) => `p/${i}.png`);
    const storage = await seeded(present);
    const stats = countingExists(storage, 2);
    const inputs: (string | null)[] = [];
    for (let i = 0; i < 200; i++) {
      inputs.push(i % 5 === 0 ? `missing/${i % 20}.png` : i % 7 === 0 ? null : `p/${i % 30}.png`);
    }
    const urls = await resolveAvatarUrls(storage, inputs, { concurrency: 4, default: '/d.png' });
    expect(urls).toHaveLength(200);
    urls.forEach((url, i) => {
      const input = inputs[i];
      expect(url).toBe(input?.startsWith('p/') ? `/media/${input}` : '/d.png');
    });
    const distinct = new Set(inputs.filter((x): x is string => typeof x === 'string'));
    expect(stats.total).toBe(distinct.size);
    expect([...stats.calls.values()].every((n) => n === 1)).toBe(true);
    expect(stats.maxInFlight).toBe(4);
  });

  it('uses a per-person default for entries', async () => {
    const storage = await seeded(['a.png']);
    const results = await resolveAvatars(storage, [
      { path: 'a.png', id: 1, name: 'Ann Lee' },
      { path: 'b.png', id: 2, name: 'Bo' },
      { path: null, id: 3, name: '' },
    ]);
    expect(results[0]).toMatchObject({ src: '/media/a.png', isDefault: false, key: 'a.png', fallback: initialsAvatarDataUrl({ id: 1, name: 'Ann Lee' }) });
    expect(results[1]).toMatchObject({ isDefault: true, src: initialsAvatarDataUrl({ id: 2, name: 'Bo' }) });
    expect(results[2]!.src).toBe(initialsAvatarDataUrl({ id: 3, name: '' }));
  });

  it('with a cache: a warm page makes zero requests; concurrent pages share checks', async () => {
    const storage = await seeded(['a.png', 'b.png']);
    const stats = countingExists(storage, 5);
    const cache = new ExistenceCache();
    const page = ['a.png', 'b.png', 'c.png', 'a.png'];
    const [first, second] = await Promise.all([resolveAvatarUrls(storage, page, { cache }), resolveAvatarUrls(storage, page, { cache })]);
    expect(first).toEqual(second);
    expect(stats.total).toBe(3);
    expect(cache.stats.coalesced).toBe(3);
    await resolveAvatarUrls(storage, page, { cache });
    expect(stats.total).toBe(3);
  });

  it('picks up the cache of a CachedStorage, and sees its saves and deletes at once', async () => {
    const memory = await seeded(['a.png']);
    const stats = countingExists(memory, 1);
    const storage = withExistenceCache(memory, { positiveTtl: 60_000, negativeTtl: 60_000 });
    expect(await resolveAvatarUrls(storage, ['a.png', 'new.png'], { default: '/d.png' })).toEqual(['/media/a.png', '/d.png']);
    expect(stats.total).toBe(2);
    await storage.save('new.png', 'hello', { contentType: 'image/png' });
    await storage.delete('a.png');
    expect(await resolveAvatarUrls(storage, ['a.png', 'new.png'], { default: '/d.png' })).toEqual(['/d.png', '/media/new.png']);
    expect(stats.total).toBe(2); // both answered by the cache, updated by save and delete
  });

  it('serves stale answers at once and revalidates each in the background once', async () => {
    let now = 0;
    const memory = await seeded(['a.png']);
    const stats = countingExists(memory, 1);
    const storage = withExistenceCache(memory, new ExistenceCache({ positiveTtl: 100, negativeTtl: 100, staleWhileRevalidate: 10_000, now: () => now }));
    await resolveAvatarUrls(storage, ['a.png', 'b.png'], { default: '/d.png' });
    expect(stats.total).toBe(2);
    await memory.delete('a.png'); // behind the cache's back
    now = 500; // both entries stale
    expect(await resolveAvatarUrls(storage, ['a.png', 'b.png', 'a.png'], { default: '/d.png' })).toEqual(['/media/a.png', '/d.png', '/media/a.png']);
    await new Promise((r) => setTimeout(r, 20));
    expect(stats.total).toBe(4); // one background check per stale key
    expect(await resolveAvatarUrls(storage, ['a.png'], { default: '/d.png' })).toEqual(['/d.png']);
    expect(stats.total).toBe(4);
  });

  it('rejects a nonsense concurrency', async () => {
    await expect(resolveAvatarUrls(new MemoryStorage(), [], { concurrency: 0 })).rejects.toThrow(TypeError);
  });
});
