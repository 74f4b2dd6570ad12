/**
 * Photos made for the image tests, with sharp, in the test's own process: nothing is checked in.
 * Each fixture's defining property (GPS, orientation, the HTML in the polyglot, the declared
 * size of the bomb...) is asserted by the tests before they rely on it.
 */
import zlib from 'node:zlib';
import sharp from 'sharp';
import { pngChunk } from './png.js';

export const PHOTO_WIDTH = 4032;
export const PHOTO_HEIGHT = 3024;
/** A GPS position (the Eiffel tower), in EXIF's rational form and in degrees. */
export const GPS = { latitude: 48.858233, longitude: 2.294533 };
const GPS_EXIF = { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 2964/100', GPSLongitudeRef: 'E', GPSLongitude: '2/1 17/1 4032/100' };
/** Markup planted in the polyglot, in a comment segment and after the image's end. */
export const POLYGLOT_MARKUP = '<html><body><script>window.__pwned=1</script></body></html>';

export interface Fixtures {
  /**
   * 4032×3024 JPEG as a phone writes it: GPS and device in EXIF, orientation 6 (shown rotated
   * 90° clockwise), an sRGB ICC profile, and a red 600×600 block in the stored top-left corner,
   * which is the top-right corner once the orientation is applied. About 3.5 MB.
   */
  photo: Buffer;
  /** 800×600 PNG with an eXIf chunk carrying GPS, and a tEXt comment. */
  png: Buffer;
  /** 800×600 WebP with EXIF carrying GPS. */
  webp: Buffer;
  /** A small valid JPEG whose COM segment and trailing bytes hold HTML with a script. */
  polyglot: Buffer;
  /** A valid 20,000×20,000 PNG (400 megapixels) of about 0.4 MB. */
  bomb: Buffer;
  /** The photo cut in half. */
  truncated: Buffer;
  /** Text, to be saved as `note.jpg`. */
  text: Buffer;
  /** The start of a HEIC file (an `ftyp` box of brand heic): what an iPhone sends, which sharp's prebuilt libvips cannot decode. */
  heic: Buffer;
}

/** Inserts chunks before a PNG's IEND. */
export function withPngChunks(png: Buffer, chunks: Buffer[]): Buffer {
  const iend = png.length - 12;
  return Buffer.concat([png.subarray(0, iend), ...chunks, png.subarray(iend)]);
}

/** A complete, valid 1-bit greyscale PNG of `side`×`side` pixels, all black, deflated. */
async function pngBomb(side: number): Promise<Buffer> {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(side, 0);
  ihdr.writeUInt32BE(side, 4);
  ihdr[8] = 1; // bit depth
  ihdr[9] = 0; // greyscale
  const row = Buffer.alloc(1 + Math.ceil(side / 8));
  const deflate = zlib.createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (c: Buffer) => parts.push(c));
  const ended = new Promise((resolve) => deflate.on('end', resolve));
  for (let y = 0; y < side; y++) if (!deflate.write(row)) await new Promise((resolve) => deflate.once('drain', resolve));
  deflate.end();
  await ended;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', Buffer.concat(parts)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A photo-like picture: smooth noise, so it compresses as a real photo does (not as a flat colour). */
export async function photoLike(width: number, height: number): Promise<ReturnType<typeof sharp>> {
  const w = Math.max(8, Math.round(width / 8));
  const h = Math.max(8, Math.round(height / 8));
  const noise = await sharp({
    create: { width: w, height: h, channels: 3, background: { r: 120, g: 110, b: 100 }, noise: { type: 'gaussian', mean: 128, sigma: 60 } },
  })
    .raw()
    .toBuffer();
  return sharp(noise, { raw: { width: w, height: h, channels: 3 } }).resize(width, height, { kernel: 'cubic' });
}

/** A JPEG like a phone photo: GPS, orientation 6, sRGB profile, the red block in the stored top-left. */
export async function phonePhoto(width = PHOTO_WIDTH, height = PHOTO_HEIGHT, quality = 92): Promise<Buffer> {
  const side = Math.round(Math.min(width, height) / 5);
  const red = await sharp({ create: { width: side, height: side, channels: 3, background: '#ff0000' } })
    .png()
    .toBuffer();
  const base = await photoLike(width, height);
  return base
    .composite([{ input: red, left: 0, top: 0 }])
    .jpeg({ quality })
    .withExif({ IFD0: { Make: 'TestPhone', Model: 'T1', Software: 'media-storage fixtures' }, IFD3: GPS_EXIF })
    .withMetadata({ orientation: 6 })
    .toBuffer();
}

let cached: Promise<Fixtures> | undefined;

/** The fixtures, made once per test file (about 2 s on this machine). */
export function fixtures(): Promise<Fixtures> {
  cached ??= (async () => {
    const photo = await phonePhoto();
    const small = () => sharp({ create: { width: 800, height: 600, channels: 3, background: '#3366aa' } });
    const exif = { IFD0: { Make: 'TestPhone' }, IFD3: GPS_EXIF };
    const png = withPngChunks(await small().png().withExif(exif).toBuffer(), [
      pngChunk('tEXt', Buffer.from('Comment\0taken at home, 12 Rue Example', 'latin1')),
    ]);
    const webp = await small().webp({ quality: 80 }).withExif(exif).toBuffer();
    const plain = await small().jpeg({ quality: 80 }).toBuffer();
    // COM segment right after SOI, and the markup again after EOI.
    const markup = Buffer.from(POLYGLOT_MARKUP, 'latin1');
    const com = Buffer.alloc(4);
    com[0] = 0xff;
    com[1] = 0xfe;
    com.writeUInt16BE(markup.length + 2, 2);
    const polyglot = Buffer.concat([plain.subarray(0, 2), com, markup, plain.subarray(2), markup]);
    const bomb = await pngBomb(20_000);
    const truncated = photo.subarray(0, Math.floor(photo.length / 2));
    const text = Buffer.from('Call Ada about the engine on Monday.\n'.repeat(40));
    const ftyp = Buffer.concat([Buffer.from([0, 0, 0, 24]), Buffer.from('ftypheic', 'latin1'), Buffer.alloc(4), Buffer.from('mif1heic', 'latin1')]);
    const heic = Buffer.concat([ftyp, Buffer.from([0, 0, 0, 16]), Buffer.from('metahdlr', 'latin1'), Buffer.alloc(4000, 7)]);
    return { photo, png, webp, polyglot, bomb, truncated, text, heic };
  })();
  return cached;
}
