import { describe, expect, it } from 'vitest';
import { withExistenceCache } from '../../src/avatar/index.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { countingExists } from '../support/counting-storage.js';

describe('CachedStorage', () => {
  it('answers exists from the cache and coalesces concurrent checks', async () => {
    const memory = new MemoryStorage();
    await memory.save('a.png', 'x');
    const stats = countingExists(memory, 5);
    const storage = withExistenceCache(memory);
    expect(await Promise.all(Array.from({ length: 20 }, () => storage.exists('a.png')))).toEqual(Array(20).fill(true));
    expect(await storage.exists('a.png')).toBe(true);
    expect(stats.total).toBe(1);
  });

  it('save marks present and delete marks missing without asking the backend', async () => {
    const memory = new MemoryStorage();
    const stats = countingExists(memory, 0);
    const storage = withExistenceCache(memory, { negativeTtl: 60_000 });
    expect(await storage.exists('a.png')).toBe(false);
    await storage.save('a.png', 'x');
    expect(await storage.exists('a.png')).toBe(true);
    await storage.delete('a.png');
    expect(await storage.exists('a.png')).toBe(false);
    const renamed = await storage.save('a.png', 'y', { ifExists: 'rename' });
    expect(await storage.exists(renamed.key)).toBe(true);
    await storage.copy(renamed.key, 'copy.png');
    expect(await storage.exists('copy.png')).toBe(true);
    expect(stats.total).toBe(1);
  });

  it('a save that lands while a check is in flight wins', async () => {
    const memory = new MemoryStorage();
    let answer!: (exists: boolean) => void;
    memory.exists = () => new Promise<boolean>((resolve) => (answer = resolve));
    const storage = withExistenceCache(memory);
    const before = storage.exists('a.png');
    await storage.save('a.png', 'x');
    answer(false); // the backend's answer from before the save arrives late
    expect(await before).toBe(false);
    expect(await storage.exists('a.png')).toBe(true);
  });

  it('learns from NOT_FOUND on stat and read, and from a successful stat', async () => {
    const memory = new MemoryStorage();
    await memory.save('there.png', 'x');
    const stats = countingExists(memory, 0);
    const storage = withExistenceCache(memory);
    await expect(storage.stat('gone.png')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(storage.readBuffer('gone2.png')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await storage.stat('there.png');
    expect(await storage.exists('gone.png')).toBe(false);
    expect(await storage.exists('gone2.png')).toBe(false);
    expect(await storage.exists('there.png')).toBe(true);
    expect(stats.total).toBe(0);
  });

  it('still refuses invalid keys with INVALID_KEY, and forgets a key whose save failed', async () => {
    const memory = new MemoryStorage();
    const stats = countingExists(memory, 0);
    const storage = withExistenceCache(memory);
    await expect(storage.exists('../x')).rejects.toMatchObject({ code: 'INVALID_KEY' });
    expect(await storage.exists('a.png')).toBe(false);
    await expect(storage.save('a.png', '', {})).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    expect(await storage.exists('a.png')).toBe(false);
    expect(stats.total).toBe(2);
  });
});
