import { performance } from 'node:perf_hooks';
import type { Readable } from 'node:stream';
import { isMediaStorageError, redact, type MediaStorageErrorCode } from '../core/errors.js';
import type { MediaStorage } from '../core/types.js';
import { StorageLayer, watchStream, type NextCall, type OperationCall, type StorageOperation } from './layer.js';

/** One finished operation, as {@link withEvents} reports it. */
export interface StorageEvent {
  /** The backend's name (`local`, `s3`, ...). */
  backend: string;
  operation: StorageOperation;
  /** The key (for `copy` the source, for `list` the prefix). Keys are not secrets; URLs are never reported. */
  key?: string;
  /** The target of a `copy`. */
  target?: string;
  /** Wall time, in ms; for `read`, until the stream ended or was destroyed. */
  durationMs: number;
  /** Bytes stored (`save`, `copy`) or delivered (`read`, `readBuffer`), when known. */
  bytes?: number;
  outcome: 'ok' | 'error';
  /** The MediaStorageError code (`UNKNOWN` for anything else). */
  errorCode?: MediaStorageErrorCode;
  /** The error message, with secrets and URL signatures removed. */
  errorMessage?: string;
}

/** The function {@link withEvents} calls with each finished operation (a listener that throws is ignored). */
export type StorageEventListener = (event: StorageEvent) => void;

/** Options of {@link withEvents}. */
export interface EventsOptions {
  /** Strings that must never reach the listener (API secrets, tokens), besides URL signatures. */
  secrets?: readonly (string | undefined)[];
}

function bytesOf(operation: StorageOperation, value: unknown): number | undefined {
  if (operation === 'readBuffer' && Buffer.isBuffer(value)) return value.length;
  if ((operation === 'save' || operation === 'copy') && value && typeof value === 'object') return (value as { size?: number }).size;
  return undefined;
}

class EventsLayer extends StorageLayer {
  constructor(
    inner: MediaStorage,
    private readonly listener: StorageEventListener,
    private readonly options: EventsOptions,
  ) {
    super(inner);
  }

  private emit(call: OperationCall, started: number, bytes: number | undefined, error: unknown): void {
    const event: StorageEvent = {
      backend: this.name,
      operation: call.operation,
      durationMs: performance.now() - started,
      outcome: error === undefined ? 'ok' : 'error',
    };
    if (call.key !== undefined) event.key = call.key;
    if (call.target !== undefined) event.target = call.target;
    if (bytes !== undefined) event.bytes = bytes;
    if (error !== undefined) {
      event.errorCode = isMediaStorageError(error) ? error.code : 'UNKNOWN';
      event.errorMessage = redact(error instanceof Error ? error.message : String(error), this.options.secrets ?? []);
    }
    try {
      this.listener(event);
    } catch {
      // An observer must never change the outcome of the operation it observes.
    }
  }

  protected override async intercept<T>(call: OperationCall, next: NextCall<T>): Promise<T> {
    const started = performance.now();
    let result: T;
    try {
      result = await next();
    } catch (err) {
      this.emit(call, started, undefined, err);
      throw err;
    }
    if (call.operation === 'read') {
      return watchStream(result as Readable, (bytes, error) => this.emit(call, started, bytes, error)) as T;
    }
    this.emit(call, started, bytesOf(call.operation, result), undefined);
    return result;
  }
}

/**
 * Reports every operation to `listener` once it finishes: operation, key, duration, bytes and
 * outcome. Error messages are redacted (`options.secrets` and URL signatures); the URLs `url()`
 * makes are never reported. A listener that throws is ignored.
 */
export function withEvents(storage: MediaStorage, listener: StorageEventListener, options: EventsOptions = {}): MediaStorage {
  return new EventsLayer(storage, listener, options);
}

/** The part of `console` (or pino, winston...) {@link withLogger} writes to. */
export interface StorageLogger {
  info(message: string): void;
  warn(message: string): void;
}

/** One line per event: `media-storage local save "a.jpg" ok 3.1 ms 1024 B`. */
export function formatStorageEvent(event: StorageEvent): string {
  const where = [event.key, event.target]
    .filter((k) => k !== undefined)
    .map((k) => JSON.stringify(k))
    .join(' -> ');
  const parts = [`media-storage ${event.backend} ${event.operation}`];
  if (where) parts.push(where);
  parts.push(event.outcome === 'ok' ? 'ok' : `error ${event.errorCode}`);
  parts.push(`${event.durationMs.toFixed(1)} ms`);
  if (event.bytes !== undefined) parts.push(`${event.bytes} B`);
  let line = parts.join(' ');
  if (event.errorMessage) line += `: ${event.errorMessage}`;
  return line;
}

/** Logs every operation: successes with `info`, failures with `warn` (see {@link withEvents}). */
export function withLogger(storage: MediaStorage, logger: StorageLogger = console, options: EventsOptions = {}): MediaStorage {
  return withEvents(storage, (event) => (event.outcome === 'ok' ? logger.info(formatStorageEvent(event)) : logger.warn(formatStorageEvent(event))), options);
}
