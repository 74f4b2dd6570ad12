import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { prepareBody, streamToBuffer, type PreparedBody } from './body.js';
import { MediaStorageError, isMediaStorageError } from './errors.js';
import { toMediaStorageError, type ErrorMapping } from './error-mapping.js';
import { listedNameProblem, splitKey, validateKey, validatePrefix } from './keys.js';
import { prepareCacheControl, prepareMetadata, type MetadataRules } from './metadata.js';
import { ServingRule, type ServingOptions } from './serving.js';
import { contentTypeFromKey, DEFAULT_CONTENT_TYPE, normalizeContentType } from './content-type.js';
import { DEFAULT_UPLOAD_EXPIRES_IN, type PresignPlan } from './direct-upload.js';
import type {
  Body,
  DirectUpload,
  DirectUploadOptions,
  Capabilities,
  CopyOptions,
  ListAllOptions,
  ListOptions,
  ListPage,
  MediaStorage,
  ObjectInfo,
  ReadOptions,
  SaveOptions,
  SkippedObject,
  UrlOptions,
} from './types.js';

/** What {@link BaseStorage.writeObject} is told besides the body. */
export interface WriteOptions {
  /** `fail`: the write must not replace an existing object (ALREADY_EXISTS). */
  ifExists: 'overwrite' | 'fail';
  cacheControl?: string;
  /** Checked by the core (see `prepareMetadata`): names lower-cased, values exactly as given. */
  metadata?: Record<string, string>;
  signal?: AbortSignal;
  /** Called with bytes sent, for backends whose SDK reports upload progress itself. */
  onProgress?: SaveOptions['onProgress'];
  /**
   * The Content-Disposition to store with the object, from the serving rule: `attachment;
   * filename=...` for everything not shown inline, else undefined. Backends that serve objects
   * themselves (S3, B2) store it.
   */
  contentDisposition?: string;
}

/**
 * One object opened for the media handler ({@link BaseStorage.openForServing}): what its headers
 * need, and its bytes on demand. Holds nothing open until {@link ServableObject.body} is called.
 */
export interface ServableObject {
  /** What `stat()` answers for the object: size, served content type, etag, last modified, Cache-Control. */
  readonly info: ObjectInfo;
  /**
   * The bytes, all of them or the inclusive `range` (already checked against `info.size`), asked for
   * at most once: a Buffer when they are in memory or small enough to read in one call, else a
   * stream that releases what it holds (an open file) when it ends or is destroyed.
   */
  body(range?: { start: number; end: number }): Promise<Buffer | Readable>;
}

/** Longest `expiresIn` when a backend declares no `maxExpiresIn`: seven days, S3's limit. */
export const DEFAULT_MAX_EXPIRES_IN = 7 * 24 * 3600;

/** Page size of `list` when `limit` is not given, and of `listAll` without `pageSize`. */
export const DEFAULT_LIST_LIMIT = 1000;

/** The ALREADY_EXISTS every backend throws for `ifExists: 'fail'` on a taken key. */
export function alreadyExists(key: string): MediaStorageError {
  return new MediaStorageError('ALREADY_EXISTS', `An object is already stored under "${key}"`, { key });
}
const MAX_LIST_LIMIT = 10_000;
const RENAME_ATTEMPTS = 10;

function invalidInput(message: string): MediaStorageError {
  return new MediaStorageError('INVALID_INPUT', message);
}

function checkRange(range: ReadOptions['range']): void {
  if (!range) return;
  const { start, end } = range;
  if (!Number.isInteger(start) || start < 0 || (end !== undefined && (!Number.isInteger(end) || end < start))) {
    throw invalidInput(`Invalid range ${JSON.stringify(range)}: start and end are whole numbers with 0 <= start <= end`);
  }
}

/**
 * A driver's page as the public API gives it: the names that are not keys (see
 * `listedNameProblem`) move from `items` to `skipped`, so every listed key works with every
 * other method, and nothing is dropped without a word.
 */
export function screenListing(page: ListPage): ListPage {
  const items: ObjectInfo[] = [];
  const skipped: SkippedObject[] = [...(page.skipped ?? [])];
  for (const item of page.items) {
    const problem = listedNameProblem(item.key, item.size);
    if (problem) skipped.push({ name: item.key, reason: problem.reason, message: problem.message, size: item.size });
    else items.push(item);
  }
  return { items, ...(page.cursor ? { cursor: page.cursor } : {}), ...(skipped.length > 0 ? { skipped } : {}) };
}

