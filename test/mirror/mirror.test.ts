import { describe, expect, it } from 'vitest';
import { MediaStorageError } from '../../src/core/errors.js';
import { LocalStorage } from '../../src/local/index.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { MirrorStorage } from '../../src/mirror/index.js';
import { describeStorageContract } from '../../src/testing/index.js';
import { listen } from '../support/http.js';
import { tempDir } from '../support/tmp.js';

describeStorageContract('mirror (memory primary, local secondary)', async () => {
  const tmp = await tempDir('mirror');
  let primary!: MemoryStorage;
  const server = await listen((req, res) => primary.handler()(req, res));
  primary = new MemoryStorage({ baseUrl: `${server.url}/media` });
  const secondary = new LocalStorage({ root: tmp.dir, warnOnEphemeralDisk: false });
  return {
    storage: new MirrorStorage(primary, secondary),
    cleanup: async () => {
      await server.close();
      await tmp.remove();
    },
  };
});

describe('MirrorStorage during a migration', () => {
  it('serves old files from the secondary and new ones from the primary', async () => {
    const durable = new MemoryStorage({ baseUrl: 'https://cdn.example.com' });
    const oldDisk = new MemoryStorage({ baseUrl: '/media' });
    await oldDisk.save('profile_images/old.jpg', 'old photo');
    const mirror = new MirrorStorage(durable, oldDisk);

    expect(await mirror.exists('profile_images/old.jpg')).toBe(true);
    expect((await mirror.readBuffer('profile_images/old.jpg')).toString()).toBe('old photo');
    expect(await mirror.url('profile_images/old.jpg')).toBe('/media/profile_images/old.jpg');
    expect((await mirror.stat('profile_images/old.jpg')).size).toBe(9);

    await mirror.save('profile_images/new.jpg', 'new photo');
    expect((await durable.readBuffer('profile_images/new.jpg')).toString()).toBe('new photo');
    expect((await oldDisk.readBuffer('profile_images/new.jpg')).toString()).toBe('new photo');
    expect(await mirror.url('profile_images/new.jpg')).toBe('https://cdn.example.com/profile_images/new.jpg');

    await mirror.delete('profile_images/new.jpg');
    expect(await durable.exists('profile_images/new.jpg')).toBe(false);
    expect(await oldDisk.exists('profile_images/new.jpg')).toBe(false);
    expect(await mirror.stat('missing.jpg').catch((e: MediaStorageError) => e.code)).toBe('NOT_FOUND');
  });

  it('copies an object the secondary never had', async () => {
    const durable = new MemoryStorage();
    const oldDisk = new MemoryStorage();
    await durable.save('a.txt', 'only on the primary');
    const mirror = new MirrorStorage(durable, oldDisk);
    await mirror.copy('a.txt', 'b.txt');
    expect((await oldDisk.readBuffer('b.txt')).toString()).toBe('only on the primary');
  });

  it('reports a failed secondary write, or hands it to onMirrorError', async () => {
    class Broken extends MemoryStorage {
      override async save(): Promise<never> {
        throw new MediaStorageError('UNAVAILABLE', 'secondary down');
      }
    }
    const primary = new MemoryStorage();
    await expect(new MirrorStorage(primary, new Broken()).save('x.txt', 'x')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(await primary.exists('x.txt')).toBe(true);
    const seen: string[] = [];
    const tolerant = new MirrorStorage(primary, new Broken(), { onMirrorError: (err, ctx) => seen.push(`${ctx.operation}:${ctx.key}:${err.code}`) });
    await tolerant.save('y.txt', 'y');
    expect(seen).toEqual(['save:y.txt:UNAVAILABLE']);
  });
});
