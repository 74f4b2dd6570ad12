import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { alreadyExists, BaseStorage, type ServableObject, type WriteOptions } from '../core/base.js';
import { decodeCursor, encodeCursor } from '../core/cursor.js';
import { requestedDownload } from '../core/download.js';
import { streamToBuffer, type PreparedBody } from '../core/body.js';
import { MediaStorageError } from '../core/errors.js';
import { createMediaHandler, type MediaHandlerTuning, type MediaRequestHandler } from '../core/http-handler.js';
import { compareKeys, encodeKeyPath } from '../core/keys.js';
import type { ServingOptions } from '../core/serving.js';
import { resolveOptions } from '../core/definition.js';
import { memoryBackend, type MemoryConfig } from './definition.js';
import { UrlSigner } from '../core/signed-url.js';
import { handlerUpload, type PresignPlan } from '../core/direct-upload.js';
import type { Capabilities, CopyOptions, DirectUpload, ListPage, ObjectInfo, ReadOptions, UrlOptions } from '../core/types.js';

/** MemoryStorage's options (documented in ./definition.ts). */
export interface MemoryStorageOptions extends MemoryConfig, ServingOptions {
  /** @deprecated Use `publicBaseUrl` (the same meaning). */
  baseUrl?: string;
}

interface StoredEntry {
  data: Buffer;
  info: ObjectInfo;
}

const TEST_SECRET = 'media-storage-memory-test-secret';

/**
 * Objects in a Map: the same semantics as every other backend, for application tests. Saves are
 * atomic (the body is read whole before it becomes visible).
 */
export class MemoryStorage extends BaseStorage {
  readonly name = 'memory';
  readonly capabilities: Readonly<Capabilities>;
  readonly baseUrl: string;
  private readonly objects = new Map<string, StoredEntry>();
  private readonly signer: UrlSigner;
  private readonly visibility: 'public' | 'private';

  constructor(given: MemoryStorageOptions = {}) {
    const options = resolveOptions(memoryBackend, given);
    super(options);
    this.baseUrl = (options.publicBaseUrl ?? '/media').replace(/\/+$/, '');
    this.signer = new UrlSigner(options.secret ?? TEST_SECRET);
    this.visibility = options.visibility ?? 'public';
    this.capabilities = Object.freeze({
      publicUrls: this.visibility === 'public',
      signedUrls: true,
      downloadUrls: true,
      rangeReads: true,
      serverSideCopy: true,
      metadata: true,
      atomicCreate: true,
      md5Etag: true,
      directUploads: true,
    });
  }

  /** Number of stored objects. */
  get size(): number {
    return this.objects.size;
  }

  /** Removes every object. */
  clear(): void {
    this.objects.clear();
  }

  /**
   * Stores an object under any name, bypassing the key rules and the metadata checks, as other
   * software can write to a real bucket (folder markers `x/`, `a//b`, control characters,
   * decomposed Unicode...): for testing how an app and the tools treat objects this library would
   * never create. `list()` leaves out the names that are not keys and reports them in `skipped`.
   */
  putForeignObject(
    name: string,
    data: Buffer | string,
    options: { contentType?: string; cacheControl?: string; metadata?: Record<string, string> } = {},
  ): void {
    const bytes = Buffer.from(data);
    const info: ObjectInfo = {
      key: name,
      size: bytes.length,
      contentType: options.contentType ?? 'application/octet-stream',
      etag: createHash('md5').update(bytes).digest('hex'),
      lastModified: new Date(),
      ...(options.cacheControl ? { cacheControl: options.cacheControl } : {}),
      ...(options.metadata ? { metadata: { ...options.metadata } } : {}),
    };
    this.objects.set(name, { data: bytes, info });
  }

  /** Serves the objects over HTTP under the path of `baseUrl` (see LocalStorage.handler). */
  handler(options: MediaHandlerTuning = {}): MediaRequestHandler {
    const basePath = /^[a-z][a-z0-9+.-]*:\/\//i.test(this.baseUrl) ? new URL(this.baseUrl).pathname : this.baseUrl;
    return createMediaHandler(this, { ...options, basePath, signer: this.signer, requireSignature: this.visibility === 'private' });
  }

