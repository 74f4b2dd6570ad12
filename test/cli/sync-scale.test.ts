/**
 * syncStorages as a merge join of two key-ordered listings, at a scale where a mistake in the
 * order or the bookkeeping shows: every object copied exactly once, deletes exactly the objects
 * the source lacks, a second run does nothing, the report keeps examples and counts. The same at
 * 1,000,000 objects, with peak RSS, is bench/sync-scale.bench.ts.
 */
import { describe, expect, it } from 'vitest';
import { sortExternally } from '../../src/cli/ordered.js';
import { syncStorages, type SyncEvent } from '../../src/cli/sync.js';
import { compareKeys } from '../../src/core/keys.js';
import type { MediaStorage } from '../../src/core/types.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { startS3Target, targetLabel } from '../support/s3-target.js';
import { SyntheticStorage, syntheticKey, syntheticSize } from '../support/synthetic-storage.js';

const N = 20_000;

function expectHoldsExactly(store: SyntheticStorage, jpg: (i: number) => boolean, old: (i: number) => boolean): void {
  let wrong = 0;
  for (let i = 0; i < store.count; i++) if (store.holds(i) !== jpg(i) || store.holds(i, 'old') !== old(i)) wrong++;
  expect(wrong).toBe(0);
}

describe('syncStorages at scale (merge join)', () => {
  it(`copies each of ${N.toLocaleString('en')} objects exactly once, and a second run copies nothing`, async () => {
    const source = new SyntheticStorage({ count: N });
    const target = new SyntheticStorage({ count: N, holds: 'none' });
    const first = await syncStorages(source, target, { concurrency: 16 });
    const bytes = Array.from({ length: N }, (_, i) => syntheticSize(i)).reduce((a, b) => a + b, 0);
    expect(first).toMatchObject({ scanned: N, copied: N, skipped: 0, failed: 0, deleted: 0, bytes });
    expect(target.saves.every((n) => n === 1)).toBe(true);

    const reads = source.reads;
    const second = await syncStorages(source, target, { concurrency: 16 });
    expect(second).toMatchObject({ scanned: N, copied: 0, skipped: N, failed: 0, bytes: 0 });
    expect(source.reads).toBe(reads);
    expect(target.saves.every((n) => n === 1)).toBe(true);
  }, 120_000);

  it('with delete, removes exactly what the source lacks and copies what the destination lacks, interleaved', async () => {
    // The source lacks every 7th object; the destination lacks every 5th and holds stale twins of every 3rd.
    const source = new SyntheticStorage({ count: N, holds: (i) => i % 7 !== 0 });
    const target = new SyntheticStorage({ count: N, holds: (i) => i % 5 !== 0, stale: (i) => i % 3 === 0 });
    const deleted: string[] = [];
    const report = await syncStorages(source, target, { delete: true, concurrency: 8, onEvent: (e) => e.type === 'deleted' && deleted.push(e.key) });
    let toCopy = 0;
    let toDelete = 0;
    for (let i = 0; i < N; i++) {
      if (i % 7 !== 0 && i % 5 === 0) toCopy++;
      if (i % 7 === 0 && i % 5 !== 0) toDelete++;
      if (i % 3 === 0) toDelete++;
    }
    expect(report).toMatchObject({ copied: toCopy, deleted: toDelete, failed: 0 });
    expect(deleted).toHaveLength(toDelete);
    expectHoldsExactly(
      target,
      (i) => i % 7 !== 0,
      () => false,
    );
    for (let i = 0; i < N; i++) if (i % 7 !== 0 && i % 5 === 0) expect(target.saves[i]).toBe(1);
    expect(await syncStorages(source, target, { delete: true })).toMatchObject({ copied: 0, deleted: 0, skipped: N - Math.ceil(N / 7) });
  }, 120_000);

  it('a dry run with delete reports the same and changes nothing', async () => {
    const source = new SyntheticStorage({ count: 5000, holds: (i) => i % 2 === 0 });
    const target = new SyntheticStorage({ count: 5000, holds: (i) => i % 3 === 0 });
    const events: SyncEvent[] = [];
    const dry = await syncStorages(source, target, { delete: true, dryRun: true, onEvent: (e) => events.push(e) });
    expect(target.deletes).toBe(0);
    expect(target.saves.every((n) => n === 0)).toBe(true);
    const real = await syncStorages(source, target, { delete: true });
    expect({ copied: real.copied, deleted: real.deleted }).toEqual({ copied: dry.copied, deleted: dry.deleted });
    expect(events.filter((e) => e.type === 'copied')).toHaveLength(dry.copied);
    expect(events.filter((e) => e.type === 'deleted')).toHaveLength(dry.deleted);
  });

  it('sorts a side that cannot list in key order through temp files, with the same outcome', async () => {
    // 60,000 objects listed scrambled: more than one in-memory run of 50,000, so runs are merged from disk.
    const count = 60_000;
    const source = new SyntheticStorage({ count, unsorted: true, holds: (i) => i % 4 !== 0 });
    const target = new SyntheticStorage({ count, holds: (i) => i % 6 === 0, stale: (i) => i % 10 === 0 });
    const report = await syncStorages(source, target, { delete: true, concurrency: 16 });
    let copies = 0;
    let deletes = 0;
    for (let i = 0; i < count; i++) {
      if (i % 4 !== 0 && i % 6 !== 0) copies++;
      if (i % 4 === 0 && i % 6 === 0) deletes++;
      if (i % 10 === 0) deletes++;
    }
    expect(report).toMatchObject({ copied: copies, deleted: deletes, failed: 0 });
    expectHoldsExactly(
      target,
      (i) => i % 4 !== 0,
      () => false,
    );
    expect(target.saves.every((n) => n <= 1)).toBe(true);
    expect(await syncStorages(source, target, { delete: true })).toMatchObject({ copied: 0, deleted: 0 });
  }, 120_000);

  it('fails with UNSUPPORTED, before deciding from it, when a backend that claims key order lists out of order', async () => {
    const source = new MemoryStorage();
    for (const key of ['a.jpg', 'b.jpg', 'c.jpg']) await source.save(key, 'x');
    const lying = Object.assign(Object.create(source) as MemoryStorage, {
      async *listAll() {
        yield* [await source.stat('b.jpg'), await source.stat('a.jpg'), await source.stat('c.jpg')];
      },
    });
    const target = new MemoryStorage();
    await target.save('a.jpg', 'x');
    await expect(syncStorages(lying, target, { delete: true })).rejects.toMatchObject({
      code: 'UNSUPPORTED',
      message: expect.stringMatching(/"a\.jpg" after "b\.jpg"/),
    });
    expect(await target.exists('a.jpg')).toBe(true);
  });

  it('keeps at most maxReported failures as examples and counts the rest', async () => {
    const source = new SyntheticStorage({ count: 500 });
    const target = new SyntheticStorage({ count: 500, holds: 'none' });
    const failing = Object.assign(Object.create(target) as SyntheticStorage, {
      save: async () => {
        throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
      },
    });
    let failedEvents = 0;
    const report = await syncStorages(source, failing, { attempts: 1, maxReported: 10, onEvent: (e) => e.type === 'failed' && failedEvents++ });
    expect(report.failed).toBe(500);
    expect(report.failures).toHaveLength(10);
    expect(failedEvents).toBe(500);
  });
});

