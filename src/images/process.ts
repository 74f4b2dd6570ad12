/**
 * What happens to the bytes: recognising and checking an upload, cleaning the original, and
 * rendering variants, on sharp (libvips).
 */
import type { Sharp, SharpOptions } from 'sharp';
import { MediaStorageError } from '../core/errors.js';
import { loadSharp } from './sharp.js';
import { stripGif, stripJpeg, stripPng, stripWebp, trimIsoBmff, type StripResult } from './strip.js';
import type { ResolvedVariant } from './variants.js';

/** Formats an upload may be in. HEIC needs a libvips with an HEVC decoder, which sharp's prebuilt binaries lack. */
export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'avif' | 'tiff' | 'heic';

/** The formats `withImages` accepts when {@link ImageOptions.formats} is not given: JPEG, PNG, WebP, GIF and AVIF. */
export const DEFAULT_IMAGE_FORMATS: readonly ImageFormat[] = Object.freeze(['jpeg', 'png', 'webp', 'gif', 'avif']);

export const CONTENT_TYPES: Record<ImageFormat, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  avif: 'image/avif',
  tiff: 'image/tiff',
  heic: 'image/heic',
};

/** How the stored original is made (see {@link ImageOptions.original}). */
export interface OriginalOptions {
  /** Re-encode every original (default false: originals keep their compressed pixels unless something must change). */
  reencode?: boolean;
  /** Format of re-encoded originals; default the upload's own. The key keeps the name it was given. */
  format?: 'jpeg' | 'webp' | 'avif' | 'png';
  /** Quality of re-encoded originals (JPEG, WebP, AVIF); default 90 (AVIF 60). */
  quality?: number;
  /** Cap on the original's size: larger uploads are scaled down to fit (and so re-encoded). */
  maxWidth?: number;
  maxHeight?: number;
}

export interface ProcessingOptions {
  formats: readonly ImageFormat[];
  maxPixels: number;
  stripMetadata: boolean;
  autoOrient: boolean;
  failOn: 'none' | 'truncated' | 'error' | 'warning';
  original: OriginalOptions;
}

/** The upload as its header describes it. */
export interface Inspection {
  format: ImageFormat;
  /** As stored (before orientation). */
  width: number;
  height: number;
  /** Frames of an animated image. */
  pages: number;
  orientation: number;
  hasMetadata: boolean;
}

export interface ProcessedOriginal {
  data: Buffer;
  format: ImageFormat;
  contentType: string;
  /** As displayed (after orientation). */
  width: number;
  height: number;
  /** Whether the pixels were decoded and encoded again (orientation, a cap, `reencode`, a format without lossless stripping). */
  reencoded: boolean;
  /** What lossless stripping removed. */
  removed: string[];
}

function invalid(message: string, cause?: unknown): MediaStorageError {
  return new MediaStorageError('INVALID_INPUT', message, { operation: 'save', cause });
}

/** The first line of a libvips message (it can run to dozens of lines of seek attempts). */
function vipsMessage(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!.slice(0, 200);
}

const HEIC_BRANDS = new Set(['heic', 'heix', 'hevc', 'hevx', 'heim', 'heis', 'hevm', 'hevs']);

