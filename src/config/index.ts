import { parseCloudinaryUrl } from '../cloudinary/config.js';
import { MediaStorageError, redactUrls } from '../core/errors.js';
import type { ServingOptions } from '../core/serving.js';
import type { MediaStorage } from '../core/types.js';
import type { LocalStorageOptions } from '../local/index.js';
import type { MemoryStorageOptions } from '../memory/index.js';
import { describeEnvTypo, findEnvTypos } from './env-typos.js';
import { BACKEND_LOADERS, type BackendLoaders } from './loaders.js';

export { CONFIG_ENV_NAMES, describeEnvTypo, findEnvTypos, type EnvTypo } from './env-typos.js';

/** Options of each backend, by name; `backend` picks the class. */
export type StorageConfig =
  | ({ backend: 'local' } & LocalStorageOptions)
  | ({ backend: 'memory' } & MemoryStorageOptions)
  | ({ backend: 's3' } & S3Config & ServingOptions)
  | ({ backend: 'cloudinary' } & CloudinaryConfig & ServingOptions)
  | ({ backend: 'b2' } & B2Config & ServingOptions)
  | ({ backend: 'azure' } & AzureConfig & ServingOptions);

// The backends' option types are restated here, not imported: importing them would make the
// main entry's type declarations depend on every backend SDK's types (an S3 user's compiler
// would need cloudinary's). Each backend's options interface is a superset of these.

/** The S3Storage options configuration can set (see `media-storage/s3` for all of them). */
export interface S3Config {
  bucket: string;
  region?: string;
  endpoint?: string;
  forcePathStyle?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  location?: string;
  publicBaseUrl?: string;
  visibility?: 'public' | 'private';
  acl?: string | false;
  defaultExpiresIn?: number;
  cacheControl?: string;
  ifExists?: 'overwrite' | 'rename' | 'fail';
}

/** The CloudinaryStorage options configuration can set. */
export interface CloudinaryConfig {
  uploadPrefix?: string;
  secureDistribution?: string;
  privateCdn?: boolean;
  signatureAlgorithm?: 'sha1' | 'sha256';
  cloudName?: string;
  apiKey?: string;
  apiSecret?: string;
  cloudinaryUrl?: string;
  folder?: string;
  deliveryType?: 'upload' | 'authenticated';
}

/** The B2Storage options configuration can set. */
export interface B2Config {
  applicationKeyId: string;
  applicationKey: string;
  bucketName: string;
  location?: string;
  visibility?: 'public' | 'private';
  publicBaseUrl?: string;
}

/** The AzureBlobStorage options configuration can set. */
export interface AzureConfig {
  container: string;
  /** Default: AZURE_STORAGE_CONNECTION_STRING. */
  connectionString?: string;
  location?: string;
  visibility?: 'public' | 'private';
  publicBaseUrl?: string;
  defaultExpiresIn?: number;
  cacheControl?: string;
}

export interface CreateOptions {
  /** How backends are loaded; for tests. */
  loaders?: Partial<BackendLoaders>;
}

/** Options of {@link configFromEnv}. */
export interface ConfigFromEnvOptions {
  /**
   * Told about each variable that looks like a misspelling of one configFromEnv reads
   * (`MEDIA_STORAGE_URI`, `CLOUDNARY_URL`; see `findEnvTypos`). Default: a process warning
   * (code `MEDIA_STORAGE_ENV_TYPO`), once per name; `false` for none.
   */
  warn?: ((message: string) => void) | false;
}

const warnedTypos = new Set<string>();

function warnOfTypos(env: NodeJS.ProcessEnv, warn: ConfigFromEnvOptions['warn']): void {
  if (warn === false) return;
  for (const typo of findEnvTypos(env)) {
    const message = describeEnvTypo(typo);
    if (warn) {
      warn(message);
    } else if (!warnedTypos.has(typo.name)) {
      warnedTypos.add(typo.name);
      process.emitWarning(`media-storage: ${message}`, { code: 'MEDIA_STORAGE_ENV_TYPO' });
    }
  }
}

function configError(message: string): MediaStorageError {
  return new MediaStorageError('CONFIG', message, { operation: 'configure' });
}

const BOOLEAN_WORDS: Record<string, boolean> = { true: true, '1': true, yes: true, on: true, false: false, '0': false, no: false, off: false, none: false };

