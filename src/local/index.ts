import * as nodeFs from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BaseStorage, type ServableObject, type WriteOptions } from '../core/base.js';
import type { PreparedBody } from '../core/body.js';
import { resolveContentType, SNIFF_BYTES } from '../core/content-type.js';
import { DEFAULT_MAX_EXPIRES_IN } from '../core/base.js';
import type { ServingOptions } from '../core/serving.js';
import { MediaStorageError, throwIfAborted, type MediaStorageErrorCode } from '../core/errors.js';
import { warnEphemeralDiskOnce } from '../core/ephemeral.js';
import { resolveOptions } from '../core/definition.js';
import { localBackend, type LocalConfig } from './definition.js';
import { createMediaHandler, type MediaHandlerTuning, type MediaRequestHandler } from '../core/http-handler.js';
import { encodeKeyPath, normalizationTwins } from '../core/keys.js';
import { UrlSigner } from '../core/signed-url.js';
import { handlerUpload, type PresignPlan } from '../core/direct-upload.js';
import type { Capabilities, CopyOptions, DirectUpload, ListPage, ObjectInfo, ReadOptions, SkippedObject, UrlOptions } from '../core/types.js';

/**
 * The subset of `node:fs` LocalStorage uses; pass memfs's `fs` (or a wrapper) in tests. The
 * callback functions are optional: with all of them (node:fs has them) the handler serves a file
 * in one lookup and lookups resolve paths without promise machinery; without them it uses the
 * promise API.
 */
export type LocalFileSystem = Pick<typeof nodeFs, 'createReadStream' | 'createWriteStream'> & {
  promises: Pick<typeof nodeFs.promises, 'realpath' | 'mkdir' | 'stat' | 'lstat' | 'rename' | 'link' | 'unlink' | 'rmdir' | 'readdir' | 'open' | 'copyFile' | 'writeFile'>;
} & Partial<CallbackFileSystem>;

/** The callback half of `node:fs` the serving path uses: a promise per call and no FileHandle, half the CPU of `fs.promises`. */
type CallbackFileSystem = Pick<typeof nodeFs, 'open' | 'read' | 'close' | 'stat' | 'fstat' | 'realpath'>;

/** LocalStorage's options: those configuration can set (documented in ./definition.ts) and the file system. */
export interface LocalStorageOptions extends LocalConfig, ServingOptions {
  /** File system implementation, for tests. Default `node:fs`. */
  fs?: LocalFileSystem;
  /** @deprecated Use `publicBaseUrl` (the same meaning). */
  baseUrl?: string;
}

/**
 * Saves are written to a temp file in `<root>/.media-storage-tmp/`, then renamed into place, so
 * nothing partial is ever under a key. Every name starting with this prefix is reserved: such
 * keys are INVALID_KEY, listings skip them, and the handler never serves them.
 */
const TEMP_PREFIX = '.media-storage-tmp';
const TEMP_DIR = TEMP_PREFIX;
/** Temp files untouched for this long are left over from a crashed process: removed on the first save. */
const STALE_TEMP_MS = 24 * 3600 * 1000;

/**
 * Bodies up to this size are served from one read into memory (no stream, no file left open while
 * the client downloads); larger ones stream from the file, 64 KiB at a time.
 */
const WHOLE_READ_BYTES = 64 * 1024;
/** How many served content types are remembered, per file version (see `servedTypes`). */
const SERVED_TYPES_MAX = 4096;
/** Non-blocking, so that a FIFO swapped in for a file cannot hang a thread-pool thread on open. */
const OPEN_FLAGS = nodeFs.constants.O_RDONLY | (nodeFs.constants.O_NONBLOCK ?? 0);

function isCode(err: unknown, ...codes: string[]): boolean {
  return typeof err === 'object' && err !== null && codes.includes((err as { code?: string }).code ?? '');
}

function notFound(key: string): MediaStorageError {
  return new MediaStorageError('NOT_FOUND', `No object under "${key}"`, { key });
}

// The listing order, beside the list cursors it orders.
import { compareKeys } from '../core/keys.js';

