import os from 'node:os';
import type { Readable } from 'node:stream';
import { prepareBody, streamToBuffer } from '../core/body.js';
import { MediaStorageError, isMediaStorageError, isNotFound } from '../core/errors.js';
import { validateKey, validatePrefix } from '../core/keys.js';
import type { Body, CopyOptions, ListOptions, ListPage, MediaStorage, ObjectInfo, ReadOptions, SaveOptions, UrlOptions } from '../core/types.js';
import { Semaphore } from '../layers/concurrency.js';
import { StorageLayer } from '../layers/layer.js';
import { cloudinaryTransformation } from './cloudinary.js';
import {
  checkFormat,
  DEFAULT_IMAGE_FORMATS,
  inspectImage,
  processOriginal,
  renderVariant,
  verifyDecodes,
  type ImageFormat,
  type OriginalOptions,
  type ProcessingOptions,
} from './process.js';
import {
  isReservedKey,
  parseVariantKey,
  resolveVariant,
  variantFolder,
  variantKeyOf,
  VARIANTS_PREFIX,
  type ResolvedVariant,
  type VariantDefinition,
  type VariantSet,
} from './variants.js';

/**
 * Options of `withImages` (and {@link ImageStorage}): the variants made of every photo, which
 * uploads are accepted, how the original is cleaned, and when variants are generated.
 */
export interface ImageOptions {
  /** Variants made of every image, e.g. `{ avatar: { width: 64, height: 64, fit: 'cover', format: 'webp', densities: [1, 2] } }`. */
  variants?: Record<string, VariantDefinition>;
  /** Formats accepted; default JPEG, PNG, WebP, GIF and AVIF. Others (and text, SVG, HEIC) are INVALID_INPUT. */
  formats?: readonly ImageFormat[];
  /** Most pixels accepted, every frame counted; more is TOO_LARGE before any pixel is decoded. Default 50 million. */
  maxPixels?: number;
  /** Largest upload read, in bytes (a `maxSize` given to `save` can lower it). Default 50 MB. */
  maxBytes?: number;
  /** Remove EXIF (GPS, device, time), XMP, IPTC, comments and text chunks from the original, keeping the colour profile. Default true. */
  stripMetadata?: boolean;
  /** Turn the pixels as the EXIF orientation says, so every viewer shows the photo upright. Default true. */
  autoOrient?: boolean;
  /** How far a damaged image is tolerated (sharp's `failOn`). Default `warning`: any decoder warning refuses it. */
  failOn?: 'none' | 'truncated' | 'error' | 'warning';
  /** Re-encoding and size cap of the stored original. Default: neither. */
  original?: OriginalOptions;
  /**
   * Generate a missing variant when it is asked for (`stat`/`read` of its key, so the media
   * handler serves it; `ensureVariant`), for images stored before the layer. Default true.
   */
  lazy?: boolean;
  /**
   * `stored`: variants are files next to the original. `cloudinary`: Cloudinary renders them from
   * delivery URLs, nothing is stored. Default: `cloudinary` on a storage named `cloudinary`, else `stored`.
   */
  delivery?: 'stored' | 'cloudinary';
  /** Images processed at once (each holds its decoded pixels); further ones wait. Default: the number of CPUs. */
  concurrency?: number;
  /** Which keys are images; others pass through untouched. Default: every key. */
  appliesTo?: (key: string) => boolean;
  /**
   * Called when the original was stored but a variant could not be (it is deleted, so no stale
   * one is served, and is made again on request). Without it the save rejects with that error.
   */
  onVariantError?: (error: MediaStorageError, context: { key: string; variant: string; density: number }) => void;
}

/** What {@link ImageStorage.ensureVariant} did. */
export interface EnsuredVariant {
  /** Where the variant is stored (the original's key on Cloudinary, which renders it on delivery). */
  key: string;
  /** Whether this call generated it. */
  generated: boolean;
}

const DEFAULT_MAX_PIXELS = 50_000_000;
const DEFAULT_MAX_BYTES = 50_000_000;

