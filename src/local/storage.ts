import * as nodeFs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BaseStorage, type ServableObject, type WriteOptions } from '../core/base.js';
import type { PreparedBody } from '../core/body.js';
import { resolveContentType, SNIFF_BYTES } from '../core/content-type.js';
import { DEFAULT_MAX_EXPIRES_IN } from '../core/base.js';
import type { ServingOptions } from '../core/serving.js';
import { MediaStorageError, throwIfAborted } from '../core/errors.js';
import { warnEphemeralDiskOnce } from '../core/ephemeral.js';
import { resolveOptions } from '../core/definition.js';
import { localBackend, type LocalConfig } from './definition.js';
import { createMediaHandler, type MediaHandlerTuning, type MediaRequestHandler } from '../core/http-handler.js';
import { encodeKeyPath } from '../core/keys.js';
import { UrlSigner } from '../core/signed-url.js';
import { handlerUpload, type PresignPlan } from '../core/direct-upload.js';
import { requestedDownload } from '../core/download.js';
import type { ErrorMapping } from '../core/error-mapping.js';
import { decodeCursor, encodeCursor } from '../core/cursor.js';
import type { Capabilities, CopyOptions, DirectUpload, ListPage, ObjectInfo, ReadOptions, SkippedObject, UrlOptions } from '../core/types.js';
import { isCode, mapLocalError, notFound } from './errors.js';
import { OPEN_FLAGS, readAt, readWhole, WHOLE_READ_BYTES, type CallbackFileSystem, type LocalFileSystem } from './fs.js';
import { folderInsideRoot, walk } from './list.js';
import { LocalTree, TEMP_PREFIX } from './tree.js';

/** LocalStorage's options: those configuration can set (documented in ./definition.ts) and the file system. */
export interface LocalStorageOptions extends LocalConfig, ServingOptions {
  /** File system implementation, for tests. Default `node:fs`. */
  fs?: LocalFileSystem;
  /** @deprecated Use `publicBaseUrl` (the same meaning). */
  baseUrl?: string;
}

/** How many served content types are remembered, per file version (see `servedTypes`). */
const SERVED_TYPES_MAX = 4096;
/**
 * Files in a folder on the local disk: the embedded default for development, tests and
 * single-server installs. Writes are atomic (temp file + rename), no key can leave the root
 * (symlinks included), and {@link LocalStorage.handler} serves the folder over HTTP.
 */
export class LocalStorage extends BaseStorage {
  readonly name = 'local';
  readonly capabilities: Readonly<Capabilities>;
  readonly root: string;
  readonly baseUrl: string;
  private readonly fs: LocalFileSystem;
  private readonly signer: UrlSigner | undefined;
  private readonly options: LocalStorageOptions;
  private readonly tree: LocalTree;
  /** `this.fs` when it has the callback functions the serving path uses. */
  private readonly callbackFs: CallbackFileSystem | undefined;
  /**
   * The content type served for a file, by device, inode, size, mtime and ctime (any write changes
   * one of them) and key (whose extension decides when the bytes do not): a 304 or a Range request
   * for a known file needs no read to sniff it. Oldest entries go first.
   */
  private readonly servedTypes = new Map<string, string>();

