import { pipeline, Readable, Transform } from 'node:stream';
import { bodyChunks, toChunk } from '../core/body.js';
import { MediaStorageError, type MediaStorageErrorCode } from '../core/errors.js';
import type { Body, MediaStorage, ObjectInfo, SaveOptions } from '../core/types.js';
import { abortableSleep, isReplayableBody, StorageLayer, STORAGE_OPERATIONS, type NextCall, type OperationCall, type StorageOperation } from './layer.js';

/** One staged fault. A rule counts the calls it matches and fires on some of them. */
export interface FaultRule {
  /** The operations it applies to; `*` for all. */
  operation: StorageOperation | readonly StorageOperation[] | '*';
  /** Only calls whose key (for `list`, the prefix) matches. */
  key?: string | RegExp | ((key: string) => boolean);
  /** First matching call it fires on, from 1. Default 1. */
  nth?: number;
  /** How many times it fires from then on. Default 1 when `nth` is given, else every time. */
  times?: number;
  /** Code of the MediaStorageError thrown. Default UNAVAILABLE (when the rule fails at all, see `latencyMs`). */
  code?: MediaStorageErrorCode;
  /** Throw this instead (or what this function returns). */
  error?: unknown;
  /** Wait this long before the call (honouring the caller's AbortSignal). A rule with only a latency delays without failing. */
  latencyMs?: number;
  /**
   * `before` (default): the call fails without reaching the storage. `after`: the call is made and
   * its result thrown away, like an answer lost on the way back (the object *was* stored).
   */
  when?: 'before' | 'after';
  /**
   * Fail partway, like a connection cut in the middle of a transfer: a `read` stream errors
   * after delivering this many bytes; a `save` body errors after this many bytes were read from
   * it, so the storage below must store nothing (and keep an old object whole). Bodies no longer
   * than this are not cut. Other operations fail before the call.
   */
  afterBytes?: number;
}

/** Where a partway fault cuts, and what it throws there. */
interface Cut {
  bytes: number;
  error: () => unknown;
}

/** A body that yields `cut.bytes` bytes of `body` and then fails. */
function cutBody(body: Body, cut: Cut): Readable {
  return Readable.from(
    (async function* () {
      let sent = 0;
      for await (const raw of bodyChunks(body)) {
        const chunk = toChunk(raw);
        if (sent + chunk.length > cut.bytes) {
          if (cut.bytes > sent) yield chunk.subarray(0, cut.bytes - sent);
          throw cut.error();
        }
        sent += chunk.length;
        yield chunk;
      }
    })(),
  );
}

/** A read stream that errors after `cut.bytes` bytes. */
function cutStream(stream: Readable, cut: Cut): Readable {
  let sent = 0;
  const cutter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (sent + chunk.length > cut.bytes) {
        if (cut.bytes > sent) this.push(chunk.subarray(0, cut.bytes - sent));
        sent = cut.bytes;
        callback(cut.error() as Error);
        return;
      }
      sent += chunk.length;
      callback(null, chunk);
    },
  });
  pipeline(stream, cutter, () => undefined);
  return cutter;
}

interface ActiveRule {
  rule: FaultRule;
  seen: number;
  fired: number;
}

function matchesKey(rule: FaultRule, key: string | undefined): boolean {
  if (rule.key === undefined) return true;
  if (key === undefined) return false;
  if (typeof rule.key === 'string') return rule.key === key;
  if (rule.key instanceof RegExp) return rule.key.test(key);
  return rule.key(key);
}

function matchesOperation(rule: FaultRule, operation: StorageOperation): boolean {
  if (rule.operation === '*') return true;
  return typeof rule.operation === 'string' ? rule.operation === operation : rule.operation.includes(operation);
}

/**
 * A storage that fails on purpose, for testing how an application copes with a storage outage,
 * in the manner of @flystorage/chaos. Wraps any storage; see {@link withFaults}.
 */
export class FaultInjectingStorage extends StorageLayer {
  private rules: ActiveRule[] = [];
  private readonly counts = new Map<StorageOperation, number>();

  constructor(inner: MediaStorage, rules: readonly FaultRule[] = []) {
    super(inner);
    for (const rule of rules) this.inject(rule);
  }

  /** Stages a fault; returns this storage, for chaining. */
  inject(rule: FaultRule): this {
    const nth = rule.nth ?? 1;
    if (!Number.isInteger(nth) || nth < 1) throw new MediaStorageError('INVALID_INPUT', 'FaultRule.nth counts calls from 1');
    if (rule.afterBytes !== undefined && !(Number.isInteger(rule.afterBytes) && rule.afterBytes >= 0)) {
      throw new MediaStorageError('INVALID_INPUT', 'FaultRule.afterBytes is a whole number of bytes');
    }
    const ops = rule.operation === '*' ? [] : typeof rule.operation === 'string' ? [rule.operation] : rule.operation;
    for (const op of ops) {
      if (!STORAGE_OPERATIONS.includes(op)) throw new MediaStorageError('INVALID_INPUT', `FaultRule: unknown operation ${JSON.stringify(op)}`);
    }
    this.rules.push({ rule, seen: 0, fired: 0 });
    return this;
  }

