import { abortedError, MediaStorageError } from '../core/errors.js';
import type { MediaStorage } from '../core/types.js';
import { StorageLayer, watchStream, type NextCall, type OperationCall } from './layer.js';

interface Waiter {
  grant: () => void;
}

/** A counting semaphore whose waiters can give up through an AbortSignal. */
export class Semaphore {
  private active = 0;
  private readonly queue: Waiter[] = [];

  constructor(private readonly limit: number) {}

  /** Resolves with a release function once a permit is free. */
  acquire(call: OperationCall): Promise<() => void> {
    const { signal } = call;
    if (signal?.aborted) return Promise.reject(abortedError(call.operation, call.key, undefined, signal.reason));
    if (this.active < this.limit) {
      this.active++;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(this.releaser());
        },
      };
      const onAbort = (): void => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        reject(abortedError(call.operation, call.key, undefined, signal?.reason));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      // The permit passes straight to the next waiter, so `active` stays the same.
      if (next) next.grant();
      else this.active--;
    };
  }
}

/** Options of {@link withConcurrencyLimit}. */
export interface ConcurrencyLimitOptions {
  /** Operations in flight at once; further calls wait in order. */
  limit: number;
}

class ConcurrencyLimitLayer extends StorageLayer {
  private readonly semaphore: Semaphore;

  constructor(inner: MediaStorage, options: ConcurrencyLimitOptions) {
    super(inner);
    if (!Number.isInteger(options.limit) || options.limit < 1) {
      throw new MediaStorageError('CONFIG', 'withConcurrencyLimit: limit must be a whole number of at least 1');
    }
    this.semaphore = new Semaphore(options.limit);
  }

  protected override async intercept<T>(call: OperationCall, next: NextCall<T>): Promise<T> {
    const release = await this.semaphore.acquire(call);
    let result: T;
    try {
      result = await next();
    } catch (err) {
      release();
      throw err;
    }
    // A read holds its permit (its connection) until the stream is consumed or destroyed.
    if (call.operation === 'read') return watchStream(result as never, () => release()) as T;
    release();
    return result;
  }
}

/**
 * Lets at most `limit` operations run at once (the rest wait, first come first served, and give
 * up with ABORTED when their signal fires). A `read` counts until its stream ends or is destroyed.
 */
export function withConcurrencyLimit(storage: MediaStorage, options: ConcurrencyLimitOptions): MediaStorage {
  return new ConcurrencyLimitLayer(storage, options);
}
