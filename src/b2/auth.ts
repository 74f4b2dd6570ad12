/**
 * What `b2_authorize_account` grants, read from any of its answer shapes, and the checks that turn
 * a key's restrictions into PERMISSION errors before a request is sent.
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
    const missing = [!accountId && 'accountId', !authorizationToken && 'authorizationToken', !apiUrl && 'apiUrl', !downloadUrl && 'downloadUrl'].filter(Boolean).join(', ');
    throw new MediaStorageError('CONFIG', `b2_authorize_account answered without a usable ${missing}: is the apiUrl option B2's authorize endpoint (…/b2api/v4/b2_authorize_account)?`, { backend: 'b2' });
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
  throw new MediaStorageError('PERMISSION', `The B2 application key lacks the ${names} ${missing.length > 1 ? 'capabilities' : 'capability'} needed to ${what}: create a key with ${names}`, { backend: 'b2', key });
}

/** PERMISSION when the key is restricted to a name prefix that `fileName` is outside of. */
export function requireNameInPrefix(auth: B2Authorization, fileName: string, key?: string): void {
  if (auth.namePrefix === null || fileName.startsWith(auth.namePrefix)) return;
  throw new MediaStorageError('PERMISSION', `The B2 application key only reaches file names starting with "${auth.namePrefix}"; "${fileName}" is outside it`, { backend: 'b2', key });
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
  throw new MediaStorageError('PERMISSION', `The B2 application key only reaches file names starting with "${restriction}"; nothing under "${prefix}" is visible to it`, { backend: 'b2' });
}

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
