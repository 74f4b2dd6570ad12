/**
 * node:fs as macOS APFS behaves for names (under `root`): a name is found under any Unicode
 * normalisation of it (`Jose\u0301.jpg` opens `José.jpg`) but kept as it was first written, so
 * two spellings can never be two files. Linux file systems keep them apart, so LocalStorage's
 * checks for folding file systems are tested on this.
 */
import * as fs from 'node:fs';
import path from 'node:path';
import type { LocalFileSystem } from '../../src/local/index.js';

export function foldingFs(root: string): LocalFileSystem {
  const base = path.resolve(root);
  /** The path on disk: each segment is the entry whose name equals it, else one that is the same once NFC-normalised. */
  const onDisk = (given: fs.PathLike): string => {
    const p = path.resolve(String(given));
    if (p !== base && !p.startsWith(base + path.sep)) return p;
    let dir = base;
    for (const segment of p
      .slice(base.length + 1)
      .split(path.sep)
      .filter(Boolean)) {
      let names: string[] = [];
      try {
        names = fs.readdirSync(dir);
      } catch {
        // not a folder (yet): the rest is taken as given
      }
      const found = names.includes(segment) ? segment : names.find((n) => n.normalize('NFC') === segment.normalize('NFC'));
      dir = path.join(dir, found ?? segment);
    }
    return dir;
  };
  const p = fs.promises;
  return {
    createReadStream: ((file: fs.PathLike, options?: unknown) => fs.createReadStream(onDisk(file), options as never)) as typeof fs.createReadStream,
    createWriteStream: ((file: fs.PathLike, options?: unknown) => fs.createWriteStream(onDisk(file), options as never)) as typeof fs.createWriteStream,
    promises: {
      // Like realpath(3) where it does not correct spellings: the path as asked, once it exists.
      realpath: (async (file: fs.PathLike) => {
        const real = await p.realpath(onDisk(file));
        return real === onDisk(file) ? path.resolve(String(file)) : real;
      }) as typeof p.realpath,
      mkdir: ((dir: fs.PathLike, options?: fs.MakeDirectoryOptions) => p.mkdir(onDisk(dir), options)) as typeof p.mkdir,
      stat: ((file: fs.PathLike, options?: fs.StatOptions) => p.stat(onDisk(file), options)) as typeof p.stat,
      lstat: ((file: fs.PathLike, options?: fs.StatOptions) => p.lstat(onDisk(file), options)) as typeof p.lstat,
      rename: (from: fs.PathLike, to: fs.PathLike) => p.rename(onDisk(from), onDisk(to)),
      link: (from: fs.PathLike, to: fs.PathLike) => p.link(onDisk(from), onDisk(to)),
      unlink: (file: fs.PathLike) => p.unlink(onDisk(file)),
      rmdir: (dir: fs.PathLike) => p.rmdir(onDisk(dir)),
      readdir: ((dir: fs.PathLike, options?: unknown) => p.readdir(onDisk(dir), options as never)) as typeof p.readdir,
      open: ((file: fs.PathLike, flags?: string | number, mode?: fs.Mode) => p.open(onDisk(file), flags, mode)) as typeof p.open,
      copyFile: (from: fs.PathLike, to: fs.PathLike, mode?: number) => p.copyFile(onDisk(from), onDisk(to), mode),
      writeFile: ((file: fs.PathLike, data: string | NodeJS.ArrayBufferView, options?: fs.WriteFileOptions) =>
        p.writeFile(onDisk(file), data, options as never)) as typeof p.writeFile,
    },
  };
}
