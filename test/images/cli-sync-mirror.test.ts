// Variants kept consistent outside one storage: the `variants` backfill command, sync, and MirrorStorage.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import sharp from 'sharp';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/index.js';
import { parseVariantSpec } from '../../src/cli/variants.js';
import { syncStorages } from '../../src/cli/sync.js';
import { backfillVariants, withImages } from '../../src/images/index.js';
import { LocalStorage } from '../../src/local/index.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { MirrorStorage } from '../../src/mirror/index.js';
import type { MediaStorage } from '../../src/core/types.js';
import { tempDir } from '../support/tmp.js';
import { CountingStorage, VARIANTS } from './backends.js';
import { fixtures, photoLike, type Fixtures } from '../support/image-fixtures.js';

let f: Fixtures;
const photos: Buffer[] = [];
beforeAll(async () => {
  f = await fixtures();
  for (let i = 0; i < 6; i++) photos.push(await (await photoLike(600 + i * 10, 400)).jpeg({ quality: 80 }).toBuffer());
}, 60_000);

function capture(): { io: Parameters<typeof main>[1] & object; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, stdin: Readable.from([]), env: {} },
    out: () => out,
    err: () => err,
  };
}

describe('media-storage variants (backfill)', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let raw: LocalStorage;
  beforeEach(async () => {
    tmp = await tempDir('variants-cli');
    raw = new LocalStorage({ root: tmp.dir, warnOnEphemeralDisk: false });
    // Photos stored before withImages, a text file among them, and one outside the prefix.
    for (let i = 0; i < photos.length; i++) await raw.save(`profile_images/p${i}.jpg`, photos[i]!);
    await raw.save('profile_images/notes.jpg', f.text, { contentType: 'image/jpeg' });
    await raw.save('other/x.jpg', photos[0]!);
  });
  afterEach(() => tmp.remove());

  const spec = ['--variant', 'avatar=64x64,cover,webp,densities=1+2'];

  it('dry run lists what it would generate and writes nothing; the run generates it, reports progress and a summary; a second run finds nothing to do', async () => {
    const dry = capture();
    expect(await main(['variants', '--url', `file://${tmp.dir}`, '--prefix', 'profile_images/', ...spec, '--dry-run'], dry.io)).toBe(0);
    expect(dry.out().match(/^would generate _variants\/profile_images\/[^/]+\.jpg\/avatar-[0-9a-f]{8}(-2x)?\.webp$/gm)).toHaveLength(14);
    expect(dry.out()).toContain('7 photos: 14 variants to generate, 0 already complete, 0 not images, 0 failed');
    expect([...(await listKeys(raw, '_variants/'))]).toEqual([]);

    const run = capture();
    expect(await main(['variants', '--url', `file://${tmp.dir}`, '--prefix', 'profile_images/', ...spec], run.io)).toBe(0);
    expect(run.out()).toMatch(/7 photos: 12 variants generated \([\d.]+ KB\), 0 already complete, 1 not images, 0 failed/);
    expect(run.out()).toMatch(/NOT AN IMAGE profile_images\/notes\.jpg: .*text/);
    expect(run.err()).toMatch(/photos 7 files/);
    const stored = await listKeys(raw, '_variants/');
    expect(stored.size).toBe(12);
    expect([...stored].some((k) => k.startsWith('_variants/other/'))).toBe(false);
    const images = withImages(raw, { variants: { avatar: parseVariantSpec('avatar=64x64,cover,webp,densities=1+2')[1] } });
    expect(await sharp(await raw.readBuffer(images.variantKey('profile_images/p3.jpg', 'avatar', 2))).metadata()).toMatchObject({
      format: 'webp',
      width: 128,
      height: 128,
    });

    const again = capture();
    expect(await main(['variants', '--url', `file://${tmp.dir}`, '--prefix', 'profile_images/', ...spec, '--quiet'], again.io)).toBe(0);
    expect(again.out()).toContain('7 photos: 0 variants generated (0 B), 6 already complete, 1 not images, 0 failed');
  });

  it("resumes: an interrupted run left some variants, the next one generates only the rest; --config reads the app's own options", async () => {
    const config = path.join(tmp.dir, '..', `images-config-${path.basename(tmp.dir)}.mjs`);
    await writeFile(config, `export default { variants: ${JSON.stringify(VARIANTS)} };\n`);
    const images = withImages(raw, { variants: VARIANTS });
    // What a first run got through before it was stopped: three photos done.
    for (const i of [0, 1, 2]) await images.generateVariants(`profile_images/p${i}.jpg`);
    const counted = new CountingStorage(raw);
    const report = await backfillVariants(withImages(counted, { variants: VARIANTS }), { prefix: 'profile_images/' });
    expect(report).toMatchObject({ scanned: 7, generated: 9, complete: 3, notImages: 1, failed: 0 });
    expect(counted.saves.every((k) => /p[345]\.jpg/.test(k))).toBe(true);
    const cli = capture();
    expect(await main(['variants', '--url', `file://${tmp.dir}`, '--prefix', 'profile_images/', '--config', config, '--quiet'], cli.io)).toBe(0);
    expect(cli.out()).toContain('7 photos: 0 variants generated (0 B), 6 already complete, 1 not images, 0 failed');
  });

  it('says why when told nothing to generate, and exits 2', async () => {
    const none = capture();
    expect(await main(['variants', '--url', `file://${tmp.dir}`, '--prefix', 'x/'], none.io)).toBe(2);
    expect(none.err()).toMatch(/--config FILE .* or --variant/);
    const bad = capture();
    expect(await main(['variants', '--url', `file://${tmp.dir}`, '--prefix', 'x/', '--variant', 'avatar=big'], bad.io)).toBe(2);
    expect(bad.err()).toMatch(/WIDTHxHEIGHT/);
  });
});