/** Every item of every page `fetchPage` gives, following cursors; skipped objects go to `onSkipped`. */
export async function* pageThrough(
  fetchPage: (cursor: string | undefined) => Promise<ListPage>,
  onSkipped?: (object: SkippedObject) => void,
): AsyncGenerator<ObjectInfo> {
  let cursor: string | undefined;
  do {
    const page = await fetchPage(cursor);
    if (onSkipped) for (const object of page.skipped ?? []) onSkipped(object);
    yield* page.items;
    cursor = page.cursor;
  } while (cursor);
}

/** `604800` → `7 days`, for messages. */
function formatSeconds(seconds: number): string {
  if (seconds % 86400 === 0) return `${seconds / 86400} day${seconds === 86400 ? '' : 's'}`;
  if (seconds % 3600 === 0) return `${seconds / 3600} hour${seconds === 3600 ? '' : 's'}`;
  return `${seconds} seconds`;
}

/**
 * Suffix for `ifExists: 'rename'`: 7 characters, as Django's get_available_name adds (Django mixes
 * cases; lowercase base-36 keeps two names distinct on a case-insensitive disk).
 */
function randomSuffix(): string {
  const bytes = randomBytes(7);
  let out = '';
  for (const b of bytes) out += (b % 36).toString(36);
  return out;
}

/**
 * The shared half of every backend: key rules, option checks, body preparation, overwrite
 * policies and error wrapping live here once. A backend extends this class and implements the
 * protected driver methods below, each of which receives keys that are already validated, exactly
 * as the caller gave them (and relative to the backend's own prefix, if it has one).
 */
export abstract class BaseStorage implements MediaStorage {
  abstract readonly name: string;
  abstract readonly capabilities: Readonly<Capabilities>;
  /**
   * How this storage's objects may be served (see {@link ServingRule}): the Content-Type and
   * disposition every save stores, and what the media handler sends.
   */
  readonly servingRule: ServingRule;

  /** `options`: the serving options every backend accepts (`inlineContentTypes`). */
  constructor(options?: ServingOptions) {
    this.servingRule = new ServingRule({ inlineContentTypes: options?.inlineContentTypes });
  }
  /** What `save` does with a taken key when its options do not say; a backend option may change it. */
  protected defaultIfExists: NonNullable<SaveOptions['ifExists']> = 'overwrite';

  // ----------------------------------------------------------------- driver interface

  /** Stores the body. Must leave nothing visible under the key when the body stream errors. */
  protected abstract writeObject(key: string, body: PreparedBody, options: WriteOptions): Promise<ObjectInfo>;
  /** Streams the object or a range of it; NOT_FOUND (or an error mapError maps to it) when absent. */
  protected abstract readObject(key: string, options: ReadOptions): Promise<Readable>;
  /** The object's description, or `undefined` when absent. */
  protected abstract statObject(key: string): Promise<ObjectInfo | undefined>;
  /** Removes the object; succeeds when it is already absent. */
  protected abstract deleteObject(key: string): Promise<void>;
  /**
   * One page of objects under the prefix, sorted by name, with every name as stored: the core
   * moves names that are not keys (folder markers, `a//b`, control characters...) to `skipped`.
   */
  protected abstract listObjects(prefix: string, options: { cursor?: string; limit: number }): Promise<ListPage>;
  /** A URL for the object (see UrlOptions). */
  protected abstract objectUrl(key: string, options: UrlOptions): Promise<string>;

  /**
   * The object (or range) in memory, when the backend has a cheaper way than streaming it
   * (one `readFile`); `undefined` to have `readBuffer` stream through {@link readObject}.
   */
  protected async readObjectBuffer(_key: string, _options: ReadOptions): Promise<Buffer | undefined> {
    return undefined;
  }

  /**
   * The object opened for serving, for backends that can answer the media handler in fewer steps
   * than `stat()` then `read()` (one lookup, no stream for small bodies); `undefined` (the default)
   * lets the handler use those. Throws NOT_FOUND (or an error mapError maps to it) when absent.
   */
  protected async openObjectForServing(_key: string): Promise<ServableObject | undefined> {
    return undefined;
  }

  /** Whether the object exists. Override when the backend has a cheaper check than stat. */
  protected async existsObject(key: string): Promise<boolean> {
    return (await this.statObject(key)) !== undefined;
  }

