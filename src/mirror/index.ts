import type { Readable } from 'node:stream';
import { presignUploadOf } from '../core/direct-upload.js';
import { isNotFound, type MediaStorageError } from '../core/errors.js';
import type {
  Body,
  Capabilities,
  CopyOptions,
  DirectUpload,
  DirectUploadOptions,
  MediaStorage,
  ObjectInfo,
  ReadOptions,
  SaveOptions,
  UrlOptions,
} from '../core/types.js';
import { StorageWrapper } from '../core/wrapper.js';

/** Options of {@link MirrorStorage}, given after the storages: what to do when a secondary fails a write. */
export interface MirrorStorageOptions {
  /**
   * Called when a write reached the primary but failed on a secondary. Without it the error is
   * thrown (the primary keeps the object either way).
   */
  onMirrorError?: (error: MediaStorageError, context: { operation: string; key: string; secondary: MediaStorage }) => void;
}

/**
 * Writes go to the primary and then to every secondary; reads, exists, stat and url come from
 * the primary and fall back to the first secondary that has the object. An app keeps serving
 * old files from its local disk while new ones land on durable storage and `media-storage sync`
 * moves the rest (Active Storage's Mirror service, for Node).
 *
 * Listing shows the primary's objects only.
 */
export class MirrorStorage extends StorageWrapper {
  readonly primary: MediaStorage;
  readonly secondaries: readonly MediaStorage[];
  private readonly options: MirrorStorageOptions;

  constructor(primary: MediaStorage, ...rest: Array<MediaStorage | MirrorStorageOptions>) {
    super(primary);
    this.primary = primary;
    const last = rest[rest.length - 1];
    const hasOptions = last !== undefined && !('save' in last);
    this.options = hasOptions ? (last as MirrorStorageOptions) : {};
    this.secondaries = (hasOptions ? rest.slice(0, -1) : rest) as MediaStorage[];
  }

  override get name(): string {
    return 'mirror';
  }

  override get capabilities(): Readonly<Capabilities> {
    // A direct upload would reach the primary only: the mirror offers none.
    return { ...this.primary.capabilities, directUploads: false };
  }

  private async mirror(operation: string, key: string, fn: (secondary: MediaStorage) => Promise<unknown>): Promise<void> {
    for (const secondary of this.secondaries) {
      try {
        await fn(secondary);
      } catch (err) {
        if (!this.options.onMirrorError) throw err;
        this.options.onMirrorError(err as MediaStorageError, { operation, key, secondary });
      }
    }
  }

  /** The first storage, primary first, for which `probe` succeeds; NOT_FOUND from all rethrows the primary's. */
  private async firstWith<T>(probe: (storage: MediaStorage) => Promise<T>): Promise<T> {
    let firstError: unknown;
    for (const storage of [this.primary, ...this.secondaries]) {
      try {
        return await probe(storage);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        firstError ??= err;
      }
    }
    throw firstError;
  }

  override async save(key: string, body: Body, options: SaveOptions = {}): Promise<ObjectInfo> {
    const info = await this.primary.save(key, body, options);
    // The body may have been a stream: the secondaries get the primary's stored copy.
    await this.mirror('save', info.key, async (secondary) =>
      secondary.save(info.key, await this.primary.read(info.key), {
        contentType: info.contentType,
        cacheControl: options.cacheControl,
        metadata: options.metadata,
        allowEmpty: true,
        signal: options.signal,
      }),
    );
    return info;
  }

  override async url(key: string, options: UrlOptions = {}): Promise<string> {
    if (this.secondaries.length > 0 && !(await this.primary.exists(key))) {
      for (const secondary of this.secondaries) if (await secondary.exists(key)) return secondary.url(key, options);
    }
    return this.primary.url(key, options);
  }

  override async delete(key: string): Promise<void> {
    await this.primary.delete(key);
    await this.mirror('delete', key, (secondary) => secondary.delete(key));
  }

  override async exists(key: string): Promise<boolean> {
    if (await this.primary.exists(key)) return true;
    for (const secondary of this.secondaries) if (await secondary.exists(key)) return true;
    return false;
  }

  override read(key: string, options: ReadOptions = {}): Promise<Readable> {
    return this.firstWith((storage) => storage.read(key, options));
  }

  override readBuffer(key: string, options: ReadOptions = {}): Promise<Buffer> {
    return this.firstWith((storage) => storage.readBuffer(key, options));
  }

  override stat(key: string): Promise<ObjectInfo> {
    return this.firstWith((storage) => storage.stat(key));
  }

  override async copy(from: string, to: string, options: CopyOptions = {}): Promise<ObjectInfo> {
    const info = await this.primary.copy(from, to, options);
    await this.mirror('copy', to, async (secondary) => {
      try {
        await secondary.copy(from, to, options);
      } catch (err) {
        // The secondary never had the source (written before mirroring began): give it the copy.
        if (!isNotFound(err)) throw err;
        await secondary.save(to, await this.primary.read(to), { contentType: info.contentType, allowEmpty: true });
      }
    });
    return info;
  }

  /** The mirror offers no direct uploads (one would reach the primary only). */
  override presignUpload(key: string, options?: DirectUploadOptions): Promise<DirectUpload> {
    return presignUploadOf(this, key, options);
  }

  /** Closes the primary and every secondary. */
  override async close(): Promise<void> {
    await Promise.all([this.primary, ...this.secondaries].map((storage) => storage.close()));
  }
}
