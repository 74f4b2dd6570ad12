import {
  defineBackend,
  defineOptions,
  lazyStorageClass,
  type StorageClass,
  parseOptionText,
  typed,
  type ConfigContext,
  type OptionsOf,
} from '../core/definition.js';

const MiB = 1024 * 1024;
/** S3's part sizes: 5 MiB to 5 GiB. */
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PART_SIZE = 5 * 1024 * MiB;
/** S3's limit for presigned URLs: seven days. */
export const MAX_EXPIRES_IN = 7 * 24 * 3600;
/** Longest silence on an open connection before a request fails, by default. */
export const DEFAULT_IDLE_TIMEOUT_MS = 120_000;

const CHECKSUM_MODES = ['WHEN_REQUIRED', 'WHEN_SUPPORTED'] as const;
const PEERS = ['@aws-sdk/client-s3', '@aws-sdk/s3-request-presigner'];

/** S3Storage's configuration options; the TSDoc here is what editors show on `S3StorageOptions`. */
export const s3Options = defineOptions({
  /** The bucket's name. */
  bucket: { kind: 'string', required: true, query: false, env: ['AWS_STORAGE_BUCKET_NAME'] },
  /** The region; default `us-east-1` when an endpoint is set, else the SDK's (AWS_REGION...). */
  region: { kind: 'string', help: "the bucket's region, e.g. eu-central-1" },
  /** An S3-compatible endpoint such as `http://127.0.0.1:9000` (MinIO) or `https://<account>.r2.cloudflarestorage.com`. */
  endpoint: { kind: 'url', help: 'an S3-compatible server, with its scheme: http://127.0.0.1:9000' },
  /** `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`. Default: true when an endpoint is set. */
  forcePathStyle: { kind: 'boolean', help: 'endpoint/bucket/key URLs (default true with an endpoint)' },
  /** Static credentials; default the SDK's provider chain (env, shared files, instance roles...). */
  credentials: {
    kind: 'object',
    fields: {
      accessKeyId: { kind: 'string', required: true, identifier: true },
      secretAccessKey: { kind: 'string', required: true, secret: true },
      sessionToken: { kind: 'string', secret: true },
    },
  },
  /** Key prefix inside the bucket, e.g. `media/` (Django's AWS_LOCATION). Formerly `location`. */
  prefix: { kind: 'string', deprecated: ['location'], help: 'key prefix inside the bucket (the URL path sets it too)' },
  /** Base of public URLs, e.g. a CDN or custom domain (`https://cdn.example.com`); the key follows it. */
  publicBaseUrl: { kind: 'url', help: 'CDN or custom domain of public URLs' },
  /**
   * `private` (default): `url()` gives presigned GET URLs expiring after `defaultExpiresIn`.
   * `public`: plain URLs, and objects are stored with the `acl` below.
   */
  visibility: { kind: 'enum', values: ['public', 'private'], default: 'private', help: 'private (default): signed URLs; public: plain URLs' },
  /**
   * Canned ACL sent with every write and copy (Django's AWS_DEFAULT_ACL), whatever the visibility.
   * Default: `public-read` for a public storage, none for a private one. `false` sends none (R2,
   * buckets with ACLs disabled).
   */
  acl: {
    kind: 'custom',
    type: typed<string | false>(),
    check: (value) => (typeof value === 'string' || value === false ? undefined : 'must be a canned ACL name or false'),
    parse: (raw) => (raw === 'none' || raw === 'false' ? false : raw),
    help: 'canned ACL sent with every write (public-read...), or none',
  },
  /** Expiry of signed URLs, in seconds; default 3600. */
  defaultExpiresIn: { kind: 'integer', unit: 's', min: 1, max: MAX_EXPIRES_IN, default: 3600, help: 'seconds a signed URL lives (default 3600)' },
  /**
   * Cache-Control browsers get for the objects: stored with every object unless `save` passes its
   * own, so a change applies to objects written after it.
   */
  cacheControl: { kind: 'string', help: 'Cache-Control stored with every object' },
  /**
   * What `save` does with a taken key when its options do not say: `overwrite` (default, Django's
   * AWS_S3_FILE_OVERWRITE = True), `rename` (a free `name_abc1234.ext`, Django's False) or `fail`.
   */
  ifExists: { kind: 'enum', values: ['overwrite', 'rename', 'fail'], default: 'overwrite', help: 'overwrite (default), rename or fail' },
  /** Server-side encryption of every object. */
  serverSideEncryption: { kind: 'enum', values: ['AES256', 'aws:kms'], help: 'AES256 or aws:kms' },
  /** KMS key for `serverSideEncryption: 'aws:kms'`; default the bucket's. */
  sseKmsKeyId: { kind: 'string', help: "KMS key of aws:kms encryption (default the bucket's)" },
  /**
   * Bodies whose length is known up front (Buffer, string, Blob, File) up to this many bytes go in
   * one PutObject; default 32 MiB. Streams go in one PutObject when they end within one part, else
   * in parts, so their memory stays bounded whatever their length.
   */
  multipartThreshold: { kind: 'integer', unit: 'bytes', min: 1, max: MAX_PART_SIZE, default: 32 * MiB, help: 'bytes up to which a body goes in one PutObject' },
  /** Part size of multipart uploads (5 MiB to 5 GiB); default 5 MiB, which allows streams up to 48 GiB. Memory per streamed upload is at least (queueSize + 1) × partSize (measured: about twice that; docs/performance.md). */
  partSize: {
    kind: 'integer',
    unit: 'bytes',
    min: MIN_PART_SIZE,
    max: MAX_PART_SIZE,
    default: MIN_PART_SIZE,
    help: 'bytes in each part of a multipart upload',
  },
  /** Parts sent at once; default 4. */
  queueSize: { kind: 'integer', min: 1, max: 64, default: 4, help: 'parts sent at once (default 4)' },
  /**
   * The store enforces `If-None-Match: *` on PutObject and CompleteMultipartUpload (AWS since 2024,
   * MinIO, R2). Then `ifExists: 'fail'` is atomic. Default false: an existence check before the
   * write, which two concurrent writers can both pass.
   */
  conditionalWrites: { kind: 'boolean', default: false, help: 'the store enforces If-None-Match (atomic ifExists=fail)' },
  /**
   * Also send a Content-MD5 with every put and part, and check a multipart object's ETag against
   * the parts' MD5s. Default false: every request body's SHA-256 is already signed and checked by
   * the server (x-amz-content-sha256); turn it on for a store that checks only Content-MD5. It
   * costs one more hash of every byte (about 20% on a 20 MB put, see bench/results/s3.md).
   */
  contentMd5: { kind: 'boolean', default: false, help: 'send Content-MD5 too (stores that check only that)' },
  /**
   * The SDK's flexible checksums. Default `WHEN_REQUIRED`: many S3-compatible servers mishandle the
   * aws-chunked bodies the SDK sends otherwise (Ceph RGW answers 411, s3rver stores the framing).
   * Integrity does not depend on it: the server checks every request body's signed SHA-256.
   */
  requestChecksumCalculation: { kind: 'enum', values: CHECKSUM_MODES, default: 'WHEN_REQUIRED', query: false },
  /** The SDK's checksum validation of responses; default `WHEN_REQUIRED` (see `requestChecksumCalculation`). */
  responseChecksumValidation: { kind: 'enum', values: CHECKSUM_MODES, default: 'WHEN_REQUIRED', query: false },
  /**
   * Milliseconds a request may sit idle (no bytes either way) before it fails as UNAVAILABLE (and
   * the retry layer tries again). Default 120,000.
   */
  timeout: { kind: 'integer', unit: 'ms', min: 1, default: DEFAULT_IDLE_TIMEOUT_MS, help: 'ms a request may sit idle before it fails (default 120000)' },
});