function configError(message: string): MediaStorageError {
  return new MediaStorageError('CONFIG', `withImages: ${message}`);
}

function reservedKeyError(key: string): MediaStorageError {
  return new MediaStorageError('INVALID_KEY', `Invalid key ${JSON.stringify(key)}: keys under "${VARIANTS_PREFIX}" are reserved for image variants`, { key });
}

/**
 * A MediaStorage for photos over any other (see {@link withImages}). Every save is decoded and
 * checked, cleaned of metadata, turned upright, and its variants are made; deletes and copies
 * take the variants along; listings leave them out.
 */
export class ImageStorage extends StorageLayer {
  /** The declared variants, by name. */
  readonly variants: ReadonlyMap<string, VariantSet>;
  readonly delivery: 'stored' | 'cloudinary';
  private readonly processing: ProcessingOptions;
  private readonly maxBytes: number;
  private readonly lazy: boolean;
  private readonly appliesTo: (key: string) => boolean;
  private readonly onVariantError: ImageOptions['onVariantError'];
  private readonly semaphore: Semaphore;
  /** Generations in flight, by variant key: concurrent requests for one missing variant share one. */
  private readonly inFlight = new Map<string, Promise<ObjectInfo>>();
  /**
   * Variants this layer just generated, for a few seconds: a request whose lookup missed while the
   * generation ran, but that asks after it ended, takes this answer instead of starting another
   * (which would read the original again). Any write through the layer forgets them.
   */
  private readonly justGenerated = new Map<string, { info: ObjectInfo; until: number }>();
  /** Generations this instance has run (counted for tests and monitoring). */
  readonly stats = { generated: 0, joined: 0 };

  constructor(storage: MediaStorage, options: ImageOptions = {}) {
    super(storage);
    const variants = new Map<string, VariantSet>();
    for (const [name, definition] of Object.entries(options.variants ?? {})) variants.set(name, resolveVariant(name, definition));
    this.variants = variants;
    const formats = options.formats ?? DEFAULT_IMAGE_FORMATS;
    if (!Array.isArray(formats) || formats.length === 0) throw configError('formats must be a non-empty list such as ["jpeg", "png"]');
    const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
    if (!(Number.isInteger(maxPixels) && maxPixels > 0)) throw configError('maxPixels must be a whole number of pixels');
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    if (!(Number.isInteger(this.maxBytes) && this.maxBytes > 0)) throw configError('maxBytes must be a whole number of bytes');
    const original = options.original ?? {};
    for (const side of ['maxWidth', 'maxHeight'] as const) {
      const v = original[side];
      if (v !== undefined && !(Number.isInteger(v) && v > 0)) throw configError(`original.${side} must be a whole number of pixels`);
    }
    this.processing = {
      formats,
      maxPixels,
      stripMetadata: options.stripMetadata ?? true,
      autoOrient: options.autoOrient ?? true,
      failOn: options.failOn ?? 'warning',
      original,
    };
    this.delivery = options.delivery ?? (storage.name === 'cloudinary' ? 'cloudinary' : 'stored');
    if (this.delivery !== 'stored' && this.delivery !== 'cloudinary') throw configError('delivery must be "stored" or "cloudinary"');
    this.lazy = options.lazy ?? true;
    this.appliesTo = options.appliesTo ?? (() => true);
    this.onVariantError = options.onVariantError;
    const concurrency = options.concurrency ?? Math.max(1, os.availableParallelism());
    if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw configError('concurrency must be a whole number >= 1');
    this.semaphore = new Semaphore(concurrency);
  }

  /** The wrapped storage. */
  get storage(): MediaStorage {
    return this.inner;
  }

  /** The serving rule of the wrapped storage, so a media handler over this layer serves as the backend would. */
  get servingRule(): unknown {
    return (this.inner as { servingRule?: unknown }).servingRule;
  }

