/**
 * `CloudinaryStorage`: MediaStorage on Cloudinary through the official `cloudinary` SDK (v2).
 *
 * The SDK is called with this instance's settings on every call (./sdk.ts); keys map to assets as
 * ./mapping.ts and docs/cloudinary.md say; whether an object exists is asked of the Upload API or
 * the Admin API (./locate.ts), never decided by a delivery URL (./delivery.ts).
 */
import type { Readable } from 'node:stream';
import { alreadyExists, BaseStorage, type WriteOptions } from '../core/base.js';
import { resolveOptions } from '../core/definition.js';
import { cloudinaryBackend } from './definition.js';
import type { PresignPlan } from '../core/direct-upload.js';
import { PeekableBody, type PreparedBody } from '../core/body.js';
import { contentTypeFromKey, resolveContentType, sniffContentType, SNIFF_BYTES } from '../core/content-type.js';
import { isExecutableContentType } from '../core/serving.js';
import { MediaStorageError, type MediaStorageErrorCode } from '../core/errors.js';
import { normalizeKey, normalizeLocation } from '../core/keys.js';
import type { Capabilities, DirectUpload, ListPage, ObjectInfo, ReadOptions, UrlOptions } from '../core/types.js';
import { djangoCloudinaryStorage, type AdoptNames } from './adopt.js';
import { configError, resolveConfig, type CloudinaryStorageOptions } from './config.js';
import { Delivery, deliveryError, discard, firstBytes } from './delivery.js';
import { CloudinaryApiError, mapCloudinaryError } from './errors.js';
import { listAssets } from './list.js';
import { AssetLocator, located, type Located } from './locate.js';
import { MEDIA_FORMATS, contentTypeOfFormat, homeFor, homesOf, type AssetRef, type KeyHomes, type ResourceType } from './mapping.js';
import { CloudinaryClient, type AdminResource, type UploadResult } from './sdk.js';
import { DEFAULT_CHUNK_SIZE, MIN_CHUNK_SIZE, Uploader, type UploadPlan } from './upload.js';

const DEFAULT_EXPIRES_IN = 3600;
/** Cloudinary accepts an upload signature for one hour after its timestamp (and no longer). */
const SIGNATURE_WINDOW_SECONDS = 3600;

/**
 * Cloudinary as a MediaStorage. Objects live as image, video or raw assets (see ./mapping.ts);
 * exists, stat, read and url find them through the Upload API (not rate-limited) by default, and
 * list uses the Admin API.
 */
export class CloudinaryStorage extends BaseStorage {
  readonly name = 'cloudinary';
  readonly capabilities: Readonly<Capabilities>;
  readonly deliveryType: 'upload' | 'authenticated';
  readonly folder: string;
  private readonly defaultExpiresIn: number;
  private readonly adopt: AdoptNames | undefined;
  private readonly client: CloudinaryClient;
  private readonly locator: AssetLocator;
  private readonly uploader: Uploader;
  private readonly delivery: Delivery;

