import { MediaStorageError } from '../core/errors.js';
import type { MediaStorage } from '../core/types.js';
import { StorageLayer, type NextCall, type OperationCall, type StorageOperation } from './layer.js';

/** Options of {@link withTimeout}: the deadline of every operation, and of particular ones. */
export interface TimeoutOptions {
  /** Deadline of every operation, in ms. */
  ms: number;
  /** Deadlines per operation that replace `ms` (e.g. a longer one for `save`). */
  operations?: Partial<Record<StorageOperation, number>>;
}

class TimeoutLayer extends StorageLayer {
  constructor(
    inner: MediaStorage,
    private readonly options: TimeoutOptions,
  ) {
    super(inner);
    for (const ms of [options.ms, ...Object.values(options.operations ?? {})]) {
      if (!(typeof ms === 'number' && ms > 0 && Number.isFinite(ms))) {
        throw new MediaStorageError('CONFIG', 'withTimeout: every deadline must be a positive number of milliseconds');
      }
    }
  }

  protected override intercept<T>(call: OperationCall, next: NextCall<T>): Promise<T> {
    const ms = this.options.operations?.[call.operation] ?? this.options.ms;
    const deadline = new AbortController();
    const signal = call.signal ? AbortSignal.any([call.signal, deadline.signal]) : deadline.signal;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        const error = new MediaStorageError(
          'UNAVAILABLE',
          `${this.name}: ${call.operation}${call.key === undefined ? '' : ` "${call.key}"`} timed out after ${ms} ms`,
          {
            backend: this.name,
            key: call.key,
            operation: call.operation,
          },
        );
        // Save and read stop (nothing partial stays visible); other calls finish unobserved.
        deadline.abort(error);
        reject(error);
      }, ms);
      let pending: Promise<T>;
      try {
        pending = next(signal);
      } catch (err) {
        // A storage that throws instead of rejecting.
        pending = Promise.reject(err);
      }
      pending.then(
        (value) => {
          clearTimeout(timer);
          if (!settled) {
            settled = true;
            resolve(value);
          } else if (call.operation === 'read') {
            // The stream arrived after the deadline: nobody will consume it.
            (value as unknown as { destroy?: () => void }).destroy?.();
          }
        },
        (err: unknown) => {
          clearTimeout(timer);
          if (!settled) {
            settled = true;
            reject(err);
          }
        },
      );
    });
  }
}

/**
 * Fails any operation that takes longer than its deadline with UNAVAILABLE (so a retry layer
 * outside it tries again). `save`, `read` and `readBuffer` are aborted through their signal, so a
 * timed-out save leaves the old object or nothing; for the others the layer stops waiting. For
 * `read` the deadline covers opening the stream, not consuming it.
 */
export function withTimeout(storage: MediaStorage, options: TimeoutOptions): MediaStorage {
  return new TimeoutLayer(storage, options);
}