  /** One density of a declared variant; INVALID_INPUT for an unknown name or density. */
  variant(name: string, density = 1): ResolvedVariant {
    const set = this.variants.get(name);
    if (!set)
      throw new MediaStorageError(
        'INVALID_INPUT',
        `No image variant named ${JSON.stringify(name)}; declared: ${[...this.variants.keys()].join(', ') || 'none'}`,
      );
    const found = set.densities.find((v) => v.density === density);
    if (!found)
      throw new MediaStorageError(
        'INVALID_INPUT',
        `Variant "${name}" has no ${density}x density; declared: ${set.densities.map((v) => `${v.density}x`).join(', ')}`,
      );
    return found;
  }

  /** The key one density of a variant of `key` is stored under (`_variants/<key>/<name>-<digest>.<ext>`). */
  variantKey(key: string, name: string, density = 1): string {
    return variantKeyOf(validateKey(key), this.variant(name, density));
  }

  private isImageKey(key: string): boolean {
    return !isReservedKey(key) && this.appliesTo(key);
  }

  private storesVariants(key: string): boolean {
    return this.delivery === 'stored' && this.variants.size > 0 && this.isImageKey(key);
  }

  private allVariants(): ResolvedVariant[] {
    return [...this.variants.values()].flatMap((set) => set.densities);
  }

  /** Waits for generations in flight for any variant of `key` (writers call it so their variants land last). */
  private async settle(key: string): Promise<void> {
    const folder = variantFolder(key);
    const pending = [...this.inFlight].filter(([k]) => k.startsWith(folder)).map(([, p]) => p.catch(() => undefined));
    await Promise.all(pending);
  }

  // ------------------------------------------------------------------------------- writes

  override async save(key: string, body: Body, options: SaveOptions = {}): Promise<ObjectInfo> {
    this.justGenerated.clear();
    const normalized = validateKey(key);
    if (isReservedKey(normalized)) throw reservedKeyError(normalized);
    if (!this.appliesTo(normalized)) return this.inner.save(normalized, body, options);
    // Every derived key must be valid before anything is stored.
    const variants = this.storesVariants(normalized) ? this.allVariants() : [];
    for (const v of variants) variantKeyOf(normalized, v);

    const limit = options.maxSize !== undefined ? Math.min(options.maxSize, this.maxBytes) : this.maxBytes;
    const prepared = await prepareBody(body, normalized, { maxSize: limit, signal: options.signal, onProgress: options.onProgress, allowEmpty: false });
    const input = prepared.buffer ?? (await streamToBuffer(prepared.stream()));

    const release = await this.semaphore.acquire({ operation: 'save', key: normalized, signal: options.signal, replayable: false });
    let data: Buffer;
    let contentType: string;
    let rendered: Array<{ variant: ResolvedVariant; data: Buffer }>;
    try {
      const inspection = await this.withKey(normalized, inspectImage(input, this.processing));
      const processed = await this.withKey(normalized, processOriginal(input, inspection, this.processing));
      data = processed.data;
      contentType = processed.contentType;
      // Rendering the variants decodes every pixel of a still image; otherwise (or for every frame of an animation) a decode checks it.
      rendered = await this.withKey(
        normalized,
        Promise.all(variants.map(async (variant) => ({ variant, data: await renderVariant(data, variant, this.processing) }))),
      );
      if (!processed.reencoded && (rendered.length === 0 || inspection.pages > 1))
        await this.withKey(normalized, verifyDecodes(data, inspection, this.processing));
    } finally {
      release();
    }

    if (this.delivery === 'cloudinary' && this.variants.size > 0) checkCloudinaryName(normalized, contentType);
    const info = await this.inner.save(normalized, data, { ...options, contentType, maxSize: undefined, onProgress: undefined, allowEmpty: false });
    if (rendered.length > 0) {
      // Generations of the old photo that are still running finish first; these variants land after them.
      await this.settle(info.key);
      await Promise.all(rendered.map((r) => this.storeVariant(info.key, r.variant, r.data, options)));
    }
    return info;
  }

