/**
 * Keys are byte-exact, and on a file system that folds Unicode normalisation (macOS APFS) two
 * spellings of a name are one file: LocalStorage must then never let an operation on one key
 * read, replace or delete another key's file. Run on an APFS-like file system (test/support/
 * folding-fs.ts) and, for contrast, on the real one (ext4 here), which keeps both spellings.
 */
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isMediaStorageError } from '../../src/core/errors.js';
import { LocalStorage } from '../../src/local/index.js';
import { foldingFs } from '../support/folding-fs.js';
import { tempDir } from '../support/tmp.js';

const NFC = 'Jos\u00e9.jpg';
/** LocalStorage's own temp folder under the root (not an object). */
const TEMP_FOLDER = '.media-storage-tmp';
const stored = async (root: string): Promise<string[]> => (await readdir(root)).filter((name) => name !== TEMP_FOLDER);
const NFD = 'Jose\u0301.jpg';

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (err) {
    return isMediaStorageError(err) ? err.code : String(err);
  }
}

let cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const fn of cleanup) await fn();
  cleanup = [];
});

async function storages(): Promise<{ folding: LocalStorage; plain: LocalStorage; foldingRoot: string; plainRoot: string }> {
  const a = await tempDir('folding');
  const b = await tempDir('plain');
  cleanup.push(a.remove, b.remove);
  return {
    folding: new LocalStorage({ root: a.dir, fs: foldingFs(a.dir), warnOnEphemeralDisk: false }),
    plain: new LocalStorage({ root: b.dir, warnOnEphemeralDisk: false }),
    foldingRoot: a.dir,
    plainRoot: b.dir,
  };
}

describe('LocalStorage on a file system that folds Unicode normalisation (APFS)', () => {
  it('the emulated file system does fold: the other spelling opens the same file', async () => {
    const { folding, foldingRoot } = await storages();
    await folding.save(NFC, 'composed');
    const fs = foldingFs(foldingRoot);
    expect((await fs.promises.stat(path.join(foldingRoot, NFD))).size).toBe('composed'.length);
  });

  it('a key finds only the file stored under exactly its spelling', async () => {
    const { folding } = await storages();
    await folding.save(NFC, 'composed');
    expect(await folding.exists(NFD)).toBe(false);
    expect(await code(folding.stat(NFD))).toBe('NOT_FOUND');
    expect(await code(folding.readBuffer(NFD))).toBe('NOT_FOUND');
    expect(await code(folding.read(NFD))).toBe('NOT_FOUND');
    expect(await code(folding.copy(NFD, 'copy.jpg'))).toBe('NOT_FOUND');
    await folding.delete(NFD);
    expect((await folding.readBuffer(NFC)).toString()).toBe('composed');
    expect((await folding.list()).items.map((i) => i.key)).toEqual([NFC]);
  });

  it('refuses to write a key whose other spelling holds the file (ALREADY_EXISTS), and renames past it on request', async () => {
    const { folding } = await storages();
    await folding.save(NFC, 'composed');
    expect(await code(folding.save(NFD, 'decomposed'))).toBe('ALREADY_EXISTS');
    expect(await code(folding.save(NFD, 'decomposed', { ifExists: 'fail' }))).toBe('ALREADY_EXISTS');
    await folding.save('other.jpg', 'x');
    expect(await code(folding.copy('other.jpg', NFD))).toBe('ALREADY_EXISTS');
    expect((await folding.readBuffer(NFC)).toString()).toBe('composed');
    const renamed = await folding.save(NFD, 'decomposed', { ifExists: 'rename' });
    expect(renamed.key).not.toBe(NFD);
    expect(renamed.key.startsWith('Jose\u0301_')).toBe(true);
    expect((await folding.readBuffer(renamed.key)).toString()).toBe('decomposed');
    expect((await folding.readBuffer(NFC)).toString()).toBe('composed');
  });

  it("never writes into a folder stored under another spelling of the key's folder", async () => {
    const { folding, foldingRoot } = await storages();
    await folding.save('Ren\u00e9e/a.txt', 'a');
    expect(await code(folding.save('Rene\u0301e/b.txt', 'b'))).toBe('ALREADY_EXISTS');
    expect(await readdir(path.join(foldingRoot, 'Ren\u00e9e'))).toEqual(['a.txt']);
    expect(await folding.exists('Rene\u0301e/a.txt')).toBe(false);
  });

  it('leaves no probe file behind and lists nothing it did not store', async () => {
    const { folding, foldingRoot } = await storages();
    await folding.save(NFC, 'composed');
    await folding.exists(NFD);
    expect(await stored(foldingRoot)).toEqual([NFC]);
    expect(await readdir(path.join(foldingRoot, TEMP_FOLDER))).toEqual([]);
    expect((await folding.list()).items.map((i) => i.key)).toEqual([NFC]);
  });
});

describe('LocalStorage on a file system that keeps spellings apart (ext4)', () => {
  it('keeps the two spellings as two files, each under its own key', async () => {
    const { plain, plainRoot } = await storages();
    await plain.save(NFC, 'composed');
    await plain.save(NFD, 'decomposed');
    expect((await stored(plainRoot)).sort()).toEqual([NFC, NFD].sort());
    expect((await plain.readBuffer(NFD)).toString()).toBe('decomposed');
    expect((await plain.readBuffer(NFC)).toString()).toBe('composed');
    await plain.delete(NFD);
    expect(existsSync(path.join(plainRoot, NFD))).toBe(false);
    expect((await stat(path.join(plainRoot, NFC))).size).toBe('composed'.length);
  });
});
