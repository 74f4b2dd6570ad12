// The pieces of media-storage/images on their own: lossless stripping of each container, variant
// definitions and keys, and the layer's options and failure paths.
import exifr from 'exifr';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { MediaStorageError } from '../../src/core/errors.js';
import { parseVariantKey, resolveVariant, stripGif, stripJpeg, stripPng, stripWebp, withImages } from '../../src/images/index.js';
import { FaultInjectingStorage } from '../../src/layers/faults.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { pngChunk } from '../support/png.js';
import { failure } from '../support/failure.js';
import { CountingStorage, VARIANTS } from './backends.js';
import { fixtures, withPngChunks, type Fixtures } from '../support/image-fixtures.js';

let f: Fixtures;
beforeAll(async () => {
  f = await fixtures();
}, 60_000);

/** A JPEG segment: marker, length, body. */
function segment(marker: number, body: Buffer): Buffer {
  const head = Buffer.from([0xff, marker, 0, 0]);
  head.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([head, body]);
}

describe('lossless stripping', () => {
  it('JPEG: EXIF, XMP, MPF, IPTC, comments, the JFIF thumbnail and trailing bytes go; ICC and Adobe stay; the scans are copied as they are', async () => {
    const base = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#808000' } })
      .jpeg({ progressive: true })
      .withMetadata({ icc: 'p3' })
      .toBuffer();
    const jfifWithThumb = segment(
      0xe0,
      Buffer.concat([Buffer.from('JFIF\0\x01\x02\x00\x00\x01\x00\x01', 'latin1'), Buffer.from([2, 2]), Buffer.alloc(12, 0xaa)]),
    );
    const parts = [
      base.subarray(0, 2),
      jfifWithThumb,
      segment(0xe1, Buffer.from('Exif\0\0MM\0*GPS somewhere', 'latin1')),
      segment(0xe1, Buffer.from('http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>home</x:xmpmeta>', 'latin1')),
      segment(0xe2, Buffer.from('MPF\0second image', 'latin1')),
      segment(0xed, Buffer.from('Photoshop 3.0\0IPTC caption', 'latin1')),
      segment(0xee, Buffer.from('Adobe\0\x64\0\0\0\0\x01', 'latin1')),
      segment(0xfe, Buffer.from('<script>x</script>', 'latin1')),
      base.subarray(2),
      Buffer.from('PK\x03\x04 a zip after the image', 'latin1'),
    ];
    const { data, removed } = stripJpeg(Buffer.concat(parts));
    // The segments planted, then sharp's own EXIF of the base image, then what follows its end.
    expect(removed).toEqual([
      'JFIF thumbnail',
      'APP1 Exif',
      'APP1 http://ns.ad',
      'APP2 MPF',
      'APP13 Photoshop 3.',
      'COM',
      'APP1 Exif',
      'trailing 26 bytes after the image',
    ]);
    const text = data.toString('latin1');
    for (const gone of ['GPS somewhere', 'xmpmeta', 'second image', 'IPTC caption', '<script>', 'PK\x03\x04']) expect(text).not.toContain(gone);
    expect(text).toContain('Adobe');
    expect(text).toContain('ICC_PROFILE');
    // The image itself: identical pixels, its ICC profile, the scans byte for byte.
    const [before, after] = await Promise.all([sharp(base).raw().toBuffer(), sharp(data).raw().toBuffer()]);
    expect(after.equals(before)).toBe(true);
    expect((await sharp(data).metadata()).icc?.length).toBe((await sharp(base).metadata()).icc?.length);
    const sos = base.indexOf(Buffer.from([0xff, 0xda]));
    expect(data.includes(base.subarray(sos))).toBe(true);
  });

  it('JPEG: a file without its end, or a segment longer than the file, is INVALID_INPUT', async () => {
    for (const broken of [f.truncated, f.photo.subarray(0, 40), Buffer.from([0xff, 0xd8, 0xff, 0xe1, 0xff, 0xff, 0x00])]) {
      expect(() => stripJpeg(broken)).toThrow(MediaStorageError);
      try {
        stripJpeg(broken);
      } catch (err) {
        expect((err as MediaStorageError).code).toBe('INVALID_INPUT');
      }
    }
  });

  it('PNG: eXIf and text chunks go, colour and transparency chunks stay, an unknown critical chunk is refused', async () => {
    const { data, removed } = stripPng(f.png);
    expect(removed.sort()).toEqual(['eXIf', 'tEXt']);
    expect(await exifr.parse(data, { tiff: true, xmp: true, icc: false, ihdr: false })).toBeUndefined();
    const withTrns = withPngChunks(f.png, [
      pngChunk('tRNS', Buffer.from([0, 1, 0, 2, 0, 3])),
      pngChunk('zTXt', Buffer.from('k\0\0xx')),
      pngChunk('iTXt', Buffer.from('XML:com.adobe.xmp\0\0\0\0\0<x/>')),
    ]);
    const stripped = stripPng(withTrns);
    expect(stripped.removed.sort()).toEqual(['eXIf', 'iTXt', 'tEXt', 'zTXt']);
    expect(stripped.data.includes('tRNS', 0, 'latin1')).toBe(true);
    expect(() => stripPng(withPngChunks(f.png, [pngChunk('ABCD', Buffer.alloc(2))]))).toThrow(/unknown critical chunk ABCD/);
    expect(() => stripPng(f.png.subarray(0, f.png.length - 20))).toThrow(/truncated/);
  });

  it('WebP: EXIF and XMP chunks go and the VP8X flags say so', async () => {
    const { data, removed } = stripWebp(f.webp);
    expect(removed).toEqual(['EXIF']);
    expect(data.includes('EXIF', 0, 'latin1')).toBe(false);
    const vp8x = data.indexOf('VP8X', 0, 'latin1');
    expect(vp8x).toBeGreaterThan(0);
    expect(data[vp8x + 8]! & 0x0c).toBe(0);
    expect(data.readUInt32LE(4)).toBe(data.length - 8);
    const [before, after] = await Promise.all([sharp(f.webp).raw().toBuffer(), sharp(data).raw().toBuffer()]);
    expect(after.equals(before)).toBe(true);
  });

  it('GIF: comments and foreign application extensions go, frames and the loop count stay', async () => {
    const frames = await sharp({ create: { width: 16, height: 32, channels: 3, background: '#ff0000' } })
      .gif({ loop: 3 })
      .toBuffer();
    const animated = await sharp(Buffer.concat([frames]), { animated: true })
      .gif({ loop: 3 })
      .toBuffer();
    const trailer = animated.length - 1;
    const comment = Buffer.concat([Buffer.from([0x21, 0xfe, 11]), Buffer.from('secret note', 'latin1'), Buffer.from([0])]);
    const xmp = Buffer.concat([
      Buffer.from([0x21, 0xff, 11]),
      Buffer.from('XMP DataXMP', 'latin1'),
      Buffer.from([5]),
      Buffer.from('<x/>!', 'latin1'),
      Buffer.from([0]),
    ]);
    const input = Buffer.concat([animated.subarray(0, trailer), comment, xmp, animated.subarray(trailer), Buffer.from('<html>', 'latin1')]);
    const { data, removed } = stripGif(input);
    expect(removed).toEqual(['comment', 'application XMP DataXMP', 'trailing 6 bytes after the image']);
    expect(data.equals(animated)).toBe(true);
  });
});

