import { MediaStorageError, isMediaStorageError, type MediaStorageErrorCode } from './errors.js';

/**
 * What a backend's errors.ts decides for one provider failure: the code, and optionally a
 * message, the HTTP status and when to retry (for UNAVAILABLE). The core builds the
 * MediaStorageError from it ({@link toMediaStorageError}), with context and redaction.
 */
export interface ErrorMapping {
  code: MediaStorageErrorCode;
  message?: string;
  status?: number;
  retryAfter?: Date;
}

/**
 * The shape every backend's error mapper has: `(err, context) => ErrorMapping | undefined`, where
 * `context` is what the backend knows that makes a message useful (bucket, endpoint) and
 * `undefined` leaves the failure to the generic rules (Node error codes, UNKNOWN).
 */
export type ErrorMapper<Context = undefined> = (err: unknown, context: Context) => ErrorMapping | undefined;

/** Where an error happened, for messages and for the error's fields. */
export interface ErrorContext {
  backend: string;
  operation: string;
  key?: string;
}

/** The code an HTTP status means for a storage call. */
export function codeFromStatus(status: number | undefined): MediaStorageErrorCode | undefined {
  if (status === undefined) return undefined;
  if (status === 400) return 'INVALID_INPUT';
  if (status === 401) return 'AUTH';
  if (status === 403) return 'PERMISSION';
  if (status === 404 || status === 410) return 'NOT_FOUND';
  if (status === 409 || status === 412) return 'ALREADY_EXISTS';
  if (status === 413) return 'TOO_LARGE';
  if (status === 416) return 'INVALID_INPUT';
  if (status === 408 || status === 420 || status === 429 || status >= 500) return 'UNAVAILABLE';
  return undefined;
}

const NODE_ERROR_CODES: Record<string, MediaStorageErrorCode> = {
  ENOENT: 'NOT_FOUND',
  ENOTDIR: 'NOT_FOUND',
  EACCES: 'PERMISSION',
  EPERM: 'PERMISSION',
  EROFS: 'PERMISSION',
  EEXIST: 'ALREADY_EXISTS',
  ENOSPC: 'UNAVAILABLE',
  EDQUOT: 'UNAVAILABLE',
  EIO: 'UNAVAILABLE',
  EMFILE: 'UNAVAILABLE',
  ENFILE: 'UNAVAILABLE',
  EBUSY: 'UNAVAILABLE',
  EAGAIN: 'UNAVAILABLE',
  ECONNREFUSED: 'UNAVAILABLE',
  ECONNRESET: 'UNAVAILABLE',
  ETIMEDOUT: 'UNAVAILABLE',
  ENOTFOUND: 'UNAVAILABLE',
  EAI_AGAIN: 'UNAVAILABLE',
  EPIPE: 'UNAVAILABLE',
  EHOSTUNREACH: 'UNAVAILABLE',
  ENETUNREACH: 'UNAVAILABLE',
  UND_ERR_SOCKET: 'UNAVAILABLE',
  UND_ERR_CONNECT_TIMEOUT: 'UNAVAILABLE',
  UND_ERR_HEADERS_TIMEOUT: 'UNAVAILABLE',
  UND_ERR_BODY_TIMEOUT: 'UNAVAILABLE',
  ERR_STREAM_PREMATURE_CLOSE: 'UNAVAILABLE',
  ENAMETOOLONG: 'INVALID_KEY',
  EISDIR: 'NOT_FOUND',
  ABORT_ERR: 'ABORTED',
};

function describe(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (typeof err === 'object' && err !== null) {
    const e = err as { message?: unknown; error?: { message?: unknown } };
    if (typeof e.message === 'string') return e.message;
    if (typeof e.error?.message === 'string') return e.error.message;
  }
  return String(err);
}

/** The code a plain Node/network error means, by its `code`, `name` or `status`. */
export function codeFromNodeError(err: unknown): MediaStorageErrorCode | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; name?: unknown; cause?: unknown };
  if (e.name === 'AbortError') return 'ABORTED';
  if (e.name === 'TimeoutError') return 'UNAVAILABLE';
  if (typeof e.code === 'string' && NODE_ERROR_CODES[e.code]) return NODE_ERROR_CODES[e.code];
  // fetch() wraps socket errors: TypeError('fetch failed', { cause: { code: 'ECONNREFUSED' } })
  if (e.cause && e.cause !== err) return codeFromNodeError(e.cause);
  return undefined;
}

/**
 * Builds the MediaStorageError for a failure: keeps a MediaStorageError's code (filling in the
 * backend and key), else uses `code` when the backend decided one, else Node's error code, else
 * UNKNOWN. The original error is always the `cause`.
 */
export function toMediaStorageError(
  err: unknown,
  context: ErrorContext,
  code?: MediaStorageErrorCode,
  message?: string,
  extra: { status?: number; retryAfter?: Date } = {},
): MediaStorageError {
  if (isMediaStorageError(err) && code === undefined) {
    if (err.backend !== undefined && (err.key !== undefined || context.key === undefined)) return err;
    return new MediaStorageError(err.code, err.message, {
      backend: err.backend ?? context.backend,
      key: err.key ?? context.key,
      operation: err.operation ?? context.operation,
      cause: err.cause,
      retryAfter: err.retryAfter,
      status: err.status,
    });
  }
  const finalCode = code ?? codeFromNodeError(err) ?? 'UNKNOWN';
  const where = context.key === undefined ? context.operation : `${context.operation} "${context.key}"`;
  const text = message ?? describe(err);
  return new MediaStorageError(finalCode, `${context.backend}: ${where} failed: ${text}`, {
    backend: context.backend,
    key: context.key,
    operation: context.operation,
    cause: err,
    status: extra.status,
    retryAfter: extra.retryAfter,
  });
}

/**
 * A Retry-After header value (seconds, or an HTTP date; RFC 9110 section 10.2.3) as the time to
 * retry at; undefined when absent or unreadable.
 */
export function retryAfterFromHeader(value: unknown, now = Date.now()): Date | undefined {
  if (typeof value !== 'string' && typeof value !== 'number') return undefined;
  const text = String(value).trim();
  if (/^\d+$/.test(text)) return new Date(now + Number(text) * 1000);
  const date = /[a-z]/i.test(text) ? new Date(text) : undefined;
  return date && !Number.isNaN(date.getTime()) ? date : undefined;
}
