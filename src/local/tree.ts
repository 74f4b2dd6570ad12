import type * as nodeFs from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { alreadyExists } from '../core/base.js';
import { MediaStorageError } from '../core/errors.js';
import { normalizationTwins } from '../core/keys.js';
import { isCode } from './errors.js';
import type { CallbackFileSystem, LocalFileSystem } from './fs.js';

/**
 * Saves are written to a temp file in `<root>/.media-storage-tmp/`, then renamed into place, so
 * nothing partial is ever under a key. Every name starting with this prefix is reserved: such
 * keys are INVALID_KEY, listings skip them, and the handler never serves them.
 */
export const TEMP_PREFIX = '.media-storage-tmp';
const TEMP_DIR = TEMP_PREFIX;
/** Temp files untouched for this long are left over from a crashed process: removed on the first save. */
const STALE_TEMP_MS = 24 * 3600 * 1000;

/**
 * The folder tree under a LocalStorage root: where a key's file really is (never outside the
 * root, links included), the Unicode spellings a folding file system confuses, and the temp files
 * a save is written to and committed from.
 */
export class LocalTree {
  private realRoot: string | undefined;
  private normalizationFolding: Promise<boolean> | undefined;
  /** The temp folder, made (and swept of stale temp files) once per instance, on the first write. */
  private tempDir: Promise<string> | undefined;

  constructor(
    readonly root: string,
    private readonly fs: LocalFileSystem,
    /** `fs` when it has the callback functions the serving path uses. */
    private readonly callbackFs: CallbackFileSystem | undefined,
  ) {}

  async getRealRoot(create: boolean): Promise<string | undefined> {
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

  assertInside(realRoot: string, real: string, key: string): void {
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
   * The real path of an existing object (as {@link existingPath}) and its stats. The stat follows
   * the realpath, as done raw: sent side by side, the two cost more on a small machine than in a
   * row (Node 24, ext4: 84 against 63 µs per exists(), with the same system calls).
   */
  async locate(key: string): Promise<{ real: string; st: nodeFs.Stats } | undefined> {
    const real = await this.existingPath(key);
    if (!real) return undefined;
    const fs = this.callbackFs;
    try {
      const st = await (fs
        ? new Promise<nodeFs.Stats>((resolve, reject) => fs.stat(real, (err, stats) => (err ? reject(err) : resolve(stats))))
        : this.fs.promises.stat(real));
      return { real, st };
    } catch (err) {
      if (isCode(err, 'ENOENT', 'ENOTDIR')) return undefined; // deleted in between
      throw err;
    }
  }

  /**
   * The real path of an existing object, checked to be inside the root; undefined when absent, or
   * when it resolves (through a link inside the root) to a temp file, which is never an object.
   */
  async existingPath(key: string): Promise<string | undefined> {
    const realRoot = await this.getRealRoot(false);
    if (!realRoot) return undefined;
    try {
      const real = await this.realpath(path.join(realRoot, key));
      this.assertInside(realRoot, real, key);
      if (
        real
          .slice(realRoot.length)
          .split(path.sep)
          .some((segment) => segment.startsWith(TEMP_PREFIX))
      )
        return undefined;
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
  foldsNormalization(): Promise<boolean> {
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
  async spelledExactly(realRoot: string, key: string): Promise<boolean> {
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
  async twinInTheWay(key: string): Promise<string | undefined> {
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
  async refuseTwin(key: string): Promise<void> {
    const twin = await this.twinInTheWay(key);
    if (twin !== undefined) {
      throw new MediaStorageError(
        'ALREADY_EXISTS',
        `${JSON.stringify(twin)} is stored under another Unicode spelling of "${key}", and this file system (APFS or HFS+) cannot hold both; nothing was written`,
        { key },
      );
    }
  }

  /** Creates the folder for `key` (checking every existing ancestor stays inside the root) and returns its real path. */
  async ensureParent(key: string): Promise<string> {
    const realRoot = (await this.getRealRoot(true))!;
    const slash = key.lastIndexOf('/');
    if (slash < 0) return realRoot;
    // Usually the folder exists already: one realpath answers for all its ancestors at once. No
    // stat to see that it is a folder (a thread-pool round trip on every save): when it is a file,
    // the rename or link into it fails with ENOTDIR, which is INVALID_KEY (errors.ts).
    try {
      const real = await this.fs.promises.realpath(path.join(realRoot, key.slice(0, slash)));
      this.assertInside(realRoot, real, key);
      return real;
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

  /** A fresh temp file name in the temp folder, which is made (and swept) on first use. */
  async tempPath(): Promise<string> {
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
   * name beside its target first, from where the move is atomic again (a copy, with an mtime
   * of its own: 'copied').
   */
  async commitTemp(temp: string, target: string, key: string, ifExists: 'overwrite' | 'fail'): Promise<'moved' | 'copied'> {
    let renamed = false;
    try {
      await this.commit(temp, target, key, ifExists);
      renamed = ifExists === 'overwrite';
      return 'moved';
    } catch (err) {
      if (!isCode(err, 'EXDEV')) throw err;
      const beside = path.join(path.dirname(target), `${TEMP_PREFIX}-${randomBytes(12).toString('hex')}`);
      try {
        await this.fs.promises.copyFile(temp, beside);
        await this.commit(beside, target, key, ifExists);
        return 'copied';
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
      if (isCode(err, 'EEXIST')) throw alreadyExists(key);
      throw err;
    }
  }
}