  constructor(given: CloudinaryStorageOptions = {}) {
    const options = resolveOptions(cloudinaryBackend, given);
    super(options);
    const config = resolveConfig(options);
    this.deliveryType = options.deliveryType ?? 'upload';
    if (this.deliveryType !== 'upload' && this.deliveryType !== 'authenticated') throw configError('deliveryType must be "upload" or "authenticated"');
    this.folder = normalizeLocation(options.prefix);
    const chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE)
      throw configError(`chunkSize must be a whole number of bytes, at least ${MIN_CHUNK_SIZE} (Cloudinary's smallest chunk)`);
    this.defaultExpiresIn = options.defaultExpiresIn ?? DEFAULT_EXPIRES_IN;
    if (!(Number.isFinite(this.defaultExpiresIn) && this.defaultExpiresIn > 0)) throw configError('defaultExpiresIn must be a positive number of seconds');
    const existsVia = options.existsVia ?? 'upload-api';
    if (existsVia !== 'upload-api' && existsVia !== 'admin') throw configError('existsVia must be "upload-api" or "admin"');
    const folderMode = options.folderMode;
    if (folderMode !== undefined && folderMode !== 'fixed' && folderMode !== 'dynamic') throw configError('folderMode must be "fixed" or "dynamic"');
    if (options.adopt === 'django-cloudinary-storage') this.adopt = djangoCloudinaryStorage();
    else if (typeof options.adopt === 'function' || options.adopt === undefined) this.adopt = options.adopt;
    else throw configError('adopt must be "django-cloudinary-storage" or a function from a stored name to the assets it may be');
    this.client = new CloudinaryClient(config, this.deliveryType, options.timeout ?? 60_000, options.agent);
    this.locator = new AssetLocator(this.client, existsVia, this.adopt);
    this.uploader = new Uploader(this.client, chunkSize, folderMode);
    this.delivery = new Delivery(this.client, options.fetch ?? ((input, init) => fetch(input, init)));
    this.capabilities = Object.freeze({
      publicUrls: this.deliveryType === 'upload',
      signedUrls: true,
      downloadUrls: true,
      rangeReads: true,
      serverSideCopy: false,
      metadata: false,
      atomicCreate: false,
      md5Etag: false,
      emptyObjects: false,
      // The Admin API sorts by public ID (newest first without a prefix), and the key mapping does
      // not keep that order (`a b.jpg` is `a_x20_b`); listings are also rate-limited, and adopted
      // names are found by exists() but never listed.
      sortedListing: false,
      directUploads: true,
      // A signed upload lives one hour after its timestamp, whatever else it says.
      maxUploadExpiresIn: SIGNATURE_WINDOW_SECONDS,
    });
  }

  /** Closes the keep-alive connections this storage opened. */
  override async close(): Promise<void> {
    this.client.close();
  }

  /** Where a key lives or would live at Cloudinary: `{ media?, raw }` (see docs/cloudinary.md). */
  homesOf(key: string): KeyHomes {
    return homesOf(normalizeKey(key), this.folder);
  }

  protected override secrets(): readonly (string | undefined)[] {
    return [this.client.config.apiSecret];
  }

  protected override mapError(err: unknown): { code: MediaStorageErrorCode; message?: string; status?: number; retryAfter?: Date } | undefined {
    return mapCloudinaryError(err, this.client.lastRateLimitReset);
  }

  // ----------------------------------------------------------------- driver methods

  protected async writeObject(key: string, body: PreparedBody, options: WriteOptions): Promise<ObjectInfo> {
    const homes = homesOf(key, this.folder);
    if (body.size === 0) throw this.emptyUnsupported(key);
    // Read through the core's guarded stream (limits, progress, abort), first just enough to sniff.
    const reader = new PeekableBody(body.stream());
    try {
      await reader.fill(SNIFF_BYTES);
      if (reader.ended && reader.bytes === 0) throw this.emptyUnsupported(key);
      // The bytes decide: a body is an image or video asset only when it really is one of the
      // key's format (text named .jpg is a raw file; Cloudinary would refuse it as an image).
      const sniffed = sniffContentType(reader.head(SNIFF_BYTES));
      // Cloudinary serves files inline from its own domain with a type it picks from the format
      // or extension, and cannot be told to send them as attachments or under another type:
      // executable kinds, by their bytes or their name, are refused unless the app listed them
      // in inlineContentTypes. (PDF is kept: browsers render it in a sandboxed viewer.)
      this.refuseActive(key, [sniffed, contentTypeFromKey(key)]);
      const target = homeFor(homes, sniffed ?? '');
      const toMedia = target === homes.media;
      const mediaSlot = homes.media ? (await this.locator.probeMedia(homes.media)).state : undefined;
      if (toMedia && mediaSlot === 'foreign') throw this.collision(key, homes.media!);
      // ifExists 'fail': BaseStorage has looked for the key already (atomicCreate false); a save
      // that won the race since is caught below by the upload's overwrite=false.
      // Replace only what is known to be this key's; a free media slot is claimed with overwrite=false,
      // so a concurrent save of a sibling key (a.jpg vs a.png) can never be overwritten silently.
      // Replacing sends invalidate=true, so CDN copies of the old asset do not outlive it.
      const plan: UploadPlan = {
        overwrite: options.ifExists === 'overwrite' && (!toMedia || mediaSlot === 'ours'),
        assetFolder: await this.uploader.assetFolderOf(target),
      };
      const { result: first, whole } = await this.uploader.upload(target, reader, body.size, plan, options.signal);
      let result = first;
      if (result.existing) {
        if (toMedia && result.format !== target.format) throw this.collision(key, target);
        if (options.ifExists === 'fail') throw alreadyExists(key);
        // Another save of this same key claimed the slot between our check and our upload.
        if (!whole) throw new MediaStorageError('UNAVAILABLE', `A concurrent save of "${key}" finished first; try again`, { key });
        const again: UploadPlan = { ...plan, overwrite: true };
        result = await this.uploader.uploadBuffer(target, whole, again, options.signal);
      }
      await this.checkStoredAs(key, target, result);
      if (!plan.overwrite && !first.existing) await this.purgeCachedUrls(target);
      // A key lives in one home at a time: remove its copy in the other one.
      if (toMedia) await this.destroyAsset(homes.raw);
      else if (mediaSlot === 'ours') await this.destroyAsset(homes.media!);
      this.locator.remember(key, located(target, result));
      return {
        key,
        size: result.bytes,
        // Cloudinary keeps no content type: the one the bytes and the name give, as stat reports.
        contentType: body.detectedContentType,
        ...(result.etag ? { etag: result.etag } : {}),
        ...(result.created_at ? { lastModified: new Date(result.created_at) } : {}),
      };
    } finally {
      await reader.close();
    }
  }

  /**
   * Cloudinary answers with the public ID it stored. If its naming rules changed it (they "may
   * change from time to time"), the key would read as missing: the asset is removed (unless it
   * was someone else's, untouched) and the save fails, naming both.
   */
  private async checkStoredAs(key: string, target: AssetRef, result: UploadResult): Promise<void> {
    const storedType = result.resource_type ?? target.resourceType;
    if (result.public_id === target.publicId && storedType === target.resourceType) return;
    if (!result.existing) await this.destroyAsset({ resourceType: storedType as ResourceType, publicId: result.public_id });
    throw new MediaStorageError(
      'INVALID_KEY',
      `Cloudinary stored "${key}" as ${storedType} public ID "${result.public_id}" instead of ${target.resourceType} "${target.publicId}" (its naming rules changed?); it was removed and not saved`,
      { key },
    );
  }

  /**
   * A free media slot is claimed with overwrite=false, which sends no invalidation; URLs asked for
   * before the upload (by a browser, or built elsewhere without the version) may hold a cached
   * 404, so they are purged now (explicit with invalidate). Best effort: the object is saved, and
   * the URLs this storage gives carry the version and never hit those entries.
   */
  private async purgeCachedUrls(target: AssetRef): Promise<void> {
    await this.client
      .call((sdk) =>
        sdk.uploader.explicit(target.publicId, this.client.callOptions({ resource_type: target.resourceType, type: this.deliveryType, invalidate: true })),
      )
      .catch(() => undefined);
  }

  protected override async keyTaken(key: string): Promise<boolean> {
    const homes = homesOf(key, this.folder);
    // A sibling key's asset in the media home (a.jpg when renaming a.png) blocks this name too.
    if (homes.media && (await this.locator.probeMedia(homes.media)).state !== 'absent') return true;
    return (await this.locator.lookup(homes.raw)) !== undefined;
  }

  protected async readObject(key: string, options: ReadOptions): Promise<Readable> {
    const found = await this.locator.locate(key, homesOf(key, this.folder));
    const stream = found && (await this.delivery.read(found, key, options.range, options.signal));
    if (!stream) {
      // Deleted since the lookup: forget where it was.
      if (found) this.locator.remember(key, undefined);
      throw new MediaStorageError('NOT_FOUND', `No object under "${key}"`, { key });
    }
    return stream;
  }

  protected async statObject(key: string): Promise<ObjectInfo | undefined> {
    const found = await this.locator.locate(key, homesOf(key, this.folder));
    if (!found) return undefined;
    const info: ObjectInfo = {
      key,
      size: found.bytes ?? 0,
      contentType: found.ref.resourceType === 'raw' ? await this.rawContentType(key, found) : contentTypeOfFormat(found.ref.format),
      ...(found.etag ? { etag: found.etag } : {}),
      ...(found.createdAt ? { lastModified: new Date(found.createdAt) } : {}),
    };
    return info;
  }

  /**
   * Raw files are served with a type guessed from their extension; the first bytes are read (a
   * ranged GET of the versioned URL) so the type follows the core's rule (sniffed bytes first), as
   * it did when the object was saved. A delivery the account refuses falls back to the extension.
   */
  private async rawContentType(key: string, found: Located): Promise<string> {
    const res = await this.delivery.get(found, { range: `bytes=0-${SNIFF_BYTES - 1}` });
    if (res.status === 401 || res.status === 403 || res.status === 416) {
      await discard(res);
      return this.servingRule.typeFromKey(key);
    }
    if (!res.ok) {
      await discard(res);
      throw deliveryError(res, `checking "${key}"`);
    }
    const head = await firstBytes(res, SNIFF_BYTES, this.client.timeout);
    return this.servingRule.contentTypeFor(resolveContentType(key, head), head);
  }

  private infoFromResource(key: string, r: AdminResource): ObjectInfo {
    const contentType =
      r.resource_type !== 'raw' && r.format && MEDIA_FORMATS[r.format] ? MEDIA_FORMATS[r.format]!.contentTypes[0]! : this.servingRule.typeFromKey(key);
    return {
      key,
      size: r.bytes,
      contentType,
      ...(r.etag ? { etag: r.etag } : {}),
      ...(r.created_at ? { lastModified: new Date(r.created_at) } : {}),
    };
  }

  protected override async existsObject(key: string): Promise<boolean> {
    return (await this.locator.locate(key, homesOf(key, this.folder))) !== undefined;
  }

  protected async deleteObject(key: string): Promise<void> {
    const homes = homesOf(key, this.folder);
    // The media home may hold a sibling key's asset (a.png when deleting a.jpg): leave that alone.
    if (homes.media && (await this.locator.probeMedia(homes.media)).state === 'ours') await this.destroyAsset(homes.media);
    await this.destroyAsset(homes.raw);
    // An adopted name is deleted too, or exists() would still find it.
    for (const candidate of this.locator.adoptedCandidates(key, homes)) {
      if (await this.locator.lookup(candidate)) {
        await this.destroyAsset(candidate);
        break;
      }
    }
    this.locator.remember(key, undefined);
  }

  private async destroyAsset(ref: AssetRef): Promise<void> {
    // invalidate: CDN copies must not outlive the asset.
    const result = await this.client.call((sdk) =>
      sdk.uploader.destroy(ref.publicId, this.client.callOptions({ resource_type: ref.resourceType, type: ref.type ?? this.deliveryType, invalidate: true })),
    );
    if (result.result !== 'ok' && result.result !== 'not found') {
      throw new CloudinaryApiError(`destroy of "${ref.publicId}" answered ${JSON.stringify(result.result)}`, undefined);
    }
  }

  protected async objectUrl(key: string, options: UrlOptions): Promise<string> {
    const homes = homesOf(key, this.folder);
    const signedApiUrl = options.download || options.expiresIn !== undefined || (this.deliveryType === 'authenticated' && !options.transform);
    // A raw-only key served by the download API needs no lookup; everything else needs the asset's home and version.
    const found: Pick<Located, 'ref' | 'version'> = signedApiUrl && !homes.media && !this.adopt ? { ref: homes.raw } : await this.urlTarget(key, homes);
    const ref = found.ref;
    if (options.transform && ref.resourceType === 'raw') {
      throw new MediaStorageError('UNSUPPORTED', `"${key}" is stored as a raw file; Cloudinary applies transformations to images and videos only`, { key });
    }
    if (options.download) {
      if (options.transform)
        throw new MediaStorageError(
          'UNSUPPORTED',
          'Download URLs are served by the Upload API, which applies no transformation; drop download or the transformation',
          { key },
        );
      return this.delivery.downloadUrl(ref, options.expiresIn ?? this.defaultExpiresIn, true);
    }
    if (options.expiresIn !== undefined) {
      if (options.transform) {
        throw new MediaStorageError(
          'UNSUPPORTED',
          'Cloudinary applies transformations on delivery URLs, which cannot expire without token authentication; drop expiresIn (an authenticated storage still signs the URL) or the transformation',
          { key },
        );
      }
      return this.delivery.downloadUrl(ref, options.expiresIn, false);
    }
    if (this.deliveryType === 'authenticated' && !options.transform && (ref.type ?? this.deliveryType) === 'authenticated')
      return this.delivery.downloadUrl(ref, this.defaultExpiresIn, false);
    // Public delivery URL, or (authenticated) a signed delivery URL carrying the transformation.
    return this.delivery.url(ref, { version: found.version, transform: options.transform });
  }

  /** Where a URL should point: remembered (with the version), else looked up; a key found nowhere gets its media home, or its raw one. */
  private async urlTarget(key: string, homes: KeyHomes): Promise<Pick<Located, 'ref' | 'version'>> {
    const found = this.locator.remembered(key) ?? (await this.locator.locate(key, homes));
    return found ?? { ref: homes.media ?? homes.raw };
  }

  // ----------------------------------------------------------------- direct uploads

  /**
   * A signed Upload API request (multipart POST of the signed parameters and the file), as
   * Cloudinary documents browser uploads. Cloudinary enforces what is signed: the public ID and
   * resource type (so the key), `overwrite`, the delivery type, and for an image or video key
   * `allowed_formats` (so bytes of another format are refused); it accepts the signature for one
   * hour after its `timestamp`, so the timestamp is set `3600 - expiresIn` seconds in the past and
   * the request expires when asked. It has no size limit to sign (only the plan's).
   *
   * The key's home follows the declared type: its image or video home when the type is the
   * format's, else its raw home; a key already stored in one home is uploaded there again, so it
   * never lives in both. As in `save`, a free media slot is claimed with `overwrite=false`, so
   * another key's asset (`a.jpg` for `a.png`) is never replaced.
   */
  protected override async presignObjectUpload(key: string, plan: PresignPlan): Promise<DirectUpload> {
    const homes = homesOf(key, this.folder);
    this.refuseActive(key, [contentTypeFromKey(key)]);
    const claimsMedia =
      homes.media !== undefined && (MEDIA_FORMATS[homes.media.format!]?.contentTypes ?? []).includes(plan.contentType.split(';')[0]!.trim().toLowerCase());
    const current = await this.locator.locate(key, homes);
    const own =
      current && [homes.media, homes.raw].some((h) => h && h.resourceType === current.ref.resourceType && h.publicId === current.ref.publicId)
        ? current
        : undefined;
    const target = own ? (own.ref.resourceType === 'raw' ? homes.raw : homes.media!) : claimsMedia ? homes.media! : homes.raw;
    const toMedia = target === homes.media;
    let overwrite = true;
    if (toMedia) {
      const slot = (await this.locator.probeMedia(target)).state;
      if (slot === 'foreign') throw this.collision(key, target);
      overwrite = slot === 'ours';
    }
    // The upload lands behind this storage's back: forget where the key was.
    this.locator.remember(key, undefined);
    const timestamp = Math.floor(Date.now() / 1000) + plan.expiresIn - SIGNATURE_WINDOW_SECONDS;
    const { url, fields } = await this.uploader.signedForm(target, { timestamp, overwrite, allowedFormat: toMedia ? target.format : undefined });
    return {
      method: 'POST',
      url,
      headers: {},
      fields,
      fileField: 'file',
      key,
      contentType: plan.contentType,
      expiresAt: new Date((timestamp + SIGNATURE_WINDOW_SECONDS) * 1000),
      enforced: { key: true, contentType: toMedia, maxSize: false, expiry: true },
    };
  }

  /** UNSUPPORTED when any of `types` is active content the app did not allow inline (see writeObject). */
  private refuseActive(key: string, types: readonly (string | undefined)[]): void {
    if (!types.some((type) => isExecutableContentType(type) && !this.servingRule.isInline(type!))) return;
    throw new MediaStorageError(
      'UNSUPPORTED',
      `"${key}" is active content (HTML, SVG, XML or script), which Cloudinary would serve inline; store it elsewhere or as a different type`,
      { key },
    );
  }

  private emptyUnsupported(key: string): MediaStorageError {
    return new MediaStorageError('UNSUPPORTED', `Cloudinary does not store empty files; "${key}" was not saved`, { key });
  }

  private collision(key: string, media: AssetRef): MediaStorageError {
    return new MediaStorageError(
      'ALREADY_EXISTS',
      `"${key}" maps to Cloudinary ${media.resourceType} public ID "${media.publicId}", which already holds another key's ${media.resourceType} (same name, another extension); Cloudinary keeps one ${media.resourceType} per public ID, so it was not overwritten`,
      { key },
    );
  }

  protected async listObjects(prefix: string, options: { cursor?: string; limit: number }): Promise<ListPage> {
    return listAssets({ client: this.client, folder: this.folder, locator: this.locator, infoOf: (key, r) => this.infoFromResource(key, r) }, prefix, options);
  }
}