/** The options of S3Storage configuration can set. */
export type S3Config = OptionsOf<typeof s3Options>;

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

const asBoolean = (raw: string, name: string): boolean => parseOptionText({ kind: 'boolean' }, raw, name) as boolean;

/**
 * The S3 configuration django-storages' AWS_* settings (S3Boto3Storage) describe, with the same
 * meaning (the table in docs/s3.md).
 */
function s3FromDjangoEnv(get: (name: string) => string | undefined, { fail }: ConfigContext): Record<string, unknown> {
  const bucket = get('AWS_STORAGE_BUCKET_NAME');
  const key = firstSet(get, ACCESS_KEY_NAMES);
  const secret = firstSet(get, SECRET_KEY_NAMES);
  if (!bucket) fail(`AWS_STORAGE_BUCKET_NAME is not set (${(key ?? secret)!.name} is, so S3 was meant)`);
  if (key && !secret) fail(`AWS_SECRET_ACCESS_KEY is not set (${key.name} is; django-storages' AWS_S3_SECRET_ACCESS_KEY works too)`);
  if (secret && !key) fail(`AWS_ACCESS_KEY_ID is not set (${secret.name} is; django-storages' AWS_S3_ACCESS_KEY_ID works too)`);
  if (get('AWS_S3_SESSION_PROFILE'))
    fail('AWS_S3_SESSION_PROFILE is not supported: set AWS_PROFILE to the profile instead (the AWS SDK reads it) and unset AWS_S3_SESSION_PROFILE');
  const rawEndpoint = get('AWS_S3_ENDPOINT_URL');
  const endpoint = rawEndpoint ? (parseOptionText(s3Options.endpoint, rawEndpoint, 'AWS_S3_ENDPOINT_URL') as string) : undefined;
  const querystring = get('AWS_QUERYSTRING_AUTH');
  const querystringAuth = querystring === undefined || asBoolean(querystring, 'AWS_QUERYSTRING_AUTH');
  const customDomain = get('AWS_S3_CUSTOM_DOMAIN');
  if (customDomain && querystringAuth && get('AWS_CLOUDFRONT_KEY_ID')) {
    fail(
      'AWS_CLOUDFRONT_KEY_ID: signed CloudFront URLs are not supported; unset it (URLs on AWS_S3_CUSTOM_DOMAIN are then plain) or set AWS_QUERYSTRING_AUTH=False',
    );
  }
  const protocol = (get('AWS_S3_URL_PROTOCOL') ?? 'https:').toLowerCase().replace(/:?$/, ':');
  if (protocol !== 'https:' && protocol !== 'http:') fail('AWS_S3_URL_PROTOCOL must be "https:" or "http:"');
  const style = get('AWS_S3_ADDRESSING_STYLE')?.toLowerCase();
  if (style !== undefined && style !== 'auto' && style !== 'path' && style !== 'virtual') fail('AWS_S3_ADDRESSING_STYLE must be "auto", "path" or "virtual"');
  const signature = get('AWS_S3_SIGNATURE_VERSION');
  // Every request and URL is signed with SigV4; boto3's 's3' (SigV2) is accepted and signed with SigV4 too.
  if (signature !== undefined && signature !== 's3v4' && signature !== 's3') fail('AWS_S3_SIGNATURE_VERSION must be "s3v4" (media-storage signs with SigV4)');
  const acl = get('AWS_DEFAULT_ACL');
  const expire = get('AWS_QUERYSTRING_EXPIRE');
  const overwrite = get('AWS_S3_FILE_OVERWRITE');
  const token = firstSet(get, SESSION_TOKEN_NAMES);
  return {
    bucket,
    region: firstSet(get, REGION_NAMES)?.value ?? DEFAULT_DJANGO_REGION,
    ...(endpoint ? { endpoint } : {}),
    // boto3's "auto" is path style for an endpoint of one's own and virtual-host style on AWS.
    ...(style === 'path' || style === 'virtual' ? { forcePathStyle: style === 'path' } : endpoint ? { forcePathStyle: true } : {}),
    ...(key && secret ? { credentials: { accessKeyId: key.value, secretAccessKey: secret.value, ...(token ? { sessionToken: token.value } : {}) } } : {}),
    ...(get('AWS_LOCATION') ? { prefix: get('AWS_LOCATION') } : {}),
    ...(customDomain ? { publicBaseUrl: /^https?:\/\//i.test(customDomain) ? customDomain : `${protocol}//${customDomain}` } : {}),
    // As django-storages: URLs on a custom domain are plain whatever AWS_QUERYSTRING_AUTH says;
    // elsewhere signed unless it is False. An ACL only when AWS_DEFAULT_ACL names one, sent with
    // every write either way.
    visibility: customDomain || !querystringAuth ? 'public' : 'private',
    acl: acl && acl.toLowerCase() !== 'none' ? acl : false,
    ...(expire ? { defaultExpiresIn: parseOptionText({ kind: 'number' }, expire, 'AWS_QUERYSTRING_EXPIRE') } : {}),
    ...(overwrite !== undefined && !asBoolean(overwrite, 'AWS_S3_FILE_OVERWRITE') ? { ifExists: 'rename' as const } : {}),
  };
}

/** Amazon S3 and S3-compatible stores: `s3://bucket/prefix`, or django-storages' AWS_* variables. */
export const s3Backend = defineBackend({
  name: 's3',
  title: 'Amazon S3 and S3-compatible stores',
  schemes: ['s3'],
  options: s3Options,
  peers: PEERS,
  credentialsHint: 'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the key in MEDIA_STORAGE_URL)',
  url: {
    example: 's3://bucket/prefix',
    note: "s3://KEY:SECRET@bucket/prefix; else the AWS SDK's credentials",
    parse: (url, { fail }) => {
      if (!url.host) fail('s3:// needs a bucket, e.g. s3://my-bucket/media');
      if ((url.user && !url.password) || (!url.user && url.password)) fail('give both the access key id and the secret (s3://KEY:SECRET@bucket) or neither');
      return {
        bucket: url.host,
        ...(url.prefix ? { prefix: url.prefix } : {}),
        ...(url.user && url.password ? { credentials: { accessKeyId: url.user, secretAccessKey: url.password } } : {}),
      };
    },
  },
  env: {
    variables: [
      ...ACCESS_KEY_NAMES,
      ...SECRET_KEY_NAMES,
      ...SESSION_TOKEN_NAMES,
      ...REGION_NAMES,
      'AWS_S3_ENDPOINT_URL',
      'AWS_S3_ADDRESSING_STYLE',
      'AWS_LOCATION',
      'AWS_S3_CUSTOM_DOMAIN',
      'AWS_S3_URL_PROTOCOL',
      'AWS_QUERYSTRING_AUTH',
      'AWS_QUERYSTRING_EXPIRE',
      'AWS_DEFAULT_ACL',
      'AWS_S3_FILE_OVERWRITE',
      'AWS_S3_SIGNATURE_VERSION',
      'AWS_S3_SESSION_PROFILE',
      'AWS_CLOUDFRONT_KEY_ID',
    ],
    // The bucket says S3; credentials alone are the AWS SDK's too, and count only when nothing else is configured.
    detect: (get) => (get('AWS_STORAGE_BUCKET_NAME') ? 'strong' : firstSet(get, ACCESS_KEY_NAMES) || firstSet(get, SECRET_KEY_NAMES) ? 'weak' : undefined),
    read: (get, _fromOptions, context) => s3FromDjangoEnv(get, context),
  },
  load: (): Promise<StorageClass> => lazyStorageClass('s3', PEERS, () => import('./index.js'), 'S3Storage'),
});
