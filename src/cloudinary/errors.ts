import { codeFromStatus, retryAfterFromHeader } from '../core/error-mapping.js';
import type { MediaStorageErrorCode } from '../core/errors.js';

/**
 * A Cloudinary failure with its HTTP status, stripped of what the SDK attaches to its rejections
 * (the Admin API's rejection carries `request_options.auth`, i.e. `api_key:api_secret`, which must
 * never travel on as an error's `cause`).
 */
export class CloudinaryApiError extends Error {
  override readonly name = 'CloudinaryApiError';
  /** `delivery`: the answer of a delivery URL (res.cloudinary.com), not of the API. */
  readonly source: 'api' | 'delivery';
  /** When the answer said to try again (its Retry-After, or a rate limit's X-FeatureRateLimit-Reset). */
  retryAfter: Date | undefined;
  constructor(
    message: string,
    /** HTTP status (the SDK's `http_code`); 499 is the SDK's own request timeout. */
    readonly httpCode: number | undefined,
    options?: { cause?: unknown; source?: 'api' | 'delivery'; retryAfter?: Date },
  ) {
    super(message, options);
    this.source = options?.source ?? 'api';
    this.retryAfter = options?.retryAfter;
  }
}

/**
 * When an answer's headers say to try again: `Retry-After` (RFC 9110; proxies and edges send it
 * with 429 and 503), else, on a rate limit (420, 429), `X-FeatureRateLimit-Reset`, the time
 * Cloudinary's Admin API renews its hourly budget (an HTTP date, sent on every Admin API answer).
 */
export function retryHintOf(status: number | undefined, headers: Record<string, string | string[] | undefined>, now = Date.now()): Date | undefined {
  const retryAfter = retryAfterFromHeader(headers['retry-after'], now);
  if (retryAfter) return retryAfter;
  const reset = headers['x-featureratelimit-reset'];
  if ((status === 420 || status === 429) && typeof reset === 'string') {
    const at = new Date(reset);
    if (!Number.isNaN(at.getTime()) && at.getTime() > now) return at;
  }
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/**
 * Normalises every shape the SDK rejects with:
 * - the uploader's `{ message, http_code, name }` (the result's `error` field);
 * - the Admin API's `{ error: { message, http_code }, request_options, query_params }`;
 * - `{ error: Error }` for a socket error during an upload, and a bare Node error from the Admin API;
 * - `{ message: Error, http_code }` when an Admin API answer breaks off after its status line.
 * Network errors come back as the Node error itself (its `code` decides the mapping).
 */
export function fromSdkRejection(err: unknown): Error {
  if (err instanceof CloudinaryApiError) return err;
  if (isRecord(err)) {
    const inner = err.error;
    if (inner instanceof Error) return inner;
    // The Admin API's answer broke off midway: `{ message: <the socket error>, http_code: 200 }`.
    if (!(err instanceof Error) && err.message instanceof Error) return err.message;
    if (isRecord(inner) && (typeof inner.message === 'string' || typeof inner.http_code === 'number')) {
      return new CloudinaryApiError(String(inner.message ?? 'Cloudinary error'), typeof inner.http_code === 'number' ? inner.http_code : undefined);
    }
    if (!(err instanceof Error) && (typeof err.message === 'string' || typeof err.http_code === 'number')) {
      return new CloudinaryApiError(String(err.message ?? 'Cloudinary error'), typeof err.http_code === 'number' ? err.http_code : undefined);
    }
  }
  if (err instanceof Error) return err;
  return new CloudinaryApiError(String(err), undefined);
}

const UNITS: Record<string, number> = { second: 1000, minute: 60_000, hour: 3_600_000 };

/**
 * When a rate-limited caller may try again, when the answer's own headers did not say (see
 * {@link retryHintOf}; the SDK drops them, ./sdk.ts reads them off the response): the wait the
 * message states ("try again in 20 minutes"), else the reset time Cloudinary last reported in
 * X-FeatureRateLimit-Reset on a successful call, else the next full hour, since the Admin API
 * budget is hourly.
 */
export function rateLimitRetryAfter(message: string, lastKnownReset: Date | undefined, now = new Date()): Date {
  const stated = /try again in (\d+)\s*(second|minute|hour)s?/i.exec(message);
  if (stated) return new Date(now.getTime() + Number(stated[1]) * UNITS[stated[2]!.toLowerCase()]!);
  if (lastKnownReset && lastKnownReset.getTime() > now.getTime()) return lastKnownReset;
  const next = new Date(now);
  next.setUTCMinutes(0, 0, 0);
  next.setUTCHours(next.getUTCHours() + 1);
  return next;
}

export interface MappedError {
  code: MediaStorageErrorCode;
  message?: string;
  status?: number;
  retryAfter?: Date;
}

/** The MediaStorageError code for a Cloudinary failure; `undefined` leaves it to the core's Node-error rules. */
export function mapCloudinaryError(err: unknown, lastKnownReset?: Date): MappedError | undefined {
  if (!(err instanceof CloudinaryApiError)) return undefined;
  const status = err.httpCode;
  const message = status === undefined ? err.message : `${err.message} (HTTP ${status})`;
  if (status === 420 || status === 429) {
    return { code: 'UNAVAILABLE', message: `rate limited: ${message}`, status, retryAfter: err.retryAfter ?? rateLimitRetryAfter(err.message, lastKnownReset) };
  }
  if (status === 499) return { code: 'UNAVAILABLE', message, status };
  // Delivery URLs carry no credentials of ours: a 401 there is an access rule (a tampered or
  // missing signature, or an account that blocks e.g. PDF and ZIP delivery), not a wrong secret.
  if (err.source === 'delivery' && status === 401) return { code: 'PERMISSION', message, status };
  if (status === 400 && /file size too large|too large/i.test(err.message)) return { code: 'TOO_LARGE', message, status };
  // The API's answer to a cloud name it does not know (401 from the Upload API): a setting, not the key or secret.
  if (err.source === 'api' && /invalid cloud_name/i.test(err.message))
    return { code: 'CONFIG', message: `${message}: check the cloud name (cloudName or CLOUDINARY_URL)`, status };
  // A public ID Cloudinary refuses: the key cannot be stored as it is.
  if (status === 400 && /public_id .*is invalid/i.test(err.message)) return { code: 'INVALID_KEY', message, status };
  const code = codeFromStatus(status) ?? 'UNKNOWN';
  // A temporary failure (5xx, 408) keeps the server's Retry-After for the retry layer.
  return { code, message, status, ...(code === 'UNAVAILABLE' && err.retryAfter ? { retryAfter: err.retryAfter } : {}) };
}
