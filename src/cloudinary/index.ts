/**
 * `CloudinaryStorage`: MediaStorage on Cloudinary through the official `cloudinary` SDK (v2).
 *
 * The SDK's `cloudinary.config()` is process-wide, so this backend never calls it: every SDK call
 * gets this instance's cloud name, key, secret and API prefix as per-call options, and two
 * instances on different accounts never see each other's settings. How keys map to assets is in
 * ./mapping.ts and docs/cloudinary.md.
 *
 * Whether an object exists is asked of the Upload API (`explicit`, or the Admin API), never
 * decided by a delivery URL: Cloudinary's CDN caches a 404 per exact URL (for a minute, doubling
 * up to a day), so a URL probed before an upload would answer "missing" after it. Delivery URLs
 * carry the asset's version, so every upload gets URLs no one has asked for before.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BaseStorage, type WriteOptions } from '../core/base.js';
import type { PresignPlan } from '../core/direct-upload.js';
import type { PreparedBody } from '../core/body.js';
import { contentTypeFromKey, DEFAULT_CONTENT_TYPE, resolveContentType, sniffContentType, SNIFF_BYTES } from '../core/content-type.js';
import { isExecutableContentType, type ServingOptions } from '../core/serving.js';
import { MediaStorageError, abortedError, type MediaStorageErrorCode } from '../core/errors.js';
import { normalizeKey, normalizeLocation } from '../core/keys.js';
import { failOnStall } from '../core/stall.js';
import type { Capabilities, DirectUpload, ListPage, ObjectInfo, ReadOptions, SkippedObject, UrlOptions } from '../core/types.js';
import { configError, resolveConfig, type ResolvedConfig } from './config.js';
import { CloudinaryApiError, fromSdkRejection, mapCloudinaryError } from './errors.js';
import { BodyReader, firstBytes, sliceStream } from './io.js';
import { djangoCloudinaryStorage, type AdoptNames } from './adopt.js';
import { MEDIA_FORMATS, homeFor, homesOf, keyOf, publicIdPrefix, type AssetRef, type KeyHomes, type ResourceType } from './mapping.js';

export { CloudinaryApiError, fromSdkRejection, mapCloudinaryError, rateLimitRetryAfter } from './errors.js';
export { MEDIA_FORMATS, MAX_PUBLIC_ID_LENGTH, escapePublicId, unescapePublicId, publicIdPrefix, homesOf, homeFor, keyOf, mediaFormatOf, type AssetRef, type KeyHomes, type ResourceType } from './mapping.js';
export { djangoCloudinaryStorage, type AdoptNames, type AdoptedAsset, type DjangoCloudinaryStorageNames } from './adopt.js';

export interface CloudinaryStorageOptions extends ServingOptions {
  /** Cloud name; default from `cloudinaryUrl`. */
  cloudName?: string;
  /** API key; default from `cloudinaryUrl`. */
  apiKey?: string;
  /** API secret; default from `cloudinaryUrl`. Never appears in error messages. */
  apiSecret?: string;
  /**
   * `cloudinary://API_KEY:API_SECRET@CLOUD_NAME`, optionally with query settings
   * (`upload_prefix`, `secure_distribution`, `private_cdn`, `signature_algorithm`). Default:
   * `process.env.CLOUDINARY_URL`. Explicit options win over it.
   */
  cloudinaryUrl?: string;
  /** Folder (public ID prefix) every key lives under, e.g. `media/`. */
  folder?: string;
  /** `upload` (public delivery URLs, the default) or `authenticated` (signed URLs only). */
  deliveryType?: 'upload' | 'authenticated';
  /** Expiry, in seconds, of signed URLs made without `expiresIn` (authenticated type, downloads). Default 3600. */
  defaultExpiresIn?: number;
  /** Bodies larger than this (or of unknown length that turn out larger) go through chunked upload, in chunks of this size. Default 20 MB; at least 5 MB (Cloudinary's minimum chunk). */
  chunkSize?: number;
  /**
   * How exists, stat, read and url learn where an object is and which version it has: the Upload
   * API's `explicit` (default; not rate-limited) or the Admin API (rate-limited, 500–2,000 calls an
   * hour). Never a delivery URL: the CDN caches 404s.
   */
  existsVia?: 'upload-api' | 'admin';
  /**
   * The product environment's folder mode. In `dynamic` mode (every account made since June 2024)
   * uploads also set `asset_folder` to the key's folder, so the Media Library shows the same tree;
   * the public ID is the same in both modes. Default: asked once of the Admin API (`GET /config`)
   * at the first save; if that fails, saves go without `asset_folder` and it is asked again later.
   */
  folderMode?: 'fixed' | 'dynamic';
  /**
   * Names another tool stored in your database, resolved to the assets it uploaded when a key is
   * not found under this storage's own mapping: `'django-cloudinary-storage'` (prefix `media/`),
   * {@link djangoCloudinaryStorage}`({ prefix })`, or your own rule. Used by exists, stat, read,
   * url, copy and delete; saves always use the storage's own mapping, and listings show its keys only.
   */
  adopt?: 'django-cloudinary-storage' | AdoptNames;
  /** API base URL (`upload_prefix`); default `https://api.cloudinary.com`, or the `upload_prefix` in `cloudinaryUrl`. For proxies and tests. */
  uploadPrefix?: string;
  /** Custom delivery domain (CNAME) for HTTPS delivery URLs, e.g. `media.example.com`. */
  secureDistribution?: string;
  /** Delivery from a private CDN distribution (`<cloud>-res.cloudinary.com`). */
  privateCdn?: boolean;
  /** Algorithm of API and delivery signatures; default `sha1` (set `sha256` if your account requires it). */
  signatureAlgorithm?: 'sha1' | 'sha256';
  /** The fetch used for delivery URLs (exists, stat, read). For proxies and tests; default the global fetch. */
  fetch?: (input: string, init?: RequestInit) => Promise<Response>;
  /** HTTP agent for API calls (e.g. a proxy agent). Default: a keep-alive agent for the prefix's protocol. */
  agent?: http.Agent;
  /** API request timeout in milliseconds; default 60,000. */
  timeout?: number;
}

