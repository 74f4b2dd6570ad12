import * as nodeFs from 'node:fs';

/**
 * The subset of `node:fs` LocalStorage uses; pass memfs's `fs` (or a wrapper) in tests. The
 * callback functions are optional: with all of them (node:fs has them) the handler serves a file
 * in one lookup and lookups resolve paths without promise machinery; without them it uses the
 * promise API.
 */
export type LocalFileSystem = Pick<typeof nodeFs, 'createReadStream' | 'createWriteStream'> & {
  promises: Pick<
    typeof nodeFs.promises,
    'realpath' | 'mkdir' | 'stat' | 'lstat' | 'rename' | 'link' | 'unlink' | 'rmdir' | 'readdir' | 'open' | 'copyFile' | 'writeFile'
  >;
} & Partial<CallbackFileSystem>;

/** The callback half of `node:fs` the serving path uses: a promise per call and no FileHandle, half the CPU of `fs.promises`. */
export type CallbackFileSystem = Pick<typeof nodeFs, 'open' | 'read' | 'close' | 'stat' | 'lstat' | 'fstat' | 'realpath'>;

/**
 * Bodies up to this size are served from one read into memory (no stream, no file left open while
 * the client downloads); larger ones stream from the file, 64 KiB at a time.
 */
export const WHOLE_READ_BYTES = 64 * 1024;
/** Non-blocking, so that a FIFO swapped in for a file cannot hang a thread-pool thread on open. */
export const OPEN_FLAGS = nodeFs.constants.O_RDONLY | (nodeFs.constants.O_NONBLOCK ?? 0);

/** Up to `length` bytes from `position` (fewer at the end of the file), in one open, read and close. */
export function readAt(fs: CallbackFileSystem, file: string, length: number, position: number): Promise<Buffer> {
  return readOpened(fs, file, length, position) as Promise<Buffer>;
}

/**
 * The whole of a regular file in one open, one fstat and (usually) one read; `undefined` when it
 * is not a regular file. (A FileHandle's readFile costs a thread-pool round trip per 512 KiB.)
 */
export function readWhole(fs: CallbackFileSystem, file: string): Promise<Buffer | undefined> {
  return readOpened(fs, file, 'whole', 0);
}

function readOpened(fs: CallbackFileSystem, file: string, length: number | 'whole', position: number): Promise<Buffer | undefined> {
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
