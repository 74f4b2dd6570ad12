import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { createFsFromVolume, Volume } from 'memfs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { resetEphemeralWarning } from '../../src/core/ephemeral.js';
import { LocalStorage, type LocalFileSystem } from '../../src/local/index.js';
import { tempDir } from '../support/tmp.js';

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'resolved',
    (err: { code?: string }) => err.code ?? String(err),
  );
}

async function allFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(path.relative(dir, path.join(entry.parentPath, entry.name)));
  }
  return out.sort();
}

describe('LocalStorage on a real disk', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let root: string;
  let outside: string;
  beforeEach(async () => {
    tmp = await tempDir('local');
    root = path.join(tmp.dir, 'media');
    outside = path.join(tmp.dir, 'outside');
    await mkdir(root);
    await mkdir(outside);
    await writeFile(path.join(outside, 'secret.txt'), 'top secret');
  });
  afterEach(() => tmp.remove());

  it('never follows a symbolic link out of the root, for any operation', async () => {
    await symlink(outside, path.join(root, 'evil'));
    await symlink(path.join(outside, 'secret.txt'), path.join(root, 'link.txt'));
    const s = new LocalStorage({ root, warnOnEphemeralDisk: false });
    expect(await codeOf(s.save('evil/planted.txt', 'x'))).toBe('PERMISSION');
    expect(await codeOf(s.readBuffer('evil/secret.txt'))).toBe('PERMISSION');
    expect(await codeOf(s.readBuffer('link.txt'))).toBe('PERMISSION');
    expect(await codeOf(s.stat('link.txt'))).toBe('PERMISSION');
    expect(await codeOf(s.delete('evil/secret.txt'))).toBe('PERMISSION');
    expect(await codeOf(s.copy('link.txt', 'copied.txt'))).toBe('PERMISSION');
    expect((await s.list('')).items.map((i) => i.key)).toEqual([]);
    expect(await allFiles(outside)).toEqual(['secret.txt']);
  });

  it('leaves no temp file behind after a failed or aborted save', async () => {
    const s = new LocalStorage({ root, warnOnEphemeralDisk: false });
    const controller = new AbortController();
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(1024));
        controller.abort();
      },
    });
    expect(await codeOf(s.save('a/b.bin', failing, { signal: controller.signal }))).toBe('ABORTED');
    expect(await codeOf(s.save('a/c.bin', Readable.from([Buffer.alloc(5000)]), { maxSize: 100 }))).toBe('TOO_LARGE');
    expect(await allFiles(root)).toEqual([]);
    expect(await readdir(path.join(root, '.media-storage-tmp'))).toEqual([]);
  });

  it('writes files with the exact bytes at the expected path, and removes emptied folders on delete', async () => {
    const s = new LocalStorage({ root, warnOnEphemeralDisk: false });
    await s.save('profile_images/abc.jpg', Buffer.from([0xff, 0xd8, 0xff, 0x00]));
    expect(await allFiles(root)).toEqual([path.join('profile_images', 'abc.jpg')]);
    await s.delete('profile_images/abc.jpg');
    // Only the (empty) temp folder stays.
    expect(await readdir(root)).toEqual(['.media-storage-tmp']);
    expect(await readdir(path.join(root, '.media-storage-tmp'))).toEqual([]);
  });

  it('reports a folder at the key as INVALID_KEY, not as an overwrite', async () => {
    const s = new LocalStorage({ root, warnOnEphemeralDisk: false });
    await s.save('folder/file.txt', 'x');
    expect(await codeOf(s.save('folder', 'y'))).toBe('INVALID_KEY');
    expect(await codeOf(s.save('folder/file.txt/child.txt', 'y'))).toBe('INVALID_KEY');
    expect(await s.exists('folder')).toBe(false);
  });

  it('needs a secret for private storage and for signed URLs', async () => {
    expect(() => new LocalStorage({ root, visibility: 'private' })).toThrowError(expect.objectContaining({ code: 'CONFIG' }));
    const s = new LocalStorage({ root, warnOnEphemeralDisk: false });
    expect(await codeOf(s.url('a.jpg', { expiresIn: 60 }))).toBe('CONFIG');
    expect(await s.url('a b.jpg')).toBe('/media/a%20b.jpg');
  });
});

