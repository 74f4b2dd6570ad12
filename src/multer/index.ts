import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import type { MediaStorage, SaveOptions, UrlOptions } from '../core/types.js';

/** What multer hands a storage engine for each file (a subset of `Express.Multer.File`). */
export interface MulterIncomingFile {
  fieldname: string;
  originalname: string;
  encoding: string;
  mimetype: string;
  stream: Readable;
}

/** What the engine adds to `req.file` / `req.files[i]` once the file is stored. */
export interface MediaStorageFileInfo {
  /** The key it was stored under (after `ifExists: 'rename'`, the free name that was picked). */
  key: string;
  size: number;
  /** Content type as stored (sniffed from the bytes, not the browser's claim). */
  contentType: string;
  etag?: string;
  /** `storage.url(key)`, unless `url: false`. */
  url?: string;
  /** Same as `url`, under the name multer-s3 uses, for code moving over from it. */
  location?: string;
}

type FileCallback<T> = (req: IncomingMessage, file: MulterIncomingFile) => T | Promise<T>;

/** Options of {@link mediaStorageEngine}: the storage, the key and save options of each file, and the URL put in its file info. */
export interface MediaStorageEngineOptions {
  /** Where files go. */
  storage: MediaStorage;
  /**
   * The key for each file. Default `uploads/<uuid><ext>` with the extension of the original name
   * (letters and digits only). Never build keys from `originalname` unchecked: keys failing the
   * key rules are refused with INVALID_KEY, but names may still collide.
   */
  key?: FileCallback<string>;
  /** Save options (maxSize, ifExists, cacheControl, metadata, ...), fixed or per file. */
  save?: SaveOptions | FileCallback<SaveOptions>;
  /** Put the object's URL into the file info: `true` (default), `false`, or url options (e.g. an expiry). */
  url?: boolean | UrlOptions;
}

/** The shape multer expects of `storage` (structurally `multer.StorageEngine`). */
export interface MulterStorageEngine {
  _handleFile(req: IncomingMessage, file: MulterIncomingFile, callback: (error?: unknown, info?: Partial<MediaStorageFileInfo>) => void): void;
  _removeFile(req: IncomingMessage, file: MulterIncomingFile & Partial<MediaStorageFileInfo>, callback: (error: Error | null) => void): void;
}

function defaultKey(_req: IncomingMessage, file: MulterIncomingFile): string {
  const ext = /\.([a-z0-9]{1,10})$/i.exec(file.originalname ?? '')?.[1]?.toLowerCase();
  return `uploads/${randomUUID()}${ext ? `.${ext}` : ''}`;
}

/**
 * A multer storage engine that streams each uploaded file into a MediaStorage, the way
 * multer-s3 does for S3 alone: `multer({ storage: mediaStorageEngine({ storage }) })`. Nothing
 * is buffered; size limits, content sniffing and atomic writes come from the storage. A failed
 * save reaches multer, and so the app's error handler, as the `MediaStorageError` itself (answer
 * `TOO_LARGE` with 413).
 */
export function mediaStorageEngine(options: MediaStorageEngineOptions): MulterStorageEngine {
  if (!options?.storage) throw new TypeError('mediaStorageEngine needs { storage }');
  const { storage } = options;
  const keyFor = options.key ?? defaultKey;
  const urlOptions = options.url === undefined || options.url === true ? {} : options.url === false ? undefined : options.url;

  async function store(req: IncomingMessage, file: MulterIncomingFile, body: Readable): Promise<MediaStorageFileInfo> {
    const key = await keyFor(req, file);
    const saveOptions = typeof options.save === 'function' ? await options.save(req, file) : (options.save ?? {});
    const info = await storage.save(key, body, saveOptions);
    const url = urlOptions ? await storage.url(info.key, urlOptions) : undefined;
    return {
      key: info.key,
      size: info.size,
      contentType: info.contentType,
      ...(info.etag !== undefined ? { etag: info.etag } : {}),
      ...(url !== undefined ? { url, location: url } : {}),
    };
  }

  return {
    _handleFile(req, file, callback) {
      // The storage reads a stream of its own in front of busboy's. A save that fails midway
      // (TOO_LARGE) destroys the stream it was given; had that been busboy's, busboy would stall
      // and multer would see the destroy's AbortError first and report that instead of ours.
      const body = new PassThrough();
      body.on('error', () => undefined);
      const forwardError = (err: Error): void => {
        body.destroy(err);
      };
      file.stream.once('error', forwardError);
      file.stream.pipe(body);
      store(req, file, body).then(
        (info) => {
          file.stream.off('error', forwardError);
          callback(null, info);
        },
        (err: unknown) => {
          // Discard what is left of this file so the multipart parser can finish the request,
          // and hand multer (and so the app's error handler) the MediaStorageError itself.
          file.stream.off('error', forwardError);
          file.stream.unpipe(body);
          body.destroy();
          file.stream.resume();
          callback(err);
        },
      );
    },
    _removeFile(_req, file, callback) {
      if (!file.key) return callback(null);
      storage.delete(file.key).then(
        () => callback(null),
        (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
      );
    },
  };
}
