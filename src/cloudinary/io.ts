/** Reading a body ahead before an upload (to sniff it, and to tell a small body from a large one). */
import { Readable } from 'node:stream';

/** Reads a body ahead as far as needed (to sniff it, or to tell a small body from a large one), then hands out all of it as a stream. */
export class BodyReader {
  private chunks: Buffer[] = [];
  bytes = 0;
  ended = false;
  private readonly iterator: AsyncIterator<unknown>;
  private handedOut = false;

  constructor(stream: Readable) {
    this.iterator = stream[Symbol.asyncIterator]();
  }

  async fill(atLeast: number): Promise<void> {
    while (!this.ended && this.bytes < atLeast) {
      const next = await this.iterator.next();
      if (next.done) this.ended = true;
      else {
        this.chunks.push(next.value as Buffer);
        this.bytes += (next.value as Buffer).length;
      }
    }
  }

  /** The first `length` bytes read (fewer if the body is shorter), copying only the chunks they span. */
  head(length: number): Buffer {
    const spanned: Buffer[] = [];
    let bytes = 0;
    for (const chunk of this.chunks) {
      if (bytes >= length) break;
      spanned.push(chunk);
      bytes += chunk.length;
    }
    const first = spanned.length === 1 ? spanned[0]! : Buffer.concat(spanned);
    return first.subarray(0, length);
  }

  /** The whole body; only once it has ended. */
  whole(): Buffer {
    if (this.chunks.length !== 1) this.chunks = [Buffer.concat(this.chunks, this.bytes)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  /** What was read ahead, then the rest. */
  stream(): Readable {
    this.handedOut = true;
    const ahead = this.chunks;
    this.chunks = [];
    const iterator = this.iterator;
    const ended = this.ended;
    async function* all(): AsyncGenerator<Buffer> {
      // Let each chunk read ahead go as it is handed out (as core's PeekableBody does).
      while (ahead.length > 0) yield ahead.shift()!;
      if (ended) return;
      for (;;) {
        const next = await iterator.next();
        if (next.done) return;
        yield next.value as Buffer;
      }
    }
    return Readable.from(all(), { objectMode: false });
  }

  /** Releases the body when it was not handed out (a refused save). */
  async close(): Promise<void> {
    if (!this.handedOut && !this.ended) await this.iterator.return?.().catch(() => undefined);
  }
}
