// media-storage/images on every backend: local, memory, S3 (s3rver; RGW in .ci/run), the fake B2
// and the fake Cloudinary, with photos made for the purpose (./fixtures.ts), read back with exifr,
// an EXIF reader independent of libvips.
import { Readable } from 'node:stream';
import exifr from 'exifr';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMediaStorageError } from '../../src/core/errors.js';
import { failure } from '../support/failure.js';
import { BACKEND_LABELS, startImageBackend, type ImageBackend } from './backends.js';
import { fixtures, GPS, PHOTO_HEIGHT, PHOTO_WIDTH, POLYGLOT_MARKUP, type Fixtures } from '../support/image-fixtures.js';

let f: Fixtures;

/** The EXIF of a WebP (exifr reads JPEG, PNG, TIFF and HEIF, not WebP): its RIFF `EXIF` chunk, found here and parsed by exifr as the TIFF it is. */
function webpExif(data: Buffer): Buffer | undefined {
  for (let i = 12; i + 8 <= data.length;) {
    const size = data.readUInt32LE(i + 4);
    if (data.toString('latin1', i, i + 4) === 'EXIF') {
      const chunk = data.subarray(i + 8, i + 8 + size);
      return chunk.toString('latin1', 0, 6) === 'Exif\0\0' ? chunk.subarray(6) : chunk;
    }
    i += 8 + size + (size & 1);
  }
  return undefined;
}

// Every block of EXIF (IFD0, EXIF, GPS, interop, the thumbnail's IFD1), XMP and IPTC; not the ICC
// profile, which is kept on purpose, nor the PNG header and JFIF fields exifr also reports.
const METADATA: NonNullable<Exclude<Parameters<typeof exifr.parse>[1], boolean>> = {
  tiff: true,
  exif: true,
  gps: true,
  interop: true,
  ifd1: true,
  xmp: true,
  iptc: true,
  icc: false,
  jfif: false,
  ihdr: false,
};

/** Every metadata tag an independent reader finds in the bytes; undefined when there is none. */
async function exifOf(data: Buffer): Promise<Record<string, unknown> | undefined> {
  if (data.toString('latin1', 0, 4) === 'RIFF') {
    const exif = webpExif(data);
    return exif ? exifr.parse(exif, METADATA) : undefined;
  }
  return exifr.parse(data, METADATA);
}

beforeAll(async () => {
  f = await fixtures();
  // The fixtures are what they claim, checked with the independent reader before anything relies on it.
  const gps = await exifr.gps(f.photo);
  expect(gps.latitude).toBeCloseTo(GPS.latitude, 4);
  expect(gps.longitude).toBeCloseTo(GPS.longitude, 4);
  expect(await exifr.orientation(f.photo)).toBe(6);
  expect((await exifr.parse(f.photo)).Make).toBe('TestPhone');
  expect((await sharp(f.photo).metadata()).icc).toBeDefined();
  expect(await sharp(f.photo).metadata()).toMatchObject({ width: PHOTO_WIDTH, height: PHOTO_HEIGHT, format: 'jpeg' });
  expect((await exifr.gps(f.png)).latitude).toBeCloseTo(GPS.latitude, 4);
  expect(f.png.includes('tEXt', 0, 'latin1')).toBe(true);
  expect(((await exifOf(f.webp)) as { latitude: number }).latitude).toBeCloseTo(GPS.latitude, 4);
  expect(f.polyglot.toString('latin1').split(POLYGLOT_MARKUP).length).toBe(3);
  expect(await sharp(f.polyglot).metadata()).toMatchObject({ format: 'jpeg' });
  expect(f.bomb.length).toBeLessThan(1_000_000);
  expect(f.bomb.readUInt32BE(16)).toBe(20_000);
  expect(f.bomb.readUInt32BE(20)).toBe(20_000);
}, 60_000);

async function body(res: Response): Promise<Buffer> {
  expect(res.status, `GET answered ${res.status}`).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/** The mean colour of a 40×40 square at (x, y). */
async function colourAt(data: Buffer, x: number, y: number): Promise<{ r: number; g: number; b: number }> {
  const { data: pixels, info } = await sharp(data).extract({ left: x, top: y, width: 40, height: 40 }).raw().toBuffer({ resolveWithObject: true });
  const sum = [0, 0, 0];
  for (let i = 0; i < pixels.length; i += info.channels) for (let c = 0; c < 3; c++) sum[c]! += pixels[i + c]!;
  const n = pixels.length / info.channels;
  return { r: sum[0]! / n, g: sum[1]! / n, b: sum[2]! / n };
}

function isRed(c: { r: number; g: number; b: number }): boolean {
  return c.r > 200 && c.g < 60 && c.b < 60;
}

/** What a key holds, seen from outside the layer: in a listing of the backend itself (variants included), or not at all. */
async function storedUnder(backend: ImageBackend, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const item of backend.raw.listAll('')) if (item.key.startsWith(prefix) || item.key.startsWith(`_variants/${prefix}`)) keys.push(item.key);
  return keys;
}

