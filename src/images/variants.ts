/**
 * Variant definitions and the keys variants are stored under. No sharp here: sync, the avatar
 * resolvers and the CLI use these rules without loading an image library.
 */
import { createHash } from 'node:crypto';
import { MediaStorageError } from '../core/errors.js';
import { validateKey } from '../core/keys.js';

/**
 * The folder every stored variant lives under: `_variants/<original key>/<name>-<digest>[-<density>x].<ext>`.
 * `withImages` refuses saves and copies to keys under it (INVALID_KEY) and hides it from listings,
 * so a user key can never be, or be shadowed by, a variant. It is fixed rather than configurable
 * so that `sync`, the CLI and every app agree on it.
 */
export const VARIANTS_PREFIX = '_variants/';

/** Output formats of a variant. */
export type VariantFormat = 'webp' | 'avif' | 'jpeg' | 'png';
/** How the image fits the box, as sharp names it: `cover` crops to fill it, `contain` pads, `inside` fits within, `fill` stretches. */
export type VariantFit = 'cover' | 'contain' | 'inside' | 'fill';
/** What `cover` keeps when it crops: the centre, an edge, or the most interesting part (`attention`, `entropy`). */
export type VariantPosition = 'centre' | 'top' | 'bottom' | 'left' | 'right' | 'attention' | 'entropy';

/** A variant as an app declares it, e.g. `{ width: 64, height: 64, fit: 'cover', format: 'webp', densities: [1, 2] }`. */
export interface VariantDefinition {
  /** Width in CSS pixels at 1x. At least one of width and height. */
  width?: number;
  /** Height in CSS pixels at 1x. */
  height?: number;
  /** Default `cover` when both width and height are given, else `inside`. */
  fit?: VariantFit;
  /** For `cover`: what to keep. Default `centre`. */
  position?: VariantPosition;
  /** Default `webp`. */
  format?: VariantFormat;
  /** Encoder quality, 1-100. Default 80 (WebP, JPEG), 50 (AVIF); ignored for PNG. */
  quality?: number;
  /**
   * Pixel densities to make, e.g. `[1, 2]` for `srcset="… 1x, … 2x"`: a 64 px avatar is stored at
   * 64 and 128 pixels. Default `[1]`. Each from 1 to 4.
   */
  densities?: readonly number[];
  /** Never enlarge a smaller original (the variant may then be smaller than declared). Default false. */
  withoutEnlargement?: boolean;
  /** Padding colour for `contain` (and the background of transparent images saved as JPEG). Default `#ffffff`. */
  background?: string;
}

/** One density of a declared variant, with everything resolved: what is generated and where it is stored. */
export interface ResolvedVariant {
  name: string;
  density: number;
  /** Pixels (the declared size times the density). */
  width: number | undefined;
  height: number | undefined;
  fit: VariantFit;
  position: VariantPosition;
  format: VariantFormat;
  quality: number;
  withoutEnlargement: boolean;
  background: string;
  /** 8 hex digits of the definition: a changed definition gets new keys, so no stale variant is served. */
  digest: string;
  /** File name under the original's variant folder: `avatar-1a2b3c4d.webp`, `avatar-5e6f7a8b-2x.webp`. */
  fileName: string;
  contentType: string;
}

/** A declared variant with all its densities. */
export interface VariantSet {
  name: string;
  /** CSS pixels at 1x, as declared (for `<img width height>`). */
  width: number | undefined;
  height: number | undefined;
  /** One entry per density, 1x first. */
  densities: readonly ResolvedVariant[];
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$/;
const FITS: readonly VariantFit[] = ['cover', 'contain', 'inside', 'fill'];
const POSITIONS: readonly VariantPosition[] = ['centre', 'top', 'bottom', 'left', 'right', 'attention', 'entropy'];
const FORMATS: readonly VariantFormat[] = ['webp', 'avif', 'jpeg', 'png'];
const EXTENSIONS: Record<VariantFormat, string> = { webp: 'webp', avif: 'avif', jpeg: 'jpg', png: 'png' };
const CONTENT_TYPES: Record<VariantFormat, string> = { webp: 'image/webp', avif: 'image/avif', jpeg: 'image/jpeg', png: 'image/png' };
const DEFAULT_QUALITY: Record<VariantFormat, number> = { webp: 80, avif: 50, jpeg: 80, png: 100 };
/** Largest side of a variant in pixels (after the density): variants are thumbnails, not copies. */
export const MAX_VARIANT_SIDE = 4096;

function configError(message: string): MediaStorageError {
  return new MediaStorageError('CONFIG', `withImages: ${message}`);
}

function checkSide(name: string, side: 'width' | 'height', value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (!(typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_VARIANT_SIDE)) {
    throw configError(`variant "${name}": ${side} must be a whole number of pixels from 1 to ${MAX_VARIANT_SIDE}`);
  }
  return value;
}

function oneOf<T extends string>(name: string, field: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) throw configError(`variant "${name}": ${field} must be one of ${allowed.join(', ')}, not ${JSON.stringify(value)}`);
  return value as T;
}

