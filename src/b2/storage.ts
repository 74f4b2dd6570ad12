/**
 * Backblaze B2 on its native API, through the official `backblaze-b2` SDK.
 *
 * What B2 needs that a naive adapter gets wrong, and where it is handled:
 * - an upload URL and token per concurrent upload: ./upload.ts hands each save its own;
 * - a SHA-1 on every upload and part, and a known Content-Length: bodies are spooled (memory, or a
 *   temp file above `spoolThreshold`) while their SHA-1s are computed, so retries can resend them;
 * - an upload (or part) that fails on 401/408/5xx or a broken connection is tried again on a fresh
 *   upload URL (as Backblaze asks), up to `maxAttempts`; every other temporary failure is
 *   UNAVAILABLE (with `retryAfter` from Retry-After), retried only by the retry layer (withRetry);
 * - account tokens that expire (24 h): every call renews on 401 expired/bad token and retries once (./auth.ts);
 * - authorization through b2_authorize_account v4 (multi-bucket keys work only there), whose answer
 *   backblaze-b2 cannot read: it is parsed here (./auth.ts) and handed to the SDK for its v2 calls;
 * - restricted keys (buckets, a name prefix, capabilities): PERMISSION before the request;
 * - file info limits (entries, key length, header bytes): INVALID_INPUT before the request (./file-info.ts);
 * - file versions: delete removes every version; hidden files count as absent;
 * - the large-file protocol above `largeFileThreshold`, cancelled on failure or abort (./upload.ts);
 * - B2's error bodies, typed and mapped to MediaStorageError codes (./errors.ts).
 */
import type { Readable } from 'node:stream';
import { BaseStorage, type WriteOptions } from '../core/base.js';
import type { PresignPlan } from '../core/direct-upload.js';
import type { PreparedBody } from '../core/body.js';
import { MediaStorageError, abortedError } from '../core/errors.js';
import { requestedDownload } from '../core/download.js';
import { contentDisposition, type ServingOptions } from '../core/serving.js';
import { encodeKeyPath, joinPrefix, normalizeLocation } from '../core/keys.js';
import type { MetadataRules } from '../core/metadata.js';
import { failOnStall } from '../core/stall.js';
import type { Capabilities, CopyOptions, DirectUpload, ListPage, ObjectInfo, ReadOptions, UrlOptions } from '../core/types.js';
import { B2Session, DEFAULT_AUTHORIZE_URL, listablePrefix } from './auth.js';
import type { ErrorMapping } from '../core/error-mapping.js';
import { B2ApiError, HEAD_API, mapB2Error } from './errors.js';
import { MAX_INFO_ENTRIES, checkFileInfoLimits, checkHeaderBytes, fileInfoHeaderBytes } from './file-info.js';
import { RESERVED_INFO, fileFromHeaders, listFileNames, toObjectInfo, versionsOf } from './list.js';
import { API_TIMEOUT_MS, type B2FileJson } from './sdk.js';
import { spoolBody } from './spool.js';
import { B2Uploader } from './upload.js';
import { resolveOptions } from '../core/definition.js';
import { b2Backend, type B2Config } from './definition.js';

/** B2Storage's options (documented in ./definition.ts, where configuration reads them too). */
export interface B2StorageOptions extends B2Config, ServingOptions {
  /** @deprecated Use `prefix` (the same meaning). */
  location?: string;
  /** @deprecated Use `maxAttempts` (the same meaning). */
  maxUploadAttempts?: number;
  /** @deprecated Use `endpoint` (the same meaning). */
  apiUrl?: string;
}

const DEFAULT_LARGE_FILE_THRESHOLD = 200_000_000;
const DEFAULT_SPOOL_THRESHOLD = 8 * 1024 * 1024;
const DEFAULT_EXPIRES_IN = 3600;
const MAX_EXPIRES_IN = 604_800;
/** b2_get_upload_url: "An uploadUrl and upload authorizationToken are valid for 24 hours". */
const UPLOAD_TOKEN_SECONDS = 86_400;
/** b2_upload_file takes at most 5 GB; b2_copy_file likewise. */
const MAX_SIMPLE_SIZE = 5_000_000_000;
const MAX_NAME_BYTES = 1024;
const MAX_SEGMENT_BYTES = 250;

/**
 * Media in a Backblaze B2 bucket, on B2's native API. Bodies are spooled (memory, or a temp file
 * above `spoolThreshold`) so each upload carries its SHA-1 and can be resent; files above
 * `largeFileThreshold` go up in parts. `ifExists: 'fail'` checks first (B2 has no conditional upload).
 */
