/**
 * Layers: decorators over any MediaStorage, in the manner of Apache OpenDAL's. Each returns a
 * MediaStorage, so they stack; the outermost sees a call first:
 *
 * ```ts
 * const storage = withEvents(withRetry(withTimeout(s3, { ms: 10_000 })), (e) => metrics.record(e));
 * ```
 */
export { StorageLayer, isReplayableBody, STORAGE_OPERATIONS, type NextCall, type OperationCall, type StorageOperation } from './layer.js';
export { withRetry, type RetryInfo, type RetryOptions } from './retry.js';
export { withTimeout, type TimeoutOptions } from './timeout.js';
export { withConcurrencyLimit, type ConcurrencyLimitOptions } from './concurrency.js';
export { withEvents, withLogger, formatStorageEvent, type EventsOptions, type StorageEvent, type StorageEventListener, type StorageLogger } from './events.js';
export { withFaults, FaultInjectingStorage, type FaultRule } from './faults.js';