  constructor(given: LocalStorageOptions) {
    const options = resolveOptions(localBackend, given);
    super(options);
    if (typeof options.root !== 'string' || options.root === '') {
      throw new MediaStorageError('CONFIG', 'LocalStorage needs a root folder: new LocalStorage({ root: "./media" })', { backend: 'local' });
    }
    this.options = options;
    this.root = path.resolve(options.root);
    this.baseUrl = (options.publicBaseUrl ?? '/media').replace(/\/+$/, '');
    this.fs = options.fs ?? nodeFs;
    const { open, read, close, stat, lstat, fstat, realpath } = this.fs;
    this.callbackFs = open && read && close && stat && lstat && fstat && realpath?.native ? { open, read, close, stat, lstat, fstat, realpath } : undefined;
    this.tree = new LocalTree(this.root, this.fs, this.callbackFs);
    this.signer = options.secret !== undefined ? new UrlSigner(options.secret) : undefined;
    if (options.visibility === 'private' && !this.signer) {
      throw new MediaStorageError('CONFIG', 'A private LocalStorage needs a secret to sign its URLs', { backend: 'local' });
    }
    const expiry = options.defaultExpiresIn;
    if (expiry !== undefined && !(Number.isInteger(expiry) && expiry >= 1 && expiry <= DEFAULT_MAX_EXPIRES_IN)) {
      throw new MediaStorageError('CONFIG', `LocalStorage: defaultExpiresIn must be a whole number of seconds from 1 to ${DEFAULT_MAX_EXPIRES_IN}`, {
        backend: 'local',
      });
    }
    this.capabilities = Object.freeze({
      publicUrls: options.visibility !== 'private',
      signedUrls: this.signer !== undefined,
      downloadUrls: true,
      rangeReads: true,
      serverSideCopy: true,
      metadata: false,
      atomicCreate: true,
      md5Etag: false,
      // Signed PUTs to storage.handler(), which needs the secret to check them.
      directUploads: this.signer !== undefined,
    });
    if (options.warnOnEphemeralDisk !== false) warnEphemeralDiskOnce(this.root);
  }

  /**
   * An HTTP handler that serves this folder under the path of `baseUrl`, honouring signatures,
   * Range, ETag and 304. Mount it in Express with `app.use(storage.handler())`. `options`:
   * `sendTimeout` (see {@link MediaHandlerTuning}).
   */
  handler(options: MediaHandlerTuning = {}): MediaRequestHandler {
    const basePath = /^[a-z][a-z0-9+.-]*:\/\//i.test(this.baseUrl) ? new URL(this.baseUrl).pathname : this.baseUrl;
    return createMediaHandler(this, {
      ...options,
      basePath,
      signer: this.signer,
      requireSignature: this.options.visibility === 'private',
      cacheControl: this.options.cacheControl,
    });
  }

  protected override checkReservedKey(key: string): void {
    if (key.split('/').some((segment) => segment.startsWith(TEMP_PREFIX))) {
      throw new MediaStorageError(
        'INVALID_KEY',
        `Invalid key ${JSON.stringify(key)}: names starting with "${TEMP_PREFIX}" are reserved for LocalStorage's temp files`,
        { key },
      );
    }
  }
  private async infoFromStat(key: string, real: string, sniff: boolean, known?: nodeFs.Stats): Promise<ObjectInfo> {
    const st = known ?? (await this.fs.promises.stat(real));
    let contentType: string | undefined;
    if (sniff && st.size > 0) {
      const handle = await this.fs.promises.open(real, 'r');
      try {
        const head = Buffer.alloc(Math.min(SNIFF_BYTES, st.size));
        const { bytesRead } = await handle.read(head, 0, head.length, 0);
        contentType = this.detectContentType(key, head.subarray(0, bytesRead));
      } finally {
        await handle.close();
      }
    }
    return this.infoOf(key, st, contentType);
  }

  private infoOf(key: string, st: { size: number; mtimeMs: number; mtime: Date }, contentType: string | undefined): ObjectInfo {
    return {
      key,
      size: st.size,
      contentType: contentType ?? this.detectContentType(key, undefined),
      etag: `${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}`,
      lastModified: st.mtime,
    };
  }

  /**
   * The one type this backend serves for a file, and so reports from save and stat: the disk
   * keeps no type, so it comes from the bytes and the name (an explicit `contentType` is not
   * kept), through the serving rule.
   */
  private detectContentType(key: string, head: Uint8Array | undefined): string {
    return this.servingRule.contentTypeFor(resolveContentType(key, head), head);
  }

  // ----------------------------------------------------------------- driver

