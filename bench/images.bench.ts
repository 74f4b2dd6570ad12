/**
 * media-storage/images, side by side in one run:
 *
 * 1. Bytes per avatar on a 500-person list page at 2x of 64 px: the original photo each avatar
 *    shows without the layer, against the 128×128 WebP variant with it (goal: at most 10 KB).
 * 2. Time to generate one variant (the 2x avatar of a 4032×3024 phone JPEG): the layer's
 *    `ensureVariant` (read the original, check it, render, store) against the same sharp pipeline
 *    written by hand on the same bytes (goal: at most 1.05×).
 * 3. Peak RSS while one 24-megapixel upload (6000×4000, orientation 6) is processed: the layer's
 *    `save` of a stream to the local disk (upright, stripped, two variants) against raw sharp
 *    doing the same work on the same bytes, each in a fresh child process.
 *
 * Run through `npm run bench images`. BENCH_IMAGES_PHOTOS sets the distinct photos of the page (default 20).
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { mkdtemp, rm } from 'node:fs/promises';
import sharp from 'sharp';
import { resolveAvatars } from '../src/avatar/index.js';
import { createMediaHandler } from '../src/core/http-handler.js';
import type { MediaStorage } from '../src/core/types.js';
import { withImages } from '../src/images/index.js';
import { LocalStorage } from '../src/local/index.js';
import { MemoryStorage } from '../src/memory/index.js';
import { phonePhoto } from '../test/support/image-fixtures.js';
import { machine, median, medianRatioInterval, rssDuring, writeResults, type Measurement } from './lib/harness.js';

const WITHOUT = 'without the layer';
const WITH = 'media-storage/images';
const PEOPLE = 500;
const DISTINCT = Number(process.env.BENCH_IMAGES_PHOTOS ?? 20);
const AVATAR = { width: 64, height: 64, fit: 'cover', format: 'webp', densities: [1, 2] } as const;

/** The same pipeline the layer runs for the 2x avatar, written by hand. */
function rawVariant(data: Buffer): Promise<Buffer> {
  return sharp(data, { failOn: 'warning', limitInputPixels: 50_000_000, sequentialRead: true })
    .autoOrient()
    .resize({ width: 128, height: 128, fit: 'cover', position: 'centre' })
    .webp({ quality: 80 })
    .toBuffer();
}

// ------------------------------------------------------------------------------ child: RSS