  /**
   * Copies inside the backend. The default reads and re-saves through this backend, for backends
   * without a server-side copy.
   */
  protected async copyObject(from: string, to: string, options: CopyOptions): Promise<ObjectInfo> {
    const info = await this.statObject(from);
    if (!info) throw new MediaStorageError('NOT_FOUND', `No object under "${from}"`, { key: from });
    // Wrapped, so that a read failing midway fails the copy with its own code (UNAVAILABLE for a
    // broken connection), not as a bad body (INVALID_INPUT); the write stores nothing either way.
    const stream = this.wrapReadStream(await this.readObject(from, {}), from);
    const body = await prepareBody(stream, to, { contentType: info.contentType, allowEmpty: true }, this.servingRule);
    return this.writeObject(to, body, {
      ifExists: options.ifExists ?? 'overwrite',
      cacheControl: info.cacheControl,
      metadata: info.metadata,
      contentDisposition: this.servingRule.storedDisposition(to, body.contentType),
    });
  }

  /**
   * Signs a direct upload of `key` (see {@link DirectUpload}); backends declaring `directUploads`
   * override it. The core has checked the key and the options, and decided the content type.
   */
  protected async presignObjectUpload(key: string, _plan: PresignPlan): Promise<DirectUpload> {
    throw new MediaStorageError('UNSUPPORTED', `${this.name} has no direct uploads`, { key });
  }

  /** The lifetime of a direct upload when `presignUpload` is given no `expiresIn`. */
  protected defaultUploadExpiresIn(): number {
    return DEFAULT_UPLOAD_EXPIRES_IN;
  }

  /** Maps a backend-specific error to a code (and optionally a message); `undefined` for the generic rules. */
  protected mapError(_err: unknown, _operation: string, _key?: string): ErrorMapping | undefined {
    return undefined;
  }

  /**
   * Keys this backend reserves for itself, on top of the key rule: throws INVALID_KEY for them
   * (LocalStorage: the names of its temp files). Default: none.
   */
  protected checkReservedKey(_key: string): void {}

  /** The key rule, then the backend's reservations. */
  private checkedKey(key: string): string {
    const valid = validateKey(key);
    this.checkReservedKey(valid);
    return valid;
  }

  /** What this backend's metadata store allows beyond the core rule (see {@link MetadataRules}). */
  protected metadataRules(): MetadataRules {
    return {};
  }

  /** Strings that must never appear in an error message (secrets, tokens). */
  protected secrets(): readonly (string | undefined)[] {
    return [];
  }

  // ----------------------------------------------------------------- public API

  async save(key: string, body: Body, options: SaveOptions = {}): Promise<ObjectInfo> {
    const validKey = this.checkedKey(key);
    // Checked here, before any I/O: a type with a line break would forge headers wherever it is sent.
    if (options.contentType !== undefined) options = { ...options, contentType: normalizeContentType(options.contentType) };
    const ifExists = options.ifExists ?? this.defaultIfExists;
    if (ifExists !== 'overwrite' && ifExists !== 'fail' && ifExists !== 'rename') {
      throw invalidInput(`ifExists must be "overwrite", "fail" or "rename", not ${JSON.stringify(ifExists)}`);
    }
    if (options.maxSize !== undefined && !(Number.isInteger(options.maxSize) && options.maxSize >= 0)) {
      throw invalidInput('maxSize must be a whole number of bytes');
    }
    // Refused here, before any request: a header S3 cannot carry would fail as AUTH or UNKNOWN there.
    const metadata = prepareMetadata(options.metadata, this.metadataRules(), this.name);
    const cacheControl = prepareCacheControl(options.cacheControl, this.name);
    return this.run('save', validKey, async () => {
      let target = validKey;
      if (ifExists === 'rename') target = await this.availableKey(validKey);
      const prepared = await prepareBody(body, target, options, this.servingRule);
      const write = (k: string, p: PreparedBody): Promise<ObjectInfo> =>
        this.writeObject(k, p, {
          ifExists: ifExists === 'overwrite' ? 'overwrite' : 'fail',
          cacheControl,
          metadata,
          signal: options.signal,
          onProgress: options.onProgress,
          contentDisposition: this.servingRule.storedDisposition(k, p.contentType),
        });
      try {
        if (ifExists !== 'overwrite' && !this.capabilities.atomicCreate) await this.refuseExisting(target);
        return await write(target, prepared);
      } catch (err) {
        // Lost a race for the free name: bytes in memory can be written again under another one.
        if (ifExists === 'rename' && prepared.buffer && isMediaStorageError(err) && err.code === 'ALREADY_EXISTS') {
          const again = await this.availableKey(validKey);
          return write(again, await prepareBody(prepared.buffer, again, options, this.servingRule));
        }
        throw err;
      }
    });
  }