  /** Fails the `nth` call (from 1) of `operation` with `code`. */
  failNth(operation: StorageOperation | '*', nth: number, code: MediaStorageErrorCode = 'UNAVAILABLE'): this {
    return this.inject({ operation, nth, code });
  }

  /** Fails every call of `operation` with `code` until {@link clear}. */
  failAlways(operation: StorageOperation | '*', code: MediaStorageErrorCode = 'UNAVAILABLE'): this {
    return this.inject({ operation, code, times: Number.POSITIVE_INFINITY });
  }

  /** Adds `ms` of latency to every call of `operation`. */
  addLatency(operation: StorageOperation | '*', ms: number): this {
    return this.inject({ operation, latencyMs: ms });
  }

  /** Removes every staged fault (call counts are kept). */
  clear(): void {
    this.rules = [];
  }

  /** How many calls of `operation` (of all, without one) this storage received, faulty or not. */
  calls(operation?: StorageOperation): number {
    if (operation) return this.counts.get(operation) ?? 0;
    let total = 0;
    for (const n of this.counts.values()) total += n;
    return total;
  }

  /** The rules that fire for this call; counting the call against every rule that matches it. */
  private firing(call: OperationCall): FaultRule[] {
    const out: FaultRule[] = [];
    for (const active of this.rules) {
      const { rule } = active;
      if (!matchesOperation(rule, call.operation) || !matchesKey(rule, call.key)) continue;
      active.seen++;
      const nth = rule.nth ?? 1;
      const times = rule.times ?? (rule.nth !== undefined ? 1 : Number.POSITIVE_INFINITY);
      if (active.seen >= nth && active.fired < times) {
        active.fired++;
        out.push(rule);
      }
    }
    return out;
  }

  private faultError(rule: FaultRule, call: OperationCall): unknown {
    if (rule.error !== undefined) return typeof rule.error === 'function' ? (rule.error as (c: OperationCall) => unknown)(call) : rule.error;
    const code = rule.code ?? 'UNAVAILABLE';
    const where = call.key === undefined ? call.operation : `${call.operation} "${call.key}"`;
    return new MediaStorageError(code, `${this.name}: ${where} failed: injected fault (${code})`, {
      backend: this.name,
      key: call.key,
      operation: call.operation,
      status: code === 'UNAVAILABLE' ? 503 : undefined,
    });
  }

  /** Counts the call, applies its latency and faults, and runs it (told where to cut, if anywhere). */
  private async apply<T>(call: OperationCall, run: (cut: Cut | undefined) => Promise<T>): Promise<T> {
    this.counts.set(call.operation, (this.counts.get(call.operation) ?? 0) + 1);
    const rules = this.firing(call);
    for (const rule of rules) if (rule.latencyMs) await abortableSleep(rule.latencyMs, call.signal, call);
    const failing = rules.filter((r) => r.code !== undefined || r.error !== undefined || r.afterBytes !== undefined || r.latencyMs === undefined);
    const partway = failing.find((r) => r.afterBytes !== undefined && (call.operation === 'read' || call.operation === 'save'));
    const before = failing.find((r) => r !== partway && r.when !== 'after');
    if (before) throw this.faultError(before, call);
    const result = await run(partway && { bytes: partway.afterBytes!, error: () => this.faultError(partway, call) });
    const after = failing.find((r) => r !== partway && r.when === 'after');
    if (after) {
      if (call.operation === 'read') (result as unknown as { destroy(): void }).destroy();
      throw this.faultError(after, call);
    }
    return result;
  }

  protected override intercept<T>(call: OperationCall, next: NextCall<T>): Promise<T> {
    return this.apply(call, async (cut) => {
      const result = await next();
      return cut && call.operation === 'read' ? (cutStream(result as unknown as Readable, cut) as T) : result;
    });
  }

  // save is the one call whose argument a fault changes: the body, to cut it partway.
  override save(key: string, body: Body, options: SaveOptions = {}): Promise<ObjectInfo> {
    const call: OperationCall = { operation: 'save', key, signal: options.signal, replayable: isReplayableBody(body) };
    return this.apply(call, (cut) => this.inner.save(key, cut ? cutBody(body, cut) : body, options));
  }
}

/**
 * Wraps a storage in a {@link FaultInjectingStorage}: fail the Nth call of an operation, fail
 * always, add latency, throw a chosen code or error, or lose the answer of a call that succeeded.
 *
 * ```ts
 * const storage = withFaults(new MemoryStorage()).failNth('save', 2, 'UNAVAILABLE').addLatency('stat', 50);
 * ```
 */
export function withFaults(storage: MediaStorage, rules: readonly FaultRule[] = []): FaultInjectingStorage {
  return new FaultInjectingStorage(storage, rules);
}