/** Checks one declared variant and resolves each of its densities. Throws CONFIG for a bad definition. */
export function resolveVariant(name: string, definition: VariantDefinition): VariantSet {
  if (!NAME.test(name)) throw configError(`variant names are 1-40 letters, digits, "-" and "_", starting with a letter or digit; not ${JSON.stringify(name)}`);
  if (definition === null || typeof definition !== 'object') throw configError(`variant "${name}" must be an object such as { width: 64, height: 64 }`);
  const width = checkSide(name, 'width', definition.width);
  const height = checkSide(name, 'height', definition.height);
  if (width === undefined && height === undefined) throw configError(`variant "${name}" needs a width, a height or both`);
  const fit = oneOf(name, 'fit', definition.fit, FITS, width !== undefined && height !== undefined ? 'cover' : 'inside');
  const position = oneOf(name, 'position', definition.position, POSITIONS, 'centre');
  const format = oneOf(name, 'format', definition.format, FORMATS, 'webp');
  const quality = definition.quality ?? DEFAULT_QUALITY[format];
  if (!(Number.isInteger(quality) && quality >= 1 && quality <= 100)) throw configError(`variant "${name}": quality must be a whole number from 1 to 100`);
  const background = definition.background ?? '#ffffff';
  if (typeof background !== 'string' || !/^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i.test(background))
    throw configError(`variant "${name}": background must be a colour such as "#ffffff"`);
  const densities = definition.densities ?? [1];
  if (
    !Array.isArray(densities) ||
    densities.length === 0 ||
    densities.some((d) => !(typeof d === 'number' && d >= 1 && d <= 4 && Math.round(d * 100) === d * 100))
  ) {
    throw configError(`variant "${name}": densities must be a list of numbers from 1 to 4, such as [1, 2]`);
  }
  const sorted = [...new Set(densities)].sort((a, b) => a - b);
  const resolved = sorted.map((density): ResolvedVariant => {
    const w = width === undefined ? undefined : Math.round(width * density);
    const h = height === undefined ? undefined : Math.round(height * density);
    if ((w ?? 0) > MAX_VARIANT_SIDE || (h ?? 0) > MAX_VARIANT_SIDE) throw configError(`variant "${name}" at ${density}x is over ${MAX_VARIANT_SIDE} pixels`);
    const withoutEnlargement = definition.withoutEnlargement === true;
    // Everything that changes the pixels; a new field must be added here only when it does.
    const canonical = JSON.stringify({
      v: 1,
      w,
      h,
      fit,
      position,
      format,
      quality,
      withoutEnlargement,
      background: fit === 'contain' || format === 'jpeg' ? background.toLowerCase() : undefined,
    });
    const digest = createHash('sha256').update(canonical).digest('hex').slice(0, 8);
    // No "@" (as in avatar@2x): some S3 implementations mishandle it in a copy's source.
    const suffix = density === 1 ? '' : `-${density}x`;
    return {
      name,
      density,
      width: w,
      height: h,
      fit,
      position,
      format,
      quality,
      withoutEnlargement,
      background,
      digest,
      fileName: `${name}-${digest}${suffix}.${EXTENSIONS[format]}`,
      contentType: CONTENT_TYPES[format],
    };
  });
  return { name, width, height, densities: resolved };
}

/** The folder of an original's variants: `_variants/<key>/`. */
export function variantFolder(key: string): string {
  return `${VARIANTS_PREFIX}${key}/`;
}

/** Where one density of a variant of `key` is stored. INVALID_KEY when that key would be too long. */
export function variantKeyOf(key: string, variant: ResolvedVariant): string {
  return validateKey(`${variantFolder(key)}${variant.fileName}`);
}

/** Whether a key is in the folder reserved for variants. */
export function isReservedKey(key: string): boolean {
  return key === VARIANTS_PREFIX.slice(0, -1) || key.startsWith(VARIANTS_PREFIX);
}

const VARIANT_FILE = /^([A-Za-z0-9][A-Za-z0-9_-]{0,39})-([0-9a-f]{8})(?:-(\d(?:\.\d{1,2})?)x)?\.(webp|avif|jpg|png)$/;

/** A stored variant key taken apart: the original's key and the variant's file name parts; `undefined` for any other key. */
export function parseVariantKey(key: string): { original: string; name: string; density: number; digest: string } | undefined {
  if (!key.startsWith(VARIANTS_PREFIX)) return undefined;
  const rest = key.slice(VARIANTS_PREFIX.length);
  const slash = rest.lastIndexOf('/');
  if (slash <= 0) return undefined;
  const match = VARIANT_FILE.exec(rest.slice(slash + 1));
  if (!match) return undefined;
  return { original: rest.slice(0, slash), name: match[1]!, density: match[3] ? Number(match[3]) : 1, digest: match[2]! };
}