  async url(key: string, options: UrlOptions = {}): Promise<string> {
    const validKey = this.checkedKey(key);
    if (options.variant !== undefined || options.density !== undefined) {
      throw new MediaStorageError(
        'UNSUPPORTED',
        `${this.name} knows no image variants: wrap the storage with withImages (media-storage/images) to use url(key, { variant })`,
        { key: validKey, backend: this.name, operation: 'url' },
      );
    }
    const max = this.capabilities.maxExpiresIn ?? DEFAULT_MAX_EXPIRES_IN;
    const { expiresIn } = options;
    if (expiresIn !== undefined && !(typeof expiresIn === 'number' && expiresIn > 0 && Math.ceil(expiresIn) <= max)) {
      throw invalidInput(
        `expiresIn must be a number of seconds from 1 to ${max} (${this.name} signs URLs for at most ${formatSeconds(max)}), not ${String(expiresIn)}`,
      );
    }
    return this.run('url', validKey, () => this.objectUrl(validKey, options));
  }

  /**
   * A request a browser sends to upload one file under `key` straight to the store, without
   * streaming it through the app (see {@link DirectUpload}): the key rules apply, and the serving
   * rules decide the content type and disposition it is stored with, as `save` would.
   * UNSUPPORTED without the `directUploads` capability.
   */
  async presignUpload(key: string, options: DirectUploadOptions = {}): Promise<DirectUpload> {
    const validKey = this.checkedKey(key);
    if (!this.capabilities.directUploads)
      throw this.toError(new MediaStorageError('UNSUPPORTED', `${this.name} has no direct uploads`, { key: validKey }), 'presignUpload', validKey);
    const max = this.capabilities.maxUploadExpiresIn ?? this.capabilities.maxExpiresIn ?? DEFAULT_MAX_EXPIRES_IN;
    const expiresIn = options.expiresIn ?? Math.min(this.defaultUploadExpiresIn(), max);
    if (!(Number.isInteger(expiresIn) && expiresIn > 0 && expiresIn <= max)) {
      throw invalidInput(
        `expiresIn must be a whole number of seconds from 1 to ${max} (${this.name} signs uploads for at most ${formatSeconds(max)}), not ${String(expiresIn)}`,
      );
    }
    if (options.maxSize !== undefined && !(Number.isInteger(options.maxSize) && options.maxSize > 0)) {
      throw invalidInput('maxSize must be a positive whole number of bytes');
    }
    const claimed = options.contentType !== undefined ? normalizeContentType(options.contentType) : (contentTypeFromKey(validKey) ?? DEFAULT_CONTENT_TYPE);
    const contentType = this.servingRule.decide(claimed).contentType;
    const plan: PresignPlan = {
      contentType,
      contentDisposition: this.servingRule.storedDisposition(validKey, contentType),
      expiresIn,
      maxSize: options.maxSize,
    };
    return this.run('presignUpload', validKey, () => this.presignObjectUpload(validKey, plan));
  }

  async delete(key: string): Promise<void> {
    const validKey = this.checkedKey(key);
    return this.run('delete', validKey, () => this.deleteObject(validKey));
  }

  async exists(key: string): Promise<boolean> {
    const validKey = this.checkedKey(key);
    return this.run('exists', validKey, () => this.existsObject(validKey));
  }

  async read(key: string, options: ReadOptions = {}): Promise<Readable> {
    const validKey = this.checkedKey(key);
    checkRange(options.range);
    const stream = await this.run('read', validKey, () => this.readObject(validKey, options));
    return this.wrapReadStream(stream, validKey);
  }

  async readBuffer(key: string, options: ReadOptions = {}): Promise<Buffer> {
    const validKey = this.checkedKey(key);
    checkRange(options.range);
    // Whole-object reads skip the read() wrapper (it costs ~20% on large bodies): a driver's
    // one-call read when it has one, else its stream collected directly.
    return this.run('read', validKey, async () => (await this.readObjectBuffer(validKey, options)) ?? streamToBuffer(await this.readObject(validKey, options)));
  }

  /**
   * For the media handler (`createMediaHandler`): the object opened for serving, with the key rule,
   * the backend's reservations and the errors of `read()`; `undefined` when the backend has no
   * faster way than `stat()` then `read()`.
   */
  async openForServing(key: string): Promise<ServableObject | undefined> {
    const normalized = this.checkedKey(key);
    const servable = await this.run('read', normalized, () => this.openObjectForServing(normalized));
    if (!servable) return undefined;
    return { info: servable.info, body: (range) => this.run('read', normalized, () => servable.body(range)) };
  }

