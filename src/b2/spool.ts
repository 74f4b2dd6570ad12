import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';

/**
 * An upload body whose length and SHA-1s are known, so it can be sent (and sent again on a retry)
 * with a Content-Length: in memory when small, else in a temp file. The SHA-1 of the whole body and
 * of every `partSize` slice are computed while the body streams in, so the large-file path needs no
 * second pass over the bytes.
 */
export interface SpooledBody {
  readonly size: number;
  readonly sha1: string;
  /** SHA-1 of each `partSize` slice, in order. */
  readonly partSha1s: readonly string[];
  readonly partSize: number;
  /** The whole body, when it stayed in memory. */
  readonly buffer: Buffer | undefined;
  /** Bytes `start` to `end` (exclusive) as a fresh stream or buffer slice; callable many times. */
  slice(start: number, end: number): Buffer | Readable;
  /** Removes the temp file, if any. */
  dispose(): Promise<void>;
}

/** Hashes a byte stream both whole and in `partSize` slices. */
class PartHasher {
  readonly whole = createHash('sha1');
  readonly parts: string[] = [];
  private current: Hash = createHash('sha1');
  private inPart = 0;

  constructor(private readonly partSize: number) {}

  update(chunk: Buffer): void {
    this.whole.update(chunk);
    let offset = 0;
    while (offset < chunk.length) {
      const take = Math.min(this.partSize - this.inPart, chunk.length - offset);
      this.current.update(chunk.subarray(offset, offset + take));
      this.inPart += take;
      offset += take;
      if (this.inPart === this.partSize) {
        this.parts.push(this.current.digest('hex'));
        this.current = createHash('sha1');
        this.inPart = 0;
      }
    }
  }

  finish(): { sha1: string; partSha1s: string[] } {
    if (this.inPart > 0) this.parts.push(this.current.digest('hex'));
    return { sha1: this.whole.digest('hex'), partSha1s: this.parts };
  }
}

/**
 * Reads `stream` to its end: kept in memory up to `spoolThreshold` bytes, past that written to a
 * temp file (bounded memory whatever the size). On a stream error the temp file is removed and the
 * error rethrown.
 */
export async function spoolBody(stream: Readable, options: { spoolThreshold: number; partSize: number; tempDir?: string }): Promise<SpooledBody> {
  const hasher = new PartHasher(options.partSize);
  let chunks: Buffer[] = [];
  let size = 0;
  let file: FileHandle | undefined;
  let filePath: string | undefined;
  try {
    for await (const raw of stream) {
      const chunk = raw as Buffer;
      hasher.update(chunk);
      size += chunk.length;
      if (file) {
        await file.write(chunk);
        continue;
      }
      chunks.push(chunk);
      if (size > options.spoolThreshold) {
        filePath = path.join(options.tempDir ?? os.tmpdir(), `media-storage-b2-${process.pid}-${randomBytes(8).toString('hex')}.part`);
        file = await open(filePath, 'wx', 0o600);
        for (const c of chunks) await file.write(c);
        chunks = [];
      }
    }
    await file?.close();
    file = undefined;
  } catch (err) {
    await file?.close().catch(() => undefined);
    if (filePath) await rm(filePath, { force: true });
    throw err;
  }
  const { sha1, partSha1s } = hasher.finish();
  const buffer = filePath ? undefined : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  const spooledPath = filePath;
  return {
    size,
    sha1,
    partSha1s,
    partSize: options.partSize,
    buffer,
    slice(start: number, end: number): Buffer | Readable {
      if (buffer) return buffer.subarray(start, end);
      if (end <= start) return Buffer.alloc(0);
      return createReadStream(spooledPath!, { start, end: end - 1 });
    },
    async dispose(): Promise<void> {
      if (spooledPath) await rm(spooledPath, { force: true });
    },
  };
}
