import { defineBackend, defineOptions, lazyStorageClass, type StorageClass, type OptionsOf } from '../core/definition.js';
import { parseCloudinaryUrl } from './config.js';

const PEERS = ['cloudinary'];
export const DEFAULT_CHUNK_SIZE = 20 * 1024 * 1024;
/** Cloudinary's smallest chunk. */
export const MIN_CHUNK_SIZE = 5 * 1024 * 1024;

/** CloudinaryStorage's configuration options; the TSDoc here is what editors show on `CloudinaryStorageOptions`. */
export const cloudinaryOptions = defineOptions({
  /** Cloud name; default from `cloudinaryUrl`. */
  cloudName: { kind: 'string', query: false },
  /** API key; default from `cloudinaryUrl`. */
  apiKey: { kind: 'string', identifier: true, query: false },
  /** API secret; default from `cloudinaryUrl`. Never appears in error messages. */
  apiSecret: { kind: 'string', secret: true, query: false },
  /**
   * `cloudinary://API_KEY:API_SECRET@CLOUD_NAME`, optionally with a private CDN host as its path
   * and query settings (`upload_prefix`, `secure_distribution`, `private_cdn`, `signature_algorithm`).
   * Default: `process.env.CLOUDINARY_URL`. Explicit options win over it.
   */
  cloudinaryUrl: { kind: 'string', secret: true, query: false },
  /** Folder (public ID prefix) every key lives under, e.g. `media/`. Formerly `folder`. */
  prefix: { kind: 'string', deprecated: ['folder'], env: ['CLOUDINARY_FOLDER'], help: 'folder every public ID goes under' },
  /** `upload` (public delivery URLs, the default) or `authenticated` (signed URLs only). */
  deliveryType: { kind: 'enum', values: ['upload', 'authenticated'], default: 'upload', help: 'upload (default) or authenticated' },
  /** Expiry, in seconds, of signed URLs made without `expiresIn` (authenticated type, downloads). Default 3600. */
  defaultExpiresIn: { kind: 'integer', unit: 's', min: 1, default: 3600, help: 'seconds a signed URL lives (default 3600)' },
  /** Bodies larger than this (or of unknown length that turn out larger) go through chunked upload, in chunks of this size. Default 20 MiB; at least 5 MiB (Cloudinary's minimum chunk). */
  chunkSize: { kind: 'integer', unit: 'bytes', min: MIN_CHUNK_SIZE, default: DEFAULT_CHUNK_SIZE, help: 'bytes in each chunk of a chunked upload' },
  /**
   * How exists, stat, read and url learn where an object is and which version it has: the Upload
   * API's `explicit` (default; not rate-limited) or the Admin API (rate-limited, 500–2,000 calls an
   * hour). Never a delivery URL: the CDN caches 404s.
   */
  existsVia: { kind: 'enum', values: ['upload-api', 'admin'], default: 'upload-api', help: 'upload-api (default) or admin' },
  /**
   * The product environment's folder mode. In `dynamic` mode (every account made since June 2024)
   * uploads also set `asset_folder` to the key's folder, so the Media Library shows the same tree;
   * the public ID is the same in both modes. Default: asked once of the Admin API (`GET /config`)
   * at the first save; if that fails, saves go without `asset_folder` and it is asked again later.
   */
  folderMode: { kind: 'enum', values: ['fixed', 'dynamic'], help: 'fixed or dynamic (default: asked of the Admin API)' },
  /**
   * API base URL (the SDK's `upload_prefix`); default `https://api.cloudinary.com`, or the
   * `upload_prefix` in `cloudinaryUrl`. For proxies and tests. Formerly `uploadPrefix`.
   */
  endpoint: { kind: 'url', deprecated: ['uploadPrefix'], query: ['upload_prefix'], help: "API host (the SDK's own parameter)" },
  /** Custom delivery domain (CNAME) for HTTPS delivery URLs, e.g. `media.example.com`. */
  secureDistribution: { kind: 'string', query: ['secure_distribution'], help: 'CDN host of delivery URLs' },
  /** Delivery from a private CDN distribution (`<cloud>-res.cloudinary.com`). */
  privateCdn: { kind: 'boolean', query: ['private_cdn'], help: 'the account has a private CDN' },
  /** Algorithm of API and delivery signatures; default `sha1` (set `sha256` if your account requires it). */
  signatureAlgorithm: { kind: 'enum', values: ['sha1', 'sha256'], default: 'sha1', query: ['signature_algorithm'], help: 'sha1 (default) or sha256' },
  /** API request timeout in milliseconds; default 60,000. */
  timeout: { kind: 'integer', unit: 'ms', min: 1, default: 60_000, help: 'ms an API request may take (default 60000)' },
});

/** The options of CloudinaryStorage configuration can set. */
export type CloudinaryConfig = OptionsOf<typeof cloudinaryOptions>;

/** Cloudinary: `cloudinary://API_KEY:API_SECRET@CLOUD_NAME`, or CLOUDINARY_URL. */
export const cloudinaryBackend = defineBackend({
  name: 'cloudinary',
  title: 'Cloudinary',
  schemes: ['cloudinary'],
  options: cloudinaryOptions,
  peers: PEERS,
  credentialsHint: 'the API key and secret in CLOUDINARY_URL',
  url: {
    example: 'cloudinary://API_KEY:API_SECRET@CLOUD_NAME',
    note: 'a path is the private CDN host, as the SDK reads it',
    // The backend's own parser, so that a URL means here what it means to CloudinaryStorage: the
    // SDK's parameters (upload_prefix, signature_algorithm...) and a private CDN path.
    parse: (url, { source, fail }) => {
      const { ignored, cloudName, apiKey, apiSecret, uploadPrefix, ...sdkSettings } = parseCloudinaryUrl(url.text, source);
      if (!cloudName || !apiKey || !apiSecret) fail('cloudinary:// needs cloudinary://API_KEY:API_SECRET@CLOUD_NAME');
      for (const name of [...url.query.keys()]) if (!ignored.has(name)) url.query.delete(name);
      return { cloudName, apiKey, apiSecret, ...(uploadPrefix !== undefined ? { endpoint: uploadPrefix } : {}), ...sdkSettings };
    },
  },
  env: {
    variables: ['CLOUDINARY_URL'],
    detect: (get) => (get('CLOUDINARY_URL') ? 'strong' : undefined),
    // CLOUDINARY_URL is a whole storage URL; CLOUDINARY_FOLDER (an option's own variable) adds to it.
    read: (get, fromOptions, { fail, parseUrl }) => {
      const text = get('CLOUDINARY_URL');
      if (!text?.startsWith('cloudinary://')) fail('CLOUDINARY_URL must look like cloudinary://API_KEY:API_SECRET@CLOUD_NAME');
      const { backend: _backend, ...fromUrl } = parseUrl(text!, 'CLOUDINARY_URL');
      return { ...fromUrl, ...fromOptions };
    },
  },
  load: (): Promise<StorageClass> => lazyStorageClass('cloudinary', PEERS, () => import('./index.js'), 'CloudinaryStorage'),
});