/** Encodes/decodes list cursors; opaque so callers do not build them by hand. */
const cursorCodec = {
  encode: (key: string): string => Buffer.from(key, 'utf8').toString('base64url'),
  decode: (cursor: string): string => Buffer.from(cursor, 'base64url').toString('utf8'),
};

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
  private realRoot: string | undefined;
  private normalizationFolding: Promise<boolean> | undefined;
  /** The temp folder, made (and swept of stale temp files) once per instance, on the first write. */
  private tempDir: Promise<string> | undefined;
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
    const { open, read, close, stat, fstat, realpath } = this.fs;
    this.callbackFs = open && read && close && stat && fstat && realpath?.native ? { open, read, close, stat, fstat, realpath } : undefined;
    this.signer = options.secret !== undefined ? new UrlSigner(options.secret) : undefined;
    if (options.visibility === 'private' && !this.signer) {
      throw new MediaStorageError('CONFIG', 'A private LocalStorage needs a secret to sign its URLs', { backend: 'local' });
    }
    const expiry = options.defaultExpiresIn;
    if (expiry !== undefined && !(Number.isInteger(expiry) && expiry >= 1 && expiry <= DEFAULT_MAX_EXPIRES_IN)) {
      throw new MediaStorageError('CONFIG', `LocalStorage: defaultExpiresIn must be a whole number of seconds from 1 to ${DEFAULT_MAX_EXPIRES_IN}`, { backend: 'local' });
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

  // ----------------------------------------------------------------- paths

  private async getRealRoot(create: boolean): Promise<string | undefined> {
    if (this.realRoot) return this.realRoot;
    try {
      if (create) await this.fs.promises.mkdir(this.root, { recursive: true });
      this.realRoot = await this.fs.promises.realpath(this.root);
      return this.realRoot;
    } catch (err) {
      if (!create && isCode(err, 'ENOENT')) return undefined;
      throw err;
    }
  }

  private assertInside(realRoot: string, real: string, key: string): void {
    if (real !== realRoot && !real.startsWith(realRoot + path.sep)) {
      throw new MediaStorageError('PERMISSION', `"${key}" resolves outside the storage root (through a symbolic link)`, { key });
    }
  }

  private realpath(file: string): Promise<string> {
    const fs = this.callbackFs;
    if (!fs) return this.fs.promises.realpath(file);
    return new Promise((resolve, reject) => fs.realpath.native(file, (err, real) => (err ? reject(err) : resolve(real))));
  }

  /**
   * The real path of an existing object, checked to be inside the root; undefined when absent, or
   * when it resolves (through a link inside the root) to a temp file, which is never an object.
   */
  /**
   * The real path of an existing object (as {@link existingPath}) and its stats, in one thread-pool
   * round trip instead of two: the stat goes out beside the realpath, and counts only once the
   * realpath has put the file inside the root (a link out fails there, whatever the stat found).
   * Both follow the same links, so they name the same file unless links in the root are being
   * swapped during the call, a race a stat after the realpath has as well.
   */
  private async locate(key: string): Promise<{ real: string; st: nodeFs.Stats } | undefined> {
    const realRoot = await this.getRealRoot(false);
    if (!realRoot) return undefined;
    const fs = this.callbackFs;
    const joined = path.join(realRoot, key);
    const statted = fs ? new Promise<nodeFs.Stats>((resolve, reject) => fs.stat(joined, (err, stats) => (err ? reject(err) : resolve(stats)))) : this.fs.promises.stat(joined);
    statted.catch(() => undefined); // not unhandled when the realpath fails first
    const real = await this.existingPath(key);
    if (!real) return undefined;
    try {
      return { real, st: await statted };
    } catch (err) {
      if (isCode(err, 'ENOENT', 'ENOTDIR')) return undefined; // deleted in between
      throw err;
    }
  }

  private async existingPath(key: string): Promise<string | undefined> {
    const realRoot = await this.getRealRoot(false);
    if (!realRoot) return undefined;
    try {
      const real = await this.realpath(path.join(realRoot, key));
      this.assertInside(realRoot, real, key);
      if (real.slice(realRoot.length).split(path.sep).some((segment) => segment.startsWith(TEMP_PREFIX))) return undefined;
      // On APFS, "Jose\u0301.jpg" finds "José.jpg": that is another key's file, not this one's.
      if (!(await this.spelledExactly(realRoot, key))) return undefined;
      return real;
    } catch (err) {
      if (isCode(err, 'ENOENT', 'ENOTDIR')) return undefined;
      throw err;
    }
  }

  // ----------------------------------------------------------------- Unicode spellings

  /**
   * Whether this file system finds a name under another Unicode normalisation of it (macOS APFS
   * and HFS+ do; ext4, XFS and NTFS do not). Keys are byte-exact, so there a key whose name has
   * other spellings must be checked against the names the folder really holds. Found once, with a
   * probe file; a root where no probe can be written is treated as folding (the checks are then
   * only slower).
   */
  private foldsNormalization(): Promise<boolean> {
    this.normalizationFolding ??= (async () => {
      let stem: string;
      try {
        // In the temp folder, which is on the root's file system and hidden from listings.
        stem = `${await this.tempPath()}-`;
        await this.fs.promises.writeFile(`${stem}\u00e9`, '', { flag: 'wx' });
      } catch {
        return true;
      }
      try {
        await this.fs.promises.lstat(`${stem}e\u0301`);
        return true;
      } catch {
        return false;
      } finally {
        await this.fs.promises.unlink(`${stem}\u00e9`).catch(() => undefined);
      }
    })();
    return this.normalizationFolding;
  }

  /** The names in a folder, as stored. */
  private async entriesOf(dir: string): Promise<string[]> {
    return (await this.fs.promises.readdir(dir)) as string[];
  }

  /** Whether every segment of the existing path of `key` is stored under exactly its spelling (see foldsNormalization). */
  private async spelledExactly(realRoot: string, key: string): Promise<boolean> {
    if (normalizationTwins(key).length === 0 || !(await this.foldsNormalization())) return true;
    let dir = realRoot;
    for (const segment of key.split('/')) {
      if (normalizationTwins(segment).length > 0 && !(await this.entriesOf(dir)).includes(segment)) return false;
      dir = path.join(dir, segment);
    }
    return true;
  }

  /**
   * On a file system that folds normalisation, the stored name (file or folder) another spelling
   * of `key` already holds: writing `key` would replace or enter it, so two keys would alias.
   */
  private async twinInTheWay(key: string): Promise<string | undefined> {
    const realRoot = await this.getRealRoot(false);
    if (!realRoot || normalizationTwins(key).length === 0 || !(await this.foldsNormalization())) return undefined;
    let dir = realRoot;
    const segments = key.split('/');
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i]!;
      if (normalizationTwins(segment).length > 0) {
        let names: string[];
        try {
          names = await this.entriesOf(dir);
        } catch (err) {
          if (isCode(err, 'ENOENT', 'ENOTDIR')) return undefined;
          throw err;
        }
        if (!names.includes(segment)) {
          const twin = names.find((name) => name.normalize('NFC') === segment.normalize('NFC'));
          return twin === undefined ? undefined : [...segments.slice(0, i), twin].join('/');
        }
      }
      dir = path.join(dir, segment);
    }
    return undefined;
  }

  /** ALREADY_EXISTS when another spelling of `key` holds its place on this file system. */
  private async refuseTwin(key: string): Promise<void> {
    const twin = await this.twinInTheWay(key);
    if (twin !== undefined) {
      throw new MediaStorageError('ALREADY_EXISTS', `${JSON.stringify(twin)} is stored under another Unicode spelling of "${key}", and this file system (APFS or HFS+) cannot hold both; nothing was written`, { key });
    }
  }

  /** Creates the folder for `key` (checking every existing ancestor stays inside the root) and returns its real path. */
  private async ensureParent(key: string): Promise<string> {
    const realRoot = (await this.getRealRoot(true))!;
    const slash = key.lastIndexOf('/');
    if (slash < 0) return realRoot;
    // Usually the folder exists already: one realpath answers for all its ancestors at once.
    try {
      const real = await this.fs.promises.realpath(path.join(realRoot, key.slice(0, slash)));
      this.assertInside(realRoot, real, key);
      if ((await this.fs.promises.stat(real)).isDirectory()) return real;
    } catch (err) {
      if (!isCode(err, 'ENOENT')) throw err;
    }
    const segments = key.slice(0, slash).split('/');
    let current = realRoot;
    for (const segment of segments) {
      const next = path.join(current, segment);
      try {
        await this.fs.promises.mkdir(next);
      } catch (err) {
        if (!isCode(err, 'EEXIST')) throw err;
      }
      current = await this.fs.promises.realpath(next);
      this.assertInside(realRoot, current, key);
    }
    return current;
  }

  // ----------------------------------------------------------------- temp files

  /** Keys naming the temp folder or a temp file are the backend's own. */
  protected override checkReservedKey(key: string): void {
    if (key.split('/').some((segment) => segment.startsWith(TEMP_PREFIX))) {
      throw new MediaStorageError('INVALID_KEY', `Invalid key ${JSON.stringify(key)}: names starting with "${TEMP_PREFIX}" are reserved for LocalStorage's temp files`, { key });
    }
  }

  /** A fresh temp file name in the temp folder, which is made (and swept) on first use. */
  private async tempPath(): Promise<string> {
    this.tempDir ??= this.prepareTempDir();
    this.tempDir.catch(() => {
      this.tempDir = undefined;
    });
    return path.join(await this.tempDir, randomBytes(12).toString('hex'));
  }

  /** Makes the temp folder and removes temp files a crashed process left there (untouched for a day). */
  private async prepareTempDir(): Promise<string> {
    const realRoot = (await this.getRealRoot(true))!;
    const dir = path.join(realRoot, TEMP_DIR);
    await this.fs.promises.mkdir(dir, { recursive: true });
    const stale = Date.now() - STALE_TEMP_MS;
    for (const name of await this.fs.promises.readdir(dir).catch(() => [] as string[])) {
      const file = path.join(dir, String(name));
      const st = await this.fs.promises.lstat(file).catch(() => undefined);
      if (st?.isFile() && st.mtimeMs < stale) await this.fs.promises.unlink(file).catch(() => undefined);
    }
    return dir;
  }

  /**
   * Moves a finished temp file under the key. A folder of the root on another file system (a
   * mount point) cannot take a rename from the temp folder: the file is copied to a reserved
   * name beside its target first, from where the move is atomic again.
   */
  private async commitTemp(temp: string, target: string, key: string, ifExists: 'overwrite' | 'fail'): Promise<void> {
    let renamed = false;
    try {
      await this.commit(temp, target, key, ifExists);
      renamed = ifExists === 'overwrite';
    } catch (err) {
      if (!isCode(err, 'EXDEV')) throw err;
      const beside = path.join(path.dirname(target), `${TEMP_PREFIX}-${randomBytes(12).toString('hex')}`);
      try {
        await this.fs.promises.copyFile(temp, beside);
        await this.commit(beside, target, key, ifExists);
      } finally {
        await this.fs.promises.unlink(beside).catch(() => undefined);
      }
    } finally {
      // Still there after a link, or after a failure; gone after a rename (no unlink to fail then).
      if (!renamed) await this.fs.promises.unlink(temp).catch(() => undefined);
    }
  }

  /**
   * Makes a finished temp file visible under the key: rename to replace, link to refuse
   * replacing (the caller removes the temp file after a link).
   */
  private async commit(temp: string, target: string, key: string, ifExists: 'overwrite' | 'fail'): Promise<void> {
    if (ifExists === 'overwrite') {
      await this.fs.promises.rename(temp, target);
      return;
    }
    try {
      await this.fs.promises.link(temp, target);
    } catch (err) {
      if (isCode(err, 'EEXIST')) throw new MediaStorageError('ALREADY_EXISTS', `An object is already stored under "${key}"`, { key });
      throw err;
    }
  }

  private async infoFromStat(key: string, real: string, sniff: boolean): Promise<ObjectInfo> {
    const st = await this.fs.promises.stat(real);
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
    await this.refuseTwin(key);
    const dir = await this.ensureParent(key);
    const target = path.join(dir, key.slice(key.lastIndexOf('/') + 1));
    const temp = await this.tempPath();
    try {
      if (body.buffer) {
        // Bytes in memory passed the size checks in the core already: one write, no stream machinery.
        throwIfAborted(options.signal, 'save', key);
        await this.fs.promises.writeFile(temp, body.buffer, { flag: 'wx', mode: 0o644, signal: options.signal });
        options.onProgress?.({ loaded: body.buffer.length, total: body.buffer.length });
      } else {
        await pipeline(body.stream(), this.fs.createWriteStream(temp, { flags: 'wx', mode: 0o644 }));
      }
      if (this.options.fsync) {
        const handle = await this.fs.promises.open(temp, 'r+');
        try {
          await handle.sync();
        } finally {
          await handle.close();
        }
      }
      await this.commitTemp(temp, target, key, options.ifExists);
    } catch (err) {
      await this.fs.promises.unlink(temp).catch(() => undefined);
      throw err;
    }
    const info = await this.infoFromStat(key, target, false);
    return { ...info, contentType: body.detectedContentType };
  }

  protected async readObject(key: string, options: ReadOptions): Promise<Readable> {
    const real = await this.existingPath(key);
    if (!real) throw notFound(key);
    const st = await this.fs.promises.stat(real);
    if (!st.isFile()) throw notFound(key);
    const range = options.range;
    if (range && range.start >= st.size && !(st.size === 0 && range.start === 0)) {
      throw new MediaStorageError('INVALID_INPUT', `Range starts at ${range.start}, past the end of "${key}" (${st.size} bytes)`, { key });
    }
    return this.fs.createReadStream(real, range ? { start: range.start, end: range.end, signal: options.signal } : { signal: options.signal }) as Readable;
  }

  /** Whole files in one read (streaming them costs a round trip to the thread pool per 64 KiB). */
  protected override async readObjectBuffer(key: string, options: ReadOptions): Promise<Buffer | undefined> {
    if (options.range) return undefined; // ranges keep their one implementation, in readObject
    const real = await this.existingPath(key);
    if (!real) throw notFound(key);
    const fs = this.callbackFs;
    if (fs) {
      throwIfAborted(options.signal, 'read', key);
      const whole = await this.readWhole(fs, real);
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
   * The serving path: one realpath (the containment check) and one stat, then the type from
   * `servedTypes` or from one read (the whole file when small, kept for the body). Bodies up to
   * WHOLE_READ_BYTES are one open-read-close into a Buffer; larger ones stream from a file opened
   * before the response starts, so a vanished file is still a clean 404.
   */
  protected override async openObjectForServing(key: string): Promise<ServableObject | undefined> {
    const fs = this.callbackFs;
    if (!fs) return undefined;
    const located = await this.locate(key);
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
        head = await this.readAt(fs, real, size <= WHOLE_READ_BYTES ? size : SNIFF_BYTES, 0);
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
          const bytes = await this.readAt(fs, real, length, start);
          if (bytes.length !== length) throw new MediaStorageError('UNAVAILABLE', `"${key}" changed while it was being served`, { key });
          return bytes;
        }
        const fd = await new Promise<number>((resolve, reject) => fs.open(real, OPEN_FLAGS, (err, opened) => (err ? reject(err) : resolve(opened))));
        return this.fs.createReadStream(real, { fd, start, end }) as Readable;
      },
    };
  }

  /** Up to `length` bytes from `position` (fewer at the end of the file), in one open, read and close. */
  private readAt(fs: CallbackFileSystem, file: string, length: number, position: number): Promise<Buffer> {
    return this.readOpened(fs, file, length, position) as Promise<Buffer>;
  }

  /**
   * The whole of a regular file in one open, one fstat and (usually) one read; `undefined` when it
   * is not a regular file. (A FileHandle's readFile costs a thread-pool round trip per 512 KiB.)
   */
  private readWhole(fs: CallbackFileSystem, file: string): Promise<Buffer | undefined> {
    return this.readOpened(fs, file, 'whole', 0);
  }

  private readOpened(fs: CallbackFileSystem, file: string, length: number | 'whole', position: number): Promise<Buffer | undefined> {
    return new Promise((resolve, reject) => {
      fs.open(file, OPEN_FLAGS, (openErr, fd) => {
        if (openErr) return reject(openErr);
        // Not awaited: the bytes are in hand, and a failed close of a read-only file loses nothing.
        const close = (): void => fs.close(fd, () => undefined);
        const readBytes = (wanted: number): void => {
          const buffer = Buffer.allocUnsafe(wanted);
          const readFrom = (filled: number): void => {
            if (filled === wanted) {
              close();
              return resolve(buffer);
            }
            fs.read(fd, buffer, filled, wanted - filled, position + filled, (err, bytesRead) => {
              if (err || bytesRead === 0) {
                close();
                return err ? reject(err) : resolve(buffer.subarray(0, filled));
              }
              readFrom(filled + bytesRead);
            });
          };
          readFrom(0);
        };
        if (length !== 'whole') return readBytes(length);
        fs.fstat(fd, (err, st) => {
          if (err || !st.isFile()) {
            close();
            return err ? reject(err) : resolve(undefined);
          }
          readBytes(st.size);
        });
      });
    });
  }

  protected async statObject(key: string): Promise<ObjectInfo | undefined> {
    const real = await this.existingPath(key);
    if (!real) return undefined;
    const st = await this.fs.promises.stat(real);
    if (!st.isFile()) return undefined;
    return this.infoFromStat(key, real, true);
  }

  protected override async existsObject(key: string): Promise<boolean> {
    // A link out of the root is not an object of this storage: false, as for a missing one.
    const located = await this.locate(key).catch((err: unknown) => {
      if (err instanceof MediaStorageError && err.code === 'PERMISSION') return undefined;
      throw err;
    });
    return located?.st.isFile() ?? false;
  }

  protected async deleteObject(key: string): Promise<void> {
    const realRoot = await this.getRealRoot(false);
    if (!realRoot) return;
    const slash = key.lastIndexOf('/');
    let dir: string;
    try {
      dir = await this.fs.promises.realpath(path.join(realRoot, slash < 0 ? '' : key.slice(0, slash)));
    } catch (err) {
      if (isCode(err, 'ENOENT', 'ENOTDIR')) return;
      throw err;
    }
    this.assertInside(realRoot, dir, key);
    // Where the file system folds spellings, the name found may be another key's.
    if (!(await this.spelledExactly(realRoot, key))) return;
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
    const realRoot = await this.getRealRoot(false);
    if (!realRoot) return { items: [] };
    const after = options.cursor ? cursorCodec.decode(options.cursor) : undefined;
    const startDir = prefix.slice(0, prefix.lastIndexOf('/') + 1);
    if (!(await this.folderInsideRoot(realRoot, startDir))) return { items: [] };
    const items: ObjectInfo[] = [];
    const skipped: SkippedObject[] = [];
    let more = false;
    let last: string | undefined;
    for await (const [key, full] of this.walk(realRoot, startDir, prefix, after)) {
      if (items.length + skipped.length === options.limit) {
        more = true;
        break;
      }
      try {
        const st = await this.fs.promises.stat(full);
        items.push({ key, size: st.size, contentType: this.servingRule.typeFromKey(key), etag: `${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}`, lastModified: st.mtime });
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
    return more && last !== undefined ? { ...page, cursor: cursorCodec.encode(last) } : page;
  }

  /**
   * Whether a listing may start in this folder: it exists and resolves inside the root. (The walk
   * below never follows a link; this catches a prefix that names one, `list('link/')`.)
   */
  private async folderInsideRoot(realRoot: string, dirKey: string): Promise<boolean> {
    if (dirKey === '') return true;
    try {
      const real = await this.fs.promises.realpath(path.join(realRoot, dirKey));
      return real.startsWith(realRoot + path.sep);
    } catch (err) {
      if (isCode(err, 'ENOENT', 'ENOTDIR')) return false;
      throw err;
    }
  }

  /**
   * Yields `[key, path]` of regular files in key order. Folders sort as "name/" so that the walk
   * order equals the order of the full keys; subtrees wholly before the cursor or outside the
   * prefix are skipped without being read. Symbolic links are never followed.
   */
  private async *walk(realRoot: string, dirKey: string, prefix: string, after: string | undefined): AsyncGenerator<[string, string]> {
    let entries: nodeFs.Dirent[];
    try {
      entries = (await this.fs.promises.readdir(path.join(realRoot, dirKey), { withFileTypes: true })) as nodeFs.Dirent[];
    } catch (err) {
      if (isCode(err, 'ENOENT', 'ENOTDIR')) return;
      throw err;
    }
    const named = entries
      .filter((e) => (e.isFile() || e.isDirectory()) && !e.name.startsWith(TEMP_PREFIX))
      // Names as stored: keys are byte-exact, so a decomposed "Jose\u0301.jpg" is listed as such.
      .map((e) => ({ entry: e, sortKey: dirKey + e.name + (e.isDirectory() ? '/' : '') }))
      .sort((a, b) => compareKeys(a.sortKey, b.sortKey));
    for (const { entry, sortKey } of named) {
      if (!(sortKey.startsWith(prefix) || prefix.startsWith(sortKey))) continue;
      if (entry.isDirectory()) {
        if (after !== undefined && compareKeys(sortKey, after) < 0 && !after.startsWith(sortKey)) continue;
        yield* this.walk(realRoot, sortKey, prefix, after);
      } else if (after === undefined || compareKeys(sortKey, after) > 0) {
        yield [sortKey, path.join(realRoot, dirKey, entry.name)];
      }
    }
  }

  protected override async copyObject(from: string, to: string, options: CopyOptions): Promise<ObjectInfo> {
    const source = await this.existingPath(from);
    if (!source || !(await this.fs.promises.stat(source)).isFile()) throw notFound(from);
    await this.refuseTwin(to);
    const dir = await this.ensureParent(to);
    const target = path.join(dir, to.slice(to.lastIndexOf('/') + 1));
    const temp = await this.tempPath();
    try {
      await this.fs.promises.copyFile(source, temp);
      await this.commitTemp(temp, target, to, options.ifExists ?? 'overwrite');
    } catch (err) {
      await this.fs.promises.unlink(temp).catch(() => undefined);
      throw err;
    }
    return this.infoFromStat(to, target, true);
  }

  /** A name another spelling holds (see twinInTheWay) is taken too, so `ifExists: 'rename'` picks another. */
  protected override async keyTaken(key: string): Promise<boolean> {
    return (await this.existsObject(key)) || (await this.twinInTheWay(key)) !== undefined;
  }

  protected async objectUrl(key: string, options: UrlOptions): Promise<string> {
    const plain = `${this.baseUrl}/${encodeKeyPath(key)}`;
    const download = options.download === undefined || options.download === false ? undefined : options.download === true ? '' : options.download;
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

  protected override mapError(err: unknown, operation: string): { code: MediaStorageErrorCode; message?: string } | undefined {
    if (operation === 'save' || operation === 'copy') {
      if (isCode(err, 'EISDIR', 'ENOTEMPTY')) return { code: 'INVALID_KEY', message: 'a folder already exists at this key' };
      if (isCode(err, 'ENOTDIR', 'EEXIST')) return { code: 'INVALID_KEY', message: 'a file already exists where this key needs a folder' };
    }
    return undefined;
  }

  protected override secrets(): readonly (string | undefined)[] {
    const s = this.options.secret;
    return [typeof s === 'string' ? s : s?.toString('utf8')];
  }
}

export type { MediaRequestHandler } from '../core/http-handler.js';
