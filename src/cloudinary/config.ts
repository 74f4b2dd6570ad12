import type http from 'node:http';
import { MediaStorageError } from '../core/errors.js';
import type { ServingOptions } from '../core/serving.js';
import type { AdoptNames } from './adopt.js';

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

/** Settings after options, CLOUDINARY_URL and defaults are combined. */
export interface ResolvedConfig {
  cloudName: string;
  apiKey: string;
  apiSecret: string;
  uploadPrefix: string;
  secureDistribution?: string;
  privateCdn?: boolean;
  signatureAlgorithm: 'sha1' | 'sha256';
}

export function configError(message: string): MediaStorageError {
  return new MediaStorageError('CONFIG', `cloudinary: ${message}`, { backend: 'cloudinary' });
}

/**
 * Reads `cloudinary://key:secret@cloud[/private-cdn-host]?upload_prefix=...` the way the SDK does,
 * without ever quoting it (it holds the secret). The one parser of these URLs: configuration from
 * the environment uses it too. Parameters it does not know are left to the caller (`ignored`).
 */
export function parseCloudinaryUrl(value: string, source: string): Partial<ResolvedConfig> & { ignored: URLSearchParams } {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw configError(`${source} is not a valid URL; expected cloudinary://API_KEY:API_SECRET@CLOUD_NAME`);
  }
  if (url.protocol !== 'cloudinary:') throw configError(`${source} must start with cloudinary:// (got ${url.protocol}//)`);
  const decode = (part: string): string | undefined => {
    if (!part) return undefined;
    try {
      return decodeURIComponent(part);
    } catch {
      return part;
    }
  };
  const out: Partial<ResolvedConfig> & { ignored: URLSearchParams } = {
    cloudName: url.hostname || undefined,
    apiKey: decode(url.username),
    apiSecret: decode(url.password),
    ignored: new URLSearchParams(),
  };
  // A path is the private CDN's host name, as the SDK reads it.
  if (url.pathname && url.pathname !== '/') {
    out.privateCdn = true;
    out.secureDistribution = url.pathname.slice(1);
  }
  for (const [name, raw] of url.searchParams) {
    if (name === 'upload_prefix') out.uploadPrefix = raw;
    else if (name === 'secure_distribution') out.secureDistribution = raw;
    else if (name === 'private_cdn') {
      if (raw !== 'true' && raw !== 'false') throw configError(`${source} parameter private_cdn must be true or false`);
      out.privateCdn = raw === 'true';
    } else if (name === 'signature_algorithm') {
      if (raw !== 'sha1' && raw !== 'sha256') throw configError(`${source} parameter signature_algorithm must be sha1 or sha256`);
      out.signatureAlgorithm = raw;
    } else out.ignored.append(name, raw);
  }
  return out;
}

export function resolveConfig(options: CloudinaryStorageOptions): ResolvedConfig {
  const source = options.cloudinaryUrl !== undefined ? 'the cloudinaryUrl option' : 'CLOUDINARY_URL';
  const urlValue = options.cloudinaryUrl ?? process.env.CLOUDINARY_URL;
  const fromUrl: Partial<ResolvedConfig> = urlValue ? parseCloudinaryUrl(urlValue, source) : {};
  const cloudName = options.cloudName ?? fromUrl.cloudName;
  const apiKey = options.apiKey ?? fromUrl.apiKey;
  const apiSecret = options.apiSecret ?? fromUrl.apiSecret;
  const missing = [!cloudName && 'cloudName', !apiKey && 'apiKey', !apiSecret && 'apiSecret'].filter(Boolean);
  if (missing.length > 0) {
    throw configError(`missing ${missing.join(', ')}: pass them as options or set CLOUDINARY_URL=cloudinary://API_KEY:API_SECRET@CLOUD_NAME`);
  }
  const uploadPrefix = (options.uploadPrefix ?? fromUrl.uploadPrefix ?? 'https://api.cloudinary.com').replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(uploadPrefix)) throw configError('uploadPrefix must be an http(s) URL');
  const signatureAlgorithm = options.signatureAlgorithm ?? fromUrl.signatureAlgorithm ?? 'sha1';
  if (signatureAlgorithm !== 'sha1' && signatureAlgorithm !== 'sha256') throw configError('signatureAlgorithm must be "sha1" or "sha256"');
  return {
    cloudName: cloudName!,
    apiKey: apiKey!,
    apiSecret: apiSecret!,
    uploadPrefix,
    secureDistribution: options.secureDistribution ?? fromUrl.secureDistribution,
    privateCdn: options.privateCdn ?? fromUrl.privateCdn,
    signatureAlgorithm,
  };
}
