import type { Readable } from 'node:stream';
import { isNotFound } from '../core/errors.js';
import { tryValidateKey, validateKey } from '../core/keys.js';
import { presignUploadOf } from '../core/direct-upload.js';
import type { Body, CopyOptions, DirectUpload, DirectUploadOptions, MediaStorage, ObjectInfo, ReadOptions, SaveOptions } from '../core/types.js';
import { StorageWrapper } from '../core/wrapper.js';
import { ExistenceCache, type ExistenceCacheOptions, type PrimeOptions, type PrimeResult } from './existence-cache.js';

/**
 * A MediaStorage whose `exists` answers from an {@link ExistenceCache}. Everything else goes to
 * the wrapped storage; what it learns on the way updates the cache: save and copy mark the key
 * present, delete marks it missing, a NOT_FOUND from stat or read marks it missing, a successful
 * stat marks it present. Changes made behind its back (another process, a wiped disk) show once
 * the entry's TTL runs out; the browser-side fallback covers the gap.
 */
export class CachedStorage extends StorageWrapper {
  readonly cache: ExistenceCache;

  constructor(storage: MediaStorage, cache: ExistenceCache | ExistenceCacheOptions = {}) {
    super(storage);
    this.cache = cache instanceof ExistenceCache ? cache : new ExistenceCache(cache);
  }

  /** The storage being cached. */
  get storage(): MediaStorage {
    return this.inner;
  }

  override async exists(key: string): Promise<boolean> {
    const valid = validateKey(key);
    return this.cache.get(valid, () => this.storage.exists(valid));
  }

  /**
   * Lists `prefix` once so that `exists` answers the keys under it from the cache (see
   * {@link ExistenceCache.prime}): `await storage.prime('profile_images/')` before rendering a
   * page of avatars turns a check per photo into one or two listings. `resolveAvatars` primes by
   * itself when a page has many photos in one folder, on backends whose listing answers `exists()`.
   */
  prime(prefix: string, options?: PrimeOptions): Promise<PrimeResult> {
    return this.cache.prime(this.storage, prefix, options);
  }

  override async save(key: string, body: Body, options?: SaveOptions): Promise<ObjectInfo> {
    try {
      const info = await this.storage.save(key, body, options);
      this.cache.set(info.key, true);
      return info;
    } catch (err) {
      this.forget(key);
      throw err;
    }
  }

  override async delete(key: string): Promise<void> {
    try {
      await this.storage.delete(key);
    } catch (err) {
      this.forget(key);
      throw err;
    }
    this.cache.set(validateKey(key), false);
  }

  /** The inner storage's direct upload; the key's cached answer is dropped, as the object appears later. */
  override async presignUpload(key: string, options?: DirectUploadOptions): Promise<DirectUpload> {
    const upload = await presignUploadOf(this.storage, key, options);
    this.forget(upload.key);
    return upload;
  }

  override async copy(from: string, to: string, options?: CopyOptions): Promise<ObjectInfo> {
    try {
      const info = await this.storage.copy(from, to, options);
      this.cache.set(info.key, true);
      return info;
    } catch (err) {
      this.learnFromError(from, err);
      this.forget(to);
      throw err;
    }
  }

  override async stat(key: string): Promise<ObjectInfo> {
    const info = await this.observing(key, () => this.storage.stat(key));
    this.cache.set(info.key, true);
    return info;
  }

  override read(key: string, options?: ReadOptions): Promise<Readable> {
    return this.observing(key, () => this.storage.read(key, options));
  }

  override readBuffer(key: string, options?: ReadOptions): Promise<Buffer> {
    return this.observing(key, () => this.storage.readBuffer(key, options));
  }

  /** Runs a read-side operation, recording a NOT_FOUND as "missing". */
  private async observing<T>(key: string, operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (err) {
      this.learnFromError(key, err);
      throw err;
    }
  }

  private learnFromError(key: string, err: unknown): void {
    const valid = tryValidateKey(key);
    if (valid !== undefined && isNotFound(err)) this.cache.set(valid, false);
  }

  private forget(key: string): void {
    const valid = tryValidateKey(key);
    if (valid !== undefined) this.cache.delete(valid);
  }
}

/**
 * Wraps a storage in a {@link CachedStorage}: `withExistenceCache(storage, { positiveTtl: 60_000 })`.
 * Typed as the class (not only MediaStorage, as the layers' `with*` are) because it adds to the
 * interface: `prime()` and `cache`.
 */
export function withExistenceCache(storage: MediaStorage, options: ExistenceCache | ExistenceCacheOptions = {}): CachedStorage {
  return new CachedStorage(storage, options);
}