  protected async writeObject(key: string, body: PreparedBody, options: WriteOptions): Promise<ObjectInfo> {
    await this.tree.refuseTwin(key);
    // The folder is found (or made) while the temp file is written: one thread-pool round trip
    // less per save, which is most of a small save's time.
    const parent = this.tree.ensureParent(key);
    parent.catch(() => undefined); // awaited below; not unhandled when the write fails first
    const temp = await this.tree.tempPath();
    try {
      if (!body.buffer) {
        await pipeline(body.stream(), this.fs.createWriteStream(temp, { flags: 'wx', mode: 0o644 }));
        if (this.options.fsync) await this.syncFile(temp);
        const target = this.targetIn(await parent, key);
        await this.tree.commitTemp(temp, target, key, options.ifExists);
        return { ...(await this.infoFromStat(key, target, false)), contentType: body.detectedContentType };
      }
      // Bytes in memory passed the size checks in the core already: one write, no stream machinery.
      throwIfAborted(options.signal, 'save', key);
      const handle = await this.fs.promises.open(temp, 'wx', 0o644);
      try {
        await handle.writeFile(body.buffer, { signal: options.signal });
        options.onProgress?.({ loaded: body.buffer.length, total: body.buffer.length });
        if (this.options.fsync) await handle.sync();
        const target = this.targetIn(await parent, key);
        // The info comes from the open file while it is moved under the key: the same inode, so
        // the same mtime and ETag stat() reports, without a stat after the move.
        const statted = handle.stat();
        statted.catch(() => undefined);
        const moved = await this.tree.commitTemp(temp, target, key, options.ifExists);
        const st = moved === 'copied' ? await this.fs.promises.stat(target) : await statted;
        return { ...this.infoOf(key, st, undefined), contentType: body.detectedContentType };
      } finally {
        await handle.close();
      }
    } catch (err) {
      await this.fs.promises.unlink(temp).catch(() => undefined);
      throw err;
    }
  }

  private targetIn(dir: string, key: string): string {
    return path.join(dir, key.slice(key.lastIndexOf('/') + 1));
  }

