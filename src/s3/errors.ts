import { codeFromNodeError, codeFromStatus, type ErrorMapper, type ErrorMapping } from '../core/error-mapping.js';
import type { MediaStorageErrorCode } from '../core/errors.js';

/** What {@link mapS3Error} decides for one failure (the core's {@link ErrorMapping}). */
export type S3ErrorMapping = ErrorMapping;

/** Where the storage points, for messages that tell the user what to fix. */
export interface S3Target {
  bucket: string;
  endpoint?: string;
  region?: string;
}

interface S3ErrorShape {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $response?: { statusCode?: number; headers?: Record<string, string | undefined> };
}

// S3 error codes whose meaning is more precise than their HTTP status (most are 400 or 403).
const CODES: Record<string, MediaStorageErrorCode> = {
  NoSuchKey: 'NOT_FOUND',
  NotFound: 'NOT_FOUND',
  NoSuchVersion: 'NOT_FOUND',
  // The credentials themselves were rejected.
  InvalidAccessKeyId: 'AUTH',
  SignatureDoesNotMatch: 'AUTH',
  ExpiredToken: 'AUTH',
  InvalidToken: 'AUTH',
  TokenRefreshRequired: 'AUTH',
  // Valid credentials, not allowed.
  AccessDenied: 'PERMISSION',
  AllAccessDisabled: 'PERMISSION',
  AccountProblem: 'PERMISSION',
  // Configuration the user must fix.
  NoSuchBucket: 'CONFIG',
  InvalidBucketName: 'CONFIG',
  PermanentRedirect: 'CONFIG',
  AuthorizationHeaderMalformed: 'CONFIG',
  AccessControlListNotSupported: 'CONFIG',
  CredentialsProviderError: 'CONFIG',
  NotImplemented: 'UNSUPPORTED',
  // Temporary: the caller may try again (the SDK has already retried).
  SlowDown: 'UNAVAILABLE',
  ServiceUnavailable: 'UNAVAILABLE',
  InternalError: 'UNAVAILABLE',
  RequestTimeout: 'UNAVAILABLE',
  TooManyRequests: 'UNAVAILABLE',
  BadDigest: 'UNAVAILABLE',
  XAmzContentSHA256Mismatch: 'UNAVAILABLE',
  TimeoutError: 'UNAVAILABLE',
  // Conditional writes (If-None-Match: *): an object is already there, or a concurrent write won.
  PreconditionFailed: 'ALREADY_EXISTS',
  ConditionalRequestConflict: 'ALREADY_EXISTS',
  EntityTooLarge: 'TOO_LARGE',
  InvalidRange: 'INVALID_INPUT',
  KeyTooLongError: 'INVALID_KEY',
};

function where(target: S3Target): string {
  return target.endpoint ? `at ${target.endpoint}` : target.region ? `in AWS region ${target.region}` : 'on AWS';
}

/**
 * Stands for the NoSuchBucket a HEAD cannot carry: a HEAD answer has no body, so a HeadObject on a
 * missing bucket is a bare 404, like a missing key. S3Storage throws it once HeadBucket has said
 * the bucket is absent; {@link mapS3Error} maps it as S3's own NoSuchBucket.
 */
export class MissingBucketError extends Error {
  override readonly name = 'NoSuchBucket';
  readonly $metadata = { httpStatusCode: 404 };
  constructor(cause: unknown) {
    super('HeadObject answered 404 and HeadBucket says the bucket does not exist', { cause });
  }
}

/** Extra words for the codes whose fix is not obvious from S3's own message. */
function explain(s3Code: string, target: S3Target): string | undefined {
  switch (s3Code) {
    case 'NoSuchBucket':
      return `the bucket "${target.bucket}" does not exist ${where(target)}; create it or fix the bucket option`;
    case 'InvalidBucketName':
      return `"${target.bucket}" is not a valid bucket name`;
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
      return `the bucket "${target.bucket}" is in another region or at another endpoint than ${where(target)}; fix the region or endpoint option`;
    case 'AccessControlListNotSupported':
      return `the bucket "${target.bucket}" has ACLs disabled; set acl: false (and grant public reads with a bucket policy)`;
    case 'InvalidAccessKeyId':
    case 'SignatureDoesNotMatch':
      return `the S3 credentials were rejected (${s3Code}); check the access key id and secret key`;
    case 'CredentialsProviderError':
      return 'no S3 credentials found: pass credentials or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY';
    case 'BadDigest':
    case 'XAmzContentSHA256Mismatch':
      return 'the bytes the server received do not match their checksum (corrupted in transit); nothing was stored, try again';
    default:
      return undefined;
  }
}

/** What a status without an error body (a HEAD's answer) can be said to mean. */
function bareStatusMessage(status: number): string {
  if (status === 403)
    return 'HTTP 403 without an error body (a HEAD answer cannot say why): the credentials were rejected or may not read this object; check the access key id and secret key, and that they allow s3:GetObject and s3:ListBucket';
  if (status === 400) return 'HTTP 400 without an error body: check the region and the endpoint';
  return `HTTP ${status} without an error body`;
}

function retryAfterFrom(err: S3ErrorShape): Date | undefined {
  const header = err.$response?.headers?.['retry-after'];
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return new Date(Date.now() + seconds * 1000);
  const date = new Date(header);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/**
 * Maps an error from the AWS SDK (after its own retries) to a MediaStorageError code: S3's error
 * code first, then the HTTP status, then Node's network error codes. `undefined` leaves the
 * decision to the core's generic rules.
 */
export function mapS3Error(err: unknown, target: S3Target): S3ErrorMapping | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as S3ErrorShape;
  const status = e.$metadata?.httpStatusCode ?? e.$response?.statusCode;
  const s3Code = [e.Code, e.name].find((c): c is string => typeof c === 'string' && c in CODES);
  const code = (s3Code ? CODES[s3Code] : undefined) ?? codeFromStatus(status) ?? codeFromNodeError(err);
  if (!code) return undefined;
  const detail = s3Code ? explain(s3Code, target) : undefined;
  const bare = typeof e.message !== 'string' || e.message === '' || e.message === 'UnknownError' || e.message === 'Unknown';
  // A HEAD answer has no body: the SDK knows only the status and says "Unknown".
  const original = !bare ? (e.message as string) : s3Code ? s3Code : status !== undefined ? bareStatusMessage(status) : (e.name ?? 'unknown error');
  return {
    code,
    message: detail ? `${detail} (${original})` : original,
    status,
    retryAfter: code === 'UNAVAILABLE' ? retryAfterFrom(e) : undefined,
  };
}

mapS3Error satisfies ErrorMapper<S3Target>;
