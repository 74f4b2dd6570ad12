import type { Readable } from 'node:stream';

/**
 * What `save` accepts. Streams are consumed once; everything else may be retried by layers.
 * `Blob` covers `File` (Node 20+ has both as globals).
 */
export type Body = Buffer | Uint8Array | string | Readable | ReadableStream<Uint8Array> | Blob;

/** What to do when `save` finds an object already stored under the key. */
export type IfExists =
  /** Replace it (the default). */
  | 'overwrite'
  /** Fail with ALREADY_EXISTS. */
  | 'fail'
  /** Store under a free name made from the key (`abc.jpg` → `abc_k3j9x2q.jpg`), as Django's get_available_name does. */
  | 'rename';

/** How much of a body `save` has read so far, as passed to {@link SaveOptions.onProgress}. */
export interface SaveProgress {
  /** Bytes read from the body so far. */
  loaded: number;
  /** Total bytes, when known up front. */
  total?: number;
}

/** Options of `save`: the stored object's content type, caching and metadata, the overwrite policy, size limits, progress and abort. */
export interface SaveOptions {
  /**
   * Content type, `type/subtype[; name=value]`; anything else (control characters, no subtype)
   * is INVALID_INPUT. By default sniffed from the first bytes, then guessed from the extension.
   * The serving rules apply either way: executable kinds (HTML, SVG, XML, JavaScript, CSS,
   * WebAssembly...) are stored as `application/octet-stream`. Backends without the `metadata`
   * capability (the local disk) keep no type and report the one they serve.
   */
  contentType?: string;
  /** Cache-Control sent when the object is served (backends with the `metadata` capability). */
  cacheControl?: string;
  /**
   * Custom metadata (kept by backends with the `metadata` capability, checked on every backend).
   * Names are HTTP tokens, stored lower-cased; values are any text without control characters or
   * a leading or trailing space, given back by `stat` exactly. Anything else is INVALID_INPUT,
   * before any request (see `prepareMetadata`).
   */
  metadata?: Record<string, string>;
  /** Overwrite policy; default `overwrite`. */
  ifExists?: IfExists;
  /** Largest body accepted, in bytes; larger bodies fail with TOO_LARGE and nothing is stored. */
  maxSize?: number;
  /** Accept a zero-byte body. Default false: an empty upload is almost always a broken one. */
  allowEmpty?: boolean;
  /** Called as the body is read. */
  onProgress?: (progress: SaveProgress) => void;
  /** Aborts the upload; nothing is stored under the key, and ABORTED is thrown. */
  signal?: AbortSignal;
}

/** A stored object's description. */
export interface ObjectInfo {
  /** The key, exactly as stored (keys are byte-exact; see `validateKey`), relative to the storage's prefix. */
  key: string;
  /** Size in bytes. */
  size: number;
  /** Content type as the backend will serve it: `save`, `stat` and the served Content-Type agree. */
  contentType: string;
  /** Entity tag or checksum, when the backend has one (quotes removed). */
  etag?: string;
  /** Last modification time, when the backend has one. */
  lastModified?: Date;
  /** Cache-Control stored with the object, if any. */
  cacheControl?: string;
  /** Custom metadata, on backends that keep it. */
  metadata?: Record<string, string>;
}

/** Options of `url`: a signed URL's expiry, a download instead of inline display, a delivery transformation or an image variant. */
export interface UrlOptions {
  /**
   * Make a signed URL that expires after this many seconds, from 1 to the backend's
   * `capabilities.maxExpiresIn` (seven days by default); outside that, INVALID_INPUT. Without it,
   * a public storage gives its plain public URL and a private storage a signed URL with its
   * default expiry.
   */
  expiresIn?: number;
  /** Ask the browser to download rather than display: `true`, or the file name to save as. */
  download?: boolean | string;
  /** Backend-specific delivery transformation (e.g. Cloudinary's `{ width: 128, crop: 'thumb' }`). */
  transform?: Record<string, unknown>;
  /**
   * A declared image variant (`media-storage/images`): the URL of that version of the photo
   * instead of the original. Only a storage wrapped by `withImages` knows variants; every other
   * storage answers UNSUPPORTED rather than give the original's URL.
   */
  variant?: string;
  /** With `variant`: which of its declared pixel densities (1, 2...). Default 1. */
  density?: number;
}

/** A range of an object's bytes to read, both ends inclusive (see {@link ReadOptions.range}). */
export interface ByteRange {
  /** First byte, zero-based. */
  start: number;
  /** Last byte, inclusive (as in HTTP); to the end when omitted. */
  end?: number;
}

/** Options of `read` and `readBuffer`. */
export interface ReadOptions {
  /** Read only these bytes rather than the whole object; an invalid range is INVALID_INPUT. */
  range?: ByteRange;
  /** Aborts the read. */
  signal?: AbortSignal;
}

