/**
 * B2's failures: what the SDK (axios) or a fetch threw, typed as {@link B2ApiError}, and the
 * mapping of those to MediaStorageError codes.
 */
import { isMediaStorageError, type MediaStorageErrorCode } from '../core/errors.js';
import { codeFromNodeError, codeFromStatus, retryAfterFromHeader, type ErrorMapper } from '../core/error-mapping.js';
import type { B2Capability } from './auth.js';

/** The API name used for a HEAD of b2_download_file_by_name (its 401 has no body to say why). */
export const HEAD_API = 'b2_download_file_by_name (HEAD)';

/** The capability a B2 call needs, for messages about the 401/403 a call answered. */
export const CAPABILITY_OF_CALL: Readonly<Record<string, B2Capability>> = {
  b2_list_buckets: 'listBuckets',
  b2_list_file_names: 'listFiles',
  b2_list_file_versions: 'listFiles',
  b2_list_unfinished_large_files: 'listFiles',
  download: 'readFiles',
  [HEAD_API]: 'readFiles',
  b2_get_download_authorization: 'shareFiles',
  b2_get_upload_url: 'writeFiles',
  b2_upload_file: 'writeFiles',
  b2_start_large_file: 'writeFiles',
  b2_get_upload_part_url: 'writeFiles',
  b2_upload_part: 'writeFiles',
  b2_finish_large_file: 'writeFiles',
  b2_cancel_large_file: 'writeFiles',
  b2_copy_file: 'writeFiles',
  b2_delete_file_version: 'deleteFiles',
};

/** A failed B2 call: the JSON error body B2 sends (`{ status, code, message }`), or a network failure. */
export class B2ApiError extends Error {
  override readonly name = 'B2ApiError';
  constructor(
    /** The API call, e.g. `b2_upload_file`, `download`. */
    readonly api: string,
    /** HTTP status; undefined when no answer arrived. */
    readonly status: number | undefined,
    /** B2's error code (`expired_auth_token`, `not_found`...) or the network error code. */
    readonly b2Code: string | undefined,
    message: string,
    readonly retryAfter?: Date,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

interface AxiosLikeError {
  response?: { status?: number; data?: unknown; headers?: Record<string, unknown> };
  code?: string;
  message?: string;
  name?: string;
}

function readJsonStream(stream: NodeJS.ReadableStream): Promise<unknown> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(Buffer.from(c)));
    stream.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        resolve(undefined);
      }
    });
    stream.on('error', () => resolve(undefined));
  });
}

/** Turns whatever the SDK (axios) threw into a B2ApiError; errors already typed pass through. */
export async function toB2ApiError(api: string, err: unknown): Promise<unknown> {
  if (isMediaStorageError(err) || err instanceof B2ApiError) return err;
  const e = err as AxiosLikeError;
  if (e?.name === 'CanceledError' || e?.code === 'ERR_CANCELED') return err;
  const response = e?.response;
  if (response?.status === undefined) {
    return new B2ApiError(api, undefined, e?.code, `${api}: ${e?.message ?? String(err)}`, undefined, { cause: err });
  }
  let body = response.data;
  if (body && typeof (body as NodeJS.ReadableStream).on === 'function') body = await readJsonStream(body as NodeJS.ReadableStream);
  const json = (body && typeof body === 'object' ? body : {}) as { code?: unknown; message?: unknown };
  const retryAfter = retryAfterFromHeader(response.headers?.['retry-after']);
  const code = typeof json.code === 'string' ? json.code : undefined;
  const message = typeof json.message === 'string' && json.message ? json.message : `HTTP ${response.status}`;
  return new B2ApiError(api, response.status, code, `${api} answered ${response.status}${code ? ` ${code}` : ''}: ${message}`, retryAfter, { cause: err });
}

export function isAbort(err: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted) return true;
  const e = err as AxiosLikeError;
  return e?.name === 'CanceledError' || e?.code === 'ERR_CANCELED' || e?.name === 'AbortError';
}

/**
 * Whether a failure is temporary (it maps to UNAVAILABLE, for the retry layer): 408, 429, 5xx, or
 * no answer at all (connection broken). The call may or may not have been carried out.
 */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof B2ApiError)) return false;
  if (err.status === undefined) return true;
  return err.status === 408 || err.status === 429 || err.status >= 500;
}

/** HEAD requests get no error body, so their 401 cannot say whether the token expired. */
export function isTokenFailure(err: unknown): boolean {
  if (!(err instanceof B2ApiError) || err.status !== 401) return false;
  return err.b2Code === 'expired_auth_token' || err.b2Code === 'bad_auth_token' || (err.api === HEAD_API && err.b2Code === undefined);
}

/**
 * Whether a failed b2_upload_file or b2_upload_part asks for a fresh upload URL and another try:
 * no connection or a broken one (including a socket timeout), 408, 5xx, or 401 (the upload token
 * expired or is no longer good). Backblaze, "Uploading" and the Integration Checklist. A 429 is
 * not among them: throttling is for the retry layer's backoff.
 */
export function needsFreshUploadUrl(err: unknown): boolean {
  if (!(err instanceof B2ApiError)) return false;
  if (err.status === undefined) return true;
  return err.status === 401 || err.status === 408 || err.status >= 500;
}

/** The MediaStorageError code (and message, status, Retry-After) a B2 failure stands for. */
export const mapB2Error: ErrorMapper = (err) => {
  if (err instanceof B2ApiError) {
    let code: MediaStorageErrorCode | undefined;
    if (err.status === undefined) code = codeFromNodeError(err.cause) ?? 'UNAVAILABLE';
    else if (err.api === 'b2_authorize_account' && err.status === 401) code = 'AUTH';
    // authorize takes no input of ours: a 400 there is the endpoint or the key's version (multi-bucket keys need v4).
    else if (err.api === 'b2_authorize_account' && err.status === 400) code = 'CONFIG';
    // A HEAD's 401 has no body; it outlived a fresh token, so the key is valid but not allowed.
    else if (err.b2Code === 'unauthorized' || err.b2Code === 'access_denied' || (err.api === HEAD_API && err.status === 401)) {
      const capability = CAPABILITY_OF_CALL[err.api];
      const hint = capability
        ? `the application key may lack the "${capability}" capability, or not reach this bucket or file name`
        : 'the application key is not allowed to do this';
      return { code: 'PERMISSION', message: `B2 ${err.message} (${hint})`, status: err.status, retryAfter: err.retryAfter };
    } else if (err.b2Code === 'file_not_present' || err.b2Code === 'no_such_file' || err.b2Code === 'not_found') code = 'NOT_FOUND';
    else if (err.b2Code === 'bad_bucket_id') code = 'CONFIG';
    else code = codeFromStatus(err.status);
    return { code: code ?? 'UNKNOWN', message: `B2 ${err.message}`, status: err.status, retryAfter: err.retryAfter };
  }
  if (isAbort(err)) return { code: 'ABORTED', message: 'the operation was aborted' };
  return undefined;
};