describe('sortExternally', () => {
  it('sorts in key order (UTF-8 bytes) through runs on disk, and removes its temp folder', async () => {
    const keys = Array.from({ length: 5000 }, (_, i) => `k/${(i * 7919) % 5000}${i % 3 === 0 ? '\u{1f600}' : i % 3 === 1 ? '\uff21' : ''}`);
    const sorted: string[] = [];
    for await (const key of sortExternally(keys, { key: (k) => k, runSize: 300 })) sorted.push(key);
    expect(sorted).toEqual([...keys].sort(compareKeys));
    expect(sorted).toEqual([...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
  });
});

// The key scheme the synthetic store lists is in key order by construction.
it('synthetic keys are in key order', () => {
  expect(compareKeys(syntheticKey(9), syntheticKey(9, 'old'))).toBeLessThan(0);
  expect(compareKeys(syntheticKey(9, 'old'), syntheticKey(10))).toBeLessThan(0);
});

/**
 * Keys whose UTF-8 order differs from JavaScript's UTF-16 order (U+FF21 and U+E000 sort before
 * U+1F600 in UTF-8 bytes, after it in UTF-16 code units): a merge join that compared the two
 * listings in the wrong order would copy, skip or delete the wrong objects.
 */
const ORDER_TRAPS = ['\uff21', '\ue000', '\u{1f600}', '\u{10348}', 'z', '\u00e9', ''];

function trapKeys(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `p/${String(i % 97).padStart(2, '0')}${ORDER_TRAPS[i % ORDER_TRAPS.length]}-${i}.jpg`);
}

/** Wraps `storage`, counting saves per key. */
function countingSaves(storage: MediaStorage): { storage: MediaStorage; saves: Map<string, number>; deletes: string[] } {
  const saves = new Map<string, number>();
  const deletes: string[] = [];
  const wrapped = Object.assign(Object.create(storage) as MediaStorage, {
    save: (key: string, body: Parameters<MediaStorage['save']>[1], options?: Parameters<MediaStorage['save']>[2]) => {
      saves.set(key, (saves.get(key) ?? 0) + 1);
      return storage.save(key, body, options);
    },
    delete: (key: string) => {
      deletes.push(key);
      return storage.delete(key);
    },
  });
  return { storage: wrapped, saves, deletes };
}

async function syncWithOrderTraps(count: number, makeTarget: () => Promise<{ storage: MediaStorage; close: () => Promise<void> }>): Promise<void> {
  const keys = trapKeys(count);
  const source = new MemoryStorage();
  const inSource = (i: number): boolean => i % 4 !== 1;
  const inTarget = (i: number): boolean => i % 3 === 0;
  for (let i = 0; i < count; i++) if (inSource(i)) await source.save(keys[i]!, `src ${i}`);
  const { storage: raw, close } = await makeTarget();
  try {
    for (let i = 0; i < count; i++) if (inTarget(i)) await raw.save(keys[i]!, inSource(i) && i % 2 === 0 ? `src ${i}` : `stale ${i}!`);
    const target = countingSaves(raw);
    const report = await syncStorages(source, target.storage, { delete: true, concurrency: 8 });
    const expectedCopies = keys.filter((_, i) => inSource(i) && !(inTarget(i) && i % 2 === 0));
    const expectedDeletes = keys.filter((_, i) => !inSource(i) && inTarget(i));
    expect(report).toMatchObject({
      copied: expectedCopies.length,
      deleted: expectedDeletes.length,
      failed: 0,
      skipped: keys.filter((_, i) => inSource(i) && inTarget(i) && i % 2 === 0).length,
    });
    expect([...target.saves.keys()].sort()).toEqual([...expectedCopies].sort());
    expect([...target.saves.values()].every((n) => n === 1)).toBe(true);
    expect([...target.deletes].sort()).toEqual([...expectedDeletes].sort());
    const after: string[] = [];
    for await (const info of raw.listAll('p/')) after.push(info.key);
    expect(after).toEqual(keys.filter((_, i) => inSource(i)).sort(compareKeys));
    for (const [i, key] of keys.entries()) if (inSource(i) && i % 50 === 0) expect((await raw.readBuffer(key)).toString()).toBe(`src ${i}`);
    expect(await syncStorages(source, raw, { delete: true })).toMatchObject({ copied: 0, deleted: 0 });
  } finally {
    await close();
  }
}

describe('syncStorages with keys whose UTF-8 and UTF-16 orders differ (above U+FFFF)', () => {
  it('memory to memory, 7,000 objects: each copied once, exactly the stale ones deleted', async () => {
    await syncWithOrderTraps(7000, async () => ({ storage: new MemoryStorage(), close: async () => undefined }));
  }, 120_000);

  it(`memory to S3 (${targetLabel}), which lists in UTF-8 byte order itself`, async () => {
    await syncWithOrderTraps(400, async () => {
      const target = await startS3Target('sync-order');
      return { storage: target.storage(), close: () => target.stop() };
    });
  }, 180_000);
});