  private async storeVariant(key: string, variant: ResolvedVariant, data: Buffer, options: SaveOptions): Promise<void> {
    const variantKey = variantKeyOf(key, variant);
    try {
      await this.inner.save(variantKey, data, { contentType: variant.contentType, cacheControl: options.cacheControl, signal: options.signal });
    } catch (err) {
      // No variant of the previous photo may stay behind: delete it, and let it be made again on request.
      await this.inner.delete(variantKey).catch(() => undefined);
      const error = isMediaStorageError(err) ? err : new MediaStorageError('UNKNOWN', String(err), { cause: err });
      if (!this.onVariantError) {
        throw new MediaStorageError(
          error.code,
          `"${key}" was stored, but its variant "${variant.name}" (${variant.density}x) was not: ${error.message}. It will be generated when first requested`,
          { key, operation: 'save', backend: error.backend, cause: error, status: error.status },
        );
      }
      this.onVariantError(error, { key, variant: variant.name, density: variant.density });
    }
  }

  /** Attaches the key to errors of the image pipeline (it knows no keys). */
  private async withKey<T>(key: string, promise: Promise<T>): Promise<T> {
    try {
      return await promise;
    } catch (err) {
      if (isMediaStorageError(err) && err.key === undefined)
        throw new MediaStorageError(err.code, `"${key}": ${err.message}`, { key, operation: 'save', backend: this.name, cause: err.cause });
      throw err;
    }
  }

  override async delete(key: string): Promise<void> {
    this.justGenerated.clear();
    const normalized = validateKey(key);
    await this.inner.delete(normalized);
    if (this.delivery !== 'stored' || !this.isImageKey(normalized)) return;
    await this.settle(normalized);
    // Every variant in the folder, also those of definitions that have changed since.
    const folder = variantFolder(normalized);
    const stored: string[] = [];
    for await (const item of this.inner.listAll(folder)) stored.push(item.key);
    await Promise.all(stored.map((k) => this.inner.delete(k)));
  }

  override async copy(from: string, to: string, options: CopyOptions = {}): Promise<ObjectInfo> {
    this.justGenerated.clear();
    const target = validateKey(to);
    if (isReservedKey(target)) throw reservedKeyError(target);
    const info = await this.inner.copy(from, target, options);
    const source = validateKey(from);
    if (!this.storesVariants(source) || !this.isImageKey(info.key)) return info;
    await this.settle(info.key);
    await Promise.all(
      this.allVariants().map(async (v) => {
        try {
          await this.inner.copy(variantKeyOf(source, v), variantKeyOf(info.key, v));
        } catch (err) {
          if (!isNotFound(err)) throw err;
          // The source has none (yet): the target must not keep one of an older photo.
          await this.inner.delete(variantKeyOf(info.key, v));
        }
      }),
    );
    return info;
  }

  // -------------------------------------------------------------------------------- reads

  override async url(key: string, options: UrlOptions = {}): Promise<string> {
    const { variant: name, density, ...rest } = options;
    if (name === undefined) {
      if (density !== undefined) throw new MediaStorageError('INVALID_INPUT', 'density needs a variant', { key });
      return this.inner.url(key, rest);
    }
    const variant = this.variant(name, density ?? 1);
    const normalized = validateKey(key);
    if (this.delivery === 'cloudinary') return this.inner.url(normalized, { ...rest, transform: { ...cloudinaryTransformation(variant), ...rest.transform } });
    return this.inner.url(variantKeyOf(normalized, variant), rest);
  }

  override async list(prefix = '', options: ListOptions = {}): Promise<ListPage> {
    const normalized = validatePrefix(prefix);
    const page = await this.inner.list(normalized, options);
    // Asked for explicitly, the variant folder is listed as it is; otherwise variants are not objects of their own.
    if (normalized.startsWith(VARIANTS_PREFIX)) return page;
    return { ...page, items: page.items.filter((item) => !isReservedKey(item.key)) };
  }

  override async stat(key: string): Promise<ObjectInfo> {
    return this.orGenerate(key, () => this.inner.stat(key));
  }

  override async read(key: string, options: ReadOptions = {}): Promise<Readable> {
    return this.orGenerate(key, () => this.inner.read(key, options));
  }

  override async readBuffer(key: string, options: ReadOptions = {}): Promise<Buffer> {
    return this.orGenerate(key, () => this.inner.readBuffer(key, options));
  }

