import { describe, expect, it } from 'vitest';
import { ExistenceCache } from '../../src/avatar/existence-cache.js';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('ExistenceCache', () => {
  it('coalesces concurrent lookups of one key into one check', async () => {
    const cache = new ExistenceCache();
    let checks = 0;
    const gate = deferred<boolean>();
    const check = () => {
      checks++;
      return gate.promise;
    };
    const answers = Promise.all(Array.from({ length: 50 }, () => cache.get('a.jpg', check)));
    gate.resolve(true);
    expect(await answers).toEqual(Array(50).fill(true));
    expect(checks).toBe(1);
    expect(cache.stats).toMatchObject({ checks: 1, coalesced: 49 });
    // Now cached: no further check.
    expect(await cache.get('a.jpg', check)).toBe(true);
    expect(checks).toBe(1);
  });

  it('uses separate positive and negative TTLs', async () => {
    let now = 0;
    const cache = new ExistenceCache({ positiveTtl: 1000, negativeTtl: 100, now: () => now });
    let checks = 0;
    await cache.get('yes', async () => (checks++, true));
    await cache.get('no', async () => (checks++, false));
    now = 99;
    await cache.get('yes', async () => (checks++, true));
    await cache.get('no', async () => (checks++, false));
    expect(checks).toBe(2);
    now = 100; // negative expired, positive not
    await cache.get('yes', async () => (checks++, true));
    await cache.get('no', async () => (checks++, false));
    expect(checks).toBe(3);
    now = 1000;
    await cache.get('yes', async () => (checks++, true));
    expect(checks).toBe(4);
  });

  it('evicts the least recently used key beyond maxEntries', async () => {
    const cache = new ExistenceCache({ maxEntries: 2 });
    cache.set('a', true);
    cache.set('b', true);
    expect(cache.peek('a')).toEqual({ exists: true, stale: false }); // a is now most recent
    cache.set('c', true);
    expect(cache.size).toBe(2);
    expect(cache.peek('b')).toBeUndefined();
    expect(cache.peek('a')).toBeDefined();
    expect(cache.peek('c')).toBeDefined();
    expect(cache.stats.evictions).toBe(1);
  });

  it('a write during a check wins over the check result, and later callers do not join the old check', async () => {
    const cache = new ExistenceCache();
    const gate = deferred<boolean>();
    const first = cache.get('k', () => gate.promise);
    cache.set('k', true); // e.g. a save finished while the check (which saw no object) was in flight
    let checks = 0;
    expect(await cache.get('k', async () => (checks++, false))).toBe(true);
    expect(checks).toBe(0);
    gate.resolve(false);
    expect(await first).toBe(false);
    expect(cache.peek('k')).toEqual({ exists: true, stale: false });
  });

  it('does not cache a failed check and rejects every waiter', async () => {
    const cache = new ExistenceCache();
    const gate = deferred<boolean>();
    const a = cache.get('k', () => gate.promise);
    const b = cache.get('k', () => gate.promise);
    gate.reject(new Error('down'));
    await expect(a).rejects.toThrow('down');
    await expect(b).rejects.toThrow('down');
    expect(cache.peek('k')).toBeUndefined();
    expect(await cache.get('k', async () => true)).toBe(true);
  });

  it('serves stale answers while one background check revalidates', async () => {
    let now = 0;
    const cache = new ExistenceCache({ positiveTtl: 100, staleWhileRevalidate: 1000, now: () => now });
    cache.set('k', true);
    now = 150;
    const gate = deferred<boolean>();
    let checks = 0;
    const check = () => (checks++, gate.promise);
    expect(await cache.get('k', check)).toBe(true); // stale, answered at once
    expect(await cache.get('k', check)).toBe(true);
    expect(checks).toBe(1);
    expect(cache.stats.staleHits).toBe(2);
    gate.resolve(false);
    await gate.promise;
    await new Promise((r) => setImmediate(r));
    expect(cache.peek('k')).toEqual({ exists: false, stale: false });
    now = 150 + 100_000; // far past the window: checked before answering
    expect(cache.peek('k')).toBeUndefined();
  });

  it('delete and clear forget entries and disown checks in flight', async () => {
    const cache = new ExistenceCache();
    cache.set('a', true);
    cache.delete('a');
    expect(cache.peek('a')).toBeUndefined();
    const gate = deferred<boolean>();
    const inFlight = cache.get('b', () => gate.promise);
    cache.set('c', false);
    cache.clear();
    expect(cache.size).toBe(0);
    gate.resolve(true);
    expect(await inFlight).toBe(true);
    expect(cache.peek('b')).toBeUndefined(); // the result of a check from before clear() is not kept
  });

  it('rejects nonsense options', () => {
    expect(() => new ExistenceCache({ maxEntries: 0 })).toThrow(TypeError);
    expect(() => new ExistenceCache({ positiveTtl: -1 })).toThrow(TypeError);
  });
});
