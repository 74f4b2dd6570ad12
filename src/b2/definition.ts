import { defineBackend, defineOptions, lazyStorageClass, type StorageClass, type OptionsOf } from '../core/definition.js';

const PEERS = ['backblaze-b2'];

/** B2Storage's configuration options; the TSDoc here is what editors show on `B2StorageOptions`. */
export const b2Options = defineOptions({
  /** Application key ID (or the account ID for the master key). */
  applicationKeyId: { kind: 'string', required: true, identifier: true, query: false, env: ['B2_APPLICATION_KEY_ID'] },
  /**
   * Application key: needs listFiles, readFiles, writeFiles, deleteFiles and (private buckets)
   * shareFiles; listBuckets unless `bucketId` is given or the key is restricted to the bucket. An
   * operation the key's capabilities or name prefix do not allow fails with PERMISSION.
   */
  applicationKey: { kind: 'string', required: true, secret: true, query: false, env: ['B2_APPLICATION_KEY'] },
  /** The bucket's name. */
  bucketName: { kind: 'string', required: true, query: false, env: ['B2_BUCKET_NAME'] },
  /**
   * Skips the bucket lookup (b2_list_buckets) when given. Downloads go by `bucketName`, so the first
   * time one finds nothing the pair is checked once (with listBuckets): a mismatch is CONFIG.
   */
  bucketId: { kind: 'string', help: 'the bucket id (skips the bucket lookup)' },
  /** Key prefix inside the bucket, e.g. `media/`. Formerly `location`. */
  prefix: { kind: 'string', deprecated: ['location'], env: ['B2_LOCATION'], help: 'key prefix inside the bucket (the URL path sets it too)' },
  /** `public` (allPublic bucket): plain download URLs. `private` (default): URLs carry a download authorization. */
  visibility: {
    kind: 'enum',
    values: ['public', 'private'],
    default: 'private',
    env: ['B2_VISIBILITY'],
    help: 'private (default) or public (an allPublic bucket)',
  },
  /** CDN or custom download domain standing for `<downloadUrl>/file/<bucketName>`, used for public URLs. */
  publicBaseUrl: { kind: 'url', env: ['B2_PUBLIC_URL'], help: 'CDN or custom domain of public URLs' },
  /** Lifetime of private URLs when `url()` is given no `expiresIn`, in seconds; default 3600 (B2 allows up to 7 days). */
  defaultExpiresIn: { kind: 'integer', unit: 's', min: 1, max: 604_800, default: 3600, help: 'seconds a signed URL lives (default 3600)' },
  /** Bodies larger than this use the large-file API; default 200 MB. */
  largeFileThreshold: { kind: 'integer', unit: 'bytes', min: 1, default: 200_000_000, help: 'bytes above which the large-file API is used' },
  /** Large-file part size; default the `recommendedPartSize` authorize announces (100 MB on B2). */
  partSize: { kind: 'integer', unit: 'bytes', min: 1, help: 'bytes in each part of a large file' },
  /** Stream bodies up to this size are kept in memory; larger ones go to a temp file. Default 8 MiB. */
  spoolThreshold: { kind: 'integer', unit: 'bytes', min: 1, default: 8 * 1024 * 1024, help: 'bytes of a stream kept in memory before a temp file' },
  /**
   * Tries per upload (and per part), each with a fresh upload URL; default 5 (Backblaze: "try five
   * different upload URLs before reporting an error"). Under `withRetry` (createMediaStorage's
   * default), a save whose body is in memory is tried again as a whole after that, so it sends at
   * most the layer's `maxAttempts` × this many uploads. Formerly `maxUploadAttempts`.
   */
  maxAttempts: { kind: 'integer', min: 1, deprecated: ['maxUploadAttempts'], default: 5, help: 'tries per upload, each on a fresh upload URL' },
  /**
   * Override of the authorize endpoint (default `https://api.backblazeb2.com/b2api/v4/b2_authorize_account`),
   * for proxies and tests. Answers of v2, v3 and v4 are all understood. Formerly `apiUrl`.
   */
  endpoint: { kind: 'url', deprecated: ['apiUrl'], help: 'the authorize endpoint (for proxies and tests)' },
  /**
   * Milliseconds a request may sit idle (no bytes either way) before it fails as a broken
   * connection (UNAVAILABLE; an upload is tried again on a fresh URL, other calls by the retry layer); for a download, the wait for the response head. Default 120,000.
   */
  timeout: { kind: 'integer', unit: 'ms', min: 1, default: 120_000, help: 'ms a request may sit idle before it fails (default 120000)' },
});

/** The options of B2Storage configuration can set. */
export type B2Config = OptionsOf<typeof b2Options>;

/** Backblaze B2 (native API): `b2://KEY_ID:KEY@bucket/prefix`, or B2_* variables. */
export const b2Backend = defineBackend({
  name: 'b2',
  title: 'Backblaze B2',
  schemes: ['b2'],
  options: b2Options,
  peers: PEERS,
  credentialsHint: 'B2_APPLICATION_KEY_ID and B2_APPLICATION_KEY',
  url: {
    example: 'b2://KEY_ID:KEY@bucket/prefix',
    parse: (url, { fail }) => {
      if (!url.host) fail('b2:// needs a bucket, e.g. b2://KEY_ID:KEY@bucket/media');
      if (!url.user || !url.password) fail('b2:// needs the application key id and key: b2://KEY_ID:KEY@bucket');
      return { bucketName: url.host, applicationKeyId: url.user, applicationKey: url.password, ...(url.prefix ? { prefix: url.prefix } : {}) };
    },
  },
  env: {},
  load: (): Promise<StorageClass> => lazyStorageClass('b2', PEERS, () => import('./index.js'), 'B2Storage'),
});