  /** Runs a read; when it finds nothing under a current variant's key, generates the variant and runs it again. */
  private async orGenerate<T>(key: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (err) {
      if (!isNotFound(err) || !this.lazy || this.delivery !== 'stored') throw err;
      const target = this.currentVariantOf(key);
      if (!target) throw err;
      try {
        await this.generate(target.original, target.variant);
      } catch (generation) {
        // No original, or not an image: the variant is simply not there.
        if (isNotFound(generation) || (isMediaStorageError(generation) && (generation.code === 'INVALID_INPUT' || generation.code === 'TOO_LARGE'))) throw err;
        throw generation;
      }
      return operation();
    }
  }

  /** The original and variant a key names, when it is the key of a currently declared variant. */
  private currentVariantOf(key: string): { original: string; variant: ResolvedVariant } | undefined {
    const parsed = parseVariantKey(key);
    if (!parsed || !this.isImageKey(parsed.original)) return undefined;
    const variant = this.variants.get(parsed.name)?.densities.find((v) => v.density === parsed.density && v.digest === parsed.digest);
    return variant ? { original: parsed.original, variant } : undefined;
  }

  /**
   * Makes sure every density of a variant of `key` exists, generating what is missing from the
   * original (photos stored before the layer). Concurrent calls for one variant share one
   * generation. NOT_FOUND when the original is missing, INVALID_INPUT when it is not an image.
   * On Cloudinary nothing is stored: it checks that the original exists.
   */
  async ensureVariant(key: string, name: string): Promise<EnsuredVariant[]> {
    const normalized = validateKey(key);
    const densities = this.variants.get(name)?.densities ?? [this.variant(name)];
    if (this.delivery === 'cloudinary') {
      if (!(await this.inner.exists(normalized)))
        throw new MediaStorageError('NOT_FOUND', `No object under "${normalized}"`, { key: normalized, backend: this.name });
      return densities.map(() => ({ key: normalized, generated: false }));
    }
    return Promise.all(
      densities.map(async (variant) => {
        const { info, generated } = await this.generate(normalized, variant);
        return { key: info.key, generated };
      }),
    );
  }

  /**
   * Generates variants of `key` from its original in one read: those that are missing (or, with
   * `force`, all), of the named variants (default all). For backfills; `ensureVariant` is the
   * call for requests. Returns the keys written and their bytes. On Cloudinary, nothing to do.
   */
  async generateVariants(
    key: string,
    options: { names?: readonly string[]; force?: boolean; existing?: ReadonlySet<string> } = {},
  ): Promise<{ written: string[]; bytes: number }> {
    const original = validateKey(key);
    if (this.delivery === 'cloudinary') return { written: [], bytes: 0 };
    const wanted = (options.names ?? [...this.variants.keys()]).flatMap((name) => this.variants.get(name)?.densities ?? [this.variant(name)]);
    const missing: ResolvedVariant[] = [];
    for (const v of wanted) {
      const variantKey = variantKeyOf(original, v);
      const there = options.force ? false : options.existing ? options.existing.has(variantKey) : await this.inner.exists(variantKey);
      if (!there) missing.push(v);
    }
    if (missing.length === 0) return { written: [], bytes: 0 };
    const source = await this.inner.readBuffer(original);
    const release = await this.semaphore.acquire({ operation: 'save', key: original, replayable: false });
    let rendered: Array<{ variant: ResolvedVariant; data: Buffer }>;
    try {
      await this.withKey(original, inspectImage(source, this.processing));
      rendered = await this.withKey(
        original,
        Promise.all(missing.map(async (variant) => ({ variant, data: await renderVariant(source, variant, this.processing) }))),
      );
    } finally {
      release();
    }
    await this.settle(original);
    await Promise.all(rendered.map((r) => this.inner.save(variantKeyOf(original, r.variant), r.data, { contentType: r.variant.contentType })));
    this.stats.generated += rendered.length;
    return { written: rendered.map((r) => variantKeyOf(original, r.variant)), bytes: rendered.reduce((sum, r) => sum + r.data.length, 0) };
  }