describe('variant definitions and keys', () => {
  it('resolves densities, digests the definition, and parses its keys back', () => {
    const set = resolveVariant('avatar', { width: 64, height: 64, densities: [2, 1] });
    expect(set.densities.map((v) => [v.density, v.width, v.height, v.fit, v.format, v.quality])).toEqual([
      [1, 64, 64, 'cover', 'webp', 80],
      [2, 128, 128, 'cover', 'webp', 80],
    ]);
    expect(set.densities[1]!.fileName).toMatch(/^avatar-[0-9a-f]{8}-2x\.webp$/);
    const again = resolveVariant('avatar', { width: 64, height: 64, fit: 'cover', format: 'webp', quality: 80, densities: [1, 2] });
    expect(again.densities.map((v) => v.digest)).toEqual(set.densities.map((v) => v.digest));
    expect(resolveVariant('avatar', { width: 64, height: 64, quality: 81 }).densities[0]!.digest).not.toBe(set.densities[0]!.digest);
    expect(parseVariantKey(`_variants/a/b c.jpg/${set.densities[1]!.fileName}`)).toEqual({
      original: 'a/b c.jpg',
      name: 'avatar',
      density: 2,
      digest: set.densities[1]!.digest,
    });
    expect(parseVariantKey('_variants/a.jpg/x-2x-1234abcd.webp')).toEqual({ original: 'a.jpg', name: 'x-2x', density: 1, digest: '1234abcd' });
    expect(parseVariantKey('profile/a.jpg')).toBeUndefined();
  });

  it('refuses bad definitions with CONFIG when withImages is called', () => {
    for (const [variants, message] of [
      [{ 'a b': { width: 1 } }, /variant names/],
      [{ a: {} }, /needs a width, a height or both/],
      [{ a: { width: 0 } }, /width must be a whole number/],
      [{ a: { width: 3000, densities: [2] } }, /over 4096 pixels/],
      [{ a: { width: 10, fit: 'crop' } }, /fit must be one of/],
      [{ a: { width: 10, densities: [] } }, /densities/],
    ] as const) {
      let thrown: unknown;
      try {
        withImages(new MemoryStorage(), { variants: variants as never });
      } catch (err) {
        thrown = err;
      }
      expect((thrown as MediaStorageError).code).toBe('CONFIG');
      expect((thrown as Error).message).toMatch(message);
    }
  });
});

