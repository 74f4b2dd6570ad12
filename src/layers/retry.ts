import { isMediaStorageError, MediaStorageError } from '../core/errors.js';
import type { MediaStorage } from '../core/types.js';
import { abortableSleep, StorageLayer, type NextCall, type OperationCall } from './layer.js';

export interface RetryInfo {
  operation: OperationCall['operation'];
  key: string | undefined;
  /** The attempt that failed, from 1. */
  attempt: number;
  /** How long the layer waits before the next attempt. */
  delayMs: number;
  error: MediaStorageError;
}

export interface RetryOptions {
  /** Attempts in all, the first included. Default 4. */
  maxAttempts?: number;
  /** Delay ceiling before the second attempt, in ms; doubled for each further one. Default 100. */
  baseDelayMs?: number;
  /** Largest delay, in ms (also caps a server's Retry-After). Default 10,000. */
  maxDelayMs?: number;
  /** Called before each wait. */
  onRetry?: (info: RetryInfo) => void;
  /** Source of randomness in [0, 1) for the jitter; for tests. Default `Math.random`. */
  random?: () => number;
  /** How to wait; for tests. Default an abortable `setTimeout`. */
  sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}

/** Only a temporary failure is worth another attempt; AUTH, INVALID_*, NOT_FOUND... never change by waiting. */
function isRetryable(err: unknown): err is MediaStorageError {
  return isMediaStorageError(err) && err.code === 'UNAVAILABLE';
}

class RetryLayer extends StorageLayer {
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(
    inner: MediaStorage,
    private readonly options: RetryOptions,
  ) {
    super(inner);
    this.maxAttempts = options.maxAttempts ?? 4;
    this.baseDelayMs = options.baseDelayMs ?? 100;
    this.maxDelayMs = options.maxDelayMs ?? 10_000;
    if (!Number.isInteger(this.maxAttempts) || this.maxAttempts < 1) {
      throw new MediaStorageError('CONFIG', 'withRetry: maxAttempts must be a whole number of at least 1');
    }
    if (!(this.baseDelayMs >= 0) || !(this.maxDelayMs >= 0)) {
      throw new MediaStorageError('CONFIG', 'withRetry: delays must be non-negative numbers of milliseconds');
    }
  }

  /** "Full jitter" (a random wait up to an exponentially growing ceiling), or the server's Retry-After when later. */
  private delayFor(attempt: number, error: MediaStorageError): number {
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    let delay = Math.floor((this.options.random ?? Math.random)() * ceiling);
    if (error.retryAfter) delay = Math.max(delay, Math.min(this.maxDelayMs, error.retryAfter.getTime() - Date.now()));
    return delay;
  }

  protected override async intercept<T>(call: OperationCall, next: NextCall<T>): Promise<T> {
    // A stream body is consumed by the first attempt: sending it again would store a truncated object.
    const attempts = call.replayable ? this.maxAttempts : 1;
    const sleep = this.options.sleep ?? ((ms: number, signal: AbortSignal | undefined) => abortableSleep(ms, signal, call));
    for (let attempt = 1; ; attempt++) {
      try {
        return await next();
      } catch (err) {
        if (attempt >= attempts || !isRetryable(err) || call.signal?.aborted) throw err;
        const delayMs = this.delayFor(attempt, err);
        this.options.onRetry?.({ operation: call.operation, key: call.key, attempt, delayMs, error: err });
        await sleep(delayMs, call.signal);
      }
    }
  }
}

/**
 * Retries calls that failed with UNAVAILABLE (5xx, throttling, resets, timeouts), with exponential
 * backoff and full jitter, honouring a server's Retry-After and the caller's AbortSignal. Other
 * codes fail at once. A `save` whose body is a stream is never retried (its bytes are gone); bodies
 * in memory (Buffer, string, Uint8Array, Blob) are.
 *
 * A retried `save` with `ifExists: 'fail'` whose first attempt was stored although its answer was
 * lost answers ALREADY_EXISTS: the outcome of a lost answer cannot be known.
 */
export function withRetry(storage: MediaStorage, options: RetryOptions = {}): MediaStorage {
  return new RetryLayer(storage, options);
}