  protected async writeObject(key: string, body: PreparedBody, options: WriteOptions): Promise<ObjectInfo> {
    // Read through the guarded stream even for in-memory bodies, so limits, progress and abort apply.
    const data = await streamToBuffer(body.stream());
    if (options.ifExists === 'fail' && this.objects.has(key)) {
      throw alreadyExists(key);
    }
    const info: ObjectInfo = {
      key,
      size: data.length,
      contentType: body.contentType,
      etag: createHash('md5').update(data).digest('hex'),
      lastModified: new Date(),
      ...(options.cacheControl ? { cacheControl: options.cacheControl } : {}),
      ...(options.metadata ? { metadata: { ...options.metadata } } : {}),
    };
    this.objects.set(key, { data, info });
    return { ...info };
  }

  protected async readObject(key: string, options: ReadOptions): Promise<Readable> {
    const entry = this.objects.get(key);
    if (!entry) throw new MediaStorageError('NOT_FOUND', `No object under "${key}"`, { key });
    let data = entry.data;
    if (options.range) {
      const { start, end } = options.range;
      if (start >= data.length && !(data.length === 0 && start === 0)) {
        throw new MediaStorageError('INVALID_INPUT', `Range starts at ${start}, past the end of "${key}" (${data.length} bytes)`, { key });
      }
      data = data.subarray(start, end === undefined ? undefined : end + 1);
    }
    return Readable.from([data], { objectMode: false });
  }

  protected async statObject(key: string): Promise<ObjectInfo | undefined> {
    const entry = this.objects.get(key);
    return entry ? { ...entry.info, ...(entry.info.metadata ? { metadata: { ...entry.info.metadata } } : {}) } : undefined;
  }

  /** Served straight from the stored Buffer: no copy, no stream. */
  protected override async openObjectForServing(key: string): Promise<ServableObject> {
    const entry = this.objects.get(key);
    if (!entry) throw new MediaStorageError('NOT_FOUND', `No object under "${key}"`, { key });
    const { data, info } = entry;
    return {
      info: { ...info, ...(info.metadata ? { metadata: { ...info.metadata } } : {}) },
      body: async (range) => (range ? data.subarray(range.start, range.end + 1) : data),
    };
  }

  protected override async existsObject(key: string): Promise<boolean> {
    return this.objects.has(key);
  }

  protected async deleteObject(key: string): Promise<void> {
    this.objects.delete(key);
  }

  protected async listObjects(prefix: string, options: { cursor?: string; limit: number }): Promise<ListPage> {
    const after = options.cursor ? decodeCursor(options.cursor) : undefined;
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix) && (after === undefined || compareKeys(k, after) > 0)).sort(compareKeys);
    const page = keys.slice(0, options.limit);
    const items = page.map((k) => ({ ...this.objects.get(k)!.info }));
    return keys.length > options.limit ? { items, cursor: encodeCursor(page[page.length - 1]!) } : { items };
  }

  protected override async copyObject(from: string, to: string, options: CopyOptions): Promise<ObjectInfo> {
    const entry = this.objects.get(from);
    if (!entry) throw new MediaStorageError('NOT_FOUND', `No object under "${from}"`, { key: from });
    if (options.ifExists === 'fail' && this.objects.has(to)) {
      throw alreadyExists(to);
    }
    const info = { ...entry.info, key: to, lastModified: new Date() };
    this.objects.set(to, { data: entry.data, info });
    return { ...info };
  }

  /** A signed PUT to this object's URL, which {@link MemoryStorage.handler} checks and saves. */
  protected override async presignObjectUpload(key: string, plan: PresignPlan): Promise<DirectUpload> {
    return handlerUpload(this.signer, `${this.baseUrl}/${encodeKeyPath(key)}`, key, plan);
  }

  protected async objectUrl(key: string, options: UrlOptions): Promise<string> {
    const plain = `${this.baseUrl}/${encodeKeyPath(key)}`;
    const download = requestedDownload(options.download);
    if (options.expiresIn === undefined && this.visibility === 'public') {
      return download === undefined ? plain : `${plain}?download=${encodeURIComponent(download)}`;
    }
    return this.signer.signUrl(plain, key, options.expiresIn ?? 3600, download);
  }
}