describe('the layer', () => {
  it("holds an upload to maxBytes and to the caller's maxSize, storing nothing", async () => {
    const memory = new MemoryStorage();
    const images = withImages(memory, { variants: VARIANTS, maxBytes: 1_000_000 });
    expect((await failure(images.save('a.jpg', f.photo))).code).toBe('TOO_LARGE');
    expect((await failure(withImages(memory).save('a.jpg', f.photo, { maxSize: 100_000 }))).code).toBe('TOO_LARGE');
    expect(memory.size).toBe(0);
  });

  it('passes keys appliesTo leaves out through untouched, with no variants', async () => {
    const memory = new MemoryStorage();
    const images = withImages(memory, { variants: VARIANTS, appliesTo: (key) => key.startsWith('photos/') });
    await images.save('docs/readme.txt', 'plain text');
    expect((await memory.readBuffer('docs/readme.txt')).toString()).toBe('plain text');
    expect((await failure(images.save('photos/readme.txt', 'plain text'))).code).toBe('INVALID_INPUT');
    expect(memory.size).toBe(1);
  });

  it('re-encodes and caps the original when told, keeping its colour profile', async () => {
    const memory = new MemoryStorage();
    const images = withImages(memory, { original: { maxWidth: 1000, maxHeight: 1000, format: 'webp', quality: 70 } });
    const info = await images.save('p/a.jpg', f.photo);
    expect(info.contentType).toBe('image/webp');
    const meta = await sharp(await memory.readBuffer('p/a.jpg')).metadata();
    expect(meta).toMatchObject({ format: 'webp', width: 750, height: 1000 });
    expect(meta.icc).toBeDefined();
    expect(meta.exif).toBeUndefined();
  });

  it('a variant that cannot be stored is deleted (no stale one stays) and the save says so, or onVariantError is told', async () => {
    const memory = new MemoryStorage();
    const images = withImages(memory, { variants: VARIANTS });
    await images.save('p/a.png', f.png);
    const staleKey = images.variantKey('p/a.png', 'card');
    const faulty = new FaultInjectingStorage(memory, [{ operation: 'save', key: staleKey, code: 'UNAVAILABLE' }]);
    const err = await failure(withImages(faulty, { variants: VARIANTS }).save('p/a.png', f.webp));
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.message).toMatch(/"p\/a\.png" was stored, but its variant "card" \(1x\) was not/);
    expect(await memory.exists(staleKey)).toBe(false);
    expect((await sharp(await memory.readBuffer('p/a.png')).metadata()).format).toBe('webp');
    const told: string[] = [];
    await withImages(faulty, { variants: VARIANTS, onVariantError: (e, c) => told.push(`${c.variant}@${c.density}:${e.code}`) }).save('p/a.png', f.webp);
    expect(told).toEqual(['card@1:UNAVAILABLE']);
  });

  it('writes the original first, then its variants', async () => {
    const counted = new CountingStorage(new MemoryStorage());
    const images = withImages(counted, { variants: VARIANTS });
    await images.save('p/a.jpg', f.polyglot);
    expect(counted.saves[0]).toBe('p/a.jpg');
    expect(counted.saves.length).toBe(4);
  });
});