  async stat(key: string): Promise<ObjectInfo> {
    const validKey = this.checkedKey(key);
    return this.run('stat', validKey, async () => {
      const info = await this.statObject(validKey);
      if (!info) throw new MediaStorageError('NOT_FOUND', `No object under "${validKey}"`, { key: validKey });
      return info;
    });
  }

  async list(prefix = '', options: ListOptions = {}): Promise<ListPage> {
    const validPrefix = validatePrefix(prefix);
    const limit = options.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw invalidInput(`limit must be a whole number from 1 to ${MAX_LIST_LIMIT}`);
    }
    if (options.cursor !== undefined && typeof options.cursor !== 'string') throw invalidInput('cursor must be a string');
    const page = await this.run('list', undefined, () => this.listObjects(validPrefix, { cursor: options.cursor || undefined, limit }));
    return screenListing(page);
  }

  async *listAll(prefix = '', options: ListAllOptions = {}): AsyncGenerator<ObjectInfo> {
    yield* pageThrough((cursor) => this.list(prefix, { cursor, limit: options.pageSize ?? DEFAULT_LIST_LIMIT }), options.onSkipped);
  }

  async copy(from: string, to: string, options: CopyOptions = {}): Promise<ObjectInfo> {
    const source = this.checkedKey(from);
    const target = this.checkedKey(to);
    return this.run('copy', source, async () => {
      if (options.ifExists === 'fail') await this.refuseExisting(target);
      return this.copyObject(source, target, options);
    });
  }

  /** Nothing to release by default; a backend that opens connections or clients overrides it. */
  async close(): Promise<void> {}

  // ----------------------------------------------------------------- shared machinery

  /**
   * Check-then-write, for `ifExists: 'fail'` where the store cannot refuse an existing key itself
   * (`capabilities.atomicCreate` false): ALREADY_EXISTS when an object is under `key` now. `save`
   * calls it before `writeObject` on such backends, `copy` before every `copyObject`; a write
   * racing in between can still win, which is what atomicCreate false says.
   */
  protected async refuseExisting(key: string): Promise<void> {
    if (await this.existsObject(key)) throw alreadyExists(key);
  }

  /**
   * Whether `ifExists: 'rename'` must pick another name than `key`. Default: an object exists under
   * it. A backend where another key can block this one (Cloudinary: `a.jpg` and `a.png` share one
   * public ID) overrides this.
   */
  protected async keyTaken(key: string): Promise<boolean> {
    return this.existsObject(key);
  }

  /** The key itself when free, else the key with a random suffix before its extension. */
  protected async availableKey(key: string): Promise<string> {
    if (!(await this.keyTaken(key))) return key;
    const { dir, stem, ext } = splitKey(key);
    for (let i = 0; i < RENAME_ATTEMPTS; i++) {
      const candidate = validateKey(`${dir}${stem}_${randomSuffix()}${ext}`);
      if (!(await this.keyTaken(candidate))) return candidate;
    }
    throw new MediaStorageError('ALREADY_EXISTS', `No free name found for "${key}" after ${RENAME_ATTEMPTS} attempts`, { key });
  }

  /** Runs a driver call and turns whatever it throws into a MediaStorageError without secrets. */
  protected async run<T>(operation: string, key: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.toError(err, operation, key);
    }
  }

  /** Wraps any failure of this backend as a MediaStorageError. */
  protected toError(err: unknown, operation: string, key: string | undefined): MediaStorageError {
    const context = { backend: this.name, operation, key };
    let mapped: ReturnType<BaseStorage['mapError']>;
    if (!isMediaStorageError(err)) {
      try {
        mapped = this.mapError(err, operation, key);
      } catch {
        mapped = undefined;
      }
    }
    const error = toMediaStorageError(err, context, mapped?.code, mapped?.message, { status: mapped?.status, retryAfter: mapped?.retryAfter });
    return error.withSecretsRedacted(this.secrets());
  }

  /** Makes errors raised while the caller consumes a read stream MediaStorageErrors too. */
  private wrapReadStream(stream: Readable, key: string): Readable {
    const self = this;
    // The generator below attaches its listeners only on the first read; until then an early
    // 'error' (a file that vanished before open) must not crash the process. The iterator still
    // sees the error, because the stream stays errored.
    stream.on('error', () => undefined);
    async function* forward(): AsyncGenerator<Buffer> {
      try {
        for await (const chunk of stream) yield chunk as Buffer;
      } catch (err) {
        throw self.toError(err, 'read', key);
      }
    }
    return Readable.from(forward(), { objectMode: false, highWaterMark: 64 * 1024 });
  }
}