function parseBoolean(value: string, name: string): boolean {
  const parsed = BOOLEAN_WORDS[value.trim().toLowerCase()];
  if (parsed === undefined) throw configError(`${name} must be true or false (got ${JSON.stringify(value)})`);
  return parsed;
}

function parsePositive(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw configError(`${name} must be a positive number (got ${JSON.stringify(value)})`);
  return n;
}

/** An http(s) URL with a host; `host:port` alone (no scheme) is the usual slip, named as such. */
export function parseHttpUrl(value: string, name: string): string {
  const trimmed = value.trim();
  if (!/^https?:\/\//i.test(trimmed)) {
    const hint = /^[^/:]+:\d+/.test(trimmed) || /^[\w.-]+$/.test(trimmed) ? `: add the scheme, e.g. http://${trimmed}` : '';
    throw configError(`${name} must be an http:// or https:// URL (got ${JSON.stringify(redactUrls(trimmed))})${hint}`);
  }
  if (!URL.canParse(trimmed) || new URL(trimmed).hostname === '') throw configError(`${name} is not a valid URL (got ${JSON.stringify(redactUrls(trimmed))})`);
  return trimmed;
}

function parseVisibility(value: string, name: string): 'public' | 'private' {
  if (value !== 'public' && value !== 'private') throw configError(`${name} must be "public" or "private" (got ${JSON.stringify(value)})`);
  return value;
}

/**
 * A storage URL with its secrets masked, for messages and reports: the password (`KEY:SECRET@`
 * becomes `KEY***:***@`, up to the last `@` before the query, so that a secret with an unencoded
 * `/` or `@` is masked whole), secret query parameters (`?secret=`, signatures, tokens), and the
 * part after `:` of an authority without `@` (`cloudinary://KEY:SECRET`, a URL missing its host).
 */