/** The parts of the SDK this backend uses (typed loosely: the SDK's own types lag its behaviour). */
interface CloudinarySdk {
  config(): Record<string, unknown>;
  uploader: {
    upload_stream(options: Record<string, unknown>, callback: (error: unknown, result?: UploadResult) => void): NodeJS.WritableStream & import('node:stream').Writable;
    explicit(publicId: string, options: Record<string, unknown>): Promise<AdminResource>;
    destroy(publicId: string, options: Record<string, unknown>): Promise<{ result?: string }>;
  };
  api: {
    resource(publicId: string, options: Record<string, unknown>): Promise<AdminResource & RateLimitInfo>;
    resources(options: Record<string, unknown>): Promise<{ resources: AdminResource[]; next_cursor?: string } & RateLimitInfo>;
    config(options: Record<string, unknown>): Promise<{ settings?: { folder_mode?: string } } & RateLimitInfo>;
  };
  utils: {
    url(publicId: string, options: Record<string, unknown>): string;
    private_download_url(publicId: string, format: string | undefined, options: Record<string, unknown>): string;
    sign_request(params: Record<string, unknown>, options: Record<string, unknown>): Record<string, unknown>;
  };
}

interface UploadResult {
  public_id: string;
  version?: number;
  format?: string;
  resource_type?: string;
  type?: string;
  bytes: number;
  etag?: string;
  created_at?: string;
  existing?: boolean;
  done?: boolean;
}

/** An asset as the Upload API's explicit and the Admin API describe it. */
interface AdminResource {
  public_id: string;
  format?: string;
  resource_type: string;
  type?: string;
  version?: number;
  bytes: number;
  created_at?: string;
  etag?: string;
}

interface RateLimitInfo {
  rate_limit_reset_at?: Date;
}

const DEFAULT_CHUNK_SIZE = 20 * 1024 * 1024;
const MIN_CHUNK_SIZE = 5 * 1024 * 1024;
const DEFAULT_EXPIRES_IN = 3600;
const ADMIN_PAGE_SIZE = 500;
const LOCATION_CACHE_SIZE = 1000;
/** After a failed folder-mode lookup, saves go without asset_folder for this long before asking again. */
const FOLDER_MODE_RETRY_MS = 60_000;
const RESOURCE_TYPES: readonly ResourceType[] = ['image', 'video', 'raw'];
/** Cloudinary accepts an upload signature for one hour after its timestamp (and no longer). */
const SIGNATURE_WINDOW_SECONDS = 3600;

let sdkPromise: Promise<CloudinarySdk> | undefined;

/** Loads the SDK on first use, so importing this module costs nothing and a missing package is a clear CONFIG error. */
function loadSdk(): Promise<CloudinarySdk> {
  sdkPromise ??= import('cloudinary').then(
    (mod) => {
      const m = mod as unknown as { v2?: CloudinarySdk; default?: { v2?: CloudinarySdk } };
      const v2 = m.v2 ?? m.default?.v2;
      if (!v2) throw new Error('the cloudinary module has no v2 export');
      return v2;
    },
    (err: unknown) => {
      sdkPromise = undefined;
      throw new MediaStorageError('CONFIG', 'CloudinaryStorage needs the "cloudinary" package (v2): npm install cloudinary', { backend: 'cloudinary', cause: err });
    },
  );
  return sdkPromise;
}

/** A delivery answer that is neither the object nor its absence. */
function deliveryError(res: Response, what: string): CloudinaryApiError {
  const reason = res.headers.get('x-cld-error');
  return new CloudinaryApiError(`${what}: delivery answered ${res.status}${reason ? ` (${reason})` : ''}`, res.status, { source: 'delivery' });
}

async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => undefined);
}

/** Where a key was found (one of its homes, or an adopted asset), with the asset's details. */
interface Located {
  /** The asset, with its format for images and videos. */
  ref: AssetRef;
  version?: number;
  bytes?: number;
  etag?: string;
  createdAt?: string;
}

/** How an upload treats an existing asset, and (dynamic folder mode) which asset folder it goes in. */
interface UploadPlan {
  overwrite: boolean;
  assetFolder?: string;
}

type MediaSlot = { state: 'absent' } | { state: 'ours'; asset: AdminResource } | { state: 'foreign' };

/** Whether a failed lookup means "no such asset" (and not a wrong cloud name, key or secret). */
function isMissingAsset(err: unknown): boolean {
  return err instanceof CloudinaryApiError && err.httpCode === 404 && /not found/i.test(err.message);
}

/** The content type of an image or video format, including formats outside MEDIA_FORMATS (adopted assets). */
function contentTypeOfFormat(format: string | undefined): string {
  if (!format) return DEFAULT_CONTENT_TYPE;
  return MEDIA_FORMATS[format]?.contentTypes[0] ?? contentTypeFromKey(`asset.${format}`) ?? DEFAULT_CONTENT_TYPE;
}

interface ListSourceState {
  /** Cloudinary's cursor of the current page; absent for the first page. */
  c?: string;
  /** Entries of the current page already returned. */
  n: number;
  /** No entries left. */
  d?: boolean;
}

type ListCursor = Record<ResourceType, ListSourceState>;

