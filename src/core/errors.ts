/**
 * Every failure a MediaStorage reports is a {@link MediaStorageError} with a stable
 * {@link MediaStorageErrorCode}, so callers branch on `err.code`, never on message text.
 */

/** Stable error codes. New codes may be added in minor versions; existing ones never change meaning. */
export const ErrorCodes = [
  /** No object under the key. */
  'NOT_FOUND',
  /** The key breaks the key rules (traversal, absolute, control characters, too long...). */
  'INVALID_KEY',
  /** An argument or body is unusable (empty body, bad range, unsupported body type...). */
  'INVALID_INPUT',
  /** The body is larger than `maxSize` or than the backend accepts. */
  'TOO_LARGE',
  /** `ifExists: 'fail'` and an object is already stored under the key. */
  'ALREADY_EXISTS',
  /** The credentials were rejected (wrong key or secret, bad signature, expired token). */
  'AUTH',
  /** The credentials are valid but not allowed to do this. */
  'PERMISSION',
  /** The storage is misconfigured (missing bucket, bad option, missing optional dependency). */
  'CONFIG',
  /** The backend could not be reached or failed temporarily (5xx, throttling, timeouts, disk full). */
  'UNAVAILABLE',
  /** The operation was cancelled through an AbortSignal. */
  'ABORTED',
  /** The backend cannot do this (see its capabilities). */
  'UNSUPPORTED',
  /** Anything that fits no other code; `cause` has the original error. */
  'UNKNOWN',
] as const;

export type MediaStorageErrorCode = (typeof ErrorCodes)[number];

export interface MediaStorageErrorOptions {
  /** Name of the backend that failed, e.g. `local`, `s3`. */
  backend?: string;
  /** The key the operation was about, if any. */
  key?: string;
  /** The operation, e.g. `save`, `read`. */
  operation?: string;
  /** The original error. */
  cause?: unknown;
  /** For UNAVAILABLE caused by rate limiting: when the caller may try again. */
  retryAfter?: Date;
  /** HTTP status of the backend's answer, when there was one. */
  status?: number;
}

const SECRET_QUERY_PARAMS =
  /([?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|signature|sig|Authorization|api_secret|token)=)[^&\s"']+/gi;

/** Removes signatures and tokens from any URLs a message quotes. */
export function redactUrls(text: string): string {
  return text.replace(SECRET_QUERY_PARAMS, '$1[redacted]');
}

/** Replaces each secret (4+ chars) in `text` with `[redacted]`, and redacts signed URL parameters. */
export function redact(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  return redactUrls(out);
}

export class MediaStorageError extends Error {
  override readonly name = 'MediaStorageError';
  readonly code: MediaStorageErrorCode;
  readonly backend: string | undefined;
  readonly key: string | undefined;
  readonly operation: string | undefined;
  readonly retryAfter: Date | undefined;
  readonly status: number | undefined;

  constructor(code: MediaStorageErrorCode, message: string, options: MediaStorageErrorOptions = {}) {
    super(redactUrls(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.backend = options.backend;
    this.key = options.key;
    this.operation = options.operation;
    this.retryAfter = options.retryAfter;
    this.status = options.status;
  }

  /** A copy with a new message whose secrets were removed; the cause stays attached for debugging. */
  withSecretsRedacted(secrets: readonly (string | undefined)[]): MediaStorageError {
    const clean = redact(this.message, secrets);
    if (clean === this.message) return this;
    return new MediaStorageError(this.code, clean, {
      backend: this.backend,
      key: this.key,
      operation: this.operation,
      cause: this.cause,
      retryAfter: this.retryAfter,
      status: this.status,
    });
  }
}

export function isMediaStorageError(err: unknown): err is MediaStorageError {
  return err instanceof MediaStorageError || (typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'MediaStorageError' && typeof (err as { code?: unknown }).code === 'string');
}

/** True for a MediaStorageError with code NOT_FOUND. */
export function isNotFound(err: unknown): boolean {
  return isMediaStorageError(err) && err.code === 'NOT_FOUND';
}

/** True when `err` is (or wraps) an abort. */
export function isAbortError(err: unknown): boolean {
  if (isMediaStorageError(err)) return err.code === 'ABORTED';
  const e = err as { name?: string; code?: string } | null;
  return !!e && (e.name === 'AbortError' || e.code === 'ABORT_ERR');
}

export function abortedError(operation: string, key?: string, backend?: string, cause?: unknown): MediaStorageError {
  return new MediaStorageError('ABORTED', `${operation} was aborted`, { operation, key, backend, cause });
}

/** Throws ABORTED when the signal has already fired. */
export function throwIfAborted(signal: AbortSignal | undefined, operation: string, key?: string): void {
  if (signal?.aborted) throw abortedError(operation, key, undefined, signal.reason);
}
