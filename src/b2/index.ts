/**
 * Backblaze B2 on its native API, through the official `backblaze-b2` SDK.
 *
 * What B2 needs that a naive adapter gets wrong, and where it is handled here:
 * - an upload URL and token per concurrent upload: {@link UploadUrlPool} hands each save its own;
 * - a SHA-1 on every upload and part, and a known Content-Length: bodies are spooled (memory, or a
 *   temp file above `spoolThreshold`) while their SHA-1s are computed, so retries can resend them;
 * - retries with a fresh upload URL on 401/408/429/5xx or a broken connection (as Backblaze
 *   recommends), up to `maxUploadAttempts`;
 * - account tokens that expire (24 h): every call renews on 401 expired/bad token and retries once;
 * - authorization through b2_authorize_account v4 (multi-bucket keys work only there), whose answer
 *   backblaze-b2 cannot read: it is parsed here (./auth.ts) and handed to the SDK for its v2 calls;
 * - restricted keys (buckets, a name prefix, capabilities): PERMISSION before the request;
 * - file info limits (entries, key length, header bytes): INVALID_INPUT before the request (./file-info.ts);
 * - file versions: delete removes every version; hidden files count as absent;
 * - the large-file protocol above `largeFileThreshold`, cancelled on failure or abort.
 */
import { PassThrough, Transform, pipeline, type Readable } from 'node:stream';
import { BaseStorage, type WriteOptions } from '../core/base.js';
import type { PresignPlan } from '../core/direct-upload.js';
import type { PreparedBody } from '../core/body.js';
import { MediaStorageError, abortedError, isMediaStorageError, type MediaStorageErrorCode } from '../core/errors.js';
import { codeFromNodeError, codeFromStatus, retryAfterFromHeader } from '../core/error-mapping.js';
import { contentDisposition, type ServingOptions } from '../core/serving.js';
import { encodeKeyPath, joinPrefix, normalizeLocation } from '../core/keys.js';
import type { MetadataRules } from '../core/metadata.js';
import { failOnStall } from '../core/stall.js';
import type { Capabilities, CopyOptions, DirectUpload, ListPage, ObjectInfo, ReadOptions, UrlOptions } from '../core/types.js';
import { CAPABILITY_OF_CALL, DEFAULT_AUTHORIZE_URL, HEAD_API, listablePrefix, parseAuthorization, requireCapabilities, requireNameInPrefix, type B2Authorization, type B2Capability } from './auth.js';
import { HEADER_LIMIT, HEADER_LIMIT_ENCRYPTED_OR_LOCKED, MAX_INFO_ENTRIES, checkFileInfoLimits, checkHeaderBytes, decodeInfoHeader, fileInfoHeaderBytes } from './file-info.js';
import { API_TIMEOUT_MS, loadB2Sdk, requestSettings, type B2BucketJson, type B2FileJson, type B2Sdk, type B2UploadTarget, type SdkResponse } from './sdk.js';
import { spoolBody, type SpooledBody } from './spool.js';

export interface B2StorageOptions extends ServingOptions {
  /** Application key ID (or the account ID for the master key). */
  applicationKeyId: string;
  /**
   * Application key: needs listFiles, readFiles, writeFiles, deleteFiles and (private buckets)
   * shareFiles; listBuckets unless `bucketId` is given or the key is restricted to the bucket. An
   * operation the key's capabilities or name prefix do not allow fails with PERMISSION.
   */
  applicationKey: string;
  bucketName: string;
  /**
   * Skips the bucket lookup (b2_list_buckets) when given. Downloads go by `bucketName`, so the first
   * time one finds nothing the pair is checked once (with listBuckets): a mismatch is CONFIG.
   */
  bucketId?: string;
  /** Key prefix inside the bucket, e.g. `media/`. */
  location?: string;
  /** `public` (allPublic bucket): plain download URLs. `private` (default): URLs carry a download authorization. */
  visibility?: 'public' | 'private';
  /** CDN or custom download domain standing for `<downloadUrl>/file/<bucketName>`, used for public URLs. */
  publicBaseUrl?: string;
  /** Lifetime of private URLs when `url()` is given no `expiresIn`, in seconds; default 3600 (B2 allows up to 7 days). */
  defaultExpiresIn?: number;
  /** Bodies larger than this use the large-file API; default 200 MB. */
  largeFileThreshold?: number;
  /** Large-file part size; default the `recommendedPartSize` authorize announces (100 MB on B2). */
  partSize?: number;
  /** Stream bodies up to this size are kept in memory; larger ones go to a temp file. Default 8 MiB. */
  spoolThreshold?: number;
  /** Tries per upload (and per part), each with a fresh upload URL; default 5. */
  maxUploadAttempts?: number;
  /**
   * Override of the authorize endpoint (default `https://api.backblazeb2.com/b2api/v4/b2_authorize_account`),
   * for proxies and tests. Answers of v2, v3 and v4 are all understood.
   */
  apiUrl?: string;
  /**
   * Milliseconds a request may sit idle (no bytes either way) before it fails as a broken
   * connection and is retried; for a download, the wait for the response head. Default 120,000.
   */
  timeout?: number;
}