async function child(subject: string, photoFile: string): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  const data = await readFile(photoFile);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-images-'));
  const upload = (): Readable =>
    Readable.from(
      (function* () {
        for (let i = 0; i < data.length; i += 64 * 1024) yield data.subarray(i, i + 64 * 1024);
      })(),
    );
  await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
    .webp()
    .toBuffer(); // load libvips before measuring
  const started = performance.now();
  const { startMiB, peakMiB } = await rssDuring(async () => {
    if (subject === WITH) {
      const images = withImages(new LocalStorage({ root: dir, warnOnEphemeralDisk: false }), { variants: { avatar: AVATAR } });
      await images.save('uploads/big.jpg', upload());
    } else {
      const chunks: Buffer[] = [];
      for await (const chunk of upload()) chunks.push(chunk as Buffer);
      const input = Buffer.concat(chunks);
      const original = await sharp(input, { failOn: 'warning', sequentialRead: true }).autoOrient().keepIccProfile().jpeg({ quality: 90 }).toBuffer();
      const variants = await Promise.all(
        [64, 128].map((side) => sharp(original).resize({ width: side, height: side, fit: 'cover' }).webp({ quality: 80 }).toBuffer()),
      );
      const { writeFile, mkdir } = await import('node:fs/promises');
      await mkdir(path.join(dir, 'uploads'), { recursive: true });
      await Promise.all([
        writeFile(path.join(dir, 'uploads/big.jpg'), original),
        ...variants.map((v, i) => writeFile(path.join(dir, `uploads/v${i}.webp`), v)),
      ]);
    }
  });
  const ms = performance.now() - started;
  await rm(dir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify({ startMiB, peakMiB, ms })}\n`);
}

function runChild(subject: string, photoFile: string): Promise<{ startMiB: number; peakMiB: number; ms: number }> {
  const self = fileURLToPath(import.meta.url);
  const proc = spawn(process.execPath, [...process.execArgv, self, '--child', subject, photoFile], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`${subject} child exited with ${code}`))));
  });
}

// ------------------------------------------------------------------------------ main

/** Serves a storage's files (the media handler) and answers the bytes a browser would download for each distinct URL. */
async function pageBytes(storage: MediaStorage, people: Array<{ path: string; id: number; name: string }>, variant: string | undefined): Promise<number[]> {
  const server = http.createServer(createMediaHandler(storage, { basePath: '/media' }));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const avatars = await resolveAvatars(storage, people, { ...(variant ? { variant } : {}), default: 'data:image/svg+xml,default' });
    const sizes = new Map<string, number>();
    const perAvatar: number[] = [];
    for (const avatar of avatars) {
      // What a 2x screen picks: the 2x candidate of the srcset, else src.
      const url =
        avatar.srcset
          ?.split(', ')
          .find((c) => c.endsWith(' 2x'))
          ?.split(' ')[0] ?? avatar.src;
      if (!sizes.has(url)) sizes.set(url, (await (await fetch(`${origin}${url}`)).arrayBuffer()).byteLength);
      perAvatar.push(sizes.get(url)!);
    }
    return perAvatar;
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

async function main(): Promise<void> {
  const startedAll = performance.now();
  const measurements: Measurement[] = [];
  const notes: string[] = [];

  // 1. The 500-person page.
  process.stderr.write(`making ${DISTINCT} distinct 4032×3024 phone photos...\n`);
  const photos: Buffer[] = [];
  for (let i = 0; i < DISTINCT; i++) photos.push(await phonePhoto(4032, 3024, 88 + (i % 6)));
  const people = Array.from({ length: PEOPLE }, (_, i) => ({ path: `profile_images/p${i % DISTINCT}.jpg`, id: i, name: `Person ${i}` }));
  const plain = new MemoryStorage();
  const images = withImages(new MemoryStorage(), { variants: { avatar: AVATAR } });
  for (let i = 0; i < DISTINCT; i++) {
    await plain.save(`profile_images/p${i}.jpg`, photos[i]!);
    await images.save(`profile_images/p${i}.jpg`, photos[i]!);
  }
  const without = await pageBytes(plain, people, undefined);
  const withLayer = await pageBytes(images, people, 'avatar');
  const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
  measurements.push({ case: 'bytes per avatar, 500-person page, 2x of 64 px', subject: WITHOUT, value: mean(without), unit: 'bytes' });
  measurements.push({ case: 'bytes per avatar, 500-person page, 2x of 64 px', subject: WITH, value: mean(withLayer), unit: 'bytes' });
  notes.push(
    `Page: ${PEOPLE} people sharing ${DISTINCT} distinct 4032×3024 phone JPEGs (GPS, orientation 6, ${(mean(photos.map((p) => p.length)) / 1e6).toFixed(1)} MB on average), resolved with resolveAvatars and fetched through the media handler; the figure is the mean size of the image each avatar shows on a 2x screen (the original without the layer; the srcset's 2x candidate, a 128×128 WebP, with it; largest ${Math.max(...withLayer)} B). Goal: at most 10 KB.`,
  );

  // 2. Variant generation against raw sharp on the same photo.
  const photo = photos[0]!;
  const source = new MemoryStorage();
  const layer = withImages(source, { variants: { thumb: { width: 128, height: 128, fit: 'cover', format: 'webp' } } });
  await source.save('p/photo.jpg', photo);
  const variantKey = layer.variantKey('p/photo.jpg', 'thumb');
  const rounds = 7;
  const iterations = 6;
  const times: Record<string, number[]> = { [WITHOUT]: [], [WITH]: [] };
  const check = await rawVariant(photo);
  for (let round = -1; round < rounds; round++) {
    for (let i = 0; i < iterations; i++) {
      for (const subject of (i + round) % 2 ? [WITH, WITHOUT] : [WITHOUT, WITH]) {
        await source.delete(variantKey);
        const start = performance.now();
        if (subject === WITH) await layer.ensureVariant('p/photo.jpg', 'thumb');
        else await rawVariant(photo);
        const took = performance.now() - start;
        if (round >= 0) times[subject]!.push(took);
      }
    }
  }
  await layer.ensureVariant('p/photo.jpg', 'thumb');
  const stored = await source.readBuffer(variantKey);
  if (!stored.equals(check)) throw new Error('the layer rendered different bytes from the raw pipeline: not the same work');
  for (const subject of [WITHOUT, WITH])
    measurements.push({ case: 'generate one variant (4032×3024 JPEG → 128×128 WebP)', subject, value: median(times[subject]!), unit: 'ms/op' });
  const [low, high] = medianRatioInterval(times[WITHOUT]!, times[WITH]!);
  notes.push(
    `Variant generation: ${rounds} rounds of ${iterations} calls per subject, taking turns; the figure is the median call. The layer's call is ensureVariant on a memory storage (look for the variant, read the original, check its format and size, render, store); raw sharp renders the same pipeline on the same bytes, and the two outputs are byte-identical. Ratio ${(median(times[WITH]!) / median(times[WITHOUT]!)).toFixed(3)}×, 95 % interval ${low.toFixed(3)}-${high.toFixed(3)}×. Goal: at most 1.05×.`,
  );

  // 3. Peak RSS of a 24-megapixel upload, each subject in a fresh process.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-images-photo-'));
  const photoFile = path.join(dir, 'big.jpg');
  const big = await phonePhoto(6000, 4000, 90);
  const { writeFile } = await import('node:fs/promises');
  await writeFile(photoFile, big);
  for (const subject of [WITHOUT, WITH]) {
    const result = await runChild(subject, photoFile);
    measurements.push({ case: 'peak RSS while processing a 24 MP upload', subject, value: result.peakMiB, unit: 'MiB' });
    measurements.push({ case: 'RSS growth while processing a 24 MP upload', subject, value: result.peakMiB - result.startMiB, unit: 'MiB' });
    measurements.push({ case: 'time to process a 24 MP upload', subject, value: result.ms, unit: 'ms/op' });
  }
  await rm(dir, { recursive: true, force: true });
  notes.push(
    `RSS: one 6000×4000 JPEG (${(big.length / 1e6).toFixed(1)} MB, orientation 6, so its pixels are turned and re-encoded) uploaded as a stream of 64 KiB chunks, in a fresh child process per subject, RSS sampled every 5 ms. The layer saves it to the local disk (read, check, orient, strip keeping the ICC profile, two avatar variants, atomic writes); raw sharp does the same (buffer, orient, re-encode, two variants, writeFile). Both hold the compressed upload in memory: libvips reads its input whole.`,
  );
  notes.push(`Took ${((performance.now() - startedAll) / 1000).toFixed(0)} s.`);

  const { md } = writeResults({
    name: 'images',
    title: 'media-storage/images: avatar bytes, variant generation, memory of a 24 MP upload',
    baseline: WITHOUT,
    subjects: [WITHOUT, WITH],
    measurements,
    machine: machine(),
    notes,
  });
  process.stderr.write(`wrote ${md}\n`);
}

if (process.argv[2] === '--child') {
  await child(process.argv[3]!, process.argv[4]!);
} else {
  await main();
}