/** Options of `list`: which page, and how many objects per page. */
export interface ListOptions {
  /** The cursor of the previous page. */
  cursor?: string;
  /** Page size; default 1000. */
  limit?: number;
}

/** One page of a listing: the objects, the cursor of the next page, and what was left out. */
export interface ListPage {
  /** Objects whose names are keys: every one works with exists, stat, read, url, copy and delete. */
  items: ObjectInfo[];
  /** Pass as `cursor` to get the next page; absent on the last page. */
  cursor?: string;
  /**
   * Objects of this page that are not in `items` because no key names them: folder markers and
   * names other software wrote that break the key rule (`./x`, `a//b`, control characters, ...).
   * Absent when there are none. `media-storage sync` and `audit` report them.
   */
  skipped?: SkippedObject[];
}

/** An object a listing left out of `items`, with the reason (see {@link ListPage.skipped}). */
export interface SkippedObject {
  /**
   * Its name as the backend stores it, relative to the storage's prefix. It may hold characters
   * no key can (line breaks, terminal escapes): escape it before printing (`JSON.stringify`).
   */
  name: string;
  /**
   * `folder-marker`: an empty object whose name ends in "/" (the S3 console's folders), not a file;
   * `invalid-key`: a name the key rule refuses; `unmapped`: an object the backend cannot name by a
   * key at all (a Cloudinary asset whose public ID does not map back to one).
   */
  reason: 'folder-marker' | 'invalid-key' | 'unmapped';
  /** Why, in words. */
  message: string;
  /** Size in bytes, when the listing says. */
  size?: number;
}

/** Options of `listAll`. */
export interface ListAllOptions {
  /** Page size; default 1000. */
  pageSize?: number;
  /** Called with each object a page skipped (see {@link ListPage.skipped}). */
  onSkipped?: (object: SkippedObject) => void;
}

/** Options of `copy`. */
export interface CopyOptions {
  /** When an object is already stored under the target key: `overwrite` it (the default) or `fail` with ALREADY_EXISTS. */
  ifExists?: Exclude<IfExists, 'rename'>;
}

/** What a backend can do. The contract suite skips (visibly) the tests of what it cannot. */
export interface Capabilities {
  /** `url()` gives URLs that anyone can fetch without signing. */
  publicUrls: boolean;
  /** `url({ expiresIn })` gives signed URLs that expire. */
  signedUrls: boolean;
  /** `url({ download })` makes the browser download the file. */
  downloadUrls: boolean;
  /** `read({ range })` reads part of an object without transferring the rest. */
  rangeReads: boolean;
  /** `copy` happens inside the backend (no download and re-upload). */
  serverSideCopy: boolean;
  /** Custom metadata, Cache-Control and an explicit content type are kept and given back by `stat`. */
  metadata: boolean;
  /** `ifExists: 'fail'` is atomic: of two concurrent saves, exactly one succeeds. */
  atomicCreate: boolean;
  /** The object's etag is an MD5 of its bytes (S3 single-part, local, memory). */
  md5Etag: boolean;
  /**
   * Zero-byte objects can be stored (`allowEmpty`). Absent means true; a backend that cannot
   * (Cloudinary refuses empty files) declares false and answers UNSUPPORTED, storing nothing.
   */
  emptyObjects?: boolean;
  /**
   * `list()` and `listAll()` give keys in key order (`compareKeys`: by UTF-8 bytes, as S3 and
   * B2 do) across pages, each key once. Absent means true. A backend whose service lists in
   * another order declares false (Cloudinary: by public ID, or newest first without a prefix);
   * `syncStorages` then sorts that side's listing itself, in bounded memory (temp files).
   */
  sortedListing?: boolean;
  /**
   * A listing answers `exists()` for the keys under its prefix, and is the cheap way to ask about
   * many: every key `exists()` finds is listed (no adopted names or followed links), listings are
   * in key order, and one request gives a page of keys where `exists()` costs one per key (a
   * network store such as S3 or B2). The avatar cache primes itself by listing only on such
   * backends. Absent means false.
   */
  listingAnswersExists?: boolean;
  /**
   * Longest `expiresIn` that `url()` accepts, in seconds; longer is INVALID_INPUT. Absent means
   * seven days (604,800, the limit of S3 and B2), which every built-in backend keeps, so that code
   * moving between backends keeps working.
   */
  maxExpiresIn?: number;
  /**
   * `presignUpload` gives requests a browser sends to upload one file straight to the store (see
   * {@link DirectUpload}). Absent means false: `presignUpload` is then UNSUPPORTED.
   */
  directUploads?: boolean;
  /** Longest `expiresIn` that `presignUpload` accepts, in seconds; absent means `maxExpiresIn`. */
  maxUploadExpiresIn?: number;
}