interface ListSource {
  type: ResourceType;
  pageCursor?: string;
  consumed: number;
  items: ObjectInfo[];
  /** Assets of the pages loaded for this listing call that no key names. */
  skipped: SkippedObject[];
  next?: string;
}

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
  private readonly config: ResolvedConfig;
  private readonly chunkSize: number;
  private readonly defaultExpiresIn: number;
  private readonly existsVia: 'upload-api' | 'admin';
  private folderMode: 'fixed' | 'dynamic' | undefined;
  private folderModeLookup: Promise<'fixed' | 'dynamic' | undefined> | undefined;
  private folderModeRetryAt = 0;
  private readonly adopt: AdoptNames | undefined;
  private readonly fetchImpl: (input: string, init?: RequestInit) => Promise<Response>;
  private readonly apiAgent: http.Agent;
  private readonly ownsAgent: boolean;
  private readonly timeout: number;
  /** Where recently seen keys live, and their versions, so url() rarely needs a lookup. Bounded, oldest first out. */
  private readonly locations = new Map<string, Located>();
  /** The Admin API's reset time, as last reported on a successful call. */
  private lastRateLimitReset: Date | undefined;
  private sdkProxy: boolean | undefined;

  constructor(options: CloudinaryStorageOptions = {}) {
    super(options);
    this.config = resolveConfig(options);
    this.deliveryType = options.deliveryType ?? 'upload';
    if (this.deliveryType !== 'upload' && this.deliveryType !== 'authenticated') throw configError('deliveryType must be "upload" or "authenticated"');
    this.folder = normalizeLocation(options.folder);
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (!Number.isInteger(this.chunkSize) || this.chunkSize < MIN_CHUNK_SIZE) throw configError(`chunkSize must be a whole number of bytes, at least ${MIN_CHUNK_SIZE} (Cloudinary's smallest chunk)`);
    this.defaultExpiresIn = options.defaultExpiresIn ?? DEFAULT_EXPIRES_IN;
    if (!(Number.isFinite(this.defaultExpiresIn) && this.defaultExpiresIn > 0)) throw configError('defaultExpiresIn must be a positive number of seconds');
    this.existsVia = options.existsVia ?? 'upload-api';
    if (this.existsVia !== 'upload-api' && this.existsVia !== 'admin') throw configError('existsVia must be "upload-api" or "admin"');
    this.folderMode = options.folderMode;
    if (this.folderMode !== undefined && this.folderMode !== 'fixed' && this.folderMode !== 'dynamic') throw configError('folderMode must be "fixed" or "dynamic"');
    if (options.adopt === 'django-cloudinary-storage') this.adopt = djangoCloudinaryStorage();
    else if (typeof options.adopt === 'function' || options.adopt === undefined) this.adopt = options.adopt;
    else throw configError('adopt must be "django-cloudinary-storage" or a function from a stored name to the assets it may be');
    this.fetchImpl = options.fetch ?? ((input, init) => fetch(input, init));
    this.timeout = options.timeout ?? 60_000;
    this.ownsAgent = !options.agent;
    // Passing an agent of the prefix's protocol makes the SDK's requests work whichever of
    // http/https it picked when it was first loaded (it decides once, from the global config).
    this.apiAgent = options.agent ?? this.newAgent(true);
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
    if (this.ownsAgent) this.apiAgent.destroy();
  }

  /** Where a key lives or would live at Cloudinary: `{ media?, raw }` (see docs/cloudinary.md). */
  homesOf(key: string): KeyHomes {
    return homesOf(normalizeKey(key), this.folder);
  }

  protected override secrets(): readonly (string | undefined)[] {
    return [this.config.apiSecret];
  }

  protected override mapError(err: unknown): { code: MediaStorageErrorCode; message?: string; status?: number; retryAfter?: Date } | undefined {
    return mapCloudinaryError(err, this.lastRateLimitReset);
  }

  // ----------------------------------------------------------------- SDK plumbing

  /**
   * An agent for API calls whose sockets are destroyed after `timeout` ms without a byte either
   * way. The SDK sets that timeout on Admin API requests but never acts on it, so a stalled
   * answer would hang the call forever; a destroyed socket fails it (UNAVAILABLE) instead.
   */
  private newAgent(keepAlive: boolean): http.Agent {
    // `timeout` also lets the agent honour a server's Keep-Alive hint (it drops an idle socket a
    // second before the server would), instead of reusing one the server is closing (ECONNRESET).
    const agentOptions = { keepAlive, timeout: this.timeout };
    const agent = this.config.uploadPrefix.startsWith('http:') ? new http.Agent(agentOptions) : new https.Agent(agentOptions);
    const createConnection = agent.createConnection.bind(agent) as (...args: unknown[]) => import('node:net').Socket;
    agent.createConnection = ((...args: unknown[]) => {
      const socket = createConnection(...args);
      socket.setTimeout(this.timeout, () => socket.destroy());
      return socket;
    }) as typeof agent.createConnection;
    return agent;
  }

  /**
   * Whether the SDK was configured with a proxy (CLOUDINARY_API_PROXY / api_proxy): it then builds
   * its own proxy agent, and ignoring it for ours would bypass the proxy.
   */
  private sdkUsesProxy(sdk: CloudinarySdk): boolean {
    this.sdkProxy ??= Boolean(sdk.config().api_proxy);
    return this.sdkProxy && this.ownsAgent;
  }

  /** The per-call options that stand in for the SDK's global config. */
  private callOptions(extra: Record<string, unknown> = {}): Record<string, unknown> {
    const c = this.config;
    return {
      cloud_name: c.cloudName,
      api_key: c.apiKey,
      api_secret: c.apiSecret,
      upload_prefix: c.uploadPrefix,
      signature_algorithm: c.signatureAlgorithm,
      timeout: this.timeout,
      ...(this.sdkProxy && this.ownsAgent ? {} : { agent: this.apiAgent }),
      ...extra,
    };
  }

  private async sdkCall<T>(fn: (sdk: CloudinarySdk) => Promise<T>): Promise<T> {
    const sdk = await loadSdk();
    this.sdkUsesProxy(sdk);
    try {
      return await fn(sdk);
    } catch (err) {
      throw fromSdkRejection(err);
    }
  }

  private noteRateLimit(result: RateLimitInfo): void {
    if (result.rate_limit_reset_at instanceof Date) this.lastRateLimitReset = result.rate_limit_reset_at;
  }

  private remember(key: string, where: Located | undefined): void {
    this.locations.delete(key);
    if (!where) return;
    this.locations.set(key, where);
    if (this.locations.size > LOCATION_CACHE_SIZE) this.locations.delete(this.locations.keys().next().value!);
  }

  /**
   * A delivery URL. With `version` it is an exact URL that did not exist before that upload, so
   * no cached 404 (or older copy) can answer it; without one the SDK writes `v1` for paths with
   * folders. `format` undefined on a media asset asks for the original, as stored.
   */
  private async deliveryUrl(ref: AssetRef, options: { version?: number; transform?: Record<string, unknown> } = {}): Promise<string> {
    const sdk = await loadSdk();
    const c = this.config;
    const type = ref.type ?? this.deliveryType;
    return sdk.utils.url(ref.publicId, {
      resource_type: ref.resourceType,
      type,
      ...(ref.resourceType !== 'raw' && ref.format ? { format: ref.format } : {}),
      ...(options.version !== undefined ? { version: options.version } : {}),
      ...(options.transform ? { transformation: [{ ...options.transform }] } : {}),
      secure: true,
      sign_url: type === 'authenticated',
      cloud_name: c.cloudName,
      api_secret: c.apiSecret,
      signature_algorithm: c.signatureAlgorithm,
      ...(c.secureDistribution ? { secure_distribution: c.secureDistribution } : {}),
      ...(c.privateCdn !== undefined ? { private_cdn: c.privateCdn } : {}),
      // Stable URLs: no `_a=` SDK-analytics query parameter.
      urlAnalytics: false,
      analytics: false,
    });
  }

  /** A signed API download URL (`private_download_url`) that expires; works for every delivery type and resource type. */
  private async downloadUrl(ref: AssetRef, expiresIn: number, attachment: boolean): Promise<string> {
    const sdk = await loadSdk();
    return sdk.utils.private_download_url(
      ref.publicId,
      ref.resourceType === 'raw' ? undefined : ref.format,
      this.callOptions({
        resource_type: ref.resourceType,
        type: ref.type ?? this.deliveryType,
        expires_at: Math.floor(Date.now() / 1000) + Math.ceil(expiresIn),
        ...(attachment ? { attachment: true } : {}),
      }),
    );
  }

  /** A GET of a located asset's versioned delivery URL; `timeout` bounds the wait for the response head, not the reading of a body. */
  private async deliveryRequest(found: Located, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
    const url = await this.deliveryUrl(found.ref, { version: found.version });
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new DOMException(`no answer from the delivery URL within ${this.timeout} ms`, 'TimeoutError')), this.timeout);
    const forward = (): void => controller.abort(signal?.reason);
    if (signal?.aborted) forward();
    signal?.addEventListener('abort', forward, { once: true });
    try {
      return await this.fetchImpl(url, { method: 'GET', headers, signal: controller.signal, redirect: 'follow' });
    } catch (err) {
      signal?.removeEventListener('abort', forward);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  // ----------------------------------------------------------------- locating objects

  /**
   * An asset's details, or `undefined` when there is none: the Upload API's explicit (no action,
   * not rate-limited) or the Admin API's resource. A wrong cloud name, key or secret is an error,
   * never "absent".
   */
  private async lookup(ref: AssetRef): Promise<AdminResource | undefined> {
    const options = this.callOptions({ resource_type: ref.resourceType, type: ref.type ?? this.deliveryType });
    try {
      if (this.existsVia === 'admin') {
        const found = await this.sdkCall((sdk) => sdk.api.resource(ref.publicId, options));
        this.noteRateLimit(found);
        return found;
      }
      return await this.sdkCall((sdk) => sdk.uploader.explicit(ref.publicId, options));
    } catch (err) {
      if (isMissingAsset(err)) return undefined;
      throw err;
    }
  }

  /** Whether a key's media home holds this key's asset, another key's (same public ID, other format), or nothing. */
  private async probeMedia(media: AssetRef): Promise<MediaSlot> {
    const asset = await this.lookup(media);
    if (!asset) return { state: 'absent' };
    return asset.format === media.format ? { state: 'ours', asset } : { state: 'foreign' };
  }

  private located(ref: AssetRef, asset: Pick<AdminResource, 'version' | 'bytes' | 'etag' | 'created_at' | 'format'>): Located {
    return {
      ref: ref.resourceType === 'raw' ? ref : { ...ref, format: asset.format ?? ref.format },
      version: asset.version,
      bytes: asset.bytes,
      etag: asset.etag,
      createdAt: asset.created_at,
    };
  }

  /** The assets an adopted name may be, leaving out the key's own homes (already looked at). */
  private adoptedCandidates(key: string, homes: KeyHomes): AssetRef[] {
    if (!this.adopt) return [];
    const own = [homes.media, homes.raw].filter(Boolean).map((h) => `${h!.resourceType}|${h!.publicId}|${this.deliveryType}`);
    return this.adopt(key)
      .map((a) => ({ resourceType: a.resourceType, publicId: a.publicId, type: a.type ?? 'upload' }))
      .filter((a) => !own.includes(`${a.resourceType}|${a.publicId}|${a.type}`));
  }

  /** Where the key is: its media home when that holds this key's format, then its raw home, then an adopted asset. */
  private async locate(key: string, homes: KeyHomes): Promise<Located | undefined> {
    let found: Located | undefined;
    if (homes.media) {
      const slot = await this.probeMedia(homes.media);
      if (slot.state === 'ours') found = this.located(homes.media, slot.asset);
    }
    if (!found) {
      const raw = await this.lookup(homes.raw);
      if (raw) found = this.located(homes.raw, raw);
    }
    for (const candidate of found ? [] : this.adoptedCandidates(key, homes)) {
      const asset = await this.lookup(candidate);
      if (asset) {
        found = this.located(candidate, asset);
        break;
      }
    }
    this.remember(key, found);
    return found;
  }

  /**
   * The product environment's folder mode, asked once (Admin API `GET /config?settings=true`)
   * unless configured. `undefined` when it cannot be known now: the upload then sets no
   * asset_folder, which both modes accept.
   */
  private async currentFolderMode(): Promise<'fixed' | 'dynamic' | undefined> {
    if (this.folderMode || Date.now() < this.folderModeRetryAt) return this.folderMode;
    this.folderModeLookup ??= this.sdkCall((sdk) => sdk.api.config(this.callOptions({ settings: true })))
      .then(
        (answer) => {
          this.noteRateLimit(answer);
          this.folderMode = answer.settings?.folder_mode === 'dynamic' ? 'dynamic' : 'fixed';
          return this.folderMode;
        },
        () => {
          this.folderModeRetryAt = Date.now() + FOLDER_MODE_RETRY_MS;
          return undefined;
        },
      )
      .finally(() => {
        this.folderModeLookup = undefined;
      });
    return this.folderModeLookup;
  }

  // ----------------------------------------------------------------- driver methods

  protected async writeObject(key: string, body: PreparedBody, options: WriteOptions): Promise<ObjectInfo> {
    const homes = homesOf(key, this.folder);
    if (body.size === 0) throw this.emptyUnsupported(key);
    // Read through the core's guarded stream (limits, progress, abort), first just enough to sniff.
    const reader = new BodyReader(body.stream());
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
      if ([sniffed, contentTypeFromKey(key)].some((type) => isExecutableContentType(type) && !this.servingRule.isInline(type!))) {
        throw new MediaStorageError('UNSUPPORTED', `"${key}" is active content (HTML, SVG, XML or script), which Cloudinary would serve inline; store it elsewhere or as a different type`, { key });
      }
      const target = homeFor(homes, sniffed ?? '');
      const toMedia = target === homes.media;
      const mediaSlot = homes.media ? (await this.probeMedia(homes.media)).state : undefined;
      if (toMedia && mediaSlot === 'foreign') throw this.collision(key, homes.media!);
      if (options.ifExists === 'fail' && (mediaSlot === 'ours' || (toMedia && (await this.lookup(homes.raw))))) {
        throw new MediaStorageError('ALREADY_EXISTS', `An object is already stored under "${key}"`, { key });
      }
      // Replace only what is known to be this key's; a free media slot is claimed with overwrite=false,
      // so a concurrent save of a sibling key (a.jpg vs a.png) can never be overwritten silently.
      // Replacing sends invalidate=true, so CDN copies of the old asset do not outlive it.
      const plan: UploadPlan = { overwrite: options.ifExists === 'overwrite' && (!toMedia || mediaSlot === 'ours'), assetFolder: await this.assetFolderOf(target) };
      const { result: first, whole } = await this.upload(target, reader, body.size, plan, options.signal);
      let result = first;
      if (result.existing) {
        if (toMedia && result.format !== target.format) throw this.collision(key, target);
        if (options.ifExists === 'fail') throw new MediaStorageError('ALREADY_EXISTS', `An object is already stored under "${key}"`, { key });
        // Another save of this same key claimed the slot between our check and our upload.
        if (!whole) throw new MediaStorageError('UNAVAILABLE', `A concurrent save of "${key}" finished first; try again`, { key });
        const again: UploadPlan = { ...plan, overwrite: true };
        result = whole.length > this.chunkSize ? await this.uploadChunked(target, Readable.from([whole]), again, options.signal) : await this.uploadStream(target, whole, again, options.signal);
      }
      await this.checkStoredAs(key, target, result);
      if (!plan.overwrite && !first.existing) await this.purgeCachedUrls(target);
      // A key lives in one home at a time: remove its copy in the other one.
      if (toMedia) await this.destroyAsset(homes.raw);
      else if (mediaSlot === 'ours') await this.destroyAsset(homes.media!);
      this.remember(key, this.located(target, result));
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
    await this.sdkCall((sdk) => sdk.uploader.explicit(target.publicId, this.callOptions({ resource_type: target.resourceType, type: this.deliveryType, invalidate: true }))).catch(() => undefined);
  }

  /** The asset folder of an upload in dynamic folder mode: the folder part of its public ID. */
  private async assetFolderOf(target: AssetRef): Promise<string | undefined> {
    if ((await this.currentFolderMode()) !== 'dynamic') return undefined;
    const slash = target.publicId.lastIndexOf('/');
    return slash > 0 ? target.publicId.slice(0, slash) : undefined;
  }

  protected override async keyTaken(key: string): Promise<boolean> {
    const homes = homesOf(key, this.folder);
    // A sibling key's asset in the media home (a.jpg when renaming a.png) blocks this name too.
    if (homes.media && (await this.probeMedia(homes.media)).state !== 'absent') return true;
    return (await this.lookup(homes.raw)) !== undefined;
  }

  protected async readObject(key: string, options: ReadOptions): Promise<Readable> {
    const found = await this.locate(key, homesOf(key, this.folder));
    if (!found) throw new MediaStorageError('NOT_FOUND', `No object under "${key}"`, { key });
    const headers: Record<string, string> = {};
    const { range } = options;
    if (range) headers.range = `bytes=${range.start}-${range.end ?? ''}`;
    const res = await this.deliveryRequest(found, headers, options.signal);
    if (res.status === 404) {
      // Deleted since the lookup.
      await discard(res);
      this.remember(key, undefined);
      throw new MediaStorageError('NOT_FOUND', `No object under "${key}"`, { key });
    }
    if (res.status === 416) {
      await discard(res);
      throw new MediaStorageError('INVALID_INPUT', `Range starts at ${range?.start}, past the end of "${key}"`, { key, status: 416 });
    }
    if (!res.ok) {
      await discard(res);
      throw deliveryError(res, `reading "${key}"`);
    }
    const body = res.body ? Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>) : Readable.from([]);
    // A delivery that stops sending midway fails the read (UNAVAILABLE) instead of hanging it.
    const stream = failOnStall(body, this.timeout, () => new DOMException(`no bytes from the delivery URL for ${this.timeout} ms`, 'TimeoutError'));
    // A server that ignored the Range header sent everything: cut the range out here.
    if (range && res.status === 200) {
      const sliced = sliceStream(range.start, range.end);
      stream.once('error', (err) => sliced.destroy(err));
      return stream.pipe(sliced);
    }
    return stream;
  }

  protected async statObject(key: string): Promise<ObjectInfo | undefined> {
    const found = await this.locate(key, homesOf(key, this.folder));
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
    const res = await this.deliveryRequest(found, { range: `bytes=0-${SNIFF_BYTES - 1}` });
    if (res.status === 401 || res.status === 403 || res.status === 416) {
      await discard(res);
      return this.servingRule.typeFromKey(key);
    }
    if (!res.ok) {
      await discard(res);
      throw deliveryError(res, `checking "${key}"`);
    }
    const head = await firstBytes(res, SNIFF_BYTES, this.timeout);
    return this.servingRule.contentTypeFor(resolveContentType(key, head), head);
  }

  private infoFromResource(key: string, r: AdminResource): ObjectInfo {
    const contentType = r.resource_type !== 'raw' && r.format && MEDIA_FORMATS[r.format] ? MEDIA_FORMATS[r.format]!.contentTypes[0]! : this.servingRule.typeFromKey(key);
    return {
      key,
      size: r.bytes,
      contentType,
      ...(r.etag ? { etag: r.etag } : {}),
      ...(r.created_at ? { lastModified: new Date(r.created_at) } : {}),
    };
  }

  protected override async existsObject(key: string): Promise<boolean> {
    return (await this.locate(key, homesOf(key, this.folder))) !== undefined;
  }

  protected async deleteObject(key: string): Promise<void> {
    const homes = homesOf(key, this.folder);
    // The media home may hold a sibling key's asset (a.png when deleting a.jpg): leave that alone.
    if (homes.media && (await this.probeMedia(homes.media)).state === 'ours') await this.destroyAsset(homes.media);
    await this.destroyAsset(homes.raw);
    // An adopted name is deleted too, or exists() would still find it.
    for (const candidate of this.adoptedCandidates(key, homes)) {
      if (await this.lookup(candidate)) {
        await this.destroyAsset(candidate);
        break;
      }
    }
    this.remember(key, undefined);
  }

  private async destroyAsset(ref: AssetRef): Promise<void> {
    // invalidate: CDN copies must not outlive the asset.
    const result = await this.sdkCall((sdk) => sdk.uploader.destroy(ref.publicId, this.callOptions({ resource_type: ref.resourceType, type: ref.type ?? this.deliveryType, invalidate: true })));
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
      if (options.transform) throw new MediaStorageError('UNSUPPORTED', 'Download URLs are served by the Upload API, which applies no transformation; drop download or the transformation', { key });
      return this.downloadUrl(ref, options.expiresIn ?? this.defaultExpiresIn, true);
    }
    if (options.expiresIn !== undefined) {
      if (options.transform) {
        throw new MediaStorageError('UNSUPPORTED', 'Cloudinary applies transformations on delivery URLs, which cannot expire without token authentication; drop expiresIn (an authenticated storage still signs the URL) or the transformation', { key });
      }
      return this.downloadUrl(ref, options.expiresIn, false);
    }
    if (this.deliveryType === 'authenticated' && !options.transform && (ref.type ?? this.deliveryType) === 'authenticated') return this.downloadUrl(ref, this.defaultExpiresIn, false);
    // Public delivery URL, or (authenticated) a signed delivery URL carrying the transformation.
    return this.deliveryUrl(ref, { version: found.version, transform: options.transform });
  }

  /** Where a URL should point: remembered (with the version), else looked up; a key found nowhere gets its media home, or its raw one. */
  private async urlTarget(key: string, homes: KeyHomes): Promise<Pick<Located, 'ref' | 'version'>> {
    const found = this.locations.get(key) ?? (await this.locate(key, homes));
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
    const keyType = contentTypeFromKey(key);
    if (isExecutableContentType(keyType) && !this.servingRule.isInline(keyType!)) {
      throw new MediaStorageError('UNSUPPORTED', `"${key}" is active content (HTML, SVG, XML or script), which Cloudinary would serve inline; store it elsewhere`, { key });
    }
    const claimsMedia = homes.media !== undefined && (MEDIA_FORMATS[homes.media.format!]?.contentTypes ?? []).includes(plan.contentType.split(';')[0]!.trim().toLowerCase());
    const current = await this.locate(key, homes);
    const own = current && [homes.media, homes.raw].some((h) => h && h.resourceType === current.ref.resourceType && h.publicId === current.ref.publicId) ? current : undefined;
    const target = own ? (own.ref.resourceType === 'raw' ? homes.raw : homes.media!) : claimsMedia ? homes.media! : homes.raw;
    const toMedia = target === homes.media;
    let overwrite = true;
    if (toMedia) {
      const slot = (await this.probeMedia(target)).state;
      if (slot === 'foreign') throw this.collision(key, target);
      overwrite = slot === 'ours';
    }
    // The upload lands behind this storage's back: forget where the key was.
    this.remember(key, undefined);
    const timestamp = Math.floor(Date.now() / 1000) + plan.expiresIn - SIGNATURE_WINDOW_SECONDS;
    const assetFolder = await this.assetFolderOf(target);
    const params: Record<string, string> = {
      timestamp: String(timestamp),
      public_id: target.publicId,
      type: this.deliveryType,
      overwrite: String(overwrite),
      ...(overwrite ? { invalidate: 'true' } : {}),
      ...(toMedia ? { allowed_formats: target.format! } : {}),
      ...(assetFolder !== undefined ? { asset_folder: assetFolder } : {}),
    };
    const sdk = await loadSdk();
    const c = this.config;
    const signed = sdk.utils.sign_request(params, { api_key: c.apiKey, api_secret: c.apiSecret, signature_algorithm: c.signatureAlgorithm });
    const fields = Object.fromEntries(Object.entries(signed).map(([name, value]) => [name, String(value)]));
    return {
      method: 'POST',
      url: `${c.uploadPrefix.replace(/\/+$/, '')}/v1_1/${encodeURIComponent(c.cloudName)}/${target.resourceType}/upload`,
      headers: {},
      fields,
      fileField: 'file',
      key,
      contentType: plan.contentType,
      expiresAt: new Date((timestamp + SIGNATURE_WINDOW_SECONDS) * 1000),
      enforced: { key: true, contentType: toMedia, maxSize: false, expiry: true },
    };
  }

  // ----------------------------------------------------------------- uploads

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

  private uploadParams(target: AssetRef, plan: UploadPlan): Record<string, unknown> {
    return this.callOptions({
      resource_type: target.resourceType,
      type: this.deliveryType,
      public_id: target.publicId,
      overwrite: plan.overwrite,
      // A replaced asset must not be served stale from the CDN (nor a 404 cached before it).
      invalidate: plan.overwrite,
      ...(plan.assetFolder !== undefined ? { asset_folder: plan.assetFolder } : {}),
      unique_filename: false,
      use_filename: false,
      // Callbacks only: the SDK's promises are not needed and would outlive aborted uploads.
      disable_promises: true,
    });
  }

  /**
   * Sends the body: one multipart upload_stream when it fits in `chunkSize`, the chunked upload
   * protocol otherwise. A body of unknown length is read up to `chunkSize` bytes to decide, so
   * memory stays bounded (about one chunk read ahead) either way. `whole` is the body when it was read entirely.
   */
  private async upload(target: AssetRef, reader: BodyReader, size: number | undefined, plan: UploadPlan, signal?: AbortSignal): Promise<{ result: UploadResult; whole?: Buffer }> {
    if (size !== undefined && size <= this.chunkSize) {
      const whole = reader.ended ? reader.whole() : undefined;
      return { result: await this.uploadStream(target, whole ?? reader.stream(), plan, signal), whole };
    }
    await reader.fill(this.chunkSize + 1);
    if (reader.ended) {
      const whole = reader.whole();
      return { result: await this.uploadStream(target, whole, plan, signal), whole };
    }
    return { result: await this.uploadChunked(target, reader.stream(), plan, signal) };
  }

  /**
   * Cloudinary's chunked upload: every chunk is one signed upload_stream request carrying the
   * same X-Unique-Upload-Id and its Content-Range (`bytes start-end/-1`, the last one `/total`);
   * the asset appears only when the last chunk arrives. The SDK's upload_chunked_stream does the
   * same but copies its whole buffer on every write (quadratic in the number of writes); here a
   * chunk's pieces are written as they were read, and nothing is sent for a chunk until it is
   * complete, so a body that fails or is aborted never gets its last chunk.
   */
  private async uploadChunked(target: AssetRef, source: Readable, plan: UploadPlan, signal?: AbortSignal): Promise<UploadResult> {
    const uploadId = randomBytes(12).toString('hex');
    const iterator = source[Symbol.asyncIterator]();
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let ended = false;
    let offset = 0;
    for (;;) {
      while (!ended && pendingBytes <= this.chunkSize) {
        const next = await iterator.next();
        if (next.done) ended = true;
        else {
          pending.push(next.value as Buffer);
          pendingBytes += (next.value as Buffer).length;
        }
      }
      const last = ended && pendingBytes <= this.chunkSize;
      const take = last ? pendingBytes : this.chunkSize;
      const parts: Buffer[] = [];
      let taken = 0;
      while (taken < take) {
        const piece = pending.shift()!;
        const need = take - taken;
        if (piece.length > need) {
          parts.push(piece.subarray(0, need));
          pending.unshift(piece.subarray(need));
          taken = take;
        } else {
          parts.push(piece);
          taken += piece.length;
        }
      }
      pendingBytes -= take;
      const range = `bytes ${offset}-${offset + take - 1}/${last ? offset + take : -1}`;
      const result = await this.uploadStream(target, parts, plan, signal, { content_range: range, x_unique_upload_id: uploadId }, last);
      offset += take;
      if (last) return result;
    }
  }

  /**
   * One SDK upload_stream request, on its own agent so that an abort or a broken body can cut the
   * connection: the server then never sees the closing multipart boundary, and stores nothing.
   */
  private async uploadStream(target: AssetRef, source: Readable | Buffer | Buffer[], plan: UploadPlan, signal: AbortSignal | undefined, extra: Record<string, unknown> = {}, final = true): Promise<UploadResult> {
    const sdk = await loadSdk();
    if (signal?.aborted) throw abortedError('save', undefined, this.name, signal.reason);
    // Behind the SDK's own proxy an abort cannot cut the socket; the body stays incomplete, so
    // nothing is stored either, and the request ends at the timeout.
    const agent = this.sdkUsesProxy(sdk) ? undefined : this.newAgent(false);
    const params = { ...this.uploadParams(target, plan), ...(agent ? { agent } : {}), ...extra };
    try {
      return await new Promise<UploadResult>((resolve, reject) => {
        let settled = false;
        const settle = (err: unknown, result?: UploadResult): void => {
          if (settled) return;
          settled = true;
          signal?.removeEventListener('abort', onAbort);
          if (err) reject(err);
          else resolve(result!);
        };
        const onAbort = (): void => {
          agent?.destroy();
          settle(abortedError('save', undefined, this.name, signal?.reason));
        };
        signal?.addEventListener('abort', onAbort, { once: true });
        const callback = (error: unknown, result?: UploadResult): void => {
          if (error) settle(fromSdkRejection(error));
          // Only the last chunk's answer describes the asset.
          else if (final && (!result || typeof result.public_id !== 'string')) settle(new CloudinaryApiError('upload answered without a public_id', undefined));
          else settle(undefined, result);
        };
        const sink = sdk.uploader.upload_stream(params, callback);
        if (Buffer.isBuffer(source)) {
          sink.end(source);
        } else {
          // Pieces go out as the socket takes them: queuing a whole chunk at once makes Node copy
          // it into one native buffer for the socket write, which RSS shows and GC does not see.
          pipeline(Array.isArray(source) ? Readable.from(source, { objectMode: false }) : source, sink).catch((err: unknown) => {
            // Cut the request before the body is complete: nothing becomes visible.
            agent?.destroy();
            settle(err);
          });
        }
      });
    } finally {
      agent?.destroy();
    }
  }

  // ----------------------------------------------------------------- listing

  protected async listObjects(prefix: string, options: { cursor?: string; limit: number }): Promise<ListPage> {
    const state = options.cursor ? this.decodeCursor(options.cursor) : undefined;
    const sources: ListSource[] = [];
    for (const type of RESOURCE_TYPES) {
      const s = state?.[type];
      if (s?.d) continue;
      const source: ListSource = { type, pageCursor: s?.c, consumed: 0, items: [], skipped: [] };
      await this.loadPage(source, prefix, s?.c);
      // A resumed page was loaded (and its skipped assets reported) by the previous call.
      if (s) source.skipped = [];
      source.items.splice(0, s?.n ?? 0);
      source.consumed = s?.n ?? 0;
      sources.push(source);
    }
    const items: ObjectInfo[] = [];
    let lastKey: string | undefined;
    for (;;) {
      // Every source must show its next entry before the smallest one can be chosen.
      for (const source of sources) {
        while (source.items.length === 0 && source.next !== undefined) await this.loadPage(source, prefix, source.next);
      }
      if (items.length >= options.limit) break;
      let best: ListSource | undefined;
      for (const source of sources) {
        if (source.items.length > 0 && (!best || source.items[0]!.key < best.items[0]!.key)) best = source;
      }
      if (!best) break;
      const item = best.items.shift()!;
      best.consumed++;
      // A key briefly in both homes (while a save moves it) is listed once.
      if (item.key !== lastKey) items.push(item);
      lastKey = item.key;
    }
    const skipped = sources.flatMap((s) => s.skipped);
    const reported = skipped.length > 0 ? { skipped } : {};
    const more = sources.some((s) => s.items.length > 0 || s.next !== undefined);
    if (!more) return { items, ...reported };
    const next = {} as ListCursor;
    for (const type of RESOURCE_TYPES) {
      const source = sources.find((s) => s.type === type);
      next[type] = !source || (source.items.length === 0 && source.next === undefined) ? { n: 0, d: true } : { c: source.pageCursor, n: source.consumed };
    }
    return { items, ...reported, cursor: Buffer.from(JSON.stringify(next), 'utf8').toString('base64url') };
  }

  private decodeCursor(cursor: string): ListCursor {
    try {
      const parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as ListCursor;
      for (const type of RESOURCE_TYPES) {
        const s = parsed[type];
        if (typeof s !== 'object' || s === null || !Number.isInteger(s.n) || s.n < 0 || (s.c !== undefined && typeof s.c !== 'string')) throw new Error('bad');
      }
      return parsed;
    } catch {
      throw new MediaStorageError('INVALID_INPUT', 'Invalid list cursor: pass the cursor of a previous page of this storage');
    }
  }

  /** Fetches one Admin API page of a resource type into `source` (sorted by key, filtered to the prefix). */
  private async loadPage(source: ListSource, prefix: string, cursor: string | undefined): Promise<void> {
    const page = await this.sdkCall((sdk) =>
      sdk.api.resources(
        this.callOptions({
          resource_type: source.type,
          type: this.deliveryType,
          prefix: this.cloudinaryPrefix(prefix, source.type),
          max_results: ADMIN_PAGE_SIZE,
          ...(cursor ? { next_cursor: cursor } : {}),
        }),
      ),
    );
    this.noteRateLimit(page);
    source.pageCursor = cursor;
    source.consumed = 0;
    source.next = page.next_cursor || undefined;
    const items: ObjectInfo[] = [];
    const skipped: SkippedObject[] = [];
    for (const r of page.resources ?? []) {
      const key = keyOf({ resourceType: r.resource_type, publicId: r.public_id, format: r.format }, this.folder);
      if (key === undefined) {
        // Inside the folder but not a key's asset (another tool's public ID): reported, not dropped.
        if (r.public_id.startsWith(this.folder + prefix)) skipped.push({ name: `${r.public_id.slice(this.folder.length)}${r.format ? `.${r.format}` : ''}`, reason: 'unmapped', message: `the Cloudinary ${r.resource_type} asset with public ID ${JSON.stringify(r.public_id)} does not map back to a key`, size: r.bytes });
        continue;
      }
      if (!key.startsWith(prefix)) continue;
      // Names that are not keys are screened (and reported) by the core.
      items.push(this.infoFromResource(key, r));
      // Its version too, so url() of a listed key needs no lookup.
      const ref: AssetRef = r.resource_type === 'raw' ? { resourceType: 'raw', publicId: r.public_id } : { resourceType: r.resource_type as ResourceType, publicId: r.public_id, format: r.format };
      this.remember(key, this.located(ref, r));
    }
    // Cloudinary sorts a prefixed listing by public ID; the key order can differ inside a page
    // (`a-b.jpg` < `a.jpg`, public IDs `a-b` > `a`), so each page is put in key order.
    items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    source.items = items;
    source.skipped.push(...skipped);
  }

  /** The public-ID prefix covering every key under `prefix` for a resource type. */
  private cloudinaryPrefix(prefix: string, type: ResourceType): string {
    let path = this.folder + prefix;
    if (type !== 'raw') {
      // Media public IDs lack the extension: a prefix reaching into one ("a.j") must stop before its dot.
      const slash = path.lastIndexOf('/');
      const dot = path.lastIndexOf('.');
      if (dot > slash) path = path.slice(0, dot);
    }
    return publicIdPrefix(path);
  }
}