for (const label of BACKEND_LABELS) {
  describe(`media-storage/images on ${label}`, () => {
    let b: ImageBackend;
    const cloudinary = label.startsWith('cloudinary');

    beforeAll(async () => {
      b = await startImageBackend(label);
    }, 60_000);
    afterAll(async () => {
      await b?.stop();
    });

    it('stores the phone photo upright, with no EXIF or GPS left and its colour profile kept; the variants have the declared size and format', async () => {
      // As an upload arrives: a stream.
      const info = await b.images.save('people/ada.jpg', Readable.from([f.photo.subarray(0, 1_000_000), f.photo.subarray(1_000_000)]));
      expect(info).toMatchObject({ key: 'people/ada.jpg', contentType: 'image/jpeg' });
      const stored = await b.images.readBuffer('people/ada.jpg');
      expect(info.size).toBe(stored.length);
      expect(await exifOf(stored)).toBeUndefined();
      expect(await exifr.gps(stored)).toBeUndefined();
      expect(stored.includes('Exif\0\0', 0, 'latin1')).toBe(false);
      expect(stored.includes('TestPhone', 0, 'latin1')).toBe(false);
      const meta = await sharp(stored).metadata();
      expect(meta).toMatchObject({ format: 'jpeg', width: PHOTO_HEIGHT, height: PHOTO_WIDTH });
      expect(meta.orientation ?? 1).toBe(1);
      expect(meta.icc).toBeDefined();
      // Orientation 6 turns the stored top-left corner to the top-right.
      expect(isRed(await colourAt(stored, PHOTO_HEIGHT - 100, 60))).toBe(true);
      expect(isRed(await colourAt(stored, 60, 60))).toBe(false);

      for (const [variant, density, width, height, format] of [
        ['avatar', 1, 64, 64, 'webp'],
        ['avatar', 2, 128, 128, 'webp'],
        ['card', 1, 320, Math.round((320 * PHOTO_WIDTH) / PHOTO_HEIGHT), 'jpeg'],
      ] as const) {
        const url = await b.images.url('people/ada.jpg', { variant, density });
        const res = await b.fetch(url);
        expect(res.headers.get('content-type')).toContain(format === 'jpeg' ? 'image/jpeg' : 'image/webp');
        const bytes = await body(res);
        const vmeta = await sharp(bytes).metadata();
        expect({ variant, density, format: vmeta.format, width: vmeta.width, height: vmeta.height }).toEqual({ variant, density, format, width, height });
        expect(await exifOf(bytes)).toBeUndefined();
        if (variant === 'card') expect(isRed(await colourAt(bytes, width - 45, 5))).toBe(true);
      }
      if (!cloudinary) {
        // Stored next to the original, and nowhere in a listing of the layer.
        expect((await b.images.list('people/')).items.map((i) => i.key)).toEqual(['people/ada.jpg']);
        expect((await b.images.list('')).items.every((i) => !i.key.startsWith('_variants/'))).toBe(true);
        expect((await storedUnder(b, 'people/ada.jpg')).sort()).toEqual(
          [
            'people/ada.jpg',
            b.images.variantKey('people/ada.jpg', 'avatar'),
            b.images.variantKey('people/ada.jpg', 'avatar', 2),
            b.images.variantKey('people/ada.jpg', 'card'),
          ].sort(),
        );
      } else {
        expect(await storedUnder(b, 'people/ada.jpg')).toEqual(['people/ada.jpg']);
        expect(await b.images.url('people/ada.jpg', { variant: 'avatar', density: 2 })).toMatch(
          /\/image\/upload\/c_fill,f_webp,h_128,q_80,w_128\/v\d+\/img\/people\/ada\.jpg$/,
        );
      }
    });

    it('strips PNG and WebP without touching their pixels', async () => {
      for (const [key, input, format] of [
        ['people/grace.png', f.png, 'png'],
        ['people/alan.webp', f.webp, 'webp'],
      ] as const) {
        await b.images.save(key, input);
        const stored = await b.images.readBuffer(key);
        expect(await exifOf(stored), key).toBeUndefined();
        expect(stored.includes('eXIf', 0, 'latin1') || stored.includes('tEXt', 0, 'latin1') || stored.includes('EXIF', 0, 'latin1'), key).toBe(false);
        expect((await sharp(stored).metadata()).format).toBe(format);
        const [before, after] = await Promise.all([sharp(input).raw().toBuffer(), sharp(stored).raw().toBuffer()]);
        expect(after.equals(before), `${key}: the same pixels`).toBe(true);
        const avatar = await body(await b.fetch(await b.images.url(key, { variant: 'avatar' })));
        expect(await sharp(avatar).metadata()).toMatchObject({ format: 'webp', width: 64, height: 64 });
      }
    });

    it('stores the polyglot JPEG without its HTML', async () => {
      const info = await b.images.save('people/poly.jpg', f.polyglot);
      expect(info.contentType).toBe('image/jpeg');
      const stored = await b.images.readBuffer('people/poly.jpg');
      const text = stored.toString('latin1');
      expect(text).not.toContain('<script');
      expect(text).not.toContain('<html');
      expect(await sharp(stored).metadata()).toMatchObject({ format: 'jpeg', width: 800, height: 600 });
    });

    for (const [what, fixture, key, code, message] of [
      // Named from the header, before a pixel is decoded.
      ['a 20,000×20,000 decompression bomb', 'bomb', 'refused/bomb.png', 'TOO_LARGE', /20000×20000 pixels \(400\.0 MP\), over the limit of 50\.0 MP/],
      ['a truncated JPEG', 'truncated', 'refused/cut.jpg', 'INVALID_INPUT', /Not a decodable JPEG image \(truncated\)/],
      ['a text file named .jpg', 'text', 'refused/note.jpg', 'INVALID_INPUT', /Not an image: the bytes are text/],
      ["a HEIC photo (sharp's prebuilt libvips has no HEVC decoder)", 'heic', 'refused/iphone.jpg', 'INVALID_INPUT', /HEIC photos are not accepted/],
    ] as const) {
      it(`refuses ${what} with ${code}, storing nothing`, async () => {
        const started = performance.now();
        const err = await failure(b.images.save(key, f[fixture]));
        expect(isMediaStorageError(err) && { code: err.code, key: err.key }).toEqual({ code, key });
        expect(err.message).toMatch(message);
        expect(performance.now() - started).toBeLessThan(fixture === 'bomb' ? 2000 : 20_000);
        expect(await b.raw.exists(key)).toBe(false);
        expect(await storedUnder(b, key)).toEqual([]);
      });
    }

    it('refuses saves and copies to the reserved variant folder, and lists it only when asked', async () => {
      expect((await failure(b.images.save('_variants/people/x.jpg/avatar-00000000.webp', f.png))).code).toBe('INVALID_KEY');
      expect((await failure(b.images.save('_variants', f.png))).code).toBe('INVALID_KEY');
      await b.images.save('people/copyme.png', f.png);
      expect((await failure(b.images.copy('people/copyme.png', '_variants/stolen.png'))).code).toBe('INVALID_KEY');
      if (!cloudinary) {
        const variants = (await b.images.list('_variants/people/copyme.png/')).items.map((i) => i.key);
        expect(variants).toContain(b.images.variantKey('people/copyme.png', 'avatar'));
      }
      if (cloudinary) {
        // Cloudinary renders variants of image assets only: a JPEG under ".jpeg" would be a raw file.
        expect((await failure(b.images.save('people/x.jpeg', f.polyglot))).code).toBe('INVALID_KEY');
        expect(await b.raw.exists('people/x.jpeg')).toBe(false);
      }
      // A storage that is not wrapped knows no variants, and says so.
      expect((await failure(b.raw.url('people/copyme.png', { variant: 'avatar' }))).code).toBe('UNSUPPORTED');
    });

    it('copy takes the variants along, delete removes them, and a re-upload replaces them', async () => {
      await b.images.save('people/orig.png', f.png);
      await b.images.copy('people/orig.png', 'people/copy.png');
      const copied = await body(await b.fetch(await b.images.url('people/copy.png', { variant: 'avatar', density: 2 })));
      expect(await sharp(copied).metadata()).toMatchObject({ width: 128, height: 128 });
      if (!cloudinary) expect((await storedUnder(b, 'people/copy.png')).length).toBe(4);

      await b.images.delete('people/orig.png');
      expect(await storedUnder(b, 'people/orig.png')).toEqual([]);
      expect(await b.images.exists('people/copy.png')).toBe(true);

      // A new photo under the same key: its variants are the new photo's.
      const green = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#00c040' } })
        .png()
        .toBuffer();
      await b.images.save('people/copy.png', green);
      const avatar = await body(await b.fetch(await b.images.url('people/copy.png', { variant: 'avatar' })));
      const expected = await sharp(green).resize(64, 64).webp({ quality: 80 }).toBuffer();
      const [mine, theirs] = await Promise.all([sharp(avatar).raw().toBuffer(), sharp(expected).raw().toBuffer()]);
      const diff = mine.reduce((sum, v, i) => sum + Math.abs(v - theirs[i]!), 0) / mine.length;
      expect(diff, 'the avatar shows the new photo').toBeLessThan(8);
      await b.images.delete('people/copy.png');
      expect(await storedUnder(b, 'people/copy.png')).toEqual([]);
    });

    it('photos stored before the layer get their variants on first request: 50 concurrent requests through the media handler, one generation', async () => {
      // Written behind the layer's back, as every migrated bucket was: EXIF, GPS, orientation 6.
      await b.raw.save('legacy/old.jpg', f.photo);
      const savesBefore = b.counted.saves.length;
      if (cloudinary) {
        // Nothing to store: Cloudinary renders the variant, upright, from the delivery URL.
        expect(await b.images.ensureVariant('legacy/old.jpg', 'avatar')).toEqual([
          { key: 'legacy/old.jpg', generated: false },
          { key: 'legacy/old.jpg', generated: false },
        ]);
        const bytes = await body(await b.fetch(await b.images.url('legacy/old.jpg', { variant: 'card' })));
        expect(await sharp(bytes).metadata()).toMatchObject({ width: 320, height: Math.round((320 * PHOTO_WIDTH) / PHOTO_HEIGHT) });
        expect(isRed(await colourAt(bytes, 320 - 45, 5))).toBe(true);
        expect(await exifOf(bytes)).toBeUndefined();
        expect(b.counted.saves.length).toBe(savesBefore);
        return;
      }
      const variantKey = b.images.variantKey('legacy/old.jpg', 'avatar', 2);
      expect(await b.raw.exists(variantKey)).toBe(false);
      const path = `/media/${variantKey.split('/').map(encodeURIComponent).join('/')}`;
      const responses = await Promise.all(
        Array.from({ length: 50 }, () =>
          fetch(`${b.origin}${path}`).then(async (res) => ({
            status: res.status,
            type: res.headers.get('content-type'),
            bytes: Buffer.from(await res.arrayBuffer()),
          })),
        ),
      );
      expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
      expect(new Set(responses.map((r) => r.bytes.toString('base64'))).size).toBe(1);
      expect(responses[0]!.type).toBe('image/webp');
      expect(await sharp(responses[0]!.bytes).metadata()).toMatchObject({ format: 'webp', width: 128, height: 128 });
      // Counted where the writes land: one save of the variant, one read of the original.
      expect(b.counted.saves.slice(savesBefore)).toEqual([variantKey]);
      expect(b.counted.reads.filter((k) => k === 'legacy/old.jpg').length, `reads of the original on ${b.label}`).toBe(1);

      // ensureVariant makes what is still missing (the 1x), once however many ask at once.
      const ensured = await Promise.all(Array.from({ length: 50 }, () => b.images.ensureVariant('legacy/old.jpg', 'avatar')));
      expect(ensured.filter((e) => e[0]!.generated).length).toBe(1);
      expect(ensured.every((e) => e[1]!.generated === false)).toBe(true);
      expect(b.counted.saves.slice(savesBefore)).toEqual([variantKey, b.images.variantKey('legacy/old.jpg', 'avatar')]);
      // A variant of a missing photo is not found, and nothing is stored for it.
      const missing = await fetch(`${b.origin}/media/${b.images.variantKey('legacy/none.jpg', 'avatar')}`);
      expect(missing.status).toBe(404);
      expect((await failure(b.images.ensureVariant('legacy/none.jpg', 'avatar'))).code).toBe('NOT_FOUND');
      // A bomb stored before the layer is refused by the render too (its pixel limit), never decoded.
      await b.raw.save('legacy/bomb.png', f.bomb);
      expect((await fetch(`${b.origin}/media/${b.images.variantKey('legacy/bomb.png', 'avatar')}`)).status).toBe(404);
      expect((await failure(b.images.ensureVariant('legacy/bomb.png', 'avatar'))).code).toBe('TOO_LARGE');
      expect(await storedUnder(b, '_variants/legacy/bomb.png')).toEqual([]);
      // The legacy original itself is left as it was: lazily made variants never rewrite it.
      expect((await exifr.gps(await b.raw.readBuffer('legacy/old.jpg'))).latitude).toBeCloseTo(GPS.latitude, 4);
    });
  });
}
