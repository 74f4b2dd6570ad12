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

/** Whether a path (as segments below the root) is in, or is, a temp file: never an object. */
function isTempPath(segments: readonly string[]): boolean {
  return segments.some((segment) => segment.startsWith(TEMP_PREFIX));
}
/** At most this many files are remembered as checked (see LocalTree.verified); the oldest goes first. */
const VERIFIED_MAX = 10_000;

/** What tells one file from another over time: device, inode, birth and change times. */
function identityOf(st: nodeFs.Stats): string {
  return `${st.dev}:${st.ino}:${st.birthtimeMs}:${st.ctimeMs}`;
}

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
  /**
   * Files found at their path with no link on it (so inside the root), by path: their identity
   * (device, inode, birth and change times). A later lookup of the path that stats the same file
   * needs no other call: whatever the path goes through now, it reaches a file that was inside
   * the root when checked. A save (a rename: a new inode), a change of the file (its ctime), a
   * hard link (its ctime) or a reused inode (its birth time) makes the identity differ, and the
   * path is checked again segment by segment.
   */
  private readonly verified = new Map<string, string>();
  /** Folder lstats on their way, for {@link folderState} to share. */
  private readonly folderLstats = new Map<string, Promise<nodeFs.Stats>>();

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
   * The real path of an existing object (as {@link existingPath}) and its stats. A file found
   * before (see {@link verified}) costs one stat; otherwise one lstat per segment of the key
   * ({@link statWithoutLinks}); a path through a link takes the realpath, then a stat.
   */
  async locate(key: string): Promise<{ real: string; st: nodeFs.Stats } | undefined> {
    const realRoot = await this.getRealRoot(false);
    if (!realRoot) return undefined;
    const file = path.join(realRoot, key);
    const known = this.verified.get(file);
    if (known !== undefined) {
      const st = await this.stat(file).catch((err: unknown) => (isCode(err, 'ENOENT', 'ENOTDIR') ? undefined : Promise.reject(err)));
      if (st && identityOf(st) === known) return { real: file, st };
      this.verified.delete(file);
    }
    const direct = await this.statWithoutLinks(realRoot, key);
    if (direct !== 'link') {
      if (direct?.st.isFile()) this.remember(file, direct.st);
      return direct;
    }
    const real = await this.existingPath(key, true);
    if (!real) return undefined;
    try {
      return { real, st: await this.stat(real) };
    } catch (err) {
      if (isCode(err, 'ENOENT', 'ENOTDIR')) return undefined; // deleted in between
      throw err;
    }
  }

  private remember(file: string, st: nodeFs.Stats): void {
    if (this.verified.size >= VERIFIED_MAX) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(file, identityOf(st));
  }

  /**
   * The real path of an existing object, checked to be inside the root; undefined when absent, or
   * when it resolves (through a link inside the root) to a temp file, which is never an object.
   */
  async existingPath(key: string, throughLink = false): Promise<string | undefined> {
    const realRoot = await this.getRealRoot(false);
    if (!realRoot) return undefined;
    if (!throughLink) {
      const direct = await this.statWithoutLinks(realRoot, key);
      if (direct !== 'link') return direct?.real;
    }
    try {
      const real = await this.realpath(path.join(realRoot, key));
      this.assertInside(realRoot, real, key);
      if (isTempPath(real.slice(realRoot.length).split(path.sep))) return undefined;
      // On APFS, "Jose\u0301.jpg" finds "José.jpg": that is another key's file, not this one's.
      if (!(await this.spelledExactly(realRoot, key))) return undefined;
      return real;
    } catch (err) {
      if (isCode(err, 'ENOENT', 'ENOTDIR')) return undefined;
      throw err;
    }
  }

  /**
   * Where no segment of `key`'s path below the real root is a link (the usual case), its file and
   * stats from one lstat per segment, sent together: no link means the path is the real path, so
   * it is inside the root exactly as a realpath would prove, and the lstat of a file that is no
   * link is its stat. The realpath costs more (glibc reads every segment from "/" as a link, and
   * a stat follows it): for a 304 it was two of every three system calls. 'link' when a segment
   * is one: the realpath then follows it, and it may stay inside the root.
   */
  private async statWithoutLinks(realRoot: string, key: string): Promise<{ real: string; st: nodeFs.Stats } | undefined | 'link'> {
    const segments = key.split('/');
    if (isTempPath(segments)) return undefined;
    const paths: string[] = [];
    let at = realRoot;
    for (const segment of segments) paths.push((at = path.join(at, segment)));
    const [folders, st] = await Promise.all([
      Promise.all(paths.slice(0, -1).map((dir) => this.folderState(dir))),
      // The file's own lstat is never shared: it answers for this call alone, after any save before it.
      this.lstat(at).catch((err: unknown) => (isCode(err, 'ENOENT', 'ENOTDIR') ? undefined : Promise.reject(err))),
    ]);
    if (folders.includes('link') || st?.isSymbolicLink()) return 'link';
    if (!st || folders.includes('absent')) return undefined;
    if (!(await this.spelledExactly(realRoot, key))) return undefined;
    return { real: at, st };
  }

  private stat(file: string): Promise<nodeFs.Stats> {
    const fs = this.callbackFs;
    if (!fs) return this.fs.promises.stat(file);
    return new Promise((resolve, reject) => fs.stat(file, (err, st) => (err ? reject(err) : resolve(st))));
  }

  private lstat(file: string): Promise<nodeFs.Stats> {
    const fs = this.callbackFs;
    if (!fs) return this.fs.promises.lstat(file);
    return new Promise((resolve, reject) => fs.lstat(file, (err, st) => (err ? reject(err) : resolve(st))));
  }

  /**
   * Whether a folder on a key's path is a folder, a link, or absent (or a file). The lstat is
   * shared by every lookup that asks while it is on its way (the folder of a page of photos, asked
   * by each of its requests at once): a served request's cost is mostly its thread-pool round
   * trips (profiled: over a third of the main thread). A shared answer is taken only when it says
   * "a folder"; any other is asked again, so a folder made by a save that just finished is found.
   * Nothing is kept once the call answers.
   */
  private async folderState(dir: string): Promise<'folder' | 'link' | 'absent'> {
    const shared = this.folderLstats.get(dir);
    if (shared && (await shared.catch(() => undefined))?.isDirectory()) return 'folder';
    const own = this.lstat(dir);
    this.folderLstats.set(dir, own);
    const settled = (): void => {
      if (this.folderLstats.get(dir) === own) this.folderLstats.delete(dir);
    };
    own.then(settled, settled);
    try {
      const st = await own;
      return st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'folder' : 'absent';
    } catch (err) {
      if (isCode(err, 'ENOENT', 'ENOTDIR')) return 'absent';
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