export function maskUrl(url: string): string {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([\s\S]*)$/i.exec(url);
  if (!match) return redactUrls(url);
  const scheme = match[1]!;
  const rest = match[2]!;
  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd === -1 ? rest : rest.slice(0, authorityEnd);
  // Where the parser would see no credentials, a path may hold an `@`; else the last `@` before
  // the query ends them, as a secret with an unencoded `/` or `@` is meant.
  const beforeQuery = rest.replace(/[?#][\s\S]*$/, '');
  const at = !authority.includes('@') && URL.canParse(url) ? -1 : beforeQuery.lastIndexOf('@');
  if (at !== -1) {
    const user = rest.slice(0, at).split(':')[0] ?? '';
    return `${scheme}${user ? `${maskValue(decodeURIComponentSafe(user))}:` : ''}***@${redactUrls(rest.slice(at + 1))}`;
  }
  const colon = authority.indexOf(':');
  if (colon !== -1 && !/^\d{0,5}$/.test(authority.slice(colon + 1))) {
    const user = authority.slice(0, colon);
    return `${scheme}${user ? maskValue(decodeURIComponentSafe(user)) : ''}:***${redactUrls(rest.slice(authority.length))}`;
  }
  return `${scheme}${redactUrls(rest)}`;
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Shows the first 4 characters of an identifier (an access key id), never of a secret. */
export function maskValue(value: string): string {
  return value.length <= 4 ? '***' : `${value.slice(0, 4)}***`;
}

type QueryKind = 'string' | 'boolean' | 'number' | 'visibility' | 'http-url';

/** The `?name=value` options each storage URL scheme takes, with what they mean (shown by `media-storage --help`). */
export const STORAGE_URL_OPTIONS: Readonly<Record<string, Readonly<Record<string, { kind: QueryKind; help: string }>>>> = {
  local: {
    baseUrl: { kind: 'string', help: 'URL path or origin the files are served under (default /media)' },
    visibility: { kind: 'visibility', help: 'public (default) or private: signed URLs only' },
    secret: { kind: 'string', help: 'key that signs URLs' },
    defaultExpiresIn: { kind: 'number', help: 'seconds a signed URL lives' },
    cacheControl: { kind: 'string', help: 'Cache-Control the handler sends' },
    fsync: { kind: 'boolean', help: 'flush each file to disk before it is visible' },
  },
  memory: {
    baseUrl: { kind: 'string', help: 'URL path the files are served under' },
    visibility: { kind: 'visibility', help: 'public or private' },
  },
  s3: {
    region: { kind: 'string', help: 'the bucket\'s region, e.g. eu-central-1' },
    endpoint: { kind: 'http-url', help: 'an S3-compatible server, with its scheme: http://127.0.0.1:9000' },
    forcePathStyle: { kind: 'boolean', help: 'endpoint/bucket/key URLs (default true with an endpoint)' },
    publicBaseUrl: { kind: 'http-url', help: 'CDN or custom domain of public URLs' },
    visibility: { kind: 'visibility', help: 'private (default): signed URLs; public: plain URLs' },
    acl: { kind: 'string', help: 'canned ACL sent with every write (public-read...), or none' },
    defaultExpiresIn: { kind: 'number', help: 'seconds a signed URL lives (default 3600)' },
    cacheControl: { kind: 'string', help: 'Cache-Control stored with every object' },
  },
  // upload_prefix, secure_distribution and private_cdn are the SDK's own CLOUDINARY_URL parameters.
  cloudinary: {
    folder: { kind: 'string', help: 'folder every public ID goes under' },
    deliveryType: { kind: 'string', help: 'upload (default) or authenticated' },
    upload_prefix: { kind: 'http-url', help: 'API host (the SDK\'s own parameter)' },
    secure_distribution: { kind: 'string', help: 'CDN host of delivery URLs' },
    private_cdn: { kind: 'boolean', help: 'the account has a private CDN' },
  },
  b2: {
    visibility: { kind: 'visibility', help: 'private (default) or public (an allPublic bucket)' },
    publicBaseUrl: { kind: 'http-url', help: 'CDN or custom domain of public URLs' },
  },
  // `endpoint`: the Blob service URL when the account and key are in the URL (Azurite's
  // http://127.0.0.1:10000/devstoreaccount1, a sovereign cloud).
  azure: {
    visibility: { kind: 'visibility', help: 'private (default): SAS-signed URLs; public: plain URLs (a public container)' },
    publicBaseUrl: { kind: 'http-url', help: 'CDN or custom domain of public URLs' },
    defaultExpiresIn: { kind: 'number', help: 'seconds a signed URL lives' },
    cacheControl: { kind: 'string', help: 'Cache-Control stored with every blob' },
    endpoint: { kind: 'string', help: 'the Blob service URL, e.g. http://127.0.0.1:10000/devstoreaccount1 (Azurite)' },
  },
};

function queryOptions(backend: string, params: URLSearchParams, source: string): Record<string, unknown> {
  const allowed = STORAGE_URL_OPTIONS[backend]!;
  const out: Record<string, unknown> = {};
  for (const [name, raw] of params) {
    const kind = allowed[name]?.kind;
    if (!kind) throw configError(`${source}: unknown option "${name}" for ${backend} (known: ${Object.keys(allowed).join(', ')})`);
    const label = `${source} option ${name}`;
    if (kind === 'boolean') out[name] = parseBoolean(raw, label);
    else if (kind === 'number') out[name] = parsePositive(raw, label);
    else if (kind === 'visibility') out[name] = parseVisibility(raw, label);
    else if (kind === 'http-url') out[name] = parseHttpUrl(raw, label);
    else out[name] = raw;
  }
  if (backend === 's3' && (out.acl === 'none' || out.acl === 'false')) out.acl = false;
  if (backend === 'cloudinary' && out.deliveryType !== undefined && out.deliveryType !== 'upload' && out.deliveryType !== 'authenticated') {
    throw configError(`${source} option deliveryType must be "upload" or "authenticated"`);
  }
  return out;
}

function credentialsOf(url: URL): { user?: string; password?: string } {
  return {
    user: url.username ? decodeURIComponentSafe(url.username) : undefined,
    password: url.password ? decodeURIComponentSafe(url.password) : undefined,
  };
}

function pathPrefix(url: URL): string | undefined {
  const p = decodeURIComponentSafe(url.pathname).replace(/^\/+|\/+$/g, '');
  return p === '' ? undefined : `${p}/`;
}

/**
 * Parses a storage URL: `file:///var/app/media?baseUrl=/media`, `s3://bucket/prefix?region=…`,
 * `cloudinary://key:secret@cloud`, `b2://keyId:key@bucket/prefix`, `azure://container/prefix` (the
 * connection string from AZURE_STORAGE_CONNECTION_STRING, or `azure://ACCOUNT:KEY@container/prefix`
 * with `?endpoint=` for another Blob endpoint than ACCOUNT.blob.core.windows.net), `memory://`.
 * `source` names where it came from (e.g. MEDIA_STORAGE_URL) in error messages.
 */
export function parseStorageUrl(input: string, source = 'storage URL'): StorageConfig {
  const text = input.trim();
  if (text === '') throw configError(`${source} is empty`);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1]?.toLowerCase();
  if (!scheme) throw configError(`${source} must start with a scheme: file:, s3:, cloudinary:, b2:, azure: or memory:`);
  // file:./media and file:media are relative paths, which URL cannot hold.
  if (scheme === 'file' && !text.startsWith('file://')) {
    const [root, query = ''] = text.slice('file:'.length).split('?', 2) as [string, string?];
    if (!root) throw configError(`${source}: file: needs a folder, e.g. file:./media or file:///var/app/media`);
    return { backend: 'local', root: decodeURIComponentSafe(root), ...queryOptions('local', new URLSearchParams(query), source) };
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw configError(`${source} is not a valid URL (${maskUrl(text).replace(/\?.*$/, '')})`);
  }
  const { user, password } = credentialsOf(url);
  switch (scheme) {
    case 'file': {
      if (url.host !== '' && url.host !== 'localhost') throw configError(`${source}: file URLs name a local folder, not a host`);
      const root = decodeURIComponentSafe(url.pathname);
      if (root === '/' || root === '') throw configError(`${source}: file: needs a folder, e.g. file:///var/app/media`);
      return { backend: 'local', root, ...queryOptions('local', url.searchParams, source) };
    }
    case 'memory':
      return { backend: 'memory', ...queryOptions('memory', url.searchParams, source) };
    case 's3': {
      const bucket = decodeURIComponentSafe(url.hostname);
      if (!bucket) throw configError(`${source}: s3:// needs a bucket, e.g. s3://my-bucket/media`);
      if ((user && !password) || (!user && password)) throw configError(`${source}: give both the access key id and the secret (s3://KEY:SECRET@bucket) or neither`);
      return {
        backend: 's3',
        bucket,
        ...(pathPrefix(url) ? { location: pathPrefix(url) } : {}),
        ...(user && password ? { credentials: { accessKeyId: user, secretAccessKey: password } } : {}),
        ...queryOptions('s3', url.searchParams, source),
      } as StorageConfig;
    }
    case 'cloudinary': {
      const { ignored, cloudName, apiKey, apiSecret, ...sdkSettings } = parseCloudinaryUrl(text, source);
      if (!cloudName || !apiKey || !apiSecret) throw configError(`${source}: cloudinary:// needs cloudinary://API_KEY:API_SECRET@CLOUD_NAME`);
      return { backend: 'cloudinary', cloudName, apiKey, apiSecret, ...sdkSettings, ...queryOptions('cloudinary', ignored, source) } as StorageConfig;
    }
    case 'b2': {
      const bucketName = decodeURIComponentSafe(url.hostname);
      if (!bucketName) throw configError(`${source}: b2:// needs a bucket, e.g. b2://KEY_ID:KEY@bucket/media`);
      if (!user || !password) throw configError(`${source}: b2:// needs the application key id and key: b2://KEY_ID:KEY@bucket`);
      return {
        backend: 'b2',
        bucketName,
        applicationKeyId: user,
        applicationKey: password,
        ...(pathPrefix(url) ? { location: pathPrefix(url) } : {}),
        ...queryOptions('b2', url.searchParams, source),
      } as StorageConfig;
    }
    case 'azure': {
      const container = decodeURIComponentSafe(url.hostname);
      if (!container) throw configError(`${source}: azure:// needs a container, e.g. azure://media/uploads`);
      if ((user && !password) || (!user && password)) throw configError(`${source}: give both the account name and key (azure://ACCOUNT:KEY@container) or neither (then AZURE_STORAGE_CONNECTION_STRING)`);
      const { endpoint, ...rest } = queryOptions('azure', url.searchParams, source) as { endpoint?: string };
      if (endpoint !== undefined && !user) throw configError(`${source}: the endpoint option goes with an account and key in the URL (azure://ACCOUNT:KEY@container?endpoint=...)`);
      if (endpoint !== undefined && !/^https?:\/\//i.test(endpoint)) throw configError(`${source}: endpoint must be an http(s) URL, such as http://127.0.0.1:10000/devstoreaccount1`);
      return {
        backend: 'azure',
        container,
        ...(user && password ? { connectionString: azureConnectionString(user, password, endpoint) } : {}),
        ...(pathPrefix(url) ? { location: pathPrefix(url) } : {}),
        ...rest,
      } as StorageConfig;
    }
    default:
      throw configError(`${source}: unknown scheme "${scheme}:"; use file:, s3:, cloudinary:, b2:, azure: or memory:`);
  }
}

/** A connection string for an account name and key (Azure's public cloud, or an explicit Blob endpoint). */
function azureConnectionString(account: string, key: string, endpoint: string | undefined): string {
  return endpoint
    ? `DefaultEndpointsProtocol=${new URL(endpoint).protocol.replace(':', '')};AccountName=${account};AccountKey=${key};BlobEndpoint=${endpoint};`
    : `DefaultEndpointsProtocol=https;AccountName=${account};AccountKey=${key};EndpointSuffix=core.windows.net`;
}

/** The first of the names that is set, django-storages style (`AWS_S3_ACCESS_KEY_ID`, then `AWS_ACCESS_KEY_ID`). */
function firstSet(get: (name: string) => string | undefined, names: readonly string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = get(name);
    if (value !== undefined) return { name, value };
  }
  return undefined;
}

// django-storages 1.13/1.14 (storages/backends/s3boto3.py): its own names first, then boto3's.
const ACCESS_KEY_NAMES = ['AWS_S3_ACCESS_KEY_ID', 'AWS_ACCESS_KEY_ID'] as const;
const SECRET_KEY_NAMES = ['AWS_S3_SECRET_ACCESS_KEY', 'AWS_SECRET_ACCESS_KEY'] as const;
const SESSION_TOKEN_NAMES = ['AWS_SESSION_TOKEN', 'AWS_SECURITY_TOKEN'] as const;
// AWS_S3_REGION_NAME is django-storages'; boto3 reads AWS_DEFAULT_REGION, the other AWS SDKs AWS_REGION first.
const REGION_NAMES = ['AWS_S3_REGION_NAME', 'AWS_REGION', 'AWS_DEFAULT_REGION'] as const;
/** The region when none of REGION_NAMES is set. */
const DEFAULT_DJANGO_REGION = 'eu-central-1';

/**
 * The S3 configuration django-storages' AWS_* settings (S3Boto3Storage) describe, with the same
 * meaning (the table in docs/s3.md).
 */
function s3FromDjangoEnv(get: (name: string) => string | undefined): StorageConfig {
  const bucket = get('AWS_STORAGE_BUCKET_NAME');
  const key = firstSet(get, ACCESS_KEY_NAMES);
  const secret = firstSet(get, SECRET_KEY_NAMES);
  if (!bucket) throw configError(`AWS_STORAGE_BUCKET_NAME is not set (${(key ?? secret)!.name} is, so S3 was meant)`);
  if (key && !secret) throw configError(`AWS_SECRET_ACCESS_KEY is not set (${key.name} is; django-storages' AWS_S3_SECRET_ACCESS_KEY works too)`);
  if (secret && !key) throw configError(`AWS_ACCESS_KEY_ID is not set (${secret.name} is; django-storages' AWS_S3_ACCESS_KEY_ID works too)`);
  if (get('AWS_S3_SESSION_PROFILE')) throw configError('AWS_S3_SESSION_PROFILE is not supported: set AWS_PROFILE to the profile instead (the AWS SDK reads it) and unset AWS_S3_SESSION_PROFILE');
  const rawEndpoint = get('AWS_S3_ENDPOINT_URL');
  const endpoint = rawEndpoint ? parseHttpUrl(rawEndpoint, 'AWS_S3_ENDPOINT_URL') : undefined;
  const querystring = get('AWS_QUERYSTRING_AUTH');
  const querystringAuth = querystring === undefined || parseBoolean(querystring, 'AWS_QUERYSTRING_AUTH');
  const customDomain = get('AWS_S3_CUSTOM_DOMAIN');
  if (customDomain && querystringAuth && get('AWS_CLOUDFRONT_KEY_ID')) {
    throw configError('AWS_CLOUDFRONT_KEY_ID: signed CloudFront URLs are not supported; unset it (URLs on AWS_S3_CUSTOM_DOMAIN are then plain) or set AWS_QUERYSTRING_AUTH=False');
  }
  const protocol = (get('AWS_S3_URL_PROTOCOL') ?? 'https:').toLowerCase().replace(/:?$/, ':');
  if (protocol !== 'https:' && protocol !== 'http:') throw configError('AWS_S3_URL_PROTOCOL must be "https:" or "http:"');
  const style = get('AWS_S3_ADDRESSING_STYLE')?.toLowerCase();
  if (style !== undefined && style !== 'auto' && style !== 'path' && style !== 'virtual') throw configError('AWS_S3_ADDRESSING_STYLE must be "auto", "path" or "virtual"');
  const signature = get('AWS_S3_SIGNATURE_VERSION');
  // Every request and URL is signed with SigV4; boto3's 's3' (SigV2) is accepted and signed with SigV4 too.
  if (signature !== undefined && signature !== 's3v4' && signature !== 's3') throw configError('AWS_S3_SIGNATURE_VERSION must be "s3v4" (media-storage signs with SigV4)');
  const acl = get('AWS_DEFAULT_ACL');
  const expire = get('AWS_QUERYSTRING_EXPIRE');
  const overwrite = get('AWS_S3_FILE_OVERWRITE');
  const token = firstSet(get, SESSION_TOKEN_NAMES);
  return {
    backend: 's3',
    bucket,
    region: firstSet(get, REGION_NAMES)?.value ?? DEFAULT_DJANGO_REGION,
    ...(endpoint ? { endpoint } : {}),
    // boto3's "auto" is path style for an endpoint of one's own and virtual-host style on AWS.
    ...(style === 'path' || style === 'virtual' ? { forcePathStyle: style === 'path' } : endpoint ? { forcePathStyle: true } : {}),
    ...(key && secret ? { credentials: { accessKeyId: key.value, secretAccessKey: secret.value, ...(token ? { sessionToken: token.value } : {}) } } : {}),
    ...(get('AWS_LOCATION') ? { location: get('AWS_LOCATION') } : {}),
    ...(customDomain ? { publicBaseUrl: /^https?:\/\//i.test(customDomain) ? customDomain : `${protocol}//${customDomain}` } : {}),
    // As django-storages: URLs on a custom domain are plain whatever AWS_QUERYSTRING_AUTH says;
    // elsewhere signed unless it is False. An ACL only when AWS_DEFAULT_ACL names one, sent with
    // every write either way.
    visibility: customDomain || !querystringAuth ? 'public' : 'private',
    acl: acl && acl.toLowerCase() !== 'none' ? acl : false,
    ...(expire ? { defaultExpiresIn: parsePositive(expire, 'AWS_QUERYSTRING_EXPIRE') } : {}),
    ...(overwrite !== undefined && !parseBoolean(overwrite, 'AWS_S3_FILE_OVERWRITE') ? { ifExists: 'rename' as const } : {}),
  };
}

/**
 * The configuration the environment asks for, in this order: MEDIA_STORAGE_URL; the AWS_* variables
 * django-storages users already have; CLOUDINARY_URL; B2_*; AZURE_STORAGE_CONNECTION_STRING with
 * AZURE_STORAGE_CONTAINER (and AZURE_STORAGE_LOCATION, AZURE_STORAGE_VISIBILITY); else the local disk (MEDIA_ROOT,
 * default ./media, served under MEDIA_URL, default /media). A variable that looks like a misspelling
 * of one of these (`MEDIA_STORAGE_URI`, `CLOUDNARY_URL`, `AWS_S3_ENDPOINT`) is warned about
 * (see {@link ConfigFromEnvOptions.warn}).
 */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env, options: ConfigFromEnvOptions = {}): StorageConfig {
  warnOfTypos(env, options.warn);
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const url = get('MEDIA_STORAGE_URL');
  if (url) return parseStorageUrl(url, 'MEDIA_STORAGE_URL');

  const awsCredentials = firstSet(get, ACCESS_KEY_NAMES) ?? firstSet(get, SECRET_KEY_NAMES);
  if (get('AWS_STORAGE_BUCKET_NAME') || (awsCredentials && !get('CLOUDINARY_URL') && !get('B2_BUCKET_NAME'))) return s3FromDjangoEnv(get);

  const cloudinaryUrl = get('CLOUDINARY_URL');
  if (cloudinaryUrl) {
    const config = cloudinaryUrl.startsWith('cloudinary://') ? parseStorageUrl(cloudinaryUrl, 'CLOUDINARY_URL') : undefined;
    if (config?.backend !== 'cloudinary') throw configError('CLOUDINARY_URL must look like cloudinary://API_KEY:API_SECRET@CLOUD_NAME');
    return { ...config, ...(get('CLOUDINARY_FOLDER') ? { folder: get('CLOUDINARY_FOLDER') } : {}) };
  }

  const b2Bucket = get('B2_BUCKET_NAME');
  const b2KeyId = get('B2_APPLICATION_KEY_ID');
  const b2Key = get('B2_APPLICATION_KEY');
  if (b2Bucket || b2KeyId || b2Key) {
    for (const [name, value] of [['B2_BUCKET_NAME', b2Bucket], ['B2_APPLICATION_KEY_ID', b2KeyId], ['B2_APPLICATION_KEY', b2Key]] as const) {
      if (!value) throw configError(`${name} is not set (other B2_* variables are)`);
    }
    const visibility = get('B2_VISIBILITY');
    return {
      backend: 'b2',
      bucketName: b2Bucket!,
      applicationKeyId: b2KeyId!,
      applicationKey: b2Key!,
      ...(get('B2_LOCATION') ? { location: get('B2_LOCATION') } : {}),
      ...(get('B2_PUBLIC_URL') ? { publicBaseUrl: get('B2_PUBLIC_URL') } : {}),
      ...(visibility ? { visibility: parseVisibility(visibility, 'B2_VISIBILITY') } : {}),
    };
  }

  const azureConnection = get('AZURE_STORAGE_CONNECTION_STRING');
  const azureContainer = get('AZURE_STORAGE_CONTAINER');
  if (azureConnection || azureContainer) {
    if (!azureContainer) throw configError('AZURE_STORAGE_CONTAINER is not set (AZURE_STORAGE_CONNECTION_STRING is, so Azure was meant)');
    if (!azureConnection) throw configError('AZURE_STORAGE_CONNECTION_STRING is not set (AZURE_STORAGE_CONTAINER is, so Azure was meant)');
    const visibility = get('AZURE_STORAGE_VISIBILITY');
    return {
      backend: 'azure',
      container: azureContainer,
      connectionString: azureConnection,
      ...(get('AZURE_STORAGE_LOCATION') ? { location: get('AZURE_STORAGE_LOCATION') } : {}),
      ...(visibility ? { visibility: parseVisibility(visibility, 'AZURE_STORAGE_VISIBILITY') } : {}),
    };
  }

  return {
    backend: 'local',
    root: get('MEDIA_ROOT') ?? './media',
    baseUrl: get('MEDIA_URL') ?? '/media',
    ...(get('MEDIA_STORAGE_SECRET') ? { secret: get('MEDIA_STORAGE_SECRET') } : {}),
  };
}

/** Creates the storage a configuration (or a storage URL) describes, loading only that backend's SDK. */
export async function createMediaStorage(config: StorageConfig | string, options: CreateOptions = {}): Promise<MediaStorage> {
  const resolved = typeof config === 'string' ? parseStorageUrl(config) : config;
  const loaders = { ...BACKEND_LOADERS, ...options.loaders };
  const { backend, ...backendOptions } = resolved;
  const load = loaders[backend];
  if (!load) throw configError(`Unknown backend "${String(backend)}"`);
  const Storage = await load();
  return new Storage(backendOptions as never);
}

/** `createMediaStorage(configFromEnv(env))`: the storage the environment asks for. */
export async function createMediaStorageFromEnv(env: NodeJS.ProcessEnv = process.env, options: CreateOptions = {}): Promise<MediaStorage> {
  return createMediaStorage(configFromEnv(env), options);
}

/** The configuration with every secret masked, for logs and the doctor's report. */
export function describeConfig(config: StorageConfig): Record<string, unknown> {
  const SECRET_FIELDS = new Set(['secret', 'apiSecret', 'applicationKey', 'secretAccessKey', 'sessionToken', 'cloudinaryUrl', 'connectionString']);
  const ID_FIELDS = new Set(['accessKeyId', 'apiKey', 'applicationKeyId']);
  const mask = (value: unknown, field: string): unknown => {
    if (typeof value === 'string') {
      if (SECRET_FIELDS.has(field)) return '***';
      if (ID_FIELDS.has(field)) return maskValue(value);
      // An endpoint or base URL may carry credentials or a signature too.
      return /^[a-z][a-z0-9+.-]*:/i.test(value) ? maskUrl(value) : value;
    }
    if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
      return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, mask(v, k)]));
    }
    if (Buffer.isBuffer(value)) return '***';
    return value;
  };
  return mask(config, '') as Record<string, unknown>;
}
