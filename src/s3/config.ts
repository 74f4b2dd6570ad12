import { MediaStorageError } from '../core/errors.js';
import type { PeerPackage } from '../core/peer.js';
import type { ServingOptions } from '../core/serving.js';
import type { DirectUpload, DirectUploadOptions } from '../core/types.js';
import type { S3Client } from './sdk.js';
import type { S3Config } from './definition.js';

export const MiB = 1024 * 1024;
// S3's part sizes, the presigned URLs' limit and the default idle timeout are the definition's (its option ranges).
export { MIN_PART_SIZE, MAX_PART_SIZE, MAX_EXPIRES_IN, DEFAULT_IDLE_TIMEOUT_MS as IDLE_TIMEOUT_MS } from './definition.js';
/** S3's longest object key (location prefix included), in UTF-8 bytes. */
export const S3_MAX_KEY_BYTES = 1024;
/** S3 keeps at most 2 KB of user metadata, names and values (as sent) together. */
export const MAX_METADATA_BYTES = 2048;
/** S3 answers at most 1,000 keys per ListObjectsV2 request. */
export const MAX_KEYS_PER_REQUEST = 1000;
/** Time to open a connection before a request fails (the longest silence on one is the `timeout` option). */
export const CONNECT_TIMEOUT_MS = 10_000;
/**
 * How long HeadBucket's answer is trusted after a HeadObject 404. Existence is re-checked now and
 * then (a bucket can be deleted); absence sooner, so a bucket created after the error is seen.
 */
export const BUCKET_EXISTS_TTL_MS = 60_000;
export const BUCKET_MISSING_TTL_MS = 10_000;

/**
 * When the AWS SDK computes request checksums and validates response ones (the S3 options
 * `requestChecksumCalculation` and `responseChecksumValidation`): only when an operation requires
 * it, or whenever the operation supports it.
 */
export type ChecksumMode = 'WHEN_REQUIRED' | 'WHEN_SUPPORTED';

/** S3Storage's options: those configuration can set (documented in ./definition.ts) and an S3Client to reuse. */
export interface S3StorageOptions extends S3Config, ServingOptions {
  /** An S3Client to reuse instead of creating one (then region, endpoint, credentials, timeout and checksum options are its own, and `close()` leaves it open). */
  client?: S3Client;
  /** @deprecated Use `prefix` (the same meaning). */
  location?: string;
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
  throw new MediaStorageError('CONFIG', `S3Storage: ${name} must be an http:// or https:// URL (got ${JSON.stringify(String(value))})${hint}`, {
    backend: 's3',
  });
}

/** `timeout`: a positive number of milliseconds. */
export function checkTimeout(value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new MediaStorageError('CONFIG', `s3: timeout must be a positive number of milliseconds (got ${JSON.stringify(String(value))})`, { backend: 's3' });
  }
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
    if (typeof value !== 'string' || value.trim() === '')
      problems.push(
        `credentials.${field} is ${value === undefined ? 'undefined' : typeof value === 'string' ? 'empty' : `a ${value === null ? 'null' : typeof value}`}`,
      );
  }
  if (given && given.sessionToken !== undefined && typeof given.sessionToken !== 'string') problems.push('credentials.sessionToken is not a string');
  if (problems.length === 0) return;
  throw new MediaStorageError(
    'CONFIG',
    `S3Storage: ${problems.join(' and ')} (an environment variable that is not set?). Give both credentials.accessKeyId and credentials.secretAccessKey as strings, or leave credentials out to use the AWS SDK's own chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, ~/.aws, instance and task roles)`,
    { backend: 's3' },
  );
}

/** The SDK S3Storage cannot load without (both forms of sdk-load.ts name it the same way). */
export const S3_PEER: PeerPackage = { packages: '@aws-sdk/client-s3', usedBy: 'media-storage/s3 (S3Storage)', backend: 's3' };