  private async syncFile(file: string): Promise<void> {
    const handle = await this.fs.promises.open(file, 'r+');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  protected async readObject(key: string, options: ReadOptions): Promise<Readable> {
    const located = await this.tree.locate(key);
    if (!located?.st.isFile()) throw notFound(key);
    const { real, st } = located;
    const range = options.range;
    if (range && range.start >= st.size && !(st.size === 0 && range.start === 0)) {
      throw new MediaStorageError('INVALID_INPUT', `Range starts at ${range.start}, past the end of "${key}" (${st.size} bytes)`, { key });
    }
    return this.fs.createReadStream(real, range ? { start: range.start, end: range.end, signal: options.signal } : { signal: options.signal }) as Readable;
  }

  /** Whole files in one read (streaming them costs a round trip to the thread pool per 64 KiB). */
  protected override async readObjectBuffer(key: string, options: ReadOptions): Promise<Buffer | undefined> {
    if (options.range) return undefined; // ranges keep their one implementation, in readObject
    const real = (await this.tree.locate(key))?.real;
    if (!real) throw notFound(key);
    const fs = this.callbackFs;
    if (fs) {
      throwIfAborted(options.signal, 'read', key);
      const whole = await readWhole(fs, real);
      if (!whole) throw notFound(key);
      return whole;
    }
    const handle = await this.fs.promises.open(real, 'r');
    try {
      if (!(await handle.stat()).isFile()) throw notFound(key);
      return await handle.readFile({ signal: options.signal });
    } finally {
      await handle.close();
    }
  }

  /**
   * The serving path: one lookup (LocalTree.locate: an lstat per key segment), then the type from
   * `servedTypes` or from one read (the whole file when small, kept for the body). Bodies up to
   * WHOLE_READ_BYTES are one open-read-close into a Buffer; larger ones stream from a file opened
   * before the response starts, so a vanished file is still a clean 404.
   */
  protected override async openObjectForServing(key: string): Promise<ServableObject | undefined> {
    const fs = this.callbackFs;
    if (!fs) return undefined;
    const located = await this.tree.locate(key);
    if (!located) throw notFound(key);
    const { real, st } = located;
    if (!st.isFile()) throw notFound(key);
    const size = st.size;
    const version = `${st.dev}:${st.ino}:${size}:${st.mtimeMs}:${st.ctimeMs}:${key}`;
    let contentType = this.servedTypes.get(version);
    let whole: Buffer | undefined;
    if (contentType === undefined) {
      let head: Buffer | undefined;
      if (size > 0) {
        head = await readAt(fs, real, size <= WHOLE_READ_BYTES ? size : SNIFF_BYTES, 0);
        if (head.length === size) whole = head;
      }
      contentType = this.detectContentType(key, head?.subarray(0, SNIFF_BYTES));
      if (this.servedTypes.size >= SERVED_TYPES_MAX) this.servedTypes.delete(this.servedTypes.keys().next().value!);
      this.servedTypes.set(version, contentType);
    }
    const info: ObjectInfo = { key, size, contentType, etag: `${size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}`, lastModified: st.mtime };
    return {
      info,
      body: async (range) => {
        const start = range?.start ?? 0;
        const end = range?.end ?? size - 1;
        if (whole) return whole.subarray(start, end + 1);
        const length = end - start + 1;
        if (length <= WHOLE_READ_BYTES) {
          const bytes = await readAt(fs, real, length, start);
          if (bytes.length !== length) throw new MediaStorageError('UNAVAILABLE', `"${key}" changed while it was being served`, { key });
          return bytes;
        }
        const fd = await new Promise<number>((resolve, reject) => fs.open(real, OPEN_FLAGS, (err, opened) => (err ? reject(err) : resolve(opened))));
        return this.fs.createReadStream(real, { fd, start, end }) as Readable;
      },
    };
  }
  protected async statObject(key: string): Promise<ObjectInfo | undefined> {
    const located = await this.tree.locate(key);
    if (!located?.st.isFile()) return undefined;
    return this.infoFromStat(key, located.real, true, located.st);
  }

  protected override async existsObject(key: string): Promise<boolean> {
    // A link out of the root is not an object of this storage: false, as for a missing one.
    const located = await this.tree.locate(key).catch((err: unknown) => {
      if (err instanceof MediaStorageError && err.code === 'PERMISSION') return undefined;
      throw err;
    });
    return located?.st.isFile() ?? false;
  }

  protected async deleteObject(key: string): Promise<void> {
    const realRoot = await this.tree.getRealRoot(false);
    if (!realRoot) return;
    const slash = key.lastIndexOf('/');
    let dir: string;
    try {
      dir = await this.fs.promises.realpath(path.join(realRoot, slash < 0 ? '' : key.slice(0, slash)));
    } catch (err) {
      if (isCode(err, 'ENOENT', 'ENOTDIR')) return;
      throw err;
    }
    this.tree.assertInside(realRoot, dir, key);
    // Where the file system folds spellings, the name found may be another key's.
    if (!(await this.tree.spelledExactly(realRoot, key))) return;
    try {
      await this.fs.promises.unlink(path.join(dir, key.slice(slash + 1)));
    } catch (err) {
      if (isCode(err, 'ENOENT')) return;
      if (isCode(err, 'EISDIR', 'EPERM') && (await this.fs.promises.lstat(path.join(dir, key.slice(slash + 1)))).isDirectory()) return;
      throw err;
    }
    // Tidy up folders the delete emptied, so the tree mirrors what is stored.
    while (dir !== realRoot && dir.startsWith(realRoot + path.sep)) {
      try {
        await this.fs.promises.rmdir(dir);
      } catch {
        break;
      }
      dir = path.dirname(dir);
    }
  }

  protected async listObjects(prefix: string, options: { cursor?: string; limit: number }): Promise<ListPage> {
    const realRoot = await this.tree.getRealRoot(false);
    if (!realRoot) return { items: [] };
    const after = options.cursor ? decodeCursor(options.cursor) : undefined;
    const startDir = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    if (!(await folderInsideRoot(this.fs, realRoot, startDir))) return { items: [] };
    const items: ObjectInfo[] = [];
    const skipped: SkippedObject[] = [];
    let more = false;
    let last: string | undefined;
    for await (const [key, full] of walk(this.fs, realRoot, startDir, prefix, after)) {
      if (items.length + skipped.length === options.limit) {
        more = true;
        break;
      }
      try {
        const st = await this.fs.promises.stat(full);
        items.push({
          key,
          size: st.size,
          contentType: this.servingRule.typeFromKey(key),
          etag: `${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}`,
          lastModified: st.mtime,
        });
        last = key;
      } catch (err) {
        if (!isCode(err, 'ENOENT')) throw err;
        // A name that is not valid UTF-8 comes back from readdir with U+FFFD in it, and no path
        // made from that finds the file; anything else was deleted while listing.
        if (key.includes('\ufffd')) {
          skipped.push({ name: key, reason: 'invalid-key', message: 'its file name is not valid UTF-8 (shown with U+FFFD)' });
          last = key;
        }
      }
    }
    const page: ListPage = { items, ...(skipped.length > 0 ? { skipped } : {}) };
    return more && last !== undefined ? { ...page, cursor: encodeCursor(last) } : page;
  }
  protected override async copyObject(from: string, to: string, options: CopyOptions): Promise<ObjectInfo> {
    const source = await this.tree.existingPath(from);
    if (!source || !(await this.fs.promises.stat(source)).isFile()) throw notFound(from);
    await this.tree.refuseTwin(to);
    const dir = await this.tree.ensureParent(to);
    const target = path.join(dir, to.slice(to.lastIndexOf('/') + 1));
    const temp = await this.tree.tempPath();
    try {
      await this.fs.promises.copyFile(source, temp);
      await this.tree.commitTemp(temp, target, to, options.ifExists ?? 'overwrite');
    } catch (err) {
      await this.fs.promises.unlink(temp).catch(() => undefined);
      throw err;
    }
    return this.infoFromStat(to, target, true);
  }

  /** A name another spelling holds (see twinInTheWay) is taken too, so `ifExists: 'rename'` picks another. */
  protected override async keyTaken(key: string): Promise<boolean> {
    return (await this.existsObject(key)) || (await this.tree.twinInTheWay(key)) !== undefined;
  }

  protected async objectUrl(key: string, options: UrlOptions): Promise<string> {
    const plain = `${this.baseUrl}/${encodeKeyPath(key)}`;
    const download = requestedDownload(options.download);
    const wantsSignature = options.expiresIn !== undefined || this.options.visibility === 'private';
    if (!wantsSignature) return download === undefined ? plain : `${plain}?download=${encodeURIComponent(download)}`;
    if (!this.signer) {
      throw new MediaStorageError('CONFIG', 'Signed URLs need a secret: new LocalStorage({ root, secret })', { key });
    }
    return this.signer.signUrl(plain, key, options.expiresIn ?? this.options.defaultExpiresIn ?? 3600, download);
  }

  /** A signed PUT to this file's URL, which {@link LocalStorage.handler} checks and saves (atomically, as `save`). */
  protected override async presignObjectUpload(key: string, plan: PresignPlan): Promise<DirectUpload> {
    if (!this.signer) throw new MediaStorageError('CONFIG', 'Direct uploads need a secret: new LocalStorage({ root, secret })', { key });
    return handlerUpload(this.signer, `${this.baseUrl}/${encodeKeyPath(key)}`, key, plan);
  }

  protected override mapError(err: unknown, operation: string): ErrorMapping | undefined {
    return mapLocalError(err, operation);
  }

  protected override secrets(): readonly (string | undefined)[] {
    const s = this.options.secret;
    return [typeof s === 'string' ? s : s?.toString('utf8')];
  }
}

export type { MediaRequestHandler } from '../core/http-handler.js';
