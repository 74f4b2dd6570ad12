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
  /** Anything that fits no other code; `cause` summarises the original error. */
  'UNKNOWN',
] as const;

/** One of the {@link ErrorCodes}: what kind of failure a {@link MediaStorageError} is. */
export type MediaStorageErrorCode = (typeof ErrorCodes)[number];

/** What a {@link MediaStorageError} carries besides its code and message: where it happened and why. */
export interface MediaStorageErrorOptions {
  /** Name of the backend that failed, e.g. `local`, `s3`. */
  backend?: string;
  /** The key the operation was about, if any. */
  key?: string;
  /** The operation, e.g. `save`, `read`. */
  operation?: string;
  /**
   * The original error. It is kept as a {@link CauseSummary} (name, message, code, HTTP status,
   * request id and its own cause, all scrubbed of credentials), never as the SDK's error object,
   * whose request, response and config carry headers, signatures and keys.
   */
  cause?: unknown;
  /** For UNAVAILABLE caused by rate limiting: when the caller may try again. */
  retryAfter?: Date;
  /** HTTP status of the backend's answer, when there was one. */
  status?: number;
}

const SECRET_QUERY_PARAMS =
  /([?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|signature|sig|Authorization|api_secret|token|access_token|secret|password)=)[^&\s"'#]+/gi;

/**
 * Credentials in the shapes SDKs and servers print them, whatever the backend: header lines and
 * header objects (`Authorization: …`, `"authorization":"…"`, as in a raw request's `_header`),
 * HTTP Basic and Bearer credentials, SigV4's `Credential=`/`Signature=`, a signature quoted in a
 * message (Cloudinary's "Invalid Signature <hex>"), a password in a URL, and the signature part
 * of a signed Cloudinary delivery URL.
 */
const CREDENTIAL_PATTERNS: ReadonlyArray<readonly [RegExp, string | ((match: string, ...groups: string[]) => string)]> = [
  [/\b((?:proxy-)?authorization|x-amz-security-token|x-bz-[a-z-]*token|cookie|set-cookie)(["']?\s*[:=]\s*["']?)[^\r\n"',}]+/gi, '$1$2[redacted]'],
  [/\b(Basic|Bearer)(\s+)[A-Za-z0-9+/=._~-]{6,}/gi, '$1$2[redacted]'],
  [/\b(Signature|Credential)=[^\s,&"';]+/g, '$1=[redacted]'],
  [/\b(signature)(\s+)[0-9a-f]{16,}/gi, '$1$2[redacted]'],
  // Placeholders in the library's own hints (`cloudinary://API_KEY:API_SECRET@CLOUD_NAME`) stay.
  [
    /([a-z][a-z0-9+.-]*:\/\/([^\s/:@]*)):([^\s/@]*)@/gi,
    (match, start, user, password) => (/^[A-Z][A-Z_]*$/.test(user!) && /^[A-Z][A-Z_]*$/.test(password!) ? match : `${start}:***@`),
  ],
  [/\/s--[A-Za-z0-9_-]{6,40}--(?=\/)/g, '/s--[redacted]--'],
];

/** Removes signatures and tokens from any URLs a message quotes. */
export function redactUrls(text: string): string {
  return text.replace(SECRET_QUERY_PARAMS, '$1[redacted]');
}

/** The spellings of a secret that leak it too: itself, percent-encoded, base64 and base64url. */
function spellings(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  return [...new Set([secret, encodeURIComponent(secret), bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('base64').replace(/=+$/, '')])];
}

/**
 * Replaces each secret (4+ chars) in `text` with `[redacted]` (also its percent-encoded and
 * base64 spellings), then credentials in the shapes SDKs print them (Authorization headers,
 * Basic/Bearer credentials, SigV4 signatures, passwords in URLs) and signed URL parameters.
 */
export function redact(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text;
  for (const secret of secrets) {
    if (!secret || secret.length < 4) continue;
    for (const form of spellings(secret)) if (form.length >= 4) out = out.split(form).join('[redacted]');
  }
  for (const [pattern, replacement] of CREDENTIAL_PATTERNS) out = out.replace(pattern, replacement as (match: string, ...groups: string[]) => string);
  return redactUrls(out);
}

type Secrets = readonly (string | undefined)[];

/** How deep a cause chain is followed; deeper causes are dropped. */
const MAX_CAUSE_DEPTH = 8;
/** How many of an AggregateError's errors are kept. */
const MAX_AGGREGATED = 10;

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
}

/** The first value shaped like a code (`ECONNREFUSED`, `NoSuchKey`, `bad_auth_token`). */
function firstCode(...values: unknown[]): string | undefined {
  for (const v of values) if (typeof v === 'string' && /^[\w.:-]{1,100}$/.test(v)) return v;
  return undefined;
}

/** The first value shaped like a request id (S3's x-amz-id-2 is base64). */
function firstId(...values: unknown[]): string | undefined {
  for (const v of values) if (typeof v === 'string' && /^[\w.:+/=-]{1,200}$/.test(v)) return v;
  return undefined;
}

function firstStatus(...values: unknown[]): number | undefined {
  for (const v of values) if (typeof v === 'number' && Number.isInteger(v) && v >= 100 && v <= 599) return v;
  return undefined;
}

function header(headers: unknown, name: string): unknown {
  const h = record(headers);
  if (!h) return undefined;
  try {
    return typeof h.get === 'function' ? (h.get as (n: string) => unknown).call(h, name) : h[name];
  } catch {
    return undefined;
  }
}

/** The message of any thrown value: an Error's, a `{ message }` or `{ error: { message } }` record's, or the value itself. */
function messageOf(value: unknown): string {
  if (typeof value === 'string') return value;
  const r = record(value);
  if (!r) return value === undefined ? '' : String(value);
  if (typeof r.message === 'string') return r.message;
  const inner = record(r.error);
  if (typeof inner?.message === 'string') return inner.message;
  return '';
}

/**
 * What a {@link MediaStorageError} keeps of the error that caused it: the name, message, code,
 * HTTP status and request id of the original, and its own cause summarised the same way, with
 * credentials removed from every string (see {@link redact}). The SDK's error object itself is
 * not kept: AWS SDK errors carry the signed request (`$response`), axios errors (backblaze-b2)
 * the `Authorization` header of their `config`, and Cloudinary rejections the API secret, and
 * loggers that serialise causes (pino, Sentry) would ship them.
 */
export class CauseSummary extends Error {
  /** The original error's `name` (e.g. `SignatureDoesNotMatch`, `AxiosError`, `TypeError`). */
  declare readonly name: string;
  /** The original's code: Node's (`ECONNREFUSED`), the provider's (`NoSuchKey`, `bad_auth_token`) or the SDK's (`ERR_BAD_REQUEST`). */
  declare readonly code?: string;
  /** HTTP status of the answer the original error was about. */
  declare readonly status?: number;
  /** The provider's request id (S3's x-amz-request-id, ...), for support requests. */
  declare readonly requestId?: string;
  /** S3's extended request id (x-amz-id-2), which AWS support asks for with the request id. */
  declare readonly extendedRequestId?: string;
  /** The summaries of an AggregateError's errors (a connection tried on several addresses). */
  declare readonly errors?: CauseSummary[];

  /** Use {@link summarizeCause}. */
  private constructor(fields: {
    name: string;
    message: string;
    stack: string;
    code?: string;
    status?: number;
    requestId?: string;
    extendedRequestId?: string;
    cause?: unknown;
    errors?: CauseSummary[];
  }) {
    super(fields.message, fields.cause === undefined ? undefined : { cause: fields.cause });
    this.name = fields.name;
    if (fields.code !== undefined) this.code = fields.code;
    if (fields.status !== undefined) this.status = fields.status;
    if (fields.requestId !== undefined) this.requestId = fields.requestId;
    if (fields.extendedRequestId !== undefined) this.extendedRequestId = fields.extendedRequestId;
    if (fields.errors !== undefined) this.errors = fields.errors;
    Object.defineProperty(this, 'stack', { value: fields.stack, writable: true, configurable: true, enumerable: false });
  }

  /** The fields a JSON log line shows (Error's own `message` and `cause` are not enumerable). */
  toJSON(): Record<string, unknown> {
    const fields = {
      name: this.name,
      message: this.message,
      code: this.code,
      status: this.status,
      requestId: this.requestId,
      extendedRequestId: this.extendedRequestId,
      errors: this.errors,
      cause: this.cause,
    };
    return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  }

  /** @internal */
  static from(value: unknown, secrets: Secrets, depth: number, seen: Set<unknown>): unknown {
    if (value instanceof MediaStorageError) return value.withSecretsRedacted(secrets);
    const r = record(value);
    const clean = (text: string): string => redact(text, secrets);
    const message = clean(messageOf(value));
    const name = clean(typeof r?.name === 'string' && r.name ? r.name : 'Error');
    // Keep the original's frames (where it was thrown), behind a header made of the clean message.
    const rawStack = typeof r?.stack === 'string' ? r.stack : '';
    const frames = rawStack.split('\n').filter((line) => /^\s+at /.test(line));
    const stack = clean([`${name}${message ? `: ${message}` : ''}`, ...frames].join('\n'));
    if (value instanceof CauseSummary) {
      if (message === value.message && stack === value.stack && name === value.name) {
        const cause = value.cause === undefined ? undefined : CauseSummary.from(value.cause, secrets, depth + 1, seen);
        if (cause === value.cause) return value;
      }
    }
    seen.add(value);
    const metadata = record(r?.$metadata);
    const response = record(r?.response) ?? record(r?.$response);
    const inner = record(r?.error);
    const next = r?.cause;
    const cause = next !== undefined && depth < MAX_CAUSE_DEPTH && !seen.has(next) ? CauseSummary.from(next, secrets, depth + 1, seen) : undefined;
    const errors =
      Array.isArray(r?.errors) && depth < MAX_CAUSE_DEPTH
        ? (r.errors as unknown[])
            .slice(0, MAX_AGGREGATED)
            .filter((e) => !seen.has(e))
            .map((e) => CauseSummary.from(e, secrets, depth + 1, seen) as CauseSummary)
        : undefined;
    return new CauseSummary({
      name,
      message,
      stack,
      code: firstCode(r?.code, r?.Code, r?.b2Code, inner?.code),
      status: firstStatus(
        r?.status,
        r?.statusCode,
        r?.httpCode,
        r?.http_code,
        inner?.http_code,
        metadata?.httpStatusCode,
        response?.status,
        response?.statusCode,
      ),
      requestId: firstId(r?.requestId, metadata?.requestId, header(response?.headers, 'x-amz-request-id'), header(response?.headers, 'x-request-id')),
      extendedRequestId: firstId(r?.extendedRequestId, metadata?.extendedRequestId, header(response?.headers, 'x-amz-id-2')),
      cause,
      errors: errors?.length ? errors : undefined,
    });
  }
}

/**
 * The scrubbed form of an error for use as a `cause` (see {@link CauseSummary}): a
 * MediaStorageError stays one (with `secrets` removed), a CauseSummary is returned as it is when
 * `secrets` change nothing, anything else becomes a CauseSummary.
 */
export function summarizeCause(value: unknown, secrets: readonly (string | undefined)[] = []): unknown {
  try {
    return CauseSummary.from(value, secrets, 0, new Set());
  } catch {
    // A cause whose getters throw (a revoked Proxy, an exotic SDK object) is not worth an error of its own.
    return CauseSummary.from(new Error('(the original error could not be read)'), secrets, 0, new Set());
  }
}

/**
 * The error every MediaStorage operation fails with: branch on its stable `code`, not on the
 * message. The message and the `cause` kept with it are scrubbed of credentials (see
 * {@link MediaStorageErrorOptions.cause}).
 */
export class MediaStorageError extends Error {
  override readonly name = 'MediaStorageError';
  readonly code: MediaStorageErrorCode;
  readonly backend: string | undefined;
  readonly key: string | undefined;
  readonly operation: string | undefined;
  readonly retryAfter: Date | undefined;
  readonly status: number | undefined;

  constructor(code: MediaStorageErrorCode, message: string, options: MediaStorageErrorOptions = {}) {
    super(redact(message), options.cause === undefined ? undefined : { cause: summarizeCause(options.cause) });
    this.code = code;
    this.backend = options.backend;
    this.key = options.key;
    this.operation = options.operation;
    this.retryAfter = options.retryAfter;
    this.status = options.status;
  }

  /**
   * This error with `secrets` (and their encoded spellings) removed from its message and from
   * every message and stack of its cause chain; the error itself when none of them is there.
   */
  withSecretsRedacted(secrets: readonly (string | undefined)[]): MediaStorageError {
    const clean = redact(this.message, secrets);
    const cause = this.cause === undefined ? undefined : summarizeCause(this.cause, secrets);
    if (clean === this.message && cause === this.cause) return this;
    return new MediaStorageError(this.code, clean, {
      backend: this.backend,
      key: this.key,
      operation: this.operation,
      cause,
      retryAfter: this.retryAfter,
      status: this.status,
    });
  }
}

/**
 * Whether `err` is a {@link MediaStorageError}: an instance, or any object whose `name` is
 * `MediaStorageError` and whose `code` is a string, such as one thrown by another copy of the
 * package (whose class differs).
 */
export function isMediaStorageError(err: unknown): err is MediaStorageError {
  return (
    err instanceof MediaStorageError ||
    (typeof err === 'object' &&
      err !== null &&
      (err as { name?: unknown }).name === 'MediaStorageError' &&
      typeof (err as { code?: unknown }).code === 'string')
  );
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