describe('LocalStorage error paths with an injected file system', () => {
  function memoryFs(): { fs: LocalFileSystem; vol: InstanceType<typeof Volume> } {
    const vol = new Volume();
    vol.mkdirSync('/media', { recursive: true });
    return { fs: createFsFromVolume(vol) as unknown as LocalFileSystem, vol };
  }
  const errno = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: simulated`), { code });

  it('disk full while writing gives UNAVAILABLE and leaves neither the key nor a temp file', async () => {
    const { fs, vol } = memoryFs();
    let written = 0;
    const full: LocalFileSystem = {
      ...fs,
      createWriteStream: ((file: string, opts: object) => {
        const inner = fs.createWriteStream(file, opts as never);
        return new Writable({
          write(chunk: Buffer, _enc, cb) {
            written += chunk.length;
            if (written > 64 * 1024) return cb(errno('ENOSPC'));
            inner.write(chunk, cb);
          },
          final(cb) {
            inner.end(cb);
          },
          destroy(err, cb) {
            inner.destroy();
            cb(err);
          },
        });
      }) as LocalFileSystem['createWriteStream'],
    };
    // Bytes in memory are written in one call: that path meets a full disk too.
    full.promises = {
      ...fs.promises,
      open: (async (...args: Parameters<typeof fs.promises.open>) => {
        const handle = await fs.promises.open(...args);
        return Object.assign(Object.create(handle) as typeof handle, {
          writeFile: async (data: Buffer) => {
            await handle.writeFile(data.subarray(0, 64 * 1024));
            throw errno('ENOSPC');
          },
          close: () => handle.close(),
        });
      }) as unknown as LocalFileSystem['promises']['open'],
    };
    const s = new LocalStorage({ root: '/media', fs: full, warnOnEphemeralDisk: false });
    for (const body of [Readable.from([Buffer.alloc(256 * 1024)]), Buffer.alloc(256 * 1024)]) {
      const err = await s.save('big.bin', body).catch((e: unknown) => e as { code: string; message: string });
      expect(err).toMatchObject({ code: 'UNAVAILABLE', backend: 'local', key: 'big.bin' });
      expect(vol.readdirSync('/media')).toEqual(['.media-storage-tmp']);
      expect(vol.readdirSync('/media/.media-storage-tmp')).toEqual([]);
    }
    expect(written).toBeGreaterThan(64 * 1024);
  });

  it('permission denied on the folder gives PERMISSION', async () => {
    const { fs } = memoryFs();
    const denied: LocalFileSystem = {
      ...fs,
      promises: {
        ...fs.promises,
        mkdir: (async () => {
          throw errno('EACCES');
        }) as LocalFileSystem['promises']['mkdir'],
      },
    };
    const s = new LocalStorage({ root: '/media', fs: denied, warnOnEphemeralDisk: false });
    expect(await codeOf(s.save('profile_images/a.jpg', 'x'))).toBe('PERMISSION');
  });

  it('a file that vanishes between stat and open gives NOT_FOUND from the stream (real disk)', async () => {
    // memfs's legacy ReadStream does not report open errors like node:fs does, so this one uses the real disk.
    const tmp = await tempDir('vanish');
    const realFs = await import('node:fs');
    const vanishing: LocalFileSystem = {
      ...realFs,
      createReadStream: ((file: string, opts: object) => {
        realFs.unlinkSync(file);
        return realFs.createReadStream(file, opts as never);
      }) as LocalFileSystem['createReadStream'],
    };
    const s = new LocalStorage({ root: tmp.dir, fs: vanishing, warnOnEphemeralDisk: false });
    await s.save('gone.txt', 'here for now');
    const stream = await s.read('gone.txt');
    // Let the open fail before anyone listens: it must not crash the process.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(
      await codeOf(
        (async () => {
          for await (const _ of stream) void _;
        })(),
      ),
    ).toBe('NOT_FOUND');
    await tmp.remove();
  });

  it('a read error mid-stream becomes a typed error on the stream', async () => {
    const { fs } = memoryFs();
    const flaky: LocalFileSystem = {
      ...fs,
      createReadStream: (() =>
        new Readable({
          read() {
            this.push(Buffer.from('partial'));
            this.destroy(errno('EIO'));
          },
        })) as unknown as LocalFileSystem['createReadStream'],
    };
    const s = new LocalStorage({ root: '/media', fs: flaky, warnOnEphemeralDisk: false });
    await s.save('flaky.txt', 'whatever');
    const err = await (async () => {
      for await (const chunk of await s.read('flaky.txt')) void chunk;
    })().catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'MediaStorageError', code: 'UNAVAILABLE', key: 'flaky.txt' });
  });
});

describe('ephemeral-disk warning', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
    resetEphemeralWarning();
    vi.restoreAllMocks();
  });

  it('warns once in production on Render, and not when silenced or in development', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    resetEphemeralWarning();
    process.env.NODE_ENV = 'development';
    process.env.RENDER = 'true';
    new LocalStorage({ root: '/tmp/x' });
    expect(warn).not.toHaveBeenCalled();
    process.env.NODE_ENV = 'production';
    new LocalStorage({ root: '/tmp/x', warnOnEphemeralDisk: false });
    expect(warn).not.toHaveBeenCalled();
    new LocalStorage({ root: '/tmp/x' });
    new LocalStorage({ root: '/tmp/y' });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/Render.*wiped at every deploy/);
  });

  it('recognises Heroku, Fly and Railway', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    for (const variable of ['DYNO', 'FLY_APP_NAME', 'RAILWAY_ENVIRONMENT']) {
      resetEphemeralWarning();
      process.env = { NODE_ENV: 'production', [variable]: 'x' };
      new LocalStorage({ root: '/tmp/x' });
    }
    expect(warn).toHaveBeenCalledTimes(3);
  });
});
