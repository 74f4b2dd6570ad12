/**
 * The fake Cloudinary's renderer: the image transformations media-storage/images asks for,
 * rendered with sharp as Cloudinary's documentation describes them. Sources (see the ledger,
 * ./cloudinary-server.md): https://cloudinary.com/documentation/image_crop_modes (fill, lfill),
 * image_resize_modes (scale, fit, limit), image_padding_modes (pad, lpad), the transformation
 * reference (w_, h_, g_, b_, q_, f_), and the flags reference ("Without this flag [keep_iptc],
 * Cloudinary's default behavior is to strip all meta-data when generating new image
 * transformations"; `fl_strip_profile` is what removes the ICC profile, so it is kept). Images are
 * rotated by their EXIF orientation first, as Cloudinary does unless told `a_ignore`.
 *
 * A transformation with any component not listed here is not rendered (`undefined`): the fake
 * then serves the original bytes, as it does for every transformation it does not model, and as
 * it does for an asset sharp cannot decode (the stand-in bytes other tests upload).
 */
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import type { StoredAsset } from './cloudinary-server.js';

const GRAVITY: Record<string, string> = { north: 'top', south: 'bottom', east: 'right', west: 'left', center: 'centre', auto: 'attention' };
const CROPS = new Set(['fill', 'lfill', 'fit', 'limit', 'pad', 'lpad', 'scale']);
const FORMATS: Record<string, 'webp' | 'avif' | 'jpeg' | 'png'> = { webp: 'webp', avif: 'avif', jpg: 'jpeg', png: 'png' };

interface Parsed {
  width?: number;
  height?: number;
  crop?: string;
  gravity?: string;
  format?: string;
  quality?: number;
  background?: string;
}

/** The components of one transformation, or `undefined` when one of them is not modelled. */
export function parseTransformation(transformation: string): Parsed | undefined {
  if (transformation.includes('/')) return undefined; // chained transformations: not modelled
  const parsed: Parsed = {};
  for (const component of transformation.split(',')) {
    const m = /^([a-z]{1,2})_(.+)$/.exec(component);
    if (!m) return undefined;
    const [, key, value] = m as unknown as [string, string, string];
    if ((key === 'w' || key === 'h') && /^\d+$/.test(value)) parsed[key === 'w' ? 'width' : 'height'] = Number(value);
    else if (key === 'c' && CROPS.has(value)) parsed.crop = value;
    else if (key === 'g' && GRAVITY[value]) parsed.gravity = value;
    else if (key === 'f' && FORMATS[value]) parsed.format = value;
    else if (key === 'q' && /^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 100) parsed.quality = Number(value);
    else if (key === 'b' && /^rgb:[0-9a-f]{6}$/i.test(value)) parsed.background = `#${value.slice(4)}`;
    else return undefined;
  }
  if (parsed.width === undefined && parsed.height === undefined) return undefined;
  return parsed;
}

/** The asset a transformation URL delivers, or `undefined` when the fake does not model the transformation. */
export async function renderTransformation(asset: StoredAsset, transformation: string): Promise<StoredAsset | undefined> {
  const t = parseTransformation(transformation);
  if (!t) return undefined;
  const crop = t.crop ?? 'scale';
  const fit =
    crop === 'fill' || crop === 'lfill' ? 'cover' : crop === 'pad' || crop === 'lpad' ? 'contain' : crop === 'scale' && t.width && t.height ? 'fill' : 'inside';
  const format = FORMATS[t.format ?? asset.format] ?? (asset.format === 'jpg' ? 'jpeg' : (asset.format as 'png'));
  let pipeline = sharp(asset.bytes)
    .autoOrient()
    .resize({
      width: t.width,
      height: t.height,
      fit,
      position: GRAVITY[t.gravity ?? 'center'],
      withoutEnlargement: crop === 'lfill' || crop === 'limit' || crop === 'lpad',
      background: t.background ?? '#ffffff',
    })
    .keepIccProfile();
  // Cloudinary's default quality is 80 (https://cloudinary.com/documentation/image_optimization#how_to_optimize_image_quality).
  const quality = t.quality ?? 80;
  if (format === 'jpeg') pipeline = pipeline.flatten({ background: t.background ?? '#ffffff' }).jpeg({ quality });
  else if (format === 'webp') pipeline = pipeline.webp({ quality });
  else if (format === 'avif') pipeline = pipeline.avif({ quality });
  else pipeline = pipeline.png();
  let bytes: Buffer;
  try {
    bytes = await pipeline.toBuffer();
  } catch {
    // Bytes with an image's magic number but no image behind it (other tests' stand-ins, which the
    // fake's upload accepts by magic number alone): served as stored, as an unmodelled transformation.
    return undefined;
  }
  const outFormat = format === 'jpeg' ? 'jpg' : format;
  return { ...asset, bytes, format: outFormat, etag: createHash('md5').update(bytes).digest('hex') };
}
