import { Readable } from 'node:stream';
import { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { MediaStorageError, abortedError, isMediaStorageError } from './errors.js';
import { resolveContentType, SNIFF_BYTES } from './content-type.js';
import { DEFAULT_SERVING_RULE, type ServingRule } from './serving.js';
import type { Body, SaveOptions } from './types.js';

/**
 * A body made ready for a backend: its content type decided, its size when known, and a stream
 * that enforces `maxSize`, rejects an empty body, reports progress and stops on abort. Backends
 * consume `stream()` (once) or `buffer` when the caller handed over bytes already in memory.
 */
export interface PreparedBody {
  /** The type to store and serve: the explicit option, else the bytes', else the extension's, through the serving rule. */
  readonly contentType: string;
  /**
   * The type from the bytes and the key alone, ignoring an explicit option, through the serving
   * rule: what a backend that cannot keep a type (the local disk) serves, and so reports.
   */
  readonly detectedContentType: string;
  /** Length in bytes when known before reading (buffers, strings, Blobs). */
  readonly size: number | undefined;
  /** The whole body, when it was given in memory; the checks have already passed. */
  readonly buffer: Buffer | undefined;
  /**
   * Whether the caller's body can be sent again (bytes, a string, a Blob), so the retry layer may
   * repeat the whole save; otherwise (a stream) only the backend holds its bytes, and retries of
   * its requests are the backend's own.
   */
  readonly replayable: boolean;
  /** The body as a Node stream that errors with a MediaStorageError on a broken limit or abort. Call once. */
  stream(): Readable;
}

function isNodeReadable(body: unknown): body is Readable {
  return (
    body instanceof Readable ||
    (typeof body === 'object' &&
      body !== null &&
      typeof (body as Readable).pipe === 'function' &&
      typeof (body as Readable).on === 'function' &&
      typeof (body as Readable)[Symbol.asyncIterator] === 'function')
  );
}

function isWebStream(body: unknown): body is ReadableStream<Uint8Array> {
  return typeof body === 'object' && body !== null && typeof (body as ReadableStream).getReader === 'function';
}

function isBlob(body: unknown): body is Blob {
  return typeof Blob !== 'undefined' && body instanceof Blob;
}

/** A chunk of a body stream as a Buffer (no copy for bytes); INVALID_INPUT for anything but bytes and strings. */
export function toChunk(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  throw new MediaStorageError('INVALID_INPUT', `A body stream yielded a ${typeof chunk}; only bytes and strings are accepted`);
}

function tooLarge(maxSize: number, key: string): MediaStorageError {
  return new MediaStorageError('TOO_LARGE', `The body of "${key}" is larger than the limit of ${maxSize} bytes`, { key, operation: 'save' });
}

function emptyBody(key: string): MediaStorageError {
  return new MediaStorageError('INVALID_INPUT', `The body of "${key}" is empty; pass allowEmpty: true to store a zero-byte object`, { key, operation: 'save' });
}

function checkKnownSize(size: number, key: string, options: SaveOptions): void {
  if (options.maxSize !== undefined && size > options.maxSize) throw tooLarge(options.maxSize, key);
  if (size === 0 && !options.allowEmpty) throw emptyBody(key);
}

/** Turns any accepted body into a Node stream (kept, to be destroyed on abort). */
function sourceStream(body: Body): Readable {
  if (isNodeReadable(body)) return body;
  if (isBlob(body)) return Readable.fromWeb(body.stream() as unknown as NodeReadableStream<Uint8Array>);
  if (isWebStream(body)) return Readable.fromWeb(body as unknown as NodeReadableStream<Uint8Array>);
  throw new MediaStorageError('INVALID_INPUT', 'Unsupported body type: pass a Buffer, Uint8Array, string, Readable, ReadableStream or Blob');
}

/** A body's bytes as an iterable, without reading them yet (a Buffer or string is one chunk). */
export function bodyChunks(body: Body): AsyncIterable<unknown> | Iterable<unknown> {
  if (typeof body === 'string' || body instanceof Uint8Array) return [body];
  return sourceStream(body);
}

function wrapSourceError(err: unknown, key: string): MediaStorageError {
  if (isMediaStorageError(err)) return err;
  const e = err as { name?: string; message?: string } | undefined;
  if (e?.name === 'AbortError') return abortedError('save', key, undefined, err);
  return new MediaStorageError('INVALID_INPUT', `Reading the body of "${key}" failed: ${e?.message ?? String(err)}`, { key, operation: 'save', cause: err });
}

/**
 * Checks and wraps a body for `save`. Bodies of known length are checked against `maxSize` and
 * emptiness before any I/O; streams are checked as they flow, and the first bytes are read here
 * to sniff the content type, which `serving` (the storage's serving rule) then decides.
 */
export async function prepareBody(body: Body, key: string, options: SaveOptions = {}, serving: ServingRule = DEFAULT_SERVING_RULE): Promise<PreparedBody> {
  if (options.signal?.aborted) throw abortedError('save', key, undefined, options.signal.reason);

  let head: Buffer[] = [];
  let rest: AsyncIterator<unknown> | undefined;
  let source: Readable | undefined;
  let buffer: Buffer | undefined;
  let size: number | undefined;
  let sniffed: Buffer | undefined;

  if (typeof body === 'string' || body instanceof Uint8Array) {
    buffer = toChunk(body);
    size = buffer.length;
    checkKnownSize(size, key, options);
    head = [buffer];
  } else {
    if (isBlob(body)) {
      size = body.size;
      checkKnownSize(size, key, options);
    } else if (body === null || typeof body !== 'object') {
      throw new MediaStorageError('INVALID_INPUT', `Unsupported body type ${body === null ? 'null' : typeof body}`, { key, operation: 'save' });
    }
    source = sourceStream(body);
    // Pull just enough to sniff the type; the bytes are replayed in front of the rest.
    const peek = new PeekableBody(source);
    let ended: boolean;
    try {
      ended = await peek.fill(SNIFF_BYTES);
    } catch (err) {
      await peek.close();
      throw wrapSourceError(err, key);
    }
    if (options.maxSize !== undefined && peek.bytes > options.maxSize) {
      await peek.close();
      throw tooLarge(options.maxSize, key);
    }
    if (ended) {
      // The stream ended inside the sniff window: the whole body is in memory now.
      buffer = peek.whole();
      size = buffer.length;
      checkKnownSize(size, key, options);
      head = [buffer];
    } else {
      sniffed = peek.head(SNIFF_BYTES);
      rest = peek.chunks(); // the bytes read ahead, then the rest
    }
  }

  const sniffHead = sniffed ?? (head.length === 1 ? head[0]! : Buffer.concat(head)).subarray(0, SNIFF_BYTES);
  const detectedContentType = serving.contentTypeFor(resolveContentType(key, sniffHead), sniffHead);
  const contentType = options.contentType ? serving.contentTypeFor(options.contentType, sniffHead) : detectedContentType;

  let used = false;
  return {
    contentType,
    detectedContentType,
    size,
    buffer,
    replayable: typeof body === 'string' || body instanceof Uint8Array || isBlob(body),
    stream(): Readable {
      if (used) throw new MediaStorageError('INVALID_INPUT', `The body of "${key}" was already consumed`, { key });
      used = true;
      return guardedStream(head, rest, source, key, size, options);
    },
  };
}

function guardedStream(
  head: Buffer[],
  rest: AsyncIterator<unknown> | undefined,
  source: Readable | undefined,
  key: string,
  total: number | undefined,
  options: SaveOptions,
): Readable {
  const { maxSize, onProgress, signal, allowEmpty } = options;
  let loaded = 0;
  async function* generate(): AsyncGenerator<Buffer> {
    const check = (chunk: Buffer): Buffer => {
      if (signal?.aborted) throw abortedError('save', key, undefined, signal.reason);
      loaded += chunk.length;
      if (maxSize !== undefined && loaded > maxSize) throw tooLarge(maxSize, key);
      onProgress?.({ loaded, total });
      return chunk;
    };
    for (const chunk of head) if (chunk.length > 0) yield check(chunk);
    if (rest) {
      try {
        for (;;) {
          const next = await rest.next();
          if (next.done) break;
          const chunk = toChunk(next.value);
          if (chunk.length > 0) yield check(chunk);
        }
      } catch (err) {
        throw wrapSourceError(err, key);
      } finally {
        await rest.return?.().catch(() => undefined);
      }
    }
    if (loaded === 0 && !allowEmpty) throw emptyBody(key);
  }
  const stream = Readable.from(generate(), { objectMode: false, highWaterMark: 64 * 1024 });
  if (signal) {
    const onAbort = (): void => {
      const error = abortedError('save', key, undefined, signal.reason);
      // A source that stalls would hold the generator in `rest.next()` forever, and with it the
      // destroy of `stream` (which waits for the generator to return): end the source first.
      if (rest) source?.destroy(error);
      stream.destroy(error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    stream.once('close', () => signal.removeEventListener('abort', onAbort));
  }
  return stream;
}

/** Reads a stream to its end into one Buffer. */
export async function streamToBuffer(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(toChunk(chunk));
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/**
 * Peek-and-replay: reads a stream ahead as far as needed (to sniff its type, or to tell a body
 * that fits one request from one that needs parts), then hands out all of it, the bytes read
 * ahead first, as if nothing had been read. The one implementation for every backend.
 */
export class PeekableBody {
  private ahead: Buffer[] = [];
  /** Bytes read ahead so far. */
  bytes = 0;
  /** Whether the stream has ended (everything is in {@link whole}). */
  ended = false;
  private readonly iterator: AsyncIterator<unknown>;
  private handedOut = false;

  constructor(source: AsyncIterable<unknown>) {
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Reads until at least `atLeast` bytes are ahead or the stream ended; resolves with {@link ended}. */
  async fill(atLeast: number): Promise<boolean> {
    while (!this.ended && this.bytes < atLeast) {
      const next = await this.iterator.next();
      if (next.done) this.ended = true;
      else {
        const chunk = toChunk(next.value);
        this.ahead.push(chunk);
        this.bytes += chunk.length;
      }
    }
    return this.ended;
  }

  /** The first `length` bytes read ahead (fewer if there are fewer), copying only the chunks they span. */
  head(length: number): Buffer {
    const spanned: Buffer[] = [];
    let bytes = 0;
    for (const chunk of this.ahead) {
      if (bytes >= length) break;
      spanned.push(chunk);
      bytes += chunk.length;
    }
    const first = spanned.length === 1 ? spanned[0]! : Buffer.concat(spanned);
    return first.subarray(0, length);
  }

  /** Everything read ahead as one Buffer (the whole body once {@link ended}). */
  whole(): Buffer {
    if (this.ahead.length !== 1) this.ahead = [Buffer.concat(this.ahead, this.bytes)];
    return this.ahead[0]!;
  }

  /** The bytes read ahead, then the rest of the stream. Once. */
  async *chunks(): AsyncGenerator<Buffer> {
    if (this.handedOut) throw new MediaStorageError('INVALID_INPUT', 'The body was already handed out');
    this.handedOut = true;
    const ahead = this.ahead;
    this.ahead = [];
    // Each chunk read ahead is let go once handed out: `yield* ahead` would keep all of them (a
    // whole 20 MiB Cloudinary chunk, in a heap snapshot) until the upload ends.
    while (ahead.length > 0) yield ahead.shift()!;
    if (this.ended) return;
    try {
      for (;;) {
        const next = await this.iterator.next();
        if (next.done) return;
        yield toChunk(next.value);
      }
    } finally {
      await this.iterator.return?.().catch(() => undefined);
    }
  }

  /** {@link chunks} as a Node stream. */
  stream(): Readable {
    return Readable.from(this.chunks(), { objectMode: false });
  }

  /** Stops reading the source when the body was not handed out (a refused save). */
  async close(): Promise<void> {
    if (!this.handedOut && !this.ended) await this.iterator.return?.().catch(() => undefined);
  }
}