  /**
   * One generation per variant key at a time; inside it, the variant is looked for again (another
   * caller, or another process, may have just stored it). `generated` is true for the one caller
   * whose call generated it.
   */
  private async generate(original: string, variant: ResolvedVariant): Promise<{ info: ObjectInfo; generated: boolean }> {
    const variantKey = variantKeyOf(original, variant);
    const running = this.inFlight.get(variantKey);
    if (running) {
      this.stats.joined++;
      return { info: await running, generated: false };
    }
    const recent = this.justGenerated.get(variantKey);
    if (recent && recent.until > Date.now()) {
      this.stats.joined++;
      return { info: recent.info, generated: false };
    }
    let generated = false;
    const flight = (async () => {
      try {
        return await this.inner.stat(variantKey);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      const source = await this.inner.readBuffer(original);
      const release = await this.semaphore.acquire({ operation: 'save', key: variantKey, replayable: false });
      let data: Buffer;
      try {
        // An accepted format (the bytes say, no decoder asked); the render itself refuses more pixels than maxPixels.
        await this.withKey(
          original,
          Promise.resolve().then(() => checkFormat(source, this.processing.formats)),
        );
        data = await this.withKey(original, renderVariant(source, variant, this.processing));
      } finally {
        release();
      }
      const info = await this.inner.save(variantKey, data, { contentType: variant.contentType });
      this.stats.generated++;
      generated = true;
      if (this.justGenerated.size >= 1000) this.justGenerated.clear();
      this.justGenerated.set(variantKey, { info, until: Date.now() + JUST_GENERATED_MS });
      return info;
    })();
    this.inFlight.set(variantKey, flight);
    try {
      return { info: await flight, generated };
    } finally {
      if (this.inFlight.get(variantKey) === flight) this.inFlight.delete(variantKey);
    }
  }
}

/** How long a generated variant answers later lookups that missed it (see `justGenerated`). */
const JUST_GENERATED_MS = 5_000;

const CLOUDINARY_EXTENSIONS: Record<string, string> = {
  'image/jpeg': '.jpg',
  'image/png': '.png',
  'image/webp': '.webp',
  'image/gif': '.gif',
  'image/avif': '.avif',
  'image/tiff': '.tiff',
};

/**
 * Cloudinary renders variants of image assets only, and a key is an image asset only when its
 * extension is the format's Cloudinary name (`.jpg`, not `.jpeg`; see docs/cloudinary.md): any
 * other key would be stored as a raw file with no variants, so it is refused before it is.
 */
function checkCloudinaryName(key: string, contentType: string): void {
  const expected = CLOUDINARY_EXTENSIONS[contentType];
  if (expected && !key.endsWith(expected)) {
    throw new MediaStorageError(
      'INVALID_KEY',
      `"${key}" holds a ${contentType} image: on Cloudinary its key must end with "${expected}" for its variants to be rendered`,
      { key, operation: 'save' },
    );
  }
}

/**
 * Photos done right over any storage: `withImages(storage, { variants: { avatar: { width: 64,
 * height: 64, densities: [1, 2] } } })`. Each save is decoded (not an image of an accepted
 * format: INVALID_INPUT; a decompression bomb: TOO_LARGE; nothing stored either way), turned
 * upright, stripped of EXIF/GPS/XMP/IPTC (the colour profile kept), and its variants are stored
 * under `_variants/<key>/` (on Cloudinary: rendered from delivery URLs instead).
 * `url(key, { variant: 'avatar', density: 2 })` gives a variant's URL. Needs `sharp`.
 */
export function withImages(storage: MediaStorage, options: ImageOptions = {}): ImageStorage {
  return new ImageStorage(storage, options);
}

/** The {@link ImageStorage} behind a storage, when there is one (itself, or under an existence cache). */
export function findImageStorage(storage: MediaStorage): ImageStorage | undefined {
  let current: unknown = storage;
  for (let depth = 0; depth < 8 && current; depth++) {
    if (current instanceof ImageStorage) return current;
    current = (current as { storage?: unknown }).storage;
  }
  return undefined;
}