/** Options of `presignUpload`. */
export interface DirectUploadOptions {
  /**
   * The content type the browser declares; default from the key's extension. The serving rules
   * decide the type stored, as for `save` (executable kinds become `application/octet-stream`
   * attachments): the result's `contentType` is the one to send.
   */
  contentType?: string;
  /** Largest accepted file, in bytes. Where the store enforces it, `enforced.maxSize` is true. */
  maxSize?: number;
  /** Seconds the request stays valid, from 1 to `capabilities.maxUploadExpiresIn`; default 3600 or the backend's. */
  expiresIn?: number;
}

/** What the store itself refuses in a direct upload, whatever the browser sends. */
export interface DirectUploadEnforcement {
  /** Only `key` can be written: the request cannot be turned into an upload under another key. */
  key: boolean;
  /** A file of another content type (another declared type, or for Cloudinary other bytes) is refused. */
  contentType: boolean;
  /** A file larger than `maxSize` is refused (false when no `maxSize` was asked for). */
  maxSize: boolean;
  /** The request is refused after `expiresAt`. */
  expiry: boolean;
}

/**
 * A request a browser sends to upload one file straight to the store, without streaming it
 * through the app: the same shape on every backend. Without `fields`, the file is the body of a
 * `method` request sent with `headers` (S3's presigned PUT, B2's b2_upload_file POST); with
 * `fields`, the body is multipart/form-data: `fields` in order, then the file under `fileField`
 * (S3's POST policy, Cloudinary's signed upload). `media-storage/browser` sends it (with progress and abort); any HTTP client can.
 * The object is visible under `key` only once the whole file arrived.
 */
export interface DirectUpload {
  method: 'PUT' | 'POST';
  url: string;
  /** Headers to send exactly as given (some are part of a signature). */
  headers: Record<string, string>;
  /** Form fields to send before the file, exactly as given: present when the body is multipart/form-data. */
  fields?: Record<string, string>;
  /** With `fields`: the form field the file goes in; default `file`. */
  fileField?: string;
  /**
   * Headers whose value the sender computes from the file's bytes, by algorithm: B2's
   * `X-Bz-Content-Sha1` (`sha1-hex`), which the store checks against what arrived.
   */
  digestHeaders?: Record<string, 'sha1-hex'>;
  /** The key the object will have. */
  key: string;
  /** The content type to declare (the file's `type`), decided by the serving rules. */
  contentType: string;
  /** When the request stops being valid (where `enforced.expiry` is false, the store's own limit). */
  expiresAt: Date;
  /** What the store enforces itself; the rest is only what the browser is asked to send. */
  enforced: DirectUploadEnforcement;
}

/**
 * The contract every backend honours. Keys are relative POSIX paths (see `validateKey`); all
 * failures are `MediaStorageError`s with a stable `code`.
 */
export interface MediaStorage {
  /** Short backend name: `local`, `memory`, `s3`, `cloudinary`, `b2`, or a plugin's own. */
  readonly name: string;
  readonly capabilities: Readonly<Capabilities>;

  /**
   * Stores `body` under `key`. Resolves once the whole object is durable and visible; on any
   * failure or abort nothing partial is visible under the key.
   */
  save(key: string, body: Body, options?: SaveOptions): Promise<ObjectInfo>;
  /** A URL for the object: public, or signed and expiring (see {@link UrlOptions}). Does not check that it exists. */
  url(key: string, options?: UrlOptions): Promise<string>;
  /** Deletes the object; deleting a missing key succeeds. */
  delete(key: string): Promise<void>;
  /** Whether an object is stored under the key. Invalid keys throw INVALID_KEY. */
  exists(key: string): Promise<boolean>;
  /** Streams the object (or a byte range of it). NOT_FOUND when absent. */
  read(key: string, options?: ReadOptions): Promise<import('node:stream').Readable>;
  /** Reads the whole object into memory. */
  readBuffer(key: string, options?: ReadOptions): Promise<Buffer>;
  /** Size, content type, etag, last modified. NOT_FOUND when absent. */
  stat(key: string): Promise<ObjectInfo>;
  /** One page of objects whose keys start with `prefix`, in key order. */
  list(prefix?: string, options?: ListOptions): Promise<ListPage>;
  /** Every object whose key starts with `prefix`, page after page (objects no key names go to `onSkipped`). */
  listAll(prefix?: string, options?: ListAllOptions): AsyncIterable<ObjectInfo>;
  /** Copies an object to another key. NOT_FOUND when the source is absent. */
  copy(from: string, to: string, options?: CopyOptions): Promise<ObjectInfo>;
  /**
   * A request a browser sends to upload one file under `key` straight to the store (see
   * {@link DirectUpload}); backends with the `directUploads` capability. UNSUPPORTED elsewhere.
   */
  presignUpload?(key: string, options?: DirectUploadOptions): Promise<DirectUpload>;
  /**
   * Releases what the storage holds open (keep-alive connections, SDK clients it made, timers).
   * Safe to call more than once; wrappers close what they wrap. A no-op where there is nothing.
   */
  close(): Promise<void>;
}

export type { Readable };