/** What the first bytes say, before any decoder sees them: enough to refuse text and name HEIC. */
function sniffImage(data: Buffer): ImageFormat | 'svg' | 'other' | 'text' {
  if (data.length >= 3 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) return 'jpeg';
  if (data.length >= 8 && data.readUInt32BE(0) === 0x89504e47) return 'png';
  if (data.length >= 12 && data.toString('latin1', 0, 4) === 'RIFF' && data.toString('latin1', 8, 12) === 'WEBP') return 'webp';
  if (data.length >= 6 && /^GIF8[79]a$/.test(data.toString('latin1', 0, 6))) return 'gif';
  if (data.length >= 4 && (data.readUInt32BE(0) === 0x49492a00 || data.readUInt32BE(0) === 0x4d4d002a)) return 'tiff';
  if (data.length >= 12 && data.toString('latin1', 4, 8) === 'ftyp') {
    const size = Math.min(data.readUInt32BE(0), data.length, 64);
    const brands = [data.toString('latin1', 8, 12)];
    for (let i = 16; i + 4 <= size; i += 4) brands.push(data.toString('latin1', i, i + 4));
    if (brands.includes('avif') || brands.includes('avis')) return 'avif';
    if (brands.some((b) => HEIC_BRANDS.has(b))) return 'heic';
    return 'other';
  }
  const head = data
    .subarray(0, 512)
    .toString('latin1')
    .replace(/^\ufeff|^\xef\xbb\xbf/, '')
    .trimStart();
  if (/^(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*<svg[\s>]/i.test(head)) return 'svg';
  // Text: no control bytes but tab, newline and carriage return.
  if (!/[\x00-\x08\x0e-\x1f]/.test(data.subarray(0, 512).toString('latin1'))) return 'text';
  return 'other';
}

function formatList(formats: readonly ImageFormat[]): string {
  return formats.map((f) => f.toUpperCase()).join(', ');
}

function baseOptions(options: ProcessingOptions, pages: number): SharpOptions {
  return { failOn: options.failOn, limitInputPixels: options.maxPixels, sequentialRead: true, ...(pages > 1 ? { pages: -1 } : {}) };
}

/** The format the first bytes say, when it is one of `allowed`; INVALID_INPUT naming what it is otherwise (text, SVG, HEIC...). */
export function checkFormat(data: Buffer, allowed: readonly ImageFormat[]): ImageFormat {
  const sniffed = sniffImage(data);
  if (sniffed === 'text') throw invalid(`Not an image: the bytes are text. Upload a ${formatList(allowed)} image`);
  if (sniffed === 'svg') throw invalid(`SVG is not accepted as a photo (it is a document that can carry script); upload a ${formatList(allowed)} image`);
  if (sniffed === 'heic' && !allowed.includes('heic')) {
    throw invalid(
      "HEIC photos are not accepted: sharp's prebuilt libvips cannot decode HEVC. Upload JPEG (on an iPhone: Settings, Camera, Formats, Most Compatible), or convert on the client",
    );
  }
  if (sniffed === 'other') throw invalid(`Not an image this storage accepts; upload a ${formatList(allowed)} image`);
  if (!allowed.includes(sniffed)) throw invalid(`${sniffed.toUpperCase()} images are not accepted here; upload a ${formatList(allowed)} image`);
  return sniffed;
}

/**
 * Reads the header: the format (refusing text, SVG, formats not allowed, HEIC without a decoder)
 * and the size (refusing more pixels than `maxPixels`, TOO_LARGE, before anything is decoded).
 */
export async function inspectImage(data: Buffer, options: Pick<ProcessingOptions, 'formats' | 'maxPixels'>): Promise<Inspection> {
  const sniffed = checkFormat(data, options.formats);
  const sharp = await loadSharp();
  let meta: Awaited<ReturnType<Sharp['metadata']>>;
  try {
    // Header only: no pixel is decoded, so the limit can be checked (and named) before any is.
    meta = await sharp(data, { limitInputPixels: false }).metadata();
  } catch (err) {
    if (sniffed === 'heic') throw invalid("This HEIC photo cannot be decoded (sharp's prebuilt libvips has no HEVC decoder); upload JPEG", err);
    throw invalid(`Not a decodable ${sniffed.toUpperCase()} image: ${vipsMessage(err)}`, err);
  }
  const pages = meta.pages ?? 1;
  const height = meta.pageHeight ?? meta.height;
  const width = meta.width;
  if (!width || !height) throw invalid(`Not a decodable ${sniffed.toUpperCase()} image: it has no size`);
  const pixels = width * height * pages;
  if (pixels > options.maxPixels) {
    throw new MediaStorageError(
      'TOO_LARGE',
      `The image is ${width}×${height} pixels${pages > 1 ? ` × ${pages} frames` : ''} (${(pixels / 1e6).toFixed(1)} MP), over the limit of ${(options.maxPixels / 1e6).toFixed(1)} MP`,
      { operation: 'save' },
    );
  }
  const format: ImageFormat = meta.format === 'heif' ? (meta.compression === 'av1' ? 'avif' : 'heic') : (meta.format as ImageFormat);
  if (format !== sniffed) throw invalid(`Not a valid ${sniffed.toUpperCase()} image: its content decodes as ${String(meta.format)}`);
  const hasMetadata = !!(meta.exif || meta.xmp || meta.iptc || meta.comments?.length);
  return { format, width, height, pages, orientation: meta.orientation ?? 1, hasMetadata };
}

function stripFor(format: ImageFormat): ((data: Buffer) => StripResult) | undefined {
  if (format === 'jpeg') return stripJpeg;
  if (format === 'png') return stripPng;
  if (format === 'webp') return stripWebp;
  if (format === 'gif') return stripGif;
  return undefined;
}

function encode(pipeline: Sharp, format: ImageFormat, quality: number | undefined, lossless: boolean): Sharp {
  switch (format) {
    case 'jpeg':
      return pipeline.jpeg({ quality: quality ?? 90 });
    case 'webp':
      return pipeline.webp(lossless ? { lossless: true } : { quality: quality ?? 90 });
    case 'avif':
      return pipeline.avif({ quality: quality ?? 60 });
    case 'png':
      return pipeline.png();
    case 'gif':
      return pipeline.gif();
    case 'tiff':
      return pipeline.tiff({ quality: quality ?? 90 });
    default:
      throw invalid(`${format.toUpperCase()} images cannot be re-encoded here`);
  }
}

/** Decodes every pixel (every frame), so a truncated or corrupt file fails here and not in a browser. */
export async function verifyDecodes(data: Buffer, inspection: Inspection, options: ProcessingOptions): Promise<void> {
  const sharp = await loadSharp();
  try {
    // A small output keeps this cheap: JPEG and WebP decode at reduced scale, but read all their data.
    await sharp(data, baseOptions(options, inspection.pages))
      .resize({ width: Math.max(1, Math.min(64, inspection.width)), fit: 'inside' })
      .raw()
      .toBuffer();
  } catch (err) {
    throw decodeError(inspection.format, err);
  }
}

function decodeError(format: ImageFormat | 'image', err: unknown): MediaStorageError {
  const message = vipsMessage(err);
  if (/pixel limit/i.test(message))
    return new MediaStorageError('TOO_LARGE', `The image is over the pixel limit: ${message}`, { operation: 'save', cause: err });
  return invalid(
    `Not a decodable ${format === 'image' ? 'image' : `${format.toUpperCase()} image`} (${/premature|truncat|end of/i.test(message) ? 'truncated' : 'corrupt'}): ${message}`,
    err,
  );
}

/**
 * The original as it is stored: metadata stripped (the colour profile kept), orientation
 * applied, capped and re-encoded when asked. Pixels are decoded again only when they must change
 * (orientation, a cap, `reencode`) or when the format has no lossless stripping (AVIF, TIFF with
 * metadata); otherwise the compressed pixels are kept and the container rewritten without metadata.
 * Does not verify the pixels of a lossless result: see {@link verifyDecodes}.
 */
export async function processOriginal(data: Buffer, inspection: Inspection, options: ProcessingOptions): Promise<ProcessedOriginal> {
  const { format } = inspection;
  const original = options.original;
  const rotated = options.autoOrient && inspection.orientation >= 5;
  const displayed = { width: rotated ? inspection.height : inspection.width, height: rotated ? inspection.width : inspection.height };
  const capped =
    (original.maxWidth !== undefined && displayed.width > original.maxWidth) || (original.maxHeight !== undefined && displayed.height > original.maxHeight);
  const strip = stripFor(format);
  const mustReencode =
    original.reencode === true ||
    (original.format !== undefined && original.format !== format) ||
    capped ||
    (options.autoOrient && inspection.orientation > 1) ||
    (options.stripMetadata && !strip && inspection.hasMetadata);

  if (!mustReencode) {
    if (!options.stripMetadata) return { data, format, contentType: CONTENT_TYPES[format], ...displayed, reencoded: false, removed: [] };
    const result = strip ? strip(data) : trimIsoBmff(data);
    return { data: result.data, format, contentType: CONTENT_TYPES[format], ...displayed, reencoded: false, removed: result.removed };
  }

  const sharp = await loadSharp();
  const target: ImageFormat = original.format ?? format;
  const lossless = target === 'webp' && format === 'webp' && isLosslessWebp(data);
  try {
    let pipeline = sharp(data, baseOptions(options, inspection.pages));
    if (options.autoOrient) pipeline = pipeline.autoOrient();
    if (capped) pipeline = pipeline.resize({ width: original.maxWidth, height: original.maxHeight, fit: 'inside', withoutEnlargement: true });
    // sharp writes no metadata unless asked: keep the colour profile, and the rest only when told not to strip.
    pipeline = options.stripMetadata ? pipeline.keepIccProfile() : pipeline.keepMetadata();
    const { data: out, info } = await encode(pipeline, target, original.quality, lossless).toBuffer({ resolveWithObject: true });
    return {
      data: out,
      format: target,
      contentType: CONTENT_TYPES[target],
      width: info.width,
      height: info.pageHeight ?? info.height,
      reencoded: true,
      removed: [],
    };
  } catch (err) {
    throw decodeError(format, err);
  }
}

function isLosslessWebp(data: Buffer): boolean {
  return data.includes('VP8L', 12, 'latin1') && !data.includes('VP8 ', 12, 'latin1');
}

const POSITION: Record<ResolvedVariant['position'], string> = {
  centre: 'centre',
  top: 'top',
  bottom: 'bottom',
  left: 'left',
  right: 'right',
  attention: 'attention',
  entropy: 'entropy',
};

/**
 * One variant of an image: oriented, resized, converted to sRGB without metadata (browsers show
 * untagged images as sRGB), encoded. The same sharp pipeline an app would write by hand.
 */
export async function renderVariant(data: Buffer, variant: ResolvedVariant, options: Pick<ProcessingOptions, 'failOn' | 'maxPixels'>): Promise<Buffer> {
  const sharp = await loadSharp();
  try {
    let pipeline = sharp(data, { failOn: options.failOn, limitInputPixels: options.maxPixels, sequentialRead: true }).autoOrient().resize({
      width: variant.width,
      height: variant.height,
      fit: variant.fit,
      position: POSITION[variant.position],
      withoutEnlargement: variant.withoutEnlargement,
      background: variant.background,
    });
    if (variant.format === 'jpeg') pipeline = pipeline.flatten({ background: variant.background }).jpeg({ quality: variant.quality });
    else if (variant.format === 'webp') pipeline = pipeline.webp({ quality: variant.quality });
    else if (variant.format === 'avif') pipeline = pipeline.avif({ quality: variant.quality });
    else pipeline = pipeline.png();
    return await pipeline.toBuffer();
  } catch (err) {
    throw decodeError('image', err);
  }
}
