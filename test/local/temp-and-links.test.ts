// LocalStorage: nothing partial and nothing outside the root is ever served or listed. Temp files
// live in a reserved folder no key can name; stale ones are swept; listings never go through a
// link out of the root.
import * as realFs from 'node:fs';
import { mkdir, readdir, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalStorage, type LocalFileSystem } from '../../src/local/index.js';
import { failureCode } from '../support/failure.js';
import { listen } from '../support/http.js';
import { tempDir } from '../support/tmp.js';

/** Files under `dir` (relative, POSIX separators), not following links. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'));
  }
  return out.sort();
}

describe('LocalStorage temp files', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let root: string;
  let storage: LocalStorage;
  let server: Awaited<ReturnType<typeof listen>>;
  beforeEach(async () => {
    tmp = await tempDir('local-temp');
    root = path.join(tmp.dir, 'media');
    server = await listen((req, res) => storage.handler()(req, res));
    storage = new LocalStorage({ root, baseUrl: `${server.url}/media`, warnOnEphemeralDisk: false });
  });
  afterEach(async () => {
    await server.close();
    await tmp.remove();
  });

  it('never serves or lists a save in progress', async () => {
    const controller = new AbortController();
    let sent = 0;
    // 960 KiB, then the upload stalls, as a slow client's would.
    const slow = new Readable({
      read() {
        if (sent < 15) {
          sent++;
          this.push(Buffer.alloc(64 * 1024, 0x61));
        }
      },
    });
    const saving = storage.save('photos/big.jpg', slow, { signal: controller.signal }).catch((err: { code?: string }) => err.code);
    let partial: string | undefined;
    for (let i = 0; i < 200 && !partial; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      if (!realFs.existsSync(root)) continue;
      for (const file of await filesUnder(root)) if ((await stat(path.join(root, file))).size >= 15 * 64 * 1024) partial = file;
    }
    expect(partial, 'the temp file of the save in progress').toBeDefined();
    // Whatever its name, the handler does not serve it, and nothing names it.
    const res = await fetch(`${server.url}/media/${partial!.split('/').map(encodeURIComponent).join('/')}`);
    const body = Buffer.from(await res.arrayBuffer());
    expect({ status: res.status, bytes: body.length }).toEqual({ status: 404, bytes: 'Not found'.length });
    expect((await fetch(`${server.url}/media/photos/big.jpg`)).status).toBe(404);
    expect((await storage.list('')).items).toEqual([]);
    expect(await failureCode(storage.exists(partial!))).toBe('INVALID_KEY');
    controller.abort();
    expect(await saving).toBe('ABORTED');
    expect(await filesUnder(root)).toEqual([]);
  });

  it('reserves the temp names: keys naming them are INVALID_KEY in every operation', async () => {
    await storage.save('seed.txt', 'seed');
    for (const key of ['.media-storage-tmp/abc', '.media-storage-tmp', 'photos/.media-storage-tmp-0123abcd', 'a/.media-storage-tmpx/b.jpg']) {
      for (const [op, call] of [
        ['save', () => storage.save(key, 'x')],
        ['readBuffer', () => storage.readBuffer(key)],
        ['stat', () => storage.stat(key)],
        ['exists', () => storage.exists(key)],
        ['delete', () => storage.delete(key)],
        ['url', () => storage.url(key)],
        ['copy to', () => storage.copy('seed.txt', key)],
      ] as const) {
        expect(await failureCode(call()), `${op} ${key}`).toBe('INVALID_KEY');
      }
    }
    expect(await filesUnder(root)).toEqual(['seed.txt']);
  });

  it('never serves a temp file a crashed process left, and sweeps stale ones on the first save', async () => {
    const tempFolder = path.join(root, '.media-storage-tmp');
    await mkdir(tempFolder, { recursive: true });
    await mkdir(path.join(root, 'photos'), { recursive: true });
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    await writeFile(path.join(tempFolder, 'stale0123456789'), 'half an upload');
    await utimes(path.join(tempFolder, 'stale0123456789'), twoDaysAgo, twoDaysAgo);
    await writeFile(path.join(tempFolder, 'fresh0123456789'), 'another process is writing this');
    // A temp file beside its target, as older versions wrote them.
    await writeFile(path.join(root, 'photos', '.media-storage-tmp-00ff00ff00ff00ff'), 'half an upload');
    const fresh = new LocalStorage({ root, baseUrl: `${server.url}/media`, warnOnEphemeralDisk: false });
    storage = fresh;
    for (const p of ['.media-storage-tmp/stale0123456789', '.media-storage-tmp/fresh0123456789', 'photos/.media-storage-tmp-00ff00ff00ff00ff']) {
      const res = await fetch(`${server.url}/media/${p}`);
      expect(res.status, p).toBe(404);
      expect(await res.text()).not.toContain('upload');
    }
    expect((await fresh.list('')).items).toEqual([]);
    await fresh.save('photos/a.jpg', 'x');
    expect(await readdir(tempFolder)).toEqual(['fresh0123456789']);
    expect((await fresh.list('')).items.map((i) => i.key)).toEqual(['photos/a.jpg']);
  });

  it('refuses a key whose folder is a file with INVALID_KEY, in every write mode, leaving the file and no temp file', async () => {
    await storage.save('people/ada.jpg', Buffer.from('the photo'));
    for (const ifExists of ['overwrite', 'fail', 'rename'] as const) {
      expect(await failureCode(storage.save('people/ada.jpg/small.jpg', Buffer.from('x'), { ifExists }))).toBe('INVALID_KEY');
      expect(await failureCode(storage.save('people/ada.jpg/deeper/small.jpg', Buffer.from('x'), { ifExists }))).toBe('INVALID_KEY');
    }
    expect(await failureCode(storage.copy('people/ada.jpg', 'people/ada.jpg/copy.jpg'))).toBe('INVALID_KEY');
    expect(await filesUnder(root)).toEqual(['people/ada.jpg']);
    expect((await storage.readBuffer('people/ada.jpg')).toString()).toBe('the photo');
  });

  it('moves a finished upload into a folder on another file system (EXDEV) without leaving anything behind', async () => {
    const crossDevice = (err: string) => Object.assign(new Error(`${err}: cross-device link not permitted`), { code: 'EXDEV' });
    const fromTemp = (p: string): boolean => p.includes(`${path.sep}.media-storage-tmp${path.sep}`);
    const fs: LocalFileSystem = {
      ...realFs,
      promises: {
        ...realFs.promises,
        rename: (async (from: string, to: string) => {
          if (fromTemp(from)) throw crossDevice('rename');
          return realFs.promises.rename(from, to);
        }) as LocalFileSystem['promises']['rename'],
        link: (async (from: string, to: string) => {
          if (fromTemp(from)) throw crossDevice('link');
          return realFs.promises.link(from, to);
        }) as LocalFileSystem['promises']['link'],
      },
    };
    const s = new LocalStorage({ root, fs, warnOnEphemeralDisk: false });
    await s.save('mounted/a.txt', 'first');
    await s.save('mounted/a.txt', 'second');
    expect(await failureCode(s.save('mounted/a.txt', 'third', { ifExists: 'fail' }))).toBe('ALREADY_EXISTS');
    await s.copy('mounted/a.txt', 'mounted/b.txt');
    expect((await s.readBuffer('mounted/a.txt')).toString()).toBe('second');
    expect((await s.readBuffer('mounted/b.txt')).toString()).toBe('second');
    expect(await filesUnder(root)).toEqual(['mounted/a.txt', 'mounted/b.txt']);
  });
});

describe('LocalStorage and symbolic links', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let root: string;
  let outside: string;
  let storage: LocalStorage;
  beforeEach(async () => {
    tmp = await tempDir('local-links');
    root = path.join(tmp.dir, 'media');
    outside = path.join(tmp.dir, 'outside');
    await mkdir(path.join(root, 'photos'), { recursive: true });
    await mkdir(path.join(outside, 'deeper'), { recursive: true });
    await writeFile(path.join(outside, 'secret.txt'), 'top secret');
    await writeFile(path.join(outside, 'deeper', 'also-secret.txt'), 'top secret too');
    await writeFile(path.join(root, 'photos', 'a.jpg'), 'a photo');
    await symlink(outside, path.join(root, 'linkdir'));
    await symlink(path.join(outside, 'secret.txt'), path.join(root, 'photos', 'link.txt'));
    await symlink(path.join(root, 'photos'), path.join(root, 'alias'));
    storage = new LocalStorage({ root, warnOnEphemeralDisk: false });
  });
  afterEach(() => tmp.remove());

  it('never lists anything reached through a link out of the root, whatever the prefix', async () => {
    for (const prefix of ['', 'linkdir/', 'linkdir/deeper/', 'linkdir/se', 'photos/', 'photos/link']) {
      const listed = (await storage.list(prefix)).items.map((i) => i.key);
      expect(
        listed.filter((key) => key.startsWith('linkdir') || key.includes('link.txt')),
        prefix,
      ).toEqual([]);
    }
    const all: string[] = [];
    for await (const info of storage.listAll()) all.push(info.key);
    expect(all).toEqual(['photos/a.jpg']);
  });

  it('answers exists() false for a path through a link out of the root, and refuses to read it', async () => {
    expect(await storage.exists('linkdir/secret.txt')).toBe(false);
    expect(await storage.exists('linkdir/deeper/also-secret.txt')).toBe(false);
    expect(await storage.exists('photos/link.txt')).toBe(false);
    expect(await failureCode(storage.readBuffer('linkdir/secret.txt'))).toBe('PERMISSION');
    expect(await failureCode(storage.stat('photos/link.txt'))).toBe('PERMISSION');
  });

  it('follows a link that stays inside the root for reads, and lists through it only when asked by its name', async () => {
    expect((await storage.readBuffer('alias/a.jpg')).toString()).toBe('a photo');
    expect(await storage.exists('alias/a.jpg')).toBe(true);
    // A listing from above never descends into a link (no loops, no duplicates)...
    expect((await storage.list('')).items.map((i) => i.key)).toEqual(['photos/a.jpg']);
    // ...but a prefix naming a folder that resolves inside the root lists it under that name.
    expect((await storage.list('alias/')).items.map((i) => i.key)).toEqual(['alias/a.jpg']);
  });
});
