/**
 * What `b2_authorize_account` grants, read from any of its answer shapes; the checks that turn a
 * key's restrictions into PERMISSION errors before a request is sent; and {@link B2Session}, which
 * authorizes, renews the account token and makes the calls that carry it.
 *
 * Shapes (Backblaze's b2_authorize_account reference, "API Versions"):
 * - v1/v2: `apiUrl`, `downloadUrl`, part sizes at the top level; `allowed` holds `capabilities`,
 *   `bucketId`, `bucketName`, `namePrefix`.
 * - v3: everything under `apiInfo.storageApi`, with `bucketId`, `bucketName`, `capabilities` and
 *   `namePrefix` directly in it.
 * - v4: under `apiInfo.storageApi`; `bucketId`/`bucketName` are gone and `allowed` holds
 *   `buckets` (a list of `{ id, name }`, or null for every bucket), `capabilities`, `namePrefix`.
 *   Multi-bucket application keys authorize only through v4.
 */
import { MediaStorageError } from '../core/errors.js';
import { B2ApiError, isTokenFailure, toB2ApiError } from './errors.js';
import { HEADER_LIMIT, HEADER_LIMIT_ENCRYPTED_OR_LOCKED } from './file-info.js';
import { loadB2Sdk, postJson, requestSettings, type B2BucketJson, type B2Sdk, type SdkResponse } from './sdk.js';

/** Default authorize endpoint: v4, the only version multi-bucket keys work with. */
export const DEFAULT_AUTHORIZE_URL = 'https://api.backblazeb2.com/b2api/v4/b2_authorize_account';

/** The capabilities this backend's operations need (Backblaze, "Application Key Capabilities"). */
export type B2Capability = 'listBuckets' | 'listFiles' | 'readFiles' | 'shareFiles' | 'writeFiles' | 'deleteFiles';

/** A bucket an application key is restricted to; `name` is null when the bucket was deleted. */
export interface AllowedBucket {
  id: string;
  name: string | null;
}

/** The account authorization, whichever version of b2_authorize_account answered. */
export interface B2Authorization {
  accountId: string;
  authorizationToken: string;
  apiUrl: string;
  downloadUrl: string;
  recommendedPartSize?: number;
  absoluteMinimumPartSize?: number;
  /** The key's capabilities; undefined when the answer listed none (then nothing is checked up front). */
  capabilities?: ReadonlySet<string>;
  /** The buckets the key is restricted to, or null for every bucket in the account. */
  buckets: readonly AllowedBucket[] | null;
  /** The key only reaches file names starting with this, or null. */
  namePrefix: string | null;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined);

