import { MediaStorageError, type MediaStorageErrorCode } from '../core/errors.js';
import type { MediaStorage } from '../core/types.js';
import { abortableSleep, StorageLayer, STORAGE_OPERATIONS, type NextCall, type OperationCall, type StorageOperation } from './layer.js';

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

  protected override async intercept<T>(call: OperationCall, next: NextCall<T>): Promise<T> {
    this.counts.set(call.operation, (this.counts.get(call.operation) ?? 0) + 1);
    const rules = this.firing(call);
    for (const rule of rules) if (rule.latencyMs) await abortableSleep(rule.latencyMs, call.signal, call);
    const failing = rules.filter((r) => r.code !== undefined || r.error !== undefined || r.latencyMs === undefined);
    const before = failing.find((r) => r.when !== 'after');
    if (before) throw this.faultError(before, call);
    const result = await next();
    const after = failing.find((r) => r.when === 'after');
    if (after) {
      if (call.operation === 'read') (result as unknown as { destroy(): void }).destroy();
      throw this.faultError(after, call);
    }
    return result;
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
