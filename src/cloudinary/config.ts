import { MediaStorageError } from '../core/errors.js';
import type { CloudinaryStorageOptions } from './index.js';

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

/** Reads `cloudinary://key:secret@cloud?upload_prefix=...` the way the SDK does, without ever quoting it (it holds the secret). */
export function parseCloudinaryUrl(value: string, source: string): Partial<ResolvedConfig> {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw configError(`${source} is not a valid URL; expected cloudinary://API_KEY:API_SECRET@CLOUD_NAME`);
  }
  if (url.protocol !== 'cloudinary:') throw configError(`${source} must start with cloudinary:// (got ${url.protocol}//)`);
  const out: Partial<ResolvedConfig> = {
    cloudName: url.hostname || undefined,
    apiKey: url.username ? decodeURIComponent(url.username) : undefined,
    apiSecret: url.password ? decodeURIComponent(url.password) : undefined,
  };
  if (url.pathname && url.pathname !== '/') {
    out.privateCdn = true;
    out.secureDistribution = url.pathname.slice(1);
  }
  const q = url.searchParams;
  if (q.get('upload_prefix')) out.uploadPrefix = q.get('upload_prefix')!;
  if (q.get('secure_distribution')) out.secureDistribution = q.get('secure_distribution')!;
  if (q.get('private_cdn')) out.privateCdn = q.get('private_cdn') === 'true';
  const algorithm = q.get('signature_algorithm');
  if (algorithm === 'sha1' || algorithm === 'sha256') out.signatureAlgorithm = algorithm;
  return out;
}

export function resolveConfig(options: CloudinaryStorageOptions): ResolvedConfig {
  const source = options.cloudinaryUrl !== undefined ? 'the cloudinaryUrl option' : 'CLOUDINARY_URL';
  const urlValue = options.cloudinaryUrl ?? process.env.CLOUDINARY_URL;
  const fromUrl = urlValue ? parseCloudinaryUrl(urlValue, source) : {};
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
