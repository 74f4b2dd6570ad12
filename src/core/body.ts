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
  /** The body as a Node stream that errors with a MediaStorageError on a broken limit or abort. Call once. */
  stream(): Readable;
}

function isNodeReadable(body: unknown): body is Readable {
  return body instanceof Readable || (typeof body === 'object' && body !== null && typeof (body as Readable).pipe === 'function' && typeof (body as Readable).on === 'function' && typeof (body as Readable)[Symbol.asyncIterator] === 'function');
}

function isWebStream(body: unknown): body is ReadableStream<Uint8Array> {
  return typeof body === 'object' && body !== null && typeof (body as ReadableStream).getReader === 'function';
}

function isBlob(body: unknown): body is Blob {
  return typeof Blob !== 'undefined' && body instanceof Blob;
}

function toChunk(chunk: unknown): Buffer {
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
    rest = source[Symbol.asyncIterator]();
    // Pull just enough to sniff the type; the bytes are replayed in front of the rest.
    let headBytes = 0;
    try {
      while (headBytes < SNIFF_BYTES) {
        const next = await rest.next();
        if (next.done) {
          rest = undefined;
          break;
        }
        const chunk = toChunk(next.value);
        head.push(chunk);
        headBytes += chunk.length;
        if (options.maxSize !== undefined && headBytes > options.maxSize) throw tooLarge(options.maxSize, key);
      }
    } catch (err) {
      await rest?.return?.().catch(() => undefined);
      throw wrapSourceError(err, key);
    }
    if (!rest) {
      // The stream ended inside the sniff window: the whole body is in memory now.
      buffer = head.length === 1 ? head[0]! : Buffer.concat(head);
      size = buffer.length;
      checkKnownSize(size, key, options);
      head = [buffer];
    }
  }

  const sniffHead = (head.length === 1 ? head[0]! : Buffer.concat(head)).subarray(0, SNIFF_BYTES);
  const detectedContentType = serving.contentTypeFor(resolveContentType(key, sniffHead), sniffHead);
  const contentType = options.contentType ? serving.contentTypeFor(options.contentType, sniffHead) : detectedContentType;

  let used = false;
  return {
    contentType,
    detectedContentType,
    size,
    buffer,
    stream(): Readable {
      if (used) throw new MediaStorageError('INVALID_INPUT', `The body of "${key}" was already consumed`, { key });
      used = true;
      return guardedStream(head, rest, source, key, size, options);
    },
  };
}

function guardedStream(head: Buffer[], rest: AsyncIterator<unknown> | undefined, source: Readable | undefined, key: string, total: number | undefined, options: SaveOptions): Readable {
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