async function listKeys(storage: Pick<MediaStorage, 'listAll'>, prefix: string): Promise<Set<string>> {
  const keys = new Set<string>();
  for await (const item of storage.listAll(prefix)) keys.add(item.key);
  return keys;
}

describe('sync and MirrorStorage keep variants with their photos', () => {
  it('sync with a prefix copies the photos and their variants; --delete removes the variants of photos the source no longer has', async () => {
    const from = new MemoryStorage();
    const to = new MemoryStorage();
    const images = withImages(from, { variants: VARIANTS });
    await images.save('profile_images/a.jpg', photos[0]!);
    await images.save('profile_images/b.jpg', photos[1]!);
    await images.save('elsewhere/c.jpg', photos[2]!);
    const report = await syncStorages(from, to, { prefix: 'profile_images/' });
    expect(report.failed).toBe(0);
    const copied = await listKeys(to, '');
    expect(copied).toEqual(new Set([...(await listKeys(from, 'profile_images/')), ...(await listKeys(from, '_variants/profile_images/'))]));
    expect(copied.size).toBe(2 + 2 * 3);
    // On the destination, the layer finds them where it looks.
    const there = withImages(to, { variants: VARIANTS });
    expect(
      (await to.readBuffer(there.variantKey('profile_images/a.jpg', 'card'))).equals(await from.readBuffer(images.variantKey('profile_images/a.jpg', 'card'))),
    ).toBe(true);

    await images.delete('profile_images/b.jpg');
    const deleted: string[] = [];
    const pruned = await syncStorages(from, to, { prefix: 'profile_images/', delete: true, onEvent: (e) => e.type === 'deleted' && deleted.push(e.key) });
    expect(pruned.deleted).toBe(deleted.length);
    expect(deleted.sort()).toEqual([...copied].filter((k) => k.includes('b.jpg')).sort());
    expect((await listKeys(to, '')).size).toBe(4);
  });

  it('sync into an image storage or Cloudinary leaves the stored variants behind (the destination makes its own)', async () => {
    const from = new MemoryStorage();
    await withImages(from, { variants: VARIANTS }).save('p/a.jpg', photos[0]!);
    const to = withImages(new MemoryStorage(), { variants: VARIANTS });
    const copied: string[] = [];
    const report = await syncStorages(from, to, { prefix: 'p/', onEvent: (e) => e.type === 'copied' && copied.push(e.key) });
    expect(report).toMatchObject({ failed: 0, copied: 1 });
    expect(copied).toEqual(['p/a.jpg']);
    expect((await listKeys(to.storage, '_variants/')).size).toBe(3);
  });

  it('MirrorStorage under withImages: saves, copies and deletes reach every side with their variants', async () => {
    const primary = new MemoryStorage();
    const secondary = new MemoryStorage();
    const images = withImages(new MirrorStorage(primary, secondary), { variants: VARIANTS });
    await images.save('p/a.jpg', photos[0]!);
    await images.copy('p/a.jpg', 'p/b.jpg');
    for (const side of [primary, secondary]) expect((await listKeys(side, '')).size).toBe(8);
    await images.delete('p/a.jpg');
    for (const side of [primary, secondary]) expect([...(await listKeys(side, ''))].sort()).toEqual([...(await listKeys(primary, ''))].sort());
    expect((await listKeys(secondary, '')).size).toBe(4);
    expect(await images.url('p/b.jpg', { variant: 'avatar', density: 2 })).toBe(`/media/${images.variantKey('p/b.jpg', 'avatar', 2)}`);
  });

  it('MirrorStorage over two image storages: the secondary cleans and varies the copy it gets', async () => {
    const a = withImages(new MemoryStorage(), { variants: VARIANTS });
    const b = withImages(new MemoryStorage(), { variants: VARIANTS });
    const mirror = new MirrorStorage(a, b);
    await mirror.save('p/a.jpg', f.polyglot);
    expect((await listKeys(a.storage, '')).size).toBe(4);
    expect((await listKeys(b.storage, '')).size).toBe(4);
    expect((await b.readBuffer('p/a.jpg')).equals(await a.readBuffer('p/a.jpg'))).toBe(true);
    await mirror.delete('p/a.jpg');
    expect((await listKeys(a.storage, '')).size + (await listKeys(b.storage, '')).size).toBe(0);
  });
});
