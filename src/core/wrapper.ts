/**
 * The one decorator base: a MediaStorage that forwards every member of the interface to the
 * storage it wraps. Layers (StorageLayer), the existence cache (CachedStorage) and the mirror
 * extend it and override what they change, so a member added to MediaStorage is forwarded by all
 * of them (MEDIA_STORAGE_MEMBERS makes the type check list it, and the test suite checks every
 * wrapper against that list).
 */
import type { Readable } from 'node:stream';
import { presignUploadOf } from './direct-upload.js';
import type {
  Body,
  Capabilities,
  CopyOptions,
  DirectUpload,
  DirectUploadOptions,
  ListAllOptions,
  ListOptions,
  ListPage,
  MediaStorage,
  ObjectInfo,
  ReadOptions,
  SaveOptions,
  UrlOptions,
} from './types.js';

/**
 * Every member of {@link MediaStorage}, as the type check sees them: adding a member to the
 * interface fails compilation here until it is listed (and then the wrapper tests run it).
 */
export const MEDIA_STORAGE_MEMBERS = {
  name: 'property',
  capabilities: 'property',
  save: 'method',
  url: 'method',
  delete: 'method',
  exists: 'method',
  read: 'method',
  readBuffer: 'method',
  stat: 'method',
  list: 'method',
  listAll: 'method',
  copy: 'method',
  presignUpload: 'method',
  close: 'method',
} as const satisfies Record<keyof MediaStorage, 'property' | 'method'>;

/** A MediaStorage that hands every call to `inner` unchanged; extend it and override what you change. */
export class StorageWrapper implements MediaStorage {
  constructor(
    /** The storage this one wraps. */
    protected readonly inner: MediaStorage,
  ) {}

  get name(): string {
    return this.inner.name;
  }

  get capabilities(): Readonly<Capabilities> {
    return this.inner.capabilities;
  }

  save(key: string, body: Body, options?: SaveOptions): Promise<ObjectInfo> {
    return this.inner.save(key, body, options);
  }

  url(key: string, options?: UrlOptions): Promise<string> {
    return this.inner.url(key, options);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  exists(key: string): Promise<boolean> {
    return this.inner.exists(key);
  }

  read(key: string, options?: ReadOptions): Promise<Readable> {
    return this.inner.read(key, options);
  }

  readBuffer(key: string, options?: ReadOptions): Promise<Buffer> {
    return this.inner.readBuffer(key, options);
  }

  stat(key: string): Promise<ObjectInfo> {
    return this.inner.stat(key);
  }

  list(prefix?: string, options?: ListOptions): Promise<ListPage> {
    return this.inner.list(prefix, options);
  }

  listAll(prefix?: string, options?: ListAllOptions): AsyncIterable<ObjectInfo> {
    return this.inner.listAll(prefix, options);
  }

  copy(from: string, to: string, options?: CopyOptions): Promise<ObjectInfo> {
    return this.inner.copy(from, to, options);
  }

  /** The inner storage's direct upload; UNSUPPORTED when it has none (or `capabilities` says so). */
  presignUpload(key: string, options?: DirectUploadOptions): Promise<DirectUpload> {
    return presignUploadOf(this.inner, key, options);
  }

  /** Closes the inner storage (its connections, agents, timers). */
  close(): Promise<void> {
    return this.inner.close();
  }
}