function validUrl(v: unknown): string | undefined {
  const s = str(v);
  if (!s) return undefined;
  try {
    const url = new URL(s);
    return url.protocol === 'https:' || url.protocol === 'http:' ? s.replace(/\/+$/, '') : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads a b2_authorize_account answer of any version. An answer without a token, an API URL or a
 * download URL is CONFIG: the authorize endpoint is not B2's (or not a version we know).
 */
export function parseAuthorization(data: unknown): B2Authorization {
  const body = isObject(data) ? data : {};
  const storage = isObject(body.apiInfo) && isObject(body.apiInfo.storageApi) ? body.apiInfo.storageApi : undefined;
  const source = storage ?? body;
  const accountId = str(body.accountId);
  const authorizationToken = str(body.authorizationToken);
  const apiUrl = validUrl(source.apiUrl);
  const downloadUrl = validUrl(source.downloadUrl);
  if (!accountId || !authorizationToken || !apiUrl || !downloadUrl) {
    const missing = [!accountId && 'accountId', !authorizationToken && 'authorizationToken', !apiUrl && 'apiUrl', !downloadUrl && 'downloadUrl']
      .filter(Boolean)
      .join(', ');
    throw new MediaStorageError(
      'CONFIG',
      `b2_authorize_account answered without a usable ${missing}: is the apiUrl option B2's authorize endpoint (…/b2api/v4/b2_authorize_account)?`,
      { backend: 'b2' },
    );
  }
  // v2 keeps the restrictions in `allowed`; v3 directly in storageApi; v4 in storageApi.allowed.
  const allowed = isObject(source.allowed) ? source.allowed : (storage ?? {});
  let buckets: AllowedBucket[] | null = null;
  if (Array.isArray(allowed.buckets)) {
    buckets = allowed.buckets.filter(isObject).flatMap((b) => (str(b.id) ? [{ id: str(b.id)!, name: str(b.name) ?? null }] : []));
  } else if (str(allowed.bucketId)) {
    buckets = [{ id: str(allowed.bucketId)!, name: str(allowed.bucketName) ?? null }];
  }
  const capabilities = Array.isArray(allowed.capabilities) ? new Set(allowed.capabilities.filter((c): c is string => typeof c === 'string')) : undefined;
  return {
    accountId,
    authorizationToken,
    apiUrl,
    downloadUrl,
    recommendedPartSize: num(source.recommendedPartSize),
    absoluteMinimumPartSize: num(source.absoluteMinimumPartSize),
    capabilities,
    buckets,
    namePrefix: typeof allowed.namePrefix === 'string' && allowed.namePrefix !== '' ? allowed.namePrefix : null,
  };
}

/** PERMISSION unless the key has every capability (when the authorization lists them). */
export function requireCapabilities(auth: B2Authorization, needed: readonly B2Capability[], what: string, key?: string): void {
  if (!auth.capabilities) return;
  const missing = needed.filter((c) => !auth.capabilities!.has(c));
  if (missing.length === 0) return;
  const names = missing.map((c) => `"${c}"`).join(' and ');
  throw new MediaStorageError(
    'PERMISSION',
    `The B2 application key lacks the ${names} ${missing.length > 1 ? 'capabilities' : 'capability'} needed to ${what}: create a key with ${names}`,
    { backend: 'b2', key },
  );
}

/** PERMISSION when the key is restricted to a name prefix that `fileName` is outside of. */
export function requireNameInPrefix(auth: B2Authorization, fileName: string, key?: string): void {
  if (auth.namePrefix === null || fileName.startsWith(auth.namePrefix)) return;
  throw new MediaStorageError('PERMISSION', `The B2 application key only reaches file names starting with "${auth.namePrefix}"; "${fileName}" is outside it`, {
    backend: 'b2',
    key,
  });
}

/**
 * The prefix to list for `prefix` under a key restricted to `namePrefix`: the prefix itself when it
 * lies inside the restriction, the restriction when the prefix contains it (everything the key can
 * see under the prefix), PERMISSION when the two do not overlap.
 */
export function listablePrefix(auth: B2Authorization, prefix: string): string {
  const restriction = auth.namePrefix;
  if (restriction === null || prefix.startsWith(restriction)) return prefix;
  if (restriction.startsWith(prefix)) return restriction;
  throw new MediaStorageError(
    'PERMISSION',
    `The B2 application key only reaches file names starting with "${restriction}"; nothing under "${prefix}" is visible to it`,
    { backend: 'b2' },
  );
}

/** What a {@link B2Session} needs from the storage's options. */
export interface B2SessionOptions {
  applicationKeyId: string;
  applicationKey: string;
  bucketName: string;
  bucketId?: string;
  authorizeUrl: string;
  /** Idle timeout of each request, in ms. */
  timeout: number;
}

/**
 * The account authorization and the calls made with it: authorizes once, finds the bucket,
 * renews the account token when B2 says it expired, and types every failure as a B2ApiError.
 * Nothing is retried here: a temporary failure maps to UNAVAILABLE and the retry layer
 * (withRetry) decides; only uploads get a fresh upload URL in ./upload.ts.
 */
export class B2Session {
  sdk?: B2Sdk;
  /** What the application key may do, from the last b2_authorize_account. */
  auth?: B2Authorization;
  bucketId?: string;
  recommendedPartSize = 100_000_000;
  absoluteMinimumPartSize = 5_000_000;
  /** Whether `bucketName` is known to be the bucket `bucketId` names (downloads go by name). */
  private bucketNameChecked = false;
  private bucketNameCheck?: Promise<void>;
  /** The header limit for file name and info on this bucket, once known (see ./file-info.ts). */
  private headerLimit?: number;
  private headerLimitLookup?: Promise<number>;
  /** The authorization in progress or done; reset to renew. */
  private authorizing?: Promise<void>;
  private renewal?: { staleToken: string | null | undefined; promise: Promise<void> };

  constructor(private readonly options: B2SessionOptions) {}

  /** The settings every SDK request carries (see ./sdk.ts), with this storage's idle timeout. */
  settings(options: { signal?: AbortSignal; stream?: boolean } = {}): Record<string, unknown> {
    return requestSettings({ ...options, timeout: options.stream ? 0 : this.options.timeout });
  }

  /** Authorizes once (concurrent callers share the attempt) and looks the bucket up. */
  ensureAuthorized(): Promise<void> {
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
    const res = await this.typed('b2_authorize_account', () => sdk.authorize({ axiosOverride: { url: this.options.authorizeUrl, ...this.settings() } }));
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
        throw new MediaStorageError(
          'PERMISSION',
          `The B2 application key is restricted to the bucket${auth.buckets.length === 1 ? '' : 's'} ${names}; "${bucketName}" is not one of them`,
          { backend: 'b2' },
        );
      }
      if (match.name === null)
        throw new MediaStorageError('CONFIG', `The B2 bucket ${match.id} the application key is restricted to no longer exists`, { backend: 'b2' });
      if (match.name !== bucketName)
        throw new MediaStorageError('CONFIG', `B2 bucketId ${match.id} is the bucket "${match.name}", not "${bucketName}"`, { backend: 'b2' });
      this.bucketId = match.id;
      this.bucketNameChecked = true;
      return;
    }
    if (bucketId) {
      this.bucketId = bucketId;
      return;
    }
    requireCapabilities(auth, ['listBuckets'], `look up the bucket "${bucketName}" (or pass the bucketId option)`);
    const found = await this.typed('b2_list_buckets', () => sdk.getBucket({ bucketName, axiosOverride: this.settings() }));
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
  confirmBucketName(): Promise<void> {
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
      if (!bucket)
        throw new MediaStorageError('CONFIG', `No B2 bucket has the bucketId ${this.bucketId} (bucketName "${this.options.bucketName}")`, { backend: 'b2' });
      if (bucket.bucketName !== this.options.bucketName)
        throw new MediaStorageError('CONFIG', `B2 bucketId ${this.bucketId} is the bucket "${bucket.bucketName}", not "${this.options.bucketName}"`, {
          backend: 'b2',
        });
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
  async headerLimitFor(bytes: number): Promise<number> {
    if (bytes <= HEADER_LIMIT_ENCRYPTED_OR_LOCKED || bytes > HEADER_LIMIT) return HEADER_LIMIT;
    if (this.headerLimit !== undefined) return this.headerLimit;
    this.headerLimitLookup ??= (async () => {
      if (!this.auth?.capabilities || this.auth.capabilities.has('listBuckets')) {
        const found = await this.call('b2_list_buckets', (sdk) => sdk.getBucket({ bucketId: this.bucketId, axiosOverride: this.settings() })).catch(
          () => undefined,
        );
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
  async allowed(needed: readonly B2Capability[], what: string, key: string | undefined, fileName?: string): Promise<B2Authorization> {
    await this.ensureAuthorized();
    const auth = this.auth!;
    requireCapabilities(auth, needed, what, key);
    if (fileName !== undefined) requireNameInPrefix(auth, fileName, key);
    return auth;
  }

  /** Runs one SDK call, typing its failure (see ./errors.ts). */
  private async typed<T>(api: string, fn: () => Promise<SdkResponse<T>>): Promise<SdkResponse<T>> {
    try {
      return await fn();
    } catch (raw) {
      throw await toB2ApiError(api, raw);
    }
  }

  /**
   * An API call with the account token: authorizes first, and renews the token when B2 says it
   * expired (or is no longer valid; at most twice per call).
   */
  async call<T>(api: string, fn: (sdk: B2Sdk) => Promise<SdkResponse<T>>): Promise<T> {
    return (await this.callResponse(api, fn)).data;
  }

  /** {@link call}, giving the whole response (headers included). */
  async callResponse<T>(api: string, fn: (sdk: B2Sdk) => Promise<SdkResponse<T>>): Promise<SdkResponse<T>> {
    await this.ensureAuthorized();
    for (let renewals = 0; ; renewals++) {
      const sdk = this.sdk!;
      const token = sdk.authorizationToken;
      try {
        return await this.typed(api, () => fn(sdk));
      } catch (err) {
        if (!isTokenFailure(err) || renewals >= 2) throw err;
        await this.renew(token);
      }
    }
  }

  /** {@link postJson} (a call the SDK lacks) with the account token. */
  callJson<T>(api: string, body: unknown): Promise<T> {
    return this.call<T>(api, (sdk) => postJson(sdk, api, body, this.options.timeout));
  }
}
