// LocalStorage lookups (exists, stat, read, serving): an lstat per key segment, with the folder
// ones shared by lookups asking at the same time. What must hold: a shared answer never hides a
// file a save just made, and a link on the path is still followed only inside the root.
import * as realFs from 'node:fs';
import { mkdir, rename, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalStorage, type LocalFileSystem } from '../../src/local/index.js';
import { failureCode } from '../support/failure.js';
import { tempDir } from '../support/tmp.js';

/** node:fs with each callback lstat counted and held back `delayMs`, so that lookups overlap. */
function slowLstats(delayMs: number): { fs: LocalFileSystem; calls: string[] } {
  const calls: string[] = [];
  const lstat = ((file: string, callback: (err: NodeJS.ErrnoException | null, st: realFs.Stats) => void) => {
    calls.push(file);
    realFs.lstat(file, (err, st) => setTimeout(() => callback(err, st), delayMs));
  }) as typeof realFs.lstat;
  return { fs: { ...realFs, lstat } as LocalFileSystem, calls };
}

describe('LocalStorage lookups', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let root: string;
  beforeEach(async () => {
    tmp = await tempDir('local-lookups');
    root = path.join(tmp.dir, 'media');
  });
  afterEach(async () => {
    await tmp.remove();
  });

  it('lookups at the same time share the lstat of their folder, never of their file', async () => {
    const { fs, calls } = slowLstats(50);
    const storage = new LocalStorage({ root, fs, warnOnEphemeralDisk: false });
    const keys = Array.from({ length: 20 }, (_, i) => `people/p${i}.jpg`);
    for (const key of keys) await storage.save(key, 'x');
    calls.length = 0;
    expect(await Promise.all(keys.map((key) => storage.exists(key)))).toEqual(keys.map(() => true));
    const real = realFs.realpathSync(root);
    expect(calls.filter((c) => c === path.join(real, 'people'))).toHaveLength(1);
    for (const key of keys) expect(calls.filter((c) => c === path.join(real, key))).toHaveLength(1);
  });

  it('a file saved in a new folder while a lookup of that folder is on its way is found', async () => {
    const { fs } = slowLstats(100);
    const storage = new LocalStorage({ root, fs, warnOnEphemeralDisk: false });
    await storage.save('seed.txt', 'makes the root');
    // Its lstat of "fresh" answers "absent" after the save below has made the folder.
    const before = storage.exists('fresh/a.jpg');
    await storage.save('fresh/b.jpg', 'new');
    const after = storage.exists('fresh/b.jpg');
    expect(await before).toBe(false);
    expect(await after).toBe(true);
    expect((await storage.readBuffer('fresh/b.jpg')).toString()).toBe('new');
  });

  it('follows a link on the path only while it stays inside the root, whichever segment it is', async () => {
    const storage = new LocalStorage({ root, warnOnEphemeralDisk: false });
    await storage.save('photos/2024/a.jpg', 'inside');
    await mkdir(path.join(tmp.dir, 'outside', '2024'), { recursive: true });
    await writeFile(path.join(tmp.dir, 'outside', '2024', 'a.jpg'), 'SECRET');
    await symlink(path.join(root, 'photos'), path.join(root, 'alias'));
    await symlink(path.join(tmp.dir, 'outside'), path.join(root, 'away'));
    await symlink(path.join(root, 'photos', '2024'), path.join(root, 'photos', 'latest'));
    await symlink(path.join(tmp.dir, 'outside', '2024'), path.join(root, 'photos', 'elsewhere'));
    for (const key of ['alias/2024/a.jpg', 'photos/latest/a.jpg']) {
      expect(await storage.exists(key), key).toBe(true);
      expect((await storage.readBuffer(key)).toString()).toBe('inside');
    }
    for (const key of ['away/2024/a.jpg', 'photos/elsewhere/a.jpg']) {
      expect(await storage.exists(key), key).toBe(false);
      expect(await failureCode(storage.readBuffer(key)), key).toBe('PERMISSION');
      expect(await failureCode(storage.stat(key)), key).toBe('PERMISSION');
    }
  });

  it('a file found before costs one stat; a save, a moved file or a folder swapped for a link sends the lookup back to the segment-by-segment check', async () => {
    const { fs, calls } = slowLstats(0);
    const stats: string[] = [];
    const counted = {
      ...fs,
      stat: ((file: string, cb: (err: NodeJS.ErrnoException | null, st: realFs.Stats) => void) => {
        stats.push(file);
        realFs.stat(file, cb);
      }) as typeof realFs.stat,
    } as LocalFileSystem;
    const storage = new LocalStorage({ root, fs: counted, warnOnEphemeralDisk: false });
    await storage.save('people/a.jpg', 'first');
    await storage.save('people/b.jpg', 'other');
    expect(await storage.exists('people/a.jpg')).toBe(true);
    calls.length = 0;
    stats.length = 0;
    for (let i = 0; i < 3; i++) expect(await storage.exists('people/a.jpg')).toBe(true);
    expect([calls.length, stats.length]).toEqual([0, 3]);
    // A save puts a new file (a new inode) under the key: checked again, then remembered.
    await storage.save('people/a.jpg', 'second');
    expect((await storage.readBuffer('people/a.jpg')).toString()).toBe('second');
    expect(calls.length).toBeGreaterThan(0);
    // The file moved out of the root, and a link to it put in its place: refused.
    const outside = path.join(tmp.dir, 'outside');
    await mkdir(outside, { recursive: true });
    await rename(path.join(root, 'people', 'a.jpg'), path.join(outside, 'a.jpg'));
    await symlink(path.join(outside, 'a.jpg'), path.join(root, 'people', 'a.jpg'));
    expect(await storage.exists('people/a.jpg')).toBe(false);
    expect(await failureCode(storage.readBuffer('people/a.jpg'))).toBe('PERMISSION');
    // The folder of a remembered file swapped for a link to a folder outside: refused.
    expect((await storage.readBuffer('people/b.jpg')).toString()).toBe('other');
    await writeFile(path.join(outside, 'b.jpg'), 'SECRET');
    await rename(path.join(root, 'people'), path.join(tmp.dir, 'people-moved'));
    await symlink(outside, path.join(root, 'people'));
    expect(await storage.exists('people/b.jpg')).toBe(false);
    expect(await failureCode(storage.readBuffer('people/b.jpg'))).toBe('PERMISSION');
    expect(await failureCode(storage.stat('people/b.jpg'))).toBe('PERMISSION');
  });
});
