import type { Readable } from 'node:stream';
import { isNotFound } from '../core/errors.js';
import { tryValidateKey, validateKey } from '../core/keys.js';
import { presignUploadOf } from '../core/direct-upload.js';
import type { Body, CopyOptions, DirectUpload, DirectUploadOptions, ListAllOptions, ListOptions, ListPage, MediaStorage, ObjectInfo, ReadOptions, SaveOptions, UrlOptions } from '../core/types.js';
import { ExistenceCache, type ExistenceCacheOptions } from './existence-cache.js';

/**
 * A MediaStorage whose `exists` answers from an {@link ExistenceCache}. Everything else goes to
 * the wrapped storage; what it learns on the way updates the cache: save and copy mark the key
 * present, delete marks it missing, a NOT_FOUND from stat or read marks it missing, a successful
 * stat marks it present. Changes made behind its back (another process, a wiped disk) show once
 * the entry's TTL runs out; the browser-side fallback covers the gap.
 */
export class CachedStorage implements MediaStorage {
  readonly cache: ExistenceCache;

  constructor(
    /** The storage being cached. */
    readonly storage: MediaStorage,
    cache: ExistenceCache | ExistenceCacheOptions = {},
  ) {
    this.cache = cache instanceof ExistenceCache ? cache : new ExistenceCache(cache);
  }

  get name(): string {
    return this.storage.name;
  }

  get capabilities(): MediaStorage['capabilities'] {
    return this.storage.capabilities;
  }

  async exists(key: string): Promise<boolean> {
    const valid = validateKey(key);
    return this.cache.get(valid, () => this.storage.exists(valid));
  }

  async save(key: string, body: Body, options?: SaveOptions): Promise<ObjectInfo> {
    try {
      const info = await this.storage.save(key, body, options);
      this.cache.set(info.key, true);
      return info;
    } catch (err) {
      this.forget(key);
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.storage.delete(key);
    } catch (err) {
      this.forget(key);
      throw err;
    }
    this.cache.set(validateKey(key), false);
  }

  /** The inner storage's direct upload; the key's cached answer is dropped, as the object appears later. */
  async presignUpload(key: string, options?: DirectUploadOptions): Promise<DirectUpload> {
    const upload = await presignUploadOf(this.storage, key, options);
    this.forget(upload.key);
    return upload;
  }

  async copy(from: string, to: string, options?: CopyOptions): Promise<ObjectInfo> {
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

  async stat(key: string): Promise<ObjectInfo> {
    const info = await this.observing(key, () => this.storage.stat(key));
    this.cache.set(info.key, true);
    return info;
  }

  read(key: string, options?: ReadOptions): Promise<Readable> {
    return this.observing(key, () => this.storage.read(key, options));
  }

  readBuffer(key: string, options?: ReadOptions): Promise<Buffer> {
    return this.observing(key, () => this.storage.readBuffer(key, options));
  }

  url(key: string, options?: UrlOptions): Promise<string> {
    return this.storage.url(key, options);
  }

  list(prefix?: string, options?: ListOptions): Promise<ListPage> {
    return this.storage.list(prefix, options);
  }

  listAll(prefix?: string, options?: ListAllOptions): AsyncIterable<ObjectInfo> {
    return this.storage.listAll(prefix, options);
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

/** Wraps a storage in a {@link CachedStorage}: `withExistenceCache(storage, { positiveTtl: 60_000 })`. */
export function withExistenceCache(storage: MediaStorage, options: ExistenceCache | ExistenceCacheOptions = {}): CachedStorage {
  return new CachedStorage(storage, options);
}
