import { MediaStorageError } from '../core/errors.js';
import type { ServingOptions } from '../core/serving.js';
import type { DirectUpload, DirectUploadOptions } from '../core/types.js';
import type { S3Client } from './sdk.js';

export const MiB = 1024 * 1024;
/** S3's smallest part (except the last) and largest part. */
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PART_SIZE = 5 * 1024 * MiB;
/** S3's longest object key (location prefix included), in UTF-8 bytes. */
export const S3_MAX_KEY_BYTES = 1024;
/** S3 keeps at most 2 KB of user metadata, names and values (as sent) together. */
export const MAX_METADATA_BYTES = 2048;
/** S3 answers at most 1,000 keys per ListObjectsV2 request. */
export const MAX_KEYS_PER_REQUEST = 1000;
/** Time to open a connection, and longest silence on an open one, before a request fails. */
export const CONNECT_TIMEOUT_MS = 10_000;
export const IDLE_TIMEOUT_MS = 120_000;
/** S3's limit for presigned URLs: seven days. */
export const MAX_EXPIRES_IN = 7 * 24 * 3600;
/**
 * How long HeadBucket's answer is trusted after a HeadObject 404. Existence is re-checked now and
 * then (a bucket can be deleted); absence sooner, so a bucket created after the error is seen.
 */
export const BUCKET_EXISTS_TTL_MS = 60_000;
export const BUCKET_MISSING_TTL_MS = 10_000;

export type ChecksumMode = 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';

export interface S3StorageOptions extends ServingOptions {
  /** The bucket's name. */
  bucket: string;
  /** The region; default `us-east-1` when an endpoint is set, else the SDK's (AWS_REGION...). */
  region?: string;
  /** An S3-compatible endpoint such as `http://127.0.0.1:9000` (MinIO) or `https://<account>.r2.cloudflarestorage.com`. */
  endpoint?: string;
  /** `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key`. Default: true when an endpoint is set. */
  forcePathStyle?: boolean;
  /** Static credentials; default the SDK's provider chain (env, shared files, instance roles...). */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Key prefix inside the bucket, e.g. `media/` (Django's AWS_LOCATION). */
  location?: string;
  /** Base of public URLs, e.g. a CDN or custom domain (`https://cdn.example.com`); the key follows it. */
  publicBaseUrl?: string;
  /**
   * `private` (default): `url()` gives presigned GET URLs expiring after `defaultExpiresIn`.
   * `public`: plain URLs, and objects are stored with the `acl` below.
   */
  visibility?: 'public' | 'private';
  /**
   * Canned ACL sent with every write and copy (Django's AWS_DEFAULT_ACL), whatever the visibility.
   * Default: `public-read` for a public storage, none for a private one. `false` sends none (R2,
   * buckets with ACLs disabled).
   */
  acl?: string | false;
  /** Expiry of signed URLs, in seconds; default 3600. */
  defaultExpiresIn?: number;
  /** Cache-Control stored with every object unless `save` passes its own. */
  cacheControl?: string;
  /**
   * What `save` does with a taken key when its options do not say: `overwrite` (default, Django's
   * AWS_S3_FILE_OVERWRITE = True), `rename` (a free `name_abc1234.ext`, Django's False) or `fail`.
   */
  ifExists?: 'overwrite' | 'rename' | 'fail';
  serverSideEncryption?: 'AES256' | 'aws:kms';
  /** KMS key for `serverSideEncryption: 'aws:kms'`; default the bucket's. */
  sseKmsKeyId?: string;
  /** An S3Client to reuse instead of creating one (then region, endpoint, credentials and checksum options are its own). */
  client?: S3Client;
  /**
   * Bodies whose length is known up front (Buffer, string, Blob, File) up to this many bytes go in
   * one PutObject; default 32 MiB. Streams go in one PutObject when they end within one part, else
   * in parts, so their memory stays bounded whatever their length.
   */
  multipartThreshold?: number;
  /** Part size of multipart uploads (5 MiB to 5 GiB); default 5 MiB, which allows streams up to 48 GiB. Memory per streamed upload is at least (queueSize + 1) × partSize (measured: about twice that; docs/performance.md). */
  partSize?: number;
  /** Parts sent at once; default 4. */
  queueSize?: number;
  /**
   * The store enforces `If-None-Match: *` on PutObject and CompleteMultipartUpload (AWS since 2024,
   * MinIO, R2). Then `ifExists: 'fail'` is atomic. Default false: an existence check before the
   * write, which two concurrent writers can both pass.
   */
  conditionalWrites?: boolean;
  /**
   * Also send a Content-MD5 with every put and part, and check a multipart object's ETag against
   * the parts' MD5s. Default false: every request body's SHA-256 is already signed and checked by
   * the server (x-amz-content-sha256); turn it on for a store that checks only Content-MD5. It
   * costs one more hash of every byte (about 20% on a 20 MB put, see bench/results/s3.md).
   */
  contentMd5?: boolean;
  /**
   * The SDK's flexible checksums. Default `WHEN_REQUIRED`: many S3-compatible servers mishandle the
   * aws-chunked bodies the SDK sends otherwise (Ceph RGW answers 411, s3rver stores the framing).
   * Integrity does not depend on it: the server checks every request body's signed SHA-256.
   */
  requestChecksumCalculation?: ChecksumMode;
  responseChecksumValidation?: ChecksumMode;
}

/** @deprecated Use `DirectUpload` from `media-storage` (the same shape on every backend). */
export type PresignedUpload = DirectUpload;
/** @deprecated Use `DirectUploadOptions` from `media-storage`. */
export type PresignUploadOptions = DirectUploadOptions;

export function positiveInteger(value: number | undefined, name: string, min = 1, max = Number.MAX_SAFE_INTEGER): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= min && value <= max)) {
    throw new MediaStorageError('CONFIG', `S3Storage: ${name} must be a whole number from ${min} to ${max}`, { backend: 's3' });
  }
}

