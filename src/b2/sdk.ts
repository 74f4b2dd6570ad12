/**
 * The slice of `backblaze-b2` this backend uses, loaded lazily (it is an optional peer dependency),
 * and the per-request axios settings that make each call independent of the SDK's shared client.
 *
 * backblaze-b2 keeps ONE module-level axios client, replaced by every `new B2()` (with that
 * instance's `axios` and `retry` options), so a B2 instance created elsewhere in the app changes the
 * client our calls go through. Every call here therefore carries its own complete settings
 * (status validation, redirects, body limits, timeout, abort signal, and axios-retry switched off),
 * and retries are not the SDK's (it never retries POSTs): uploads in ./upload.ts, the rest in withRetry.
 */
import { codeFromNodeError } from '../core/error-mapping.js';
import { lazyPeer } from '../core/peer.js';
import { B2ApiError, toB2ApiError } from './errors.js';

/** The axios response fields we read. */
export interface SdkResponse<T> {
  status: number;
  data: T;
  headers: Record<string, unknown>;
}

type Call<A, T = unknown> = (args: A & { axios?: object; axiosOverride?: object }) => Promise<SdkResponse<T>>;

export interface B2FileJson {
  accountId?: string;
  action: 'upload' | 'hide' | 'start' | 'folder';
  bucketId: string;
  contentLength: number;
  contentSha1: string | null;
  contentType: string | null;
  fileId: string;
  fileInfo: Record<string, string>;
  fileName: string;
  uploadTimestamp: number;
}

/** A bucket as b2_list_buckets describes it (the fields this backend reads). */
export interface B2BucketJson {
  bucketId: string;
  bucketName: string;
  bucketType: string;
  /** Present when the key may read it (readBucketRetentions); `value` null otherwise. */
  fileLockConfiguration?: { isClientAuthorizedToRead?: boolean; value?: { isFileLockEnabled?: boolean } | null };
  /** Present when the key may read it (readBucketEncryption). */
  defaultServerSideEncryption?: { isClientAuthorizedToRead?: boolean; value?: { mode?: string | null } | null };
}

export interface B2UploadTarget {
  uploadUrl: string;
  authorizationToken: string;
}

/** A `backblaze-b2` instance: the methods this backend calls, and the auth context it keeps. */
export interface B2Sdk {
  authorizationToken: string | null;
  apiUrl: string | null;
  downloadUrl: string | null;
  accountId: string | null;
  /** The answer is any version's shape (see ./auth.ts); the SDK itself reads only v2's. */
  authorize: Call<object, unknown>;
  getBucket: Call<{ bucketName?: string; bucketId?: string }, { buckets: B2BucketJson[] }>;
  getUploadUrl: Call<{ bucketId: string }, B2UploadTarget & { bucketId: string }>;
  uploadFile: Call<
    {
      uploadUrl: string;
      uploadAuthToken: string;
      fileName: string;
      data: unknown;
      contentLength: number;
      hash: string;
      mime: string;
      info?: Record<string, string>;
    },
    B2FileJson
  >;
  listFileNames: Call<
    { bucketId: string; startFileName?: string; maxFileCount?: number; prefix?: string; delimiter?: string | null },
    { files: B2FileJson[]; nextFileName: string | null }
  >;
  listFileVersions: Call<
    { bucketId: string; startFileName?: string; startFileId?: string; maxFileCount?: number },
    { files: B2FileJson[]; nextFileName: string | null; nextFileId: string | null }
  >;
  deleteFileVersion: Call<{ fileId: string; fileName: string }, { fileId: string; fileName: string }>;
  getDownloadAuthorization: Call<
    { bucketId: string; fileNamePrefix: string; validDurationInSeconds: number; b2ContentDisposition?: string },
    { authorizationToken: string }
  >;
  downloadFileByName: Call<{ bucketName: string; fileName: string; responseType?: string }, NodeJS.ReadableStream>;
  startLargeFile: Call<{ bucketId: string; fileName: string; contentType: string }, B2FileJson>;
  getUploadPartUrl: Call<{ fileId: string }, B2UploadTarget & { fileId: string }>;
  uploadPart: Call<
    { uploadUrl: string; uploadAuthToken: string; partNumber: number; data: unknown; contentLength: number; hash: string },
    { partNumber: number; contentSha1: string }
  >;
  finishLargeFile: Call<{ fileId: string; partSha1Array: string[] }, B2FileJson>;
  cancelLargeFile: Call<{ fileId: string }, { fileId: string }>;
}

type B2Constructor = new (options: { applicationKeyId: string; applicationKey: string }) => B2Sdk;

/** Loads backblaze-b2 once; a missing package is a CONFIG error that says what to install. */
export const loadB2Sdk: () => Promise<B2Constructor> = lazyPeer(
  async () => {
    // A non-literal specifier keeps bundlers from inlining the optional peer dependency.
    const specifier = 'backblaze-b2';
    const mod = (await import(specifier)) as { default?: B2Constructor };
    return mod.default ?? (mod as unknown as B2Constructor);
  },
  { packages: 'backblaze-b2', usedBy: 'media-storage/b2 (B2Storage)', backend: 'b2' },
);

/**
 * Idle-socket timeout (axios sets it with `req.setTimeout`) for API calls and uploads: a stalled
 * connection fails as a broken one and is retried. Download streams have none, since a slow
 * consumer legitimately pauses them; they end with the caller's AbortSignal.
 */
export const API_TIMEOUT_MS = 120_000;

/**
 * Settings every request carries in `axiosOverride`, so the outcome never depends on how the
 * shared client was configured by the last `new B2()` anywhere in the process.
 */
export function requestSettings(options: { signal?: AbortSignal; timeout?: number; /** a download stream */ stream?: boolean } = {}): Record<string, unknown> {
  return {
    validateStatus: (status: number) => status >= 200 && status < 300,
    maxRedirects: 0,
    maxBodyLength: Infinity,
    maxContentLength: Infinity,
    timeout: options.timeout ?? (options.stream ? 0 : API_TIMEOUT_MS),
    decompress: !options.stream,
    'axios-retry': { retries: 0 },
    ...(options.signal ? { signal: options.signal } : {}),
  };
}

/** A JSON API call the SDK lacks, made the way the SDK makes its own. */
export async function postJson<T>(sdk: B2Sdk, api: string, body: unknown, timeout: number): Promise<SdkResponse<T>> {
  const res = await fetch(`${sdk.apiUrl}/b2api/v2/${api}`, {
    method: 'POST',
    headers: { Authorization: sdk.authorizationToken ?? '', 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(timeout),
  }).catch((err: unknown) => {
    throw new B2ApiError(api, undefined, codeFromNodeError(err) === 'UNAVAILABLE' ? 'network' : undefined, `${api}: ${(err as Error).message}`, undefined, {
      cause: err,
    });
  });
  const text = await res.text();
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = undefined;
  }
  if (!res.ok)
    throw await toB2ApiError(api, { response: { status: res.status, data, headers: { 'retry-after': res.headers.get('retry-after') ?? undefined } } });
  return { status: res.status, data: data as T, headers: {} };
}
