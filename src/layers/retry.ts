import { isMediaStorageError, MediaStorageError } from '../core/errors.js';
import type { MediaStorage } from '../core/types.js';
import { abortableSleep, StorageLayer, type NextCall, type OperationCall } from './layer.js';

/** A failed attempt that {@link withRetry} is about to try again, as passed to {@link RetryOptions.onRetry}. */
export interface RetryInfo {
  /** The operation that failed. */
  operation: OperationCall['operation'];
  /** The key it was about, as the caller gave it (for `copy` the source, for `list` the prefix). */
  key: string | undefined;
  /** The attempt that failed, from 1. */
  attempt: number;
  /** How long the layer waits before the next attempt. */
  delayMs: number;
  /** The attempt's error (UNAVAILABLE). */
  error: MediaStorageError;
}

/** Options of {@link withRetry} (and of `createMediaStorage`'s `retry`): how many attempts, and the backoff between them. */
export interface RetryOptions {
  /** Attempts in all, the first included. Default 4. */
  maxAttempts?: number;
  /** Delay ceiling before the second attempt, in ms; doubled for each further one. Default 100. */
  baseDelayMs?: number;
  /**
   * Largest delay, in ms. A server's Retry-After beyond it is not waited for: the error is thrown
   * at once, its `retryAfter` saying when to come back. Default 10,000.
   */
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

/** Node's codes for a connection that was never made: no request reached the server. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * Whether the failure shows the request was not carried out: 429 and 503 refuse it (RFC 9110:
 * the server "is currently unable to handle the request"; RFC 6585), and a connection never made
 * sent nothing. A reset, a timeout or a 500 may come after the write took effect.
 */
function notCarriedOut(err: MediaStorageError): boolean {
  if (err.status === 429 || err.status === 503) return true;
  for (let cause: unknown = err.cause, depth = 0; cause && depth < 5; cause = (cause as { cause?: unknown }).cause, depth++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === 'string' && NOT_CONNECTED.has(code)) return true;
  }
  return false;
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

  /**
   * "Full jitter" (a random wait up to an exponentially growing ceiling), or the server's
   * Retry-After when later; undefined when Retry-After is beyond maxDelayMs (retrying before the
   * server said would only be refused again).
   */
  private delayFor(attempt: number, error: MediaStorageError): number | undefined {
    const ceiling = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    const delay = Math.floor((this.options.random ?? Math.random)() * ceiling);
    if (!error.retryAfter) return delay;
    const asked = error.retryAfter.getTime() - Date.now();
    return asked > this.maxDelayMs ? undefined : Math.max(delay, asked);
  }

  protected override async intercept<T>(call: OperationCall, next: NextCall<T>): Promise<T> {
    // A stream body is consumed by the first attempt: sending it again would store a truncated object.
    const attempts = call.replayable ? this.maxAttempts : 1;
    // A create-only save or copy that may have happened must not run again: it would answer
    // ALREADY_EXISTS ("fail") or store a second copy ("rename") for a write that succeeded.
    const onlyIfNotCarriedOut = call.ifExists === 'fail' || call.ifExists === 'rename';
    const sleep = this.options.sleep ?? ((ms: number, signal: AbortSignal | undefined) => abortableSleep(ms, signal, call));
    for (let attempt = 1; ; attempt++) {
      try {
        return await next();
      } catch (err) {
        if (attempt >= attempts || !isRetryable(err) || call.signal?.aborted) throw err;
        if (onlyIfNotCarriedOut && !notCarriedOut(err)) throw err;
        const delayMs = this.delayFor(attempt, err);
        if (delayMs === undefined) throw err;
        this.options.onRetry?.({ operation: call.operation, key: call.key, attempt, delayMs, error: err });
        await sleep(delayMs, call.signal);
      }
    }
  }
}

/**
 * Retries calls that failed with UNAVAILABLE (5xx, throttling, resets, timeouts), with exponential
 * backoff and full jitter, honouring a server's Retry-After (up to `maxDelayMs`; a longer one fails
 * at once) and the caller's AbortSignal (a wait ends with ABORTED as soon as it fires). Other codes
 * fail at once. A `save` whose body is a stream is never retried (its bytes are gone); bodies in
 * memory (Buffer, string, Uint8Array, Blob) are.
 *
 * A `save` or `copy` with `ifExists: 'fail'` or `'rename'` is retried only when the failure shows
 * it was not carried out (429, 503, or no connection made): after a reset, a timeout or a 500 the
 * write may have happened, and running it again would answer ALREADY_EXISTS or store a second copy.
 */
export function withRetry(storage: MediaStorage, options: RetryOptions = {}): MediaStorage {
  return new RetryLayer(storage, options);
}