export class B2Storage extends BaseStorage {
  readonly name = 'b2';
  readonly capabilities: Readonly<Capabilities>;
  private readonly options: B2StorageOptions;
  private readonly prefix: string;
  private readonly visibility: 'public' | 'private';
  private readonly spoolThreshold: number;
  private readonly timeout: number;
  private readonly session: B2Session;
  private readonly uploader: B2Uploader;

  constructor(given: B2StorageOptions) {
    const options = resolveOptions(b2Backend, given);
    super(options);
    for (const field of ['applicationKeyId', 'applicationKey', 'bucketName'] as const) {
      if (typeof options?.[field] !== 'string' || options[field] === '') throw new MediaStorageError('CONFIG', `B2Storage needs ${field}`, { backend: 'b2' });
    }
    const positive = (name: keyof B2StorageOptions): void => {
      const v = options[name];
      if (v !== undefined && !(typeof v === 'number' && Number.isInteger(v) && v > 0))
        throw new MediaStorageError('CONFIG', `B2Storage option ${name} must be a positive whole number`, { backend: 'b2' });
    };
    (['defaultExpiresIn', 'largeFileThreshold', 'partSize', 'spoolThreshold', 'maxAttempts', 'timeout'] as const).forEach(positive);
    if (options.defaultExpiresIn !== undefined && options.defaultExpiresIn > MAX_EXPIRES_IN)
      throw new MediaStorageError('CONFIG', `B2Storage defaultExpiresIn is at most ${MAX_EXPIRES_IN} seconds (7 days)`, { backend: 'b2' });
    if (options.visibility !== undefined && options.visibility !== 'public' && options.visibility !== 'private')
      throw new MediaStorageError('CONFIG', 'B2Storage visibility must be "public" or "private"', { backend: 'b2' });
    this.options = options;
    this.prefix = normalizeLocation(options.prefix);
    this.visibility = options.visibility ?? 'private';
    const maxAttempts = options.maxAttempts ?? 5;
    this.spoolThreshold = options.spoolThreshold ?? DEFAULT_SPOOL_THRESHOLD;
    this.timeout = options.timeout ?? API_TIMEOUT_MS;
    this.session = new B2Session({
      applicationKeyId: options.applicationKeyId,
      applicationKey: options.applicationKey,
      bucketName: options.bucketName,
      bucketId: options.bucketId,
      authorizeUrl: options.endpoint ?? DEFAULT_AUTHORIZE_URL,
      timeout: this.timeout,
    });
    this.uploader = new B2Uploader(this.session, { maxAttempts, spoolThreshold: this.spoolThreshold }, (name) => this.currentVersion(name));
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
      // b2_list_file_names gives up to 10,000 names a call, in UTF-8 byte order, hidden files left out as exists() leaves them.
      listingAnswersExists: true,
      directUploads: true,
      // An upload URL's token lives 24 hours, and B2 cannot be asked for less.
      maxUploadExpiresIn: UPLOAD_TOKEN_SECONDS,
    });
  }

  protected override secrets(): readonly (string | undefined)[] {
    return [this.options.applicationKey, this.session.sdk?.authorizationToken ?? undefined];
  }

  /**
   * The full B2 file name for a key (the prefix added). B2's name limits are tighter than the
   * core key rules (segments of 250 bytes, not 255, and the prefix counts): INVALID_KEY past them.
   */
  private fileName(key: string): string {
    const name = joinPrefix(this.prefix, key);
    if (Buffer.byteLength(name) > MAX_NAME_BYTES || name.split('/').some((segment) => Buffer.byteLength(segment) > MAX_SEGMENT_BYTES)) {
      throw new MediaStorageError(
        'INVALID_KEY',
        `Key "${key}" is too long for B2 (names up to ${MAX_NAME_BYTES} bytes with the prefix, ${MAX_SEGMENT_BYTES} bytes between slashes)`,
        { key },
      );
    }
    return name;
  }

  /** B2 file info names: letters, digits, "-" and "_" (the SDK refuses others), and not B2's own. */
  protected override metadataRules(): MetadataRules {
    return {
      name: {
        pattern: /^(?!b2-|large_file_sha1$|src_last_modified_millis$)[a-z0-9_-]+$/,
        description: 'use letters, digits, "-" and "_", not starting with "b2-"',
      },
    };
  }

  // ------------------------------------------------------------------ errors

  protected override mapError(err: unknown): ErrorMapping | undefined {
    return mapB2Error(err, undefined);
  }

  // ------------------------------------------------------------------ reads

  /**
   * The current (not hidden) version of a name, or undefined: a HEAD of b2_download_file_by_name,
   * a class B transaction (ten times cheaper than b2_list_file_names, class C), which answers 404
   * for hidden and absent names alike.
   */
  private async currentFile(key: string): Promise<B2FileJson | undefined> {
    const name = this.fileName(key);
    await this.session.allowed(['readFiles'], `read "${key}"`, key, name);
    return this.currentVersion(name);
  }

  /** {@link currentFile} by B2 file name. */
  private async currentVersion(name: string): Promise<B2FileJson | undefined> {
    let headers: Record<string, unknown>;
    try {
      const res = await this.session.callResponse(HEAD_API, (sdk) =>
        sdk.downloadFileByName({ bucketName: this.options.bucketName, fileName: name, axiosOverride: { method: 'HEAD', ...this.session.settings() } }),
      );
      headers = res.headers;
    } catch (err) {
      if (err instanceof B2ApiError && err.status === 404) {
        // A HEAD's 404 cannot tell a missing file from a misspelled bucket.
        await this.session.confirmBucketName();
        return undefined;
      }
      throw err;
    }
    return fileFromHeaders(name, this.session.bucketId!, headers);
  }

  protected async statObject(key: string): Promise<ObjectInfo | undefined> {
    const file = await this.currentFile(key);
    return file ? toObjectInfo(this.prefix, file) : undefined;
  }

  protected async readObject(key: string, options: ReadOptions): Promise<Readable> {
    const { range, signal } = options;
    const name = this.fileName(key);
    await this.session.allowed(['readFiles'], `read "${key}"`, key, name);
    const headers = range ? { Range: `bytes=${range.start}-${range.end ?? ''}` } : {};
    const data = await this.session
      .call('download', (sdk) =>
        this.withHeadTimeout('download', signal, (requestSignal) =>
          sdk.downloadFileByName({
            bucketName: this.options.bucketName,
            fileName: name,
            responseType: 'stream',
            axiosOverride: { headers, ...this.session.settings({ signal: requestSignal, stream: true }) },
          }),
        ),
      )
      .catch(async (err: unknown) => {
        if (err instanceof B2ApiError && err.status === 404) await this.session.confirmBucketName();
        throw err;
      });
    // A server that stops sending mid-body fails the read (UNAVAILABLE) instead of hanging it.
    return failOnStall(
      data as unknown as Readable,
      this.timeout,
      () => new B2ApiError('download', undefined, 'ETIMEDOUT', `download: no bytes for ${this.timeout} ms`),
    );
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
    const fullPrefix = listablePrefix(await this.session.allowed(['listFiles'], 'list files', undefined), this.prefix + prefix);
    return listFileNames(this.session, this.prefix, fullPrefix, options);
  }

  // ------------------------------------------------------------------ delete

  protected async deleteObject(key: string): Promise<void> {
    const name = this.fileName(key);
    await this.session.allowed(['listFiles', 'deleteFiles'], `delete "${key}" (every version is listed, then deleted)`, key, name);
    // Deleting only the newest version would bring the previous one back: delete them all, oldest
    // first, so that a delete failing halfway leaves the newest version served, never an older one.
    // Unfinished large files ("start") belong to uploads in progress and are left to them.
    for (const version of (await versionsOf(this.session, name)).reverse()) {
      if (version.action === 'start') continue;
      try {
        await this.session.call('b2_delete_file_version', (sdk) =>
          sdk.deleteFileVersion({ fileId: version.fileId, fileName: name, axiosOverride: this.session.settings() }),
        );
      } catch (err) {
        // Already gone (a concurrent delete): that is the outcome we want.
        if (!(err instanceof B2ApiError && (err.b2Code === 'file_not_present' || err.status === 404))) throw err;
      }
    }
  }

  // ------------------------------------------------------------------ copy and urls

  protected override async copyObject(from: string, to: string, options: CopyOptions): Promise<ObjectInfo> {
    const name = this.fileName(to);
    await this.session.allowed(['writeFiles'], `copy to "${to}"`, to, name);
    const source = await this.currentFile(from);
    if (!source) throw new MediaStorageError('NOT_FOUND', `No object under "${from}"`, { key: from });
    if (source.contentLength > MAX_SIMPLE_SIZE) return super.copyObject(from, to, options);
    // The copy keeps the source's info under the new name, which must fit B2's header limit too.
    const contentType = source.contentType ?? 'application/octet-stream';
    checkHeaderBytes(name, source.fileInfo, contentType, await this.session.headerLimitFor(fileInfoHeaderBytes(name, source.fileInfo, contentType)), to);
    // backblaze-b2 has no b2_copy_file; the call goes to the apiUrl authorize gave, with the account token.
    const file = await this.session.callJson<B2FileJson>('b2_copy_file', { sourceFileId: source.fileId, fileName: name, metadataDirective: 'COPY' });
    return toObjectInfo(this.prefix, file);
  }

  protected async objectUrl(key: string, options: UrlOptions): Promise<string> {
    const name = this.fileName(key);
    const path = encodeKeyPath(name);
    const download = requestedDownload(options.download);
    if (this.visibility === 'public' && options.expiresIn === undefined && download === undefined) {
      if (this.options.publicBaseUrl) return `${this.options.publicBaseUrl.replace(/\/+$/, '')}/${path}`;
      await this.session.ensureAuthorized();
      return `${this.session.sdk!.downloadUrl}/file/${encodeURIComponent(this.options.bucketName)}/${path}`;
    }
    // The core has checked expiresIn against capabilities.maxExpiresIn (B2's validDurationInSeconds: seven days).
    const expiresIn = Math.ceil(options.expiresIn ?? this.options.defaultExpiresIn ?? DEFAULT_EXPIRES_IN);
    const disposition = download === undefined ? undefined : contentDisposition('attachment', download || undefined);
    await this.session.allowed(['shareFiles'], `make a private URL for "${key}"`, key, name);
    // The authorization covers names starting with this one: exactly this file (and any name extending it).
    const auth = await this.session.call('b2_get_download_authorization', (sdk) =>
      sdk.getDownloadAuthorization({
        bucketId: this.session.bucketId!,
        fileNamePrefix: name,
        validDurationInSeconds: expiresIn,
        b2ContentDisposition: disposition,
        axiosOverride: this.session.settings(),
      }),
    );
    const query = new URLSearchParams({ Authorization: auth.authorizationToken });
    if (disposition !== undefined) query.set('b2ContentDisposition', disposition);
    return `${this.session.sdk!.downloadUrl}/file/${encodeURIComponent(this.options.bucketName)}/${path}?${query.toString()}`;
  }

  // ------------------------------------------------------------------ writes

  protected async writeObject(key: string, body: PreparedBody, options: WriteOptions): Promise<ObjectInfo> {
    const { signal } = options;
    const name = this.fileName(key);
    const info = this.fileInfo(options);
    await this.session.allowed(options.ifExists === 'fail' ? ['writeFiles', 'readFiles'] : ['writeFiles'], `save "${key}"`, key, name);
    checkFileInfoLimits(name, info, body.contentType, await this.session.headerLimitFor(fileInfoHeaderBytes(name, info, body.contentType)), key);
    // ifExists 'fail': BaseStorage has checked first (atomicCreate false), as for every such backend.
    const partSize = Math.max(this.options.partSize ?? this.session.recommendedPartSize, this.session.absoluteMinimumPartSize);
    const threshold = this.options.largeFileThreshold ?? DEFAULT_LARGE_FILE_THRESHOLD;
    if (body.size !== undefined && !body.buffer && body.size > this.spoolThreshold && body.size <= Math.min(threshold, MAX_SIMPLE_SIZE)) {
      return toObjectInfo(this.prefix, await this.uploader.uploadWhileSpooling(name, body, body.size, partSize, info, signal));
    }
    // A body already in memory stays there (it passes through spoolBody only to be hashed).
    const spooled = await spoolBody(body.stream(), { spoolThreshold: body.buffer ? Infinity : this.spoolThreshold, partSize });
    try {
      if (signal?.aborted) throw abortedError('save', key, undefined, signal.reason);
      const large = spooled.size > MAX_SIMPLE_SIZE || (spooled.size > threshold && spooled.partSha1s.length >= 2);
      const file = large
        ? await this.uploader.uploadLarge(name, spooled, body.contentType, info, signal, body.replayable)
        : await this.uploader.uploadSimple(name, spooled, body.contentType, info, signal);
      return toObjectInfo(this.prefix, file);
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
    await this.session.allowed(['writeFiles'], `upload "${key}"`, key, name);
    const info: Record<string, string> = plan.contentDisposition ? { 'b2-content-disposition': plan.contentDisposition } : {};
    checkFileInfoLimits(name, info, plan.contentType, await this.session.headerLimitFor(fileInfoHeaderBytes(name, info, plan.contentType)), key);
    // A URL of its own: B2 lets one upload at a time use an upload URL, and the browser keeps this one.
    const target = await this.session.call('b2_get_upload_url', (sdk) =>
      sdk.getUploadUrl({ bucketId: this.session.bucketId!, axiosOverride: this.session.settings() }),
    );
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
      if (!/^[A-Za-z0-9_-]+$/.test(k) || RESERVED_INFO.test(k.toLowerCase()))
        throw new MediaStorageError(
          'INVALID_INPUT',
          `Metadata key ${JSON.stringify(k)} is not allowed on B2: use letters, digits, "-" and "_", not starting with "b2-"`,
        );
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
}