/** An endpoint without its scheme (`127.0.0.1:9000`) makes the SDK fail every call with "Invalid URL": refused here, saying what to write. */
export function checkEndpoint(value: string | undefined, name: string): void {
  if (value === undefined) return;
  const ok = typeof value === 'string' && /^https?:\/\/[^/?#]/i.test(value.trim()) && URL.canParse(value.trim());
  if (ok) return;
  const hint = typeof value === 'string' && !/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? `; add the scheme, e.g. http://${value}` : '';
  throw new MediaStorageError('CONFIG', `S3Storage: ${name} must be an http:// or https:// URL (got ${JSON.stringify(String(value))})${hint}`, { backend: 's3' });
}

/**
 * Static credentials must be two non-empty strings: `{ accessKeyId: process.env.KEY }` with KEY
 * unset otherwise reaches the SDK, which fails every call with "Resolved credential object is not valid".
 */
export function checkCredentials(credentials: S3StorageOptions['credentials'] | undefined): void {
  if (credentials === undefined || typeof credentials === 'function') return;
  const given = credentials as Partial<Record<'accessKeyId' | 'secretAccessKey' | 'sessionToken', unknown>> | null;
  const problems: string[] = [];
  for (const field of ['accessKeyId', 'secretAccessKey'] as const) {
    const value = given?.[field];
    if (typeof value !== 'string' || value.trim() === '') problems.push(`credentials.${field} is ${value === undefined ? 'undefined' : typeof value === 'string' ? 'empty' : `a ${value === null ? 'null' : typeof value}`}`);
  }
  if (given && given.sessionToken !== undefined && typeof given.sessionToken !== 'string') problems.push('credentials.sessionToken is not a string');
  if (problems.length === 0) return;
  throw new MediaStorageError(
    'CONFIG',
    `S3Storage: ${problems.join(' and ')} (an environment variable that is not set?). Give both credentials.accessKeyId and credentials.secretAccessKey as strings, or leave credentials out to use the AWS SDK's own chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws, instance and task roles)`,
    { backend: 's3' },
  );
}
