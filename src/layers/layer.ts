import { StorageWrapper } from '../core/wrapper.js';
import { pipeline, Transform, type Readable } from 'node:stream';
import { DEFAULT_LIST_LIMIT, pageThrough } from '../core/base.js';
import { abortedError } from '../core/errors.js';
import { presignUploadOf } from '../core/direct-upload.js';
import type {
  Body,
  CopyOptions,
  DirectUpload,
  DirectUploadOptions,
  ListAllOptions,
  ListOptions,
  ListPage,
  MediaStorage,
  ObjectInfo,
  ReadOptions,
  SaveOptions,
  UrlOptions,
} from '../core/types.js';

/** The operations of {@link MediaStorage} a layer sees (`listAll` is paged through `list`). */
export type StorageOperation = 'save' | 'url' | 'delete' | 'exists' | 'read' | 'readBuffer' | 'stat' | 'list' | 'copy' | 'presignUpload';

/** Every {@link StorageOperation} name, for checking one given at run time (as `withFaults` does with its rules). */
export const STORAGE_OPERATIONS: readonly StorageOperation[] = [
  'save',
  'url',
  'delete',
  'exists',
  'read',
  'readBuffer',
  'stat',
  'list',
  'copy',
  'presignUpload',
];

/** What a layer knows about the call it intercepts. */
export interface OperationCall {
  operation: StorageOperation;
  /** The key as the caller gave it (for `copy`, the source; for `list`, the prefix). */
  key?: string;
  /** The target key of a `copy`. */
  target?: string;
  /** The caller's AbortSignal (save, read, readBuffer), if any. */
  signal?: AbortSignal;
  /**
   * Whether running the call again repeats the same request. False only for a `save` whose body
   * is a stream: its bytes are consumed by the first attempt.
   */
  replayable: boolean;
  /** The `ifExists` of a `save` or `copy`: with "fail" or "rename", running it twice is not running it once. */
  ifExists?: SaveOptions['ifExists'];
}

/**
 * Runs the call on the layer below. `signal` replaces the caller's signal for this attempt (a
 * timeout layer passes one that also fires on its deadline); omit it to keep the caller's.
 */
export type NextCall<T> = (signal?: AbortSignal) => Promise<T>;

/** Bodies that can be sent again: bytes in memory and Blobs (whose `stream()` can be called again). */
export function isReplayableBody(body: Body): boolean {
  return typeof body === 'string' || body instanceof Uint8Array || (typeof Blob !== 'undefined' && body instanceof Blob);
}

/**
 * The base of every layer: a {@link MediaStorage} that hands each call to the storage it wraps
 * through one method, {@link StorageLayer.intercept}. A layer overrides `intercept` (and nothing
 * else, as a rule), in the manner of Apache OpenDAL's layers; layers stack, the outermost
 * intercepting first. `listAll` pages through this layer's own `list`, so every page is
 * intercepted.
 */
export class StorageLayer extends StorageWrapper {
  constructor(inner: MediaStorage) {
    super(inner);
  }

  /** Runs `next` for `call`; the default just runs it. */
  protected intercept<T>(call: OperationCall, next: NextCall<T>): Promise<T> {
    void call;
    return next();
  }

  override save(key: string, body: Body, options: SaveOptions = {}): Promise<ObjectInfo> {
    return this.intercept({ operation: 'save', key, signal: options.signal, replayable: isReplayableBody(body), ifExists: options.ifExists }, (signal) =>
      this.inner.save(key, body, withSignal(options, signal)),
    );
  }

  override url(key: string, options: UrlOptions = {}): Promise<string> {
    return this.intercept({ operation: 'url', key, replayable: true }, () => this.inner.url(key, options));
  }

  override delete(key: string): Promise<void> {
    return this.intercept({ operation: 'delete', key, replayable: true }, () => this.inner.delete(key));
  }

  override exists(key: string): Promise<boolean> {
    return this.intercept({ operation: 'exists', key, replayable: true }, () => this.inner.exists(key));
  }

  override read(key: string, options: ReadOptions = {}): Promise<Readable> {
    return this.intercept({ operation: 'read', key, signal: options.signal, replayable: true }, (signal) => this.inner.read(key, withSignal(options, signal)));
  }

  override readBuffer(key: string, options: ReadOptions = {}): Promise<Buffer> {
    return this.intercept({ operation: 'readBuffer', key, signal: options.signal, replayable: true }, (signal) =>
      this.inner.readBuffer(key, withSignal(options, signal)),
    );
  }

  override stat(key: string): Promise<ObjectInfo> {
    return this.intercept({ operation: 'stat', key, replayable: true }, () => this.inner.stat(key));
  }

  override list(prefix = '', options: ListOptions = {}): Promise<ListPage> {
    return this.intercept({ operation: 'list', key: prefix, replayable: true }, () => this.inner.list(prefix, options));
  }

  override async *listAll(prefix = '', options: ListAllOptions = {}): AsyncGenerator<ObjectInfo> {
    yield* pageThrough((cursor) => this.list(prefix, { cursor, limit: options.pageSize ?? DEFAULT_LIST_LIMIT }), options.onSkipped);
  }

  override copy(from: string, to: string, options: CopyOptions = {}): Promise<ObjectInfo> {
    return this.intercept({ operation: 'copy', key: from, target: to, replayable: true, ifExists: options.ifExists }, () => this.inner.copy(from, to, options));
  }

  override presignUpload(key: string, options: DirectUploadOptions = {}): Promise<DirectUpload> {
    return this.intercept({ operation: 'presignUpload', key, replayable: true }, () => presignUploadOf(this.inner, key, options));
  }
}

function withSignal<O extends { signal?: AbortSignal }>(options: O, signal: AbortSignal | undefined): O {
  return signal === undefined || signal === options.signal ? options : { ...options, signal };
}

/** Waits `ms`; rejects with ABORTED as soon as `signal` fires. */
export function abortableSleep(ms: number, signal: AbortSignal | undefined, call: OperationCall): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortedError(call.operation, call.key, undefined, signal.reason));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortedError(call.operation, call.key, undefined, signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Passes a read stream through a byte counter; `onEnd` is called once, when the consumer has
 * read it to the end, or when it fails or is destroyed (with the error).
 */
export function watchStream(stream: Readable, onEnd: (bytes: number, error: unknown) => void): Readable {
  let bytes = 0;
  let done = false;
  const finish = (error: unknown): void => {
    if (done) return;
    done = true;
    onEnd(bytes, error);
  };
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  // pipeline wires destruction both ways; its callback fires when the counter is written, not
  // read, so the end is taken from the counter's own events.
  pipeline(stream, counter, () => undefined);
  counter.once('end', () => finish(undefined));
  counter.once('error', (err) => finish(err));
  counter.once('close', () => finish(counter.readableEnded ? undefined : (counter.errored ?? new Error('the read stream was destroyed before its end'))));
  return counter;
}