const DEFAULT_LARGE_FILE_THRESHOLD = 200_000_000;
const DEFAULT_SPOOL_THRESHOLD = 8 * 1024 * 1024;
const DEFAULT_EXPIRES_IN = 3600;
const MAX_EXPIRES_IN = 604_800;
/** b2_get_upload_url: "An uploadUrl and upload authorizationToken are valid for 24 hours". */
const UPLOAD_TOKEN_SECONDS = 86_400;
/** b2_upload_file takes at most 5 GB; b2_copy_file likewise. */
const MAX_SIMPLE_SIZE = 5_000_000_000;
const MAX_PARTS = 10_000;
const MAX_NAME_BYTES = 1024;
const MAX_SEGMENT_BYTES = 250;
const PART_CONCURRENCY = 2;
/** The longest Retry-After we wait out before a retry; a longer one fails at once, with `retryAfter` set. */
const MAX_RETRY_AFTER_MS = 30_000;
/** fileInfo keys B2 reserves or we set ourselves; not user metadata. */
const RESERVED_INFO = /^(b2-|large_file_sha1$|src_last_modified_millis$)/;

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
async function toB2ApiError(api: string, err: unknown): Promise<unknown> {
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

function isAbort(err: unknown, signal?: AbortSignal): boolean {
  if (signal?.aborted) return true;
  const e = err as AxiosLikeError;
  return e?.name === 'CanceledError' || e?.code === 'ERR_CANCELED' || e?.name === 'AbortError';
}

/** Whether a failure is worth another try: 408, 429, 5xx, or no answer at all (connection broken). */
function isTransient(err: unknown): boolean {
  if (!(err instanceof B2ApiError)) return false;
  if (err.status === undefined) return true;
  return err.status === 408 || err.status === 429 || err.status >= 500;
}

/** HEAD requests get no error body, so their 401 cannot say whether the token expired. */
function isTokenFailure(err: unknown): boolean {
  if (!(err instanceof B2ApiError) || err.status !== 401) return false;
  return err.b2Code === 'expired_auth_token' || err.b2Code === 'bad_auth_token' || (err.api === HEAD_API && err.b2Code === undefined);
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * The wait before the next try: B2's Retry-After when it sent one, else exponential backoff with
 * full jitter. Undefined when Retry-After asks for longer than we wait: the failure is then
 * reported at once (its `retryAfter` says when to come back) rather than retried too early.
 */
function retryDelayMs(attempt: number, err: unknown): number | undefined {
  const retryAfter = err instanceof B2ApiError ? err.retryAfter : undefined;
  if (retryAfter) {
    const wait = Math.max(0, retryAfter.getTime() - Date.now());
    return wait > MAX_RETRY_AFTER_MS ? undefined : wait;
  }
  return Math.random() * Math.min(8000, 100 * 2 ** (attempt - 1));
}

/** Waits {@link retryDelayMs}, or rethrows `err` when it says not to retry. */
async function waitToRetry(attempt: number, err: unknown, signal?: AbortSignal): Promise<void> {
  const wait = retryDelayMs(attempt, err);
  if (wait === undefined) throw err;
  await delay(wait, signal);
}

/**
 * Upload URLs (and their tokens) for b2_upload_file. B2 lets one upload at a time use a URL, so
 * each upload takes one out; it goes back after a success and is dropped after any failure.
 */
class UploadUrlPool {
  private readonly idle: B2UploadTarget[] = [];
  constructor(private readonly fetchOne: () => Promise<B2UploadTarget>) {}
  async acquire(): Promise<B2UploadTarget> {
    return this.idle.pop() ?? this.fetchOne();
  }
  release(target: B2UploadTarget): void {
    this.idle.push(target);
  }
}

export class B2Storage extends BaseStorage {
  readonly name = 'b2';
  readonly capabilities: Readonly<Capabilities>;
  private readonly options: B2StorageOptions;
  private readonly prefix: string;
  private readonly visibility: 'public' | 'private';
  private readonly maxUploadAttempts: number;
  private readonly spoolThreshold: number;
  private readonly authorizeUrl: string;
  private readonly timeout: number;
  private readonly uploadUrls: UploadUrlPool;
  private sdk?: B2Sdk;
  /** What the application key may do, from the last b2_authorize_account. */
  private auth?: B2Authorization;
  private bucketId?: string;
  /** Whether `bucketName` is known to be the bucket `bucketId` names (downloads go by name). */
  private bucketNameChecked = false;
  private bucketNameCheck?: Promise<void>;
  /** The header limit for file name and info on this bucket, once known (see ./file-info.ts). */
  private headerLimit?: number;
  private headerLimitLookup?: Promise<number>;
  private recommendedPartSize = 100_000_000;
  private absoluteMinimumPartSize = 5_000_000;
  /** The authorization in progress or done; reset to renew. */
  private authorizing?: Promise<void>;
  private renewal?: { staleToken: string | null | undefined; promise: Promise<void> };

  constructor(options: B2StorageOptions) {
    super(options);
    for (const field of ['applicationKeyId', 'applicationKey', 'bucketName'] as const) {
      if (typeof options?.[field] !== 'string' || options[field] === '') throw new MediaStorageError('CONFIG', `B2Storage needs ${field}`, { backend: 'b2' });
    }
    const positive = (name: keyof B2StorageOptions): void => {
      const v = options[name];
      if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v > 0)) throw new MediaStorageError('CONFIG', `B2Storage option ${name} must be a positive whole number`, { backend: 'b2' });
    };
    (['defaultExpiresIn', 'largeFileThreshold', 'partSize', 'spoolThreshold', 'maxUploadAttempts', 'timeout'] as const).forEach(positive);
    if (options.defaultExpiresIn !== undefined && options.defaultExpiresIn > MAX_EXPIRES_IN) throw new MediaStorageError('CONFIG', `B2Storage defaultExpiresIn is at most ${MAX_EXPIRES_IN} seconds (7 days)`, { backend: 'b2' });
    if (options.visibility !== undefined && options.visibility !== 'public' && options.visibility !== 'private') throw new MediaStorageError('CONFIG', 'B2Storage visibility must be "public" or "private"', { backend: 'b2' });
    this.options = options;
    this.prefix = normalizeLocation(options.location);
    this.visibility = options.visibility ?? 'private';
    this.maxUploadAttempts = options.maxUploadAttempts ?? 5;
    this.spoolThreshold = options.spoolThreshold ?? DEFAULT_SPOOL_THRESHOLD;
    this.authorizeUrl = options.apiUrl ?? DEFAULT_AUTHORIZE_URL;
    this.timeout = options.timeout ?? API_TIMEOUT_MS;
    this.uploadUrls = new UploadUrlPool(() => this.call('b2_get_upload_url', (sdk) => sdk.getUploadUrl({ bucketId: this.bucketId!, axiosOverride: this.settings() })));
    this.capabilities = Object.freeze({
      publicUrls: this.visibility === 'public',
      signedUrls: true,
      downloadUrls: true,
      rangeReads: true,
      serverSideCopy: true,
      metadata: true,
      // B2 has no conditional upload: ifExists "fail" checks first, so two racing saves can both land.
      atomicCreate: false,
      md5Etag: false,
      directUploads: true,
      // An upload URL's token lives 24 hours, and B2 cannot be asked for less.
      maxUploadExpiresIn: UPLOAD_TOKEN_SECONDS,
    });
  }

  // ------------------------------------------------------------------ authorization and calls

  /** The settings every SDK request carries (see ./sdk.ts), with this storage's idle timeout. */
  private settings(options: { signal?: AbortSignal; stream?: boolean } = {}): Record<string, unknown> {
    return requestSettings({ ...options, timeout: options.stream ? 0 : this.timeout });
  }

  protected override secrets(): readonly (string | undefined)[] {
    return [this.options.applicationKey, this.sdk?.authorizationToken ?? undefined];
  }

  /** Authorizes once (concurrent callers share the attempt) and looks the bucket up. */
  private ensureAuthorized(): Promise<void> {
    this.authorizing ??= this.authorize().catch((err) => {
      this.authorizing = undefined;
      throw err;
    });
    return this.authorizing;
  }

  /** Renews the account token, unless someone already did since `staleToken` was used. */
  private async renew(staleToken: string | null | undefined): Promise<void> {
    if (this.sdk && this.sdk.authorizationToken !== staleToken) return this.authorizing;
    // Calls that met the same stale token share one renewal.
    const pending = this.renewal;
    if (pending && pending.staleToken === staleToken) return pending.promise;
    this.authorizing = undefined;
    const promise = this.ensureAuthorized();
    this.renewal = { staleToken, promise };
    return promise;
  }

  private async authorize(): Promise<void> {
    const B2 = await loadB2Sdk();
    const sdk = this.sdk ?? new B2({ applicationKeyId: this.options.applicationKeyId, applicationKey: this.options.applicationKey });
    const res = await this.withRetries('b2_authorize_account', () => sdk.authorize({ axiosOverride: { url: this.authorizeUrl, ...this.settings() } }));
    const auth = parseAuthorization(res.data);
    // backblaze-b2 saved the v2 top-level fields, which a v3/v4 answer nests under apiInfo: it gets
    // them from the parsed answer, and keeps making its (v2) calls with this token.
    sdk.authorizationToken = auth.authorizationToken;
    sdk.apiUrl = auth.apiUrl;
    sdk.downloadUrl = auth.downloadUrl;
    sdk.accountId = auth.accountId;
    this.sdk = sdk;
    this.auth = auth;
    if (auth.recommendedPartSize) this.recommendedPartSize = auth.recommendedPartSize;
    if (auth.absoluteMinimumPartSize) this.absoluteMinimumPartSize = auth.absoluteMinimumPartSize;
    if (!this.bucketId) await this.findBucket(sdk, auth);
  }

  /** The bucket's ID: from the key's bucket restriction, the bucketId option, or b2_list_buckets. */
  private async findBucket(sdk: B2Sdk, auth: B2Authorization): Promise<void> {
    const { bucketName, bucketId } = this.options;
    if (auth.buckets) {
      const match = auth.buckets.find((b) => (bucketId ? b.id === bucketId : b.name === bucketName));
      if (!match) {
        const names = auth.buckets.map((b) => (b.name === null ? `${b.id} (deleted)` : `"${b.name}"`)).join(', ');
        throw new MediaStorageError('PERMISSION', `The B2 application key is restricted to the bucket${auth.buckets.length === 1 ? '' : 's'} ${names}; "${bucketName}" is not one of them`, { backend: 'b2' });
      }
      if (match.name === null) throw new MediaStorageError('CONFIG', `The B2 bucket ${match.id} the application key is restricted to no longer exists`, { backend: 'b2' });
      if (match.name !== bucketName) throw new MediaStorageError('CONFIG', `B2 bucketId ${match.id} is the bucket "${match.name}", not "${bucketName}"`, { backend: 'b2' });
      this.bucketId = match.id;
      this.bucketNameChecked = true;
      return;
    }
    if (bucketId) {
      this.bucketId = bucketId;
      return;
    }
    requireCapabilities(auth, ['listBuckets'], `look up the bucket "${bucketName}" (or pass the bucketId option)`);
    const found = await this.withRetries('b2_list_buckets', () => sdk.getBucket({ bucketName, axiosOverride: this.settings() }));
    const bucket = found.data.buckets.find((b) => b.bucketName === bucketName);
    if (!bucket) throw new MediaStorageError('CONFIG', `B2 bucket "${bucketName}" does not exist or the application key cannot list it`, { backend: 'b2' });
    this.bucketId = bucket.bucketId;
    this.bucketNameChecked = true;
    this.noteBucketSettings(bucket);
  }

  /**
   * Called when a download by name found nothing: with the bucketId option, `bucketName` was never
   * checked, and a misspelled one would make every object look absent. Checked once with
   * b2_list_buckets (CONFIG on a mismatch, kept for every later call); a key without listBuckets
   * cannot check, and the answer stays "absent".
   */
  private confirmBucketName(): Promise<void> {
    if (this.bucketNameChecked) return Promise.resolve();
    this.bucketNameCheck ??= (async () => {
      if (this.auth?.capabilities && !this.auth.capabilities.has('listBuckets')) return;
      let buckets: B2BucketJson[];
      try {
        buckets = (await this.call('b2_list_buckets', (sdk) => sdk.getBucket({ bucketId: this.bucketId, axiosOverride: this.settings() }))).buckets;
      } catch (err) {
        if (err instanceof B2ApiError && (err.status === 401 || err.status === 403)) return;
        this.bucketNameCheck = undefined;
        throw err;
      }
      const bucket = buckets.find((b) => b.bucketId === this.bucketId);
      if (!bucket) throw new MediaStorageError('CONFIG', `No B2 bucket has the bucketId ${this.bucketId} (bucketName "${this.options.bucketName}")`, { backend: 'b2' });
      if (bucket.bucketName !== this.options.bucketName) throw new MediaStorageError('CONFIG', `B2 bucketId ${this.bucketId} is the bucket "${bucket.bucketName}", not "${this.options.bucketName}"`, { backend: 'b2' });
      this.bucketNameChecked = true;
      this.noteBucketSettings(bucket);
    })();
    return this.bucketNameCheck;
  }

  /** The header limit from a bucket's settings, when the key may read them. */
  private noteBucketSettings(bucket: B2BucketJson): void {
    const lock = bucket.fileLockConfiguration;
    const sse = bucket.defaultServerSideEncryption;
    const locked = lock?.isClientAuthorizedToRead ? lock.value?.isFileLockEnabled === true : undefined;
    const encrypted = sse?.isClientAuthorizedToRead ? !!sse.value?.mode && sse.value.mode !== 'none' : undefined;
    if (locked || encrypted) this.headerLimit = HEADER_LIMIT_ENCRYPTED_OR_LOCKED;
    else if (locked === false && encrypted === false) this.headerLimit = HEADER_LIMIT;
  }

  /**
   * The limit that applies to file name and info headers of `bytes` bytes: only sizes between the
   * two limits need the bucket's settings, looked up once (b2_list_buckets). When the key cannot
   * read them, 7,000 is assumed and B2 itself answers for Object Lock buckets (400, INVALID_INPUT).
   */
  private async headerLimitFor(bytes: number): Promise<number> {
    if (bytes <= HEADER_LIMIT_ENCRYPTED_OR_LOCKED || bytes > HEADER_LIMIT) return HEADER_LIMIT;
    if (this.headerLimit !== undefined) return this.headerLimit;
    this.headerLimitLookup ??= (async () => {
      if (!this.auth?.capabilities || this.auth.capabilities.has('listBuckets')) {
        const found = await this.call('b2_list_buckets', (sdk) => sdk.getBucket({ bucketId: this.bucketId, axiosOverride: this.settings() })).catch(() => undefined);
        const bucket = found?.buckets.find((b) => b.bucketId === this.bucketId);
        if (bucket) this.noteBucketSettings(bucket);
      }
      return this.headerLimit ?? HEADER_LIMIT;
    })();
    return this.headerLimitLookup;
  }

  /**
   * Authorizes, then PERMISSION unless the key has the capabilities `what` needs and reaches
   * `fileName` (when given). B2 would answer 401 for both; this says which capability or prefix.
   */
  private async allowed(needed: readonly B2Capability[], what: string, key: string | undefined, fileName?: string): Promise<B2Authorization> {
    await this.ensureAuthorized();
    const auth = this.auth!;
    requireCapabilities(auth, needed, what, key);
    if (fileName !== undefined) requireNameInPrefix(auth, fileName, key);
    return auth;
  }

  /** Runs one SDK call, typing its failure and retrying transient ones (idempotent calls only). */
  private async withRetries<T>(api: string, fn: () => Promise<SdkResponse<T>>, options: { idempotent?: boolean; signal?: AbortSignal } = {}): Promise<SdkResponse<T>> {
    const idempotent = options.idempotent ?? true;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (raw) {
        const err = await toB2ApiError(api, raw);
        if (isAbort(raw, options.signal) || !idempotent || !isTransient(err) || attempt >= this.maxUploadAttempts) throw err;
        await waitToRetry(attempt, err, options.signal);
      }
    }
  }

  /**
   * An API call with the account token: authorizes first, renews the token when B2 says it
   * expired (or is no longer valid; at most twice per call), and retries transient failures of
   * idempotent calls.
   */
  private async call<T>(api: string, fn: (sdk: B2Sdk) => Promise<SdkResponse<T>>, options: { idempotent?: boolean; signal?: AbortSignal } = {}): Promise<T> {
    return (await this.callResponse(api, fn, options)).data;
  }

  /** {@link call}, giving the whole response (headers included). */
  private async callResponse<T>(api: string, fn: (sdk: B2Sdk) => Promise<SdkResponse<T>>, options: { idempotent?: boolean; signal?: AbortSignal } = {}): Promise<SdkResponse<T>> {
    await this.ensureAuthorized();
    for (let renewals = 0; ; renewals++) {
      const sdk = this.sdk!;
      const token = sdk.authorizationToken;
      try {
        return await this.withRetries(api, () => fn(sdk), options);
      } catch (err) {
        if (!isTokenFailure(err) || renewals >= 2) throw err;
        await this.renew(token);
      }
    }
  }

  /**
   * The full B2 file name for a key (the prefix added). B2's name limits are tighter than the
   * core key rules (segments of 250 bytes, not 255, and the prefix counts): INVALID_KEY past them.
   */
  private fileName(key: string): string {
    const name = joinPrefix(this.prefix, key);
    if (Buffer.byteLength(name) > MAX_NAME_BYTES || name.split('/').some((segment) => Buffer.byteLength(segment) > MAX_SEGMENT_BYTES)) {
      throw new MediaStorageError('INVALID_KEY', `Key "${key}" is too long for B2 (names up to ${MAX_NAME_BYTES} bytes with the prefix, ${MAX_SEGMENT_BYTES} bytes between slashes)`, { key });
    }
    return name;
  }

  private toInfo(file: B2FileJson): ObjectInfo {
    const info = file.fileInfo ?? {};
    const sha1 = file.contentSha1 && file.contentSha1 !== 'none' ? file.contentSha1 : info.large_file_sha1;
    const metadata = Object.fromEntries(Object.entries(info).filter(([k]) => !RESERVED_INFO.test(k)));
    return {
      key: file.fileName.slice(this.prefix.length),
      size: file.contentLength,
      contentType: file.contentType ?? 'application/octet-stream',
      ...(sha1 ? { etag: sha1.replace(/^unverified:/, '') } : {}),
      lastModified: new Date(file.uploadTimestamp),
      ...(info['b2-cache-control'] ? { cacheControl: info['b2-cache-control'] } : {}),
      ...(Object.keys(metadata).length ? { metadata } : {}),
    };
  }

  /** B2 file info names: letters, digits, "-" and "_" (the SDK refuses others), and not B2's own. */
  protected override metadataRules(): MetadataRules {
    return { name: { pattern: /^(?!b2-|large_file_sha1$|src_last_modified_millis$)[a-z0-9_-]+$/, description: 'use letters, digits, "-" and "_", not starting with "b2-"' } };
  }

  // ------------------------------------------------------------------ errors

  protected override mapError(err: unknown): { code: MediaStorageErrorCode; message?: string; status?: number; retryAfter?: Date } | undefined {
    if (err instanceof B2ApiError) {
      let code: MediaStorageErrorCode | undefined;
      if (err.status === undefined) code = codeFromNodeError(err.cause) ?? 'UNAVAILABLE';
      else if (err.api === 'b2_authorize_account' && err.status === 401) code = 'AUTH';
      // authorize takes no input of ours: a 400 there is the endpoint or the key's version (multi-bucket keys need v4).
      else if (err.api === 'b2_authorize_account' && err.status === 400) code = 'CONFIG';
      // A HEAD's 401 has no body; it outlived a fresh token, so the key is valid but not allowed.
      else if (err.b2Code === 'unauthorized' || err.b2Code === 'access_denied' || (err.api === HEAD_API && err.status === 401)) {
        const capability = CAPABILITY_OF_CALL[err.api];
        const hint = capability ? `the application key may lack the "${capability}" capability, or not reach this bucket or file name` : 'the application key is not allowed to do this';
        return { code: 'PERMISSION', message: `B2 ${err.message} (${hint})`, status: err.status, retryAfter: err.retryAfter };
      }
      else if (err.b2Code === 'file_not_present' || err.b2Code === 'no_such_file' || err.b2Code === 'not_found') code = 'NOT_FOUND';
      else if (err.b2Code === 'bad_bucket_id') code = 'CONFIG';
      else code = codeFromStatus(err.status);
      return { code: code ?? 'UNKNOWN', message: `B2 ${err.message}`, status: err.status, retryAfter: err.retryAfter };
    }
    if (isAbort(err)) return { code: 'ABORTED', message: 'the operation was aborted' };
    return undefined;
  }

  // ------------------------------------------------------------------ reads

  /**
   * The current (not hidden) version of a name, or undefined: a HEAD of b2_download_file_by_name,
   * a class B transaction (ten times cheaper than b2_list_file_names, class C), which answers 404
   * for hidden and absent names alike.
   */
  private async currentFile(key: string): Promise<B2FileJson | undefined> {
    const name = this.fileName(key);
    await this.allowed(['readFiles'], `read "${key}"`, key, name);
    return this.currentVersion(name);
  }

  /** {@link currentFile} by B2 file name. */
  private async currentVersion(name: string): Promise<B2FileJson | undefined> {
    let headers: Record<string, unknown>;
    try {
      const res = await this.callResponse(HEAD_API, (sdk) => sdk.downloadFileByName({ bucketName: this.options.bucketName, fileName: name, axiosOverride: { method: 'HEAD', ...this.settings() } }));
      headers = res.headers;
    } catch (err) {
      if (err instanceof B2ApiError && err.status === 404) {
        // A HEAD's 404 cannot tell a missing file from a misspelled bucket.
        await this.confirmBucketName();
        return undefined;
      }
      throw err;
    }
    const header = (h: string): string | undefined => (typeof headers[h] === 'string' ? (headers[h] as string) : undefined);
    const fileInfo: Record<string, string> = {};
    for (const [h, v] of Object.entries(headers)) {
      if (h.startsWith('x-bz-info-') && typeof v === 'string') fileInfo[h.slice('x-bz-info-'.length)] = decodeInfoHeader(v);
    }
    // B2 serves b2-cache-control and b2-content-disposition as Cache-Control and Content-Disposition.
    const cacheControl = header('cache-control');
    if (cacheControl) fileInfo['b2-cache-control'] = cacheControl;
    const disposition = header('content-disposition');
    if (disposition) fileInfo['b2-content-disposition'] = disposition;
    return {
      action: 'upload',
      bucketId: this.bucketId!,
      fileId: header('x-bz-file-id') ?? '',
      fileName: name,
      contentLength: Number(header('content-length') ?? 0),
      contentSha1: header('x-bz-content-sha1') ?? null,
      contentType: header('content-type') ?? null,
      fileInfo,
      uploadTimestamp: Number(header('x-bz-upload-timestamp') ?? Date.now()),
    };
  }

  protected async statObject(key: string): Promise<ObjectInfo | undefined> {
    const file = await this.currentFile(key);
    return file ? this.toInfo(file) : undefined;
  }

  protected async readObject(key: string, options: ReadOptions): Promise<Readable> {
    const { range, signal } = options;
    const name = this.fileName(key);
    await this.allowed(['readFiles'], `read "${key}"`, key, name);
    const headers = range ? { Range: `bytes=${range.start}-${range.end ?? ''}` } : {};
    const data = await this.call(
      'download',
      (sdk) =>
        this.withHeadTimeout('download', signal, (requestSignal) =>
          sdk.downloadFileByName({
            bucketName: this.options.bucketName,
            fileName: name,
            responseType: 'stream',
            axiosOverride: { headers, ...this.settings({ signal: requestSignal, stream: true }) },
          }),
        ),
      { signal },
    ).catch(async (err: unknown) => {
      if (err instanceof B2ApiError && err.status === 404) await this.confirmBucketName();
      throw err;
    });
    // A server that stops sending mid-body fails the read (UNAVAILABLE) instead of hanging it.
    return failOnStall(data as unknown as Readable, this.timeout, () => new B2ApiError('download', undefined, 'ETIMEDOUT', `download: no bytes for ${this.timeout} ms`));
  }

  /**
   * A stream request (no idle-socket timeout, see ./sdk.ts) that fails as a broken connection,
   * and so is retried, when its response head does not arrive within the timeout.
   */
  private async withHeadTimeout<T>(api: string, signal: AbortSignal | undefined, send: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.timeout);
    try {
      return await send(signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal);
    } catch (err) {
      if (timeout.signal.aborted && !signal?.aborted) throw new B2ApiError(api, undefined, 'ETIMEDOUT', `${api}: no answer within ${this.timeout} ms`);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  protected async listObjects(prefix: string, options: { cursor?: string; limit: number }): Promise<ListPage> {
    // A key restricted to a name prefix lists what it can see under the one asked for.
    const fullPrefix = listablePrefix(await this.allowed(['listFiles'], 'list files', undefined), this.prefix + prefix);
    const start = options.cursor ? Buffer.from(options.cursor, 'base64url').toString('utf8') : fullPrefix;
    if (options.cursor && !start.startsWith(fullPrefix)) throw new MediaStorageError('INVALID_INPUT', 'The cursor does not belong to this listing');
    const page = await this.call('b2_list_file_names', (sdk) => sdk.listFileNames({ bucketId: this.bucketId!, prefix: fullPrefix, startFileName: start, maxFileCount: options.limit, axiosOverride: this.settings() }));
    const items = page.files.filter((f) => f.action === 'upload').map((f) => this.toInfo(f));
    return page.nextFileName ? { items, cursor: Buffer.from(page.nextFileName, 'utf8').toString('base64url') } : { items };
  }

  // ------------------------------------------------------------------ delete

  /** Every version of a name (uploads and hide markers), via b2_list_file_versions. */
  private async versionsOf(name: string): Promise<B2FileJson[]> {
    const versions: B2FileJson[] = [];
    let startFileName = name;
    let startFileId: string | undefined;
    for (;;) {
      const page = await this.call('b2_list_file_versions', (sdk) =>
        sdk.listFileVersions({ bucketId: this.bucketId!, startFileName, startFileId, maxFileCount: 100, axiosOverride: { ...this.settings(), data: { prefix: name } } }),
      );
      const mine = page.files.filter((f) => f.fileName === name);
      versions.push(...mine);
      if (!page.nextFileName || page.nextFileName !== name || !page.nextFileId || mine.length < page.files.length) return versions;
      startFileName = page.nextFileName;
      startFileId = page.nextFileId;
    }
  }

  protected async deleteObject(key: string): Promise<void> {
    const name = this.fileName(key);
    await this.allowed(['listFiles', 'deleteFiles'], `delete "${key}" (every version is listed, then deleted)`, key, name);
    // Deleting only the newest version would bring the previous one back: delete them all, oldest
    // first, so that a delete failing halfway leaves the newest version served, never an older one.
    // Unfinished large files ("start") belong to uploads in progress and are left to them.
    for (const version of (await this.versionsOf(name)).reverse()) {
      if (version.action === 'start') continue;
      try {
        await this.call('b2_delete_file_version', (sdk) => sdk.deleteFileVersion({ fileId: version.fileId, fileName: name, axiosOverride: this.settings() }));
      } catch (err) {
        // Already gone (a concurrent delete): that is the outcome we want.
        if (!(err instanceof B2ApiError && (err.b2Code === 'file_not_present' || err.status === 404))) throw err;
      }
    }
  }

  // ------------------------------------------------------------------ copy and urls

  protected override async copyObject(from: string, to: string, options: CopyOptions): Promise<ObjectInfo> {
    const name = this.fileName(to);
    await this.allowed(['writeFiles'], `copy to "${to}"`, to, name);
    const source = await this.currentFile(from);
    if (!source) throw new MediaStorageError('NOT_FOUND', `No object under "${from}"`, { key: from });
    if (source.contentLength > MAX_SIMPLE_SIZE) return super.copyObject(from, to, options);
    // The copy keeps the source's info under the new name, which must fit B2's header limit too.
    const contentType = source.contentType ?? 'application/octet-stream';
    checkHeaderBytes(name, source.fileInfo, contentType, await this.headerLimitFor(fileInfoHeaderBytes(name, source.fileInfo, contentType)), to);
    // backblaze-b2 has no b2_copy_file; the call goes to the apiUrl authorize gave, with the account token.
    const file = await this.call<B2FileJson>('b2_copy_file', (sdk) => this.postJson(sdk, 'b2_copy_file', { sourceFileId: source.fileId, fileName: name, metadataDirective: 'COPY' }), { idempotent: false });
    return this.toInfo(file);
  }

  /** A JSON API call the SDK lacks, made the way the SDK makes its own. */
  private async postJson<T>(sdk: B2Sdk, api: string, body: unknown): Promise<SdkResponse<T>> {
    const res = await fetch(`${sdk.apiUrl}/b2api/v2/${api}`, {
      method: 'POST',
      headers: { Authorization: sdk.authorizationToken ?? '', 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.timeout),
    }).catch((err: unknown) => {
      throw new B2ApiError(api, undefined, codeFromNodeError(err) === 'UNAVAILABLE' ? 'network' : undefined, `${api}: ${(err as Error).message}`, undefined, { cause: err });
    });
    const text = await res.text();
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
    if (!res.ok) throw await toB2ApiError(api, { response: { status: res.status, data, headers: { 'retry-after': res.headers.get('retry-after') ?? undefined } } });
    return { status: res.status, data: data as T, headers: {} };
  }

  protected async objectUrl(key: string, options: UrlOptions): Promise<string> {
    const name = this.fileName(key);
    const path = encodeKeyPath(name);
    const download = options.download === undefined || options.download === false ? undefined : options.download === true ? '' : options.download;
    if (this.visibility === 'public' && options.expiresIn === undefined && download === undefined) {
      if (this.options.publicBaseUrl) return `${this.options.publicBaseUrl.replace(/\/+$/, '')}/${path}`;
      await this.ensureAuthorized();
      return `${this.sdk!.downloadUrl}/file/${encodeURIComponent(this.options.bucketName)}/${path}`;
    }
    // The core has checked expiresIn against capabilities.maxExpiresIn (B2's validDurationInSeconds: seven days).
    const expiresIn = Math.ceil(options.expiresIn ?? this.options.defaultExpiresIn ?? DEFAULT_EXPIRES_IN);
    const disposition = download === undefined ? undefined : contentDisposition('attachment', download || undefined);
    await this.allowed(['shareFiles'], `make a private URL for "${key}"`, key, name);
    // The authorization covers names starting with this one: exactly this file (and any name extending it).
    const auth = await this.call('b2_get_download_authorization', (sdk) =>
      sdk.getDownloadAuthorization({ bucketId: this.bucketId!, fileNamePrefix: name, validDurationInSeconds: expiresIn, b2ContentDisposition: disposition, axiosOverride: this.settings() }),
    );
    const query = new URLSearchParams({ Authorization: auth.authorizationToken });
    if (disposition !== undefined) query.set('b2ContentDisposition', disposition);
    return `${this.sdk!.downloadUrl}/file/${encodeURIComponent(this.options.bucketName)}/${path}?${query.toString()}`;
  }

  // ------------------------------------------------------------------ writes

  protected async writeObject(key: string, body: PreparedBody, options: WriteOptions): Promise<ObjectInfo> {
    const { signal } = options;
    const name = this.fileName(key);
    const info = this.fileInfo(options);
    await this.allowed(options.ifExists === 'fail' ? ['writeFiles', 'readFiles'] : ['writeFiles'], `save "${key}"`, key, name);
    checkFileInfoLimits(name, info, body.contentType, await this.headerLimitFor(fileInfoHeaderBytes(name, info, body.contentType)), key);
    if (options.ifExists === 'fail' && (await this.currentFile(key))) {
      throw new MediaStorageError('ALREADY_EXISTS', `An object is already stored under "${key}"`, { key });
    }
    const partSize = Math.max(this.options.partSize ?? this.recommendedPartSize, this.absoluteMinimumPartSize);
    const threshold = this.options.largeFileThreshold ?? DEFAULT_LARGE_FILE_THRESHOLD;
    if (body.size !== undefined && !body.buffer && body.size > this.spoolThreshold && body.size <= Math.min(threshold, MAX_SIMPLE_SIZE)) {
      return this.toInfo(await this.uploadWhileSpooling(name, body, body.size, partSize, info, signal));
    }
    // A body already in memory stays there (it passes through spoolBody only to be hashed).
    const spooled = await spoolBody(body.stream(), { spoolThreshold: body.buffer ? Infinity : this.spoolThreshold, partSize });
    try {
      if (signal?.aborted) throw abortedError('save', key, undefined, signal.reason);
      const large = spooled.size > MAX_SIMPLE_SIZE || (spooled.size > threshold && spooled.partSha1s.length >= 2);
      const file = large ? await this.uploadLarge(name, spooled, body.contentType, info, signal) : await this.uploadSimple(name, spooled, body.contentType, info, signal);
      return this.toInfo(file);
    } finally {
      await spooled.dispose();
    }
  }

  /**
   * A direct upload on B2's native API: a fresh upload URL and its token (b2_get_upload_url), and
   * the headers b2_upload_file takes: the file name, the content type, the serving rule's
   * Content-Disposition as `b2-content-disposition`, and `X-Bz-Content-Sha1`, which the sender
   * computes from the file (`digestHeaders`) and B2 checks against the bytes it received.
   *
   * What B2 enforces is only that: the SHA-1 and Content-Length. The token is the bucket's (within
   * this key's name prefix), valid 24 hours whatever `expiresIn` says, and binds no file name,
   * type or size, so `enforced` is false for all four: whoever holds it can upload any name, of
   * any type, during that time. Hand it only to users you would let write the whole prefix, or use
   * S3Storage on B2's S3-compatible endpoint, whose presigned URLs bind all of them.
   */
  protected override async presignObjectUpload(key: string, plan: PresignPlan): Promise<DirectUpload> {
    const name = this.fileName(key);
    await this.allowed(['writeFiles'], `upload "${key}"`, key, name);
    const info: Record<string, string> = plan.contentDisposition ? { 'b2-content-disposition': plan.contentDisposition } : {};
    checkFileInfoLimits(name, info, plan.contentType, await this.headerLimitFor(fileInfoHeaderBytes(name, info, plan.contentType)), key);
    // A URL of its own: B2 lets one upload at a time use an upload URL, and the browser keeps this one.
    const target = await this.call('b2_get_upload_url', (sdk) => sdk.getUploadUrl({ bucketId: this.bucketId!, axiosOverride: this.settings() }));
    const headers: Record<string, string> = {
      Authorization: target.authorizationToken,
      'X-Bz-File-Name': name.split('/').map(encodeURIComponent).join('/'),
      'Content-Type': plan.contentType,
    };
    for (const [k, v] of Object.entries(info)) headers[`X-Bz-Info-${k}`] = encodeURIComponent(v);
    return {
      method: 'POST',
      url: target.uploadUrl,
      headers,
      digestHeaders: { 'X-Bz-Content-Sha1': 'sha1-hex' },
      key,
      contentType: plan.contentType,
      expiresAt: new Date(Date.now() + UPLOAD_TOKEN_SECONDS * 1000),
      enforced: { key: false, contentType: false, maxSize: false, expiry: false },
    };
  }

  /**
   * File info sent with an upload: Cache-Control, custom metadata (lower-cased keys, as B2 keeps
   * them), and the serving rule's Content-Disposition, which B2 sends when it serves the file.
   */
  private fileInfo(options: WriteOptions): Record<string, string> {
    const info: Record<string, string> = {};
    for (const [k, v] of Object.entries(options.metadata ?? {})) {
      if (!/^[A-Za-z0-9_-]+$/.test(k) || RESERVED_INFO.test(k.toLowerCase())) throw new MediaStorageError('INVALID_INPUT', `Metadata key ${JSON.stringify(k)} is not allowed on B2: use letters, digits, "-" and "_", not starting with "b2-"`);
      if (typeof v !== 'string') throw new MediaStorageError('INVALID_INPUT', `Metadata value of ${JSON.stringify(k)} must be a string`);
      info[k.toLowerCase()] = v;
    }
    if (options.cacheControl) info['b2-cache-control'] = options.cacheControl;
    // B2 keeps ten entries in all; with no room left the disposition gives way to the app's own
    // metadata. That is safe: executable kinds arrive as application/octet-stream, which browsers
    // download whatever its disposition, and the rest (text, PDF) renders inert on B2's origin.
    if (options.contentDisposition && Object.keys(info).length < MAX_INFO_ENTRIES) info['b2-content-disposition'] = options.contentDisposition;
    return info;
  }

  /**
   * Sends with a target from `acquire`, up to maxUploadAttempts times: after a failure the target
   * (upload URL and token) is dropped and the next try gets a fresh one, as Backblaze asks.
   */
  private async sendWithRetries<T>(api: string, acquire: () => Promise<B2UploadTarget>, release: ((t: B2UploadTarget) => void) | undefined, send: (t: B2UploadTarget) => Promise<SdkResponse<T>>, signal: AbortSignal | undefined, key: string, attemptsUsed = 0): Promise<T> {
    for (let attempt = attemptsUsed + 1; ; attempt++) {
      if (signal?.aborted) throw abortedError('save', key, undefined, signal.reason);
      const target = await acquire();
      try {
        const res = await send(target);
        release?.(target);
        return res.data;
      } catch (raw) {
        if (isAbort(raw, signal)) throw abortedError('save', key, undefined, signal?.reason ?? raw);
        const err = await toB2ApiError(api, raw);
        // Any 401 on an upload URL (expired or bad upload token) means: get another URL.
        const retry = isTransient(err) || (err instanceof B2ApiError && err.status === 401);
        if (!retry || attempt >= this.maxUploadAttempts) throw err;
        await waitToRetry(attempt, err, signal);
      }
    }
  }

  /**
   * For a body whose length is known up front but which is not in memory (a Blob or File): the
   * first try streams it straight to B2 with its SHA-1 computed on the way and sent after the
   * bytes (`hex_digits_at_end`), while the same bytes are spooled; a retry resends the spool.
   */
  private async uploadWhileSpooling(name: string, body: PreparedBody, size: number, partSize: number, info: Record<string, string>, signal: AbortSignal | undefined): Promise<B2FileJson> {
    const target = await this.uploadUrls.acquire();
    const wire = new PassThrough({ highWaterMark: 256 * 1024 });
    wire.on('error', () => undefined);
    let wireDone = false;
    const first = this.sdk!.uploadFile({
      uploadUrl: target.uploadUrl,
      uploadAuthToken: target.authorizationToken,
      fileName: name,
      data: wire,
      contentLength: size + 40,
      hash: 'hex_digits_at_end',
      mime: body.contentType,
      info,
      axiosOverride: this.settings({ signal }),
    }).then(
      (res) => ({ res }),
      (error: unknown) => {
        wireDone = true;
        wire.destroy();
        return { error };
      },
    );
    let sent = 0;
    // Passes every chunk to the spool, and to the wire while the first try is alive (with backpressure).
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        sent += chunk.length;
        if (wireDone || wire.destroyed) return done(null, chunk);
        if (sent > size) {
          wireDone = true;
          wire.destroy(new Error('the body is longer than its declared size'));
          return done(null, chunk);
        }
        if (wire.write(chunk)) return done(null, chunk);
        const resume = (): void => {
          wire.off('drain', resume);
          wire.off('close', resume);
          done(null, chunk);
        };
        wire.on('drain', resume);
        wire.on('close', resume);
      },
    });
    let spooled: SpooledBody;
    try {
      spooled = await spoolBody(pipeline(body.stream(), tap, () => undefined), { spoolThreshold: this.spoolThreshold, partSize });
    } catch (err) {
      // The body failed (limit, abort, broken source): cut the upload short so B2 never commits it.
      wireDone = true;
      wire.destroy(err as Error);
      await first;
      throw err;
    }
    try {
      if (spooled.size === size && !wireDone) wire.end(spooled.sha1);
      else wire.destroy(new Error('the body did not match its declared size'));
      const outcome = await first;
      if ('res' in outcome) {
        this.uploadUrls.release(target);
        return outcome.res.data;
      }
      if (isAbort(outcome.error, signal)) throw abortedError('save', name, undefined, signal?.reason ?? outcome.error);
      const err = await toB2ApiError('b2_upload_file', outcome.error);
      const retry = spooled.size !== size || isTransient(err) || (err instanceof B2ApiError && err.status === 401);
      if (!retry || this.maxUploadAttempts < 2) throw err;
      await waitToRetry(1, err, signal);
      return await this.uploadSimple(name, spooled, body.contentType, info, signal, 1);
    } finally {
      await spooled.dispose();
    }
  }

  private uploadSimple(name: string, body: SpooledBody, contentType: string, info: Record<string, string>, signal: AbortSignal | undefined, attemptsUsed = 0): Promise<B2FileJson> {
    return this.sendWithRetries(
      'b2_upload_file',
      () => this.uploadUrls.acquire(),
      (t) => this.uploadUrls.release(t),
      (target) =>
        this.sdk!.uploadFile({
          uploadUrl: target.uploadUrl,
          uploadAuthToken: target.authorizationToken,
          fileName: name,
          data: body.slice(0, body.size),
          contentLength: body.size,
          hash: body.sha1,
          mime: contentType,
          info,
          axiosOverride: this.settings({ signal }),
        }),
      signal,
      name,
      attemptsUsed,
    );
  }

  /**
   * b2_start_large_file, retried like an upload. B2 may have started the file before a failure
   * (an answer lost on the way back): such a file is found among the unfinished large files of the
   * name (same file info, which includes the body's SHA-1 when there is room) and cancelled before
   * the next try, so none is left behind.
   */
  private async startLargeFile(name: string, contentType: string, fileInfo: Record<string, string>, signal: AbortSignal | undefined): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      try {
        const started = await this.call('b2_start_large_file', (sdk) =>
          sdk.startLargeFile({ bucketId: this.bucketId!, fileName: name, contentType, axiosOverride: { ...this.settings(), data: { fileInfo } } }),
        { idempotent: false });
        return started.fileId;
      } catch (err) {
        if (!isTransient(err)) throw err;
        await this.cancelUnfinished(name, fileInfo).catch(() => {
          throw err;
        });
        if (attempt >= this.maxUploadAttempts || signal?.aborted) throw err;
        await waitToRetry(attempt, err, signal);
      }
    }
  }

  /** Cancels the unfinished large files of exactly this name and file info. */
  private async cancelUnfinished(name: string, fileInfo: Record<string, string>): Promise<void> {
    const same = (info: Record<string, string> | undefined): boolean => {
      const a = Object.entries(info ?? {}).sort();
      const b = Object.entries(fileInfo).sort();
      return a.length === b.length && a.every(([k, v], i) => k === b[i]![0] && v === b[i]![1]);
    };
    const page = await this.call<{ files: B2FileJson[] }>('b2_list_unfinished_large_files', (sdk) => this.postJson(sdk, 'b2_list_unfinished_large_files', { bucketId: this.bucketId, namePrefix: name, maxFileCount: 100 }));
    for (const file of page.files.filter((f) => f.fileName === name && same(f.fileInfo))) {
      await this.call('b2_cancel_large_file', (sdk) => sdk.cancelLargeFile({ fileId: file.fileId, axiosOverride: this.settings() }));
    }
  }

  /** b2_start_large_file, the parts (each with its SHA-1, two at a time), b2_finish_large_file; cancelled on any failure. */
  private async uploadLarge(name: string, body: SpooledBody, contentType: string, info: Record<string, string>, signal: AbortSignal | undefined): Promise<B2FileJson> {
    const partCount = body.partSha1s.length;
    if (partCount > MAX_PARTS) throw new MediaStorageError('TOO_LARGE', `The body needs ${partCount} parts of ${body.partSize} bytes; B2 allows ${MAX_PARTS}: raise partSize`);
    // large_file_sha1 (Backblaze's recommendation, and our etag) when the 10 entries and the header limit leave room.
    const withSha1 = { ...info, large_file_sha1: body.sha1 };
    const bytes = fileInfoHeaderBytes(name, withSha1, contentType);
    const fileInfo = Object.keys(info).length < MAX_INFO_ENTRIES && bytes <= (await this.headerLimitFor(bytes)) ? withSha1 : info;
    const fileId = await this.startLargeFile(name, contentType, fileInfo, signal);
    // One failed part stops the others at once, so the cancel below is not raced by them.
    const stop = new AbortController();
    const partSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
    let firstError: unknown;
    let finishing = false;
    try {
      const fetchPartUrl = (): Promise<B2UploadTarget> => this.call('b2_get_upload_part_url', (sdk) => sdk.getUploadPartUrl({ fileId, axiosOverride: this.settings() }));
      let next = 0;
      const worker = async (): Promise<void> => {
        // Each worker keeps its own part URL while it works, and gets a fresh one after a failure.
        let own: B2UploadTarget | undefined;
        while (next < partCount) {
          const index = next++;
          const start = index * body.partSize;
          const end = Math.min(body.size, start + body.partSize);
          await this.sendWithRetries(
            'b2_upload_part',
            async () => own ?? (own = await fetchPartUrl()),
            undefined,
            (target) => {
              own = undefined;
              return this.sdk!.uploadPart({
                uploadUrl: target.uploadUrl,
                uploadAuthToken: target.authorizationToken,
                partNumber: index + 1,
                data: body.slice(start, end),
                contentLength: end - start,
                hash: body.partSha1s[index]!,
                axiosOverride: this.settings({ signal: partSignal }),
              }).then((res) => {
                own = target;
                return res;
              });
            },
            partSignal,
            name,
          ).catch((err: unknown) => {
            firstError ??= err;
            stop.abort(err);
            throw err;
          });
        }
      };
      // allSettled, then the first failure: the cancel must not run while a part is still in flight.
      const results = await Promise.allSettled(Array.from({ length: Math.min(PART_CONCURRENCY, partCount) }, worker));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw signal?.aborted ? abortedError('save', name, undefined, signal.reason) : (firstError ?? failed.reason);
      if (signal?.aborted) throw abortedError('save', name, undefined, signal.reason);
      finishing = true;
      return await this.call('b2_finish_large_file', (sdk) => sdk.finishLargeFile({ fileId, partSha1Array: [...body.partSha1s], axiosOverride: this.settings() }), { idempotent: false });
    } catch (err) {
      // B2 may have finished the file before its answer was lost: then the save did succeed.
      if (finishing && isTransient(err)) {
        const stored = await this.currentVersion(name).catch(() => undefined);
        if (stored?.fileId === fileId) return stored;
      }
      // Leave no unfinished large file behind (they are billed and show in listings of versions).
      await this.call('b2_cancel_large_file', (sdk) => sdk.cancelLargeFile({ fileId, axiosOverride: this.settings() })).catch(() => undefined);
      throw err;
    }
  }
}
