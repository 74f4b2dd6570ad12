/**
 * Looks for planted secrets in everything an app might print or ship of an error: its message,
 * String(), stack, util.inspect at full depth, JSON.stringify of the error and of every cause in
 * its chain, every string reachable from it through own properties (hidden ones included), and
 * pino's own err and errWithCause serializers (what pino, and loggers built the
 * same way, write for `logger.error({ err })`).
 */
import { inspect } from 'node:util';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// The real package pino uses, not a re-implementation: its serializers walk `cause` and copy
// every enumerable field, which is exactly how a cause's request headers reach a log.
const { err: pinoErr, errWithCause: pinoErrWithCause } = require('pino-std-serializers') as {
  err: (e: unknown) => unknown;
  errWithCause: (e: unknown) => unknown;
};

/** A secret and the spellings of it that count as a leak too. */
export function spellingsOf(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  return [...new Set([secret, encodeURIComponent(secret), bytes.toString('base64').replace(/=+$/, ''), bytes.toString('base64url')])];
}

/** What counts as a leak, whatever the secret: a request's signature or credentials header. */
const CREDENTIAL_SHAPES: Array<[string, RegExp]> = [
  ['Signature=', /Signature=(?!\[redacted\])/],
  ['X-Amz-Signature', /X-Amz-Signature=(?!\[redacted\])/i],
  ['Authorization header', /authorization["']?\s*[:=]\s*["']?(?!\[redacted\])\S/i],
];

export class LeakDetector {
  /** Spelling → the secret's label. */
  private readonly needles = new Map<string, string>();
  readonly checks: Array<{ path: string; view: string; leaked: string[] }> = [];

  plant(label: string, ...secrets: (string | undefined)[]): void {
    for (const secret of secrets) {
      if (!secret) continue;
      for (const form of spellingsOf(secret)) if (form.length >= 6) this.needles.set(form, label);
    }
  }

  /** The HTTP Basic credentials of an id and secret (as backblaze-b2 sends them to b2_authorize_account). */
  plantBasic(label: string, id: string, secret: string): void {
    this.plant(label, Buffer.from(`${id}:${secret}`).toString('base64'));
  }

  private find(text: string): string[] {
    const found: string[] = [];
    for (const [needle, label] of this.needles)
      if (text.includes(needle)) found.push(`${label} (${needle === needle.trim() ? JSON.stringify(needle.slice(0, 40)) : 'spelling'})`);
    for (const [label, shape] of CREDENTIAL_SHAPES) {
      const m = shape.exec(text);
      if (m) found.push(`${label}: …${text.slice(Math.max(0, m.index - 30), m.index + 60).replace(/\s+/g, ' ')}…`);
    }
    return found;
  }

  /** Records one check of one text. */
  text(path: string, view: string, text: string): void {
    this.checks.push({ path, view, leaked: this.find(text) });
  }

  /** Records the checks of every view of an error. */
  error(path: string, err: unknown): void {
    for (const [view, text] of viewsOf(err)) this.text(path, view, text);
  }

  get leaks(): Array<{ path: string; view: string; leaked: string[] }> {
    return this.checks.filter((c) => c.leaked.length > 0);
  }

  summary(): string {
    const leaks = this.leaks;
    const lines = [`${leaks.length} of ${this.checks.length} checks leaked`];
    for (const l of leaks) lines.push(`  ${l.path} / ${l.view}: ${l.leaked.join('; ')}`);
    return lines.join('\n');
  }
}

/** JSON.stringify that survives cycles and BigInts (a throw would hide what it contains). */
export function safeJson(value: unknown): string {
  const seen = new WeakSet<object>();
  try {
    return (
      JSON.stringify(value, (_key, v: unknown) => {
        if (typeof v === 'bigint') return v.toString();
        if (typeof v === 'object' && v !== null) {
          if (seen.has(v)) return '[circular]';
          seen.add(v);
        }
        return v;
      }) ?? 'undefined'
    );
  } catch (err) {
    return `[JSON.stringify threw: ${String(err)}]`;
  }
}

function causesOf(err: unknown): unknown[] {
  const out: unknown[] = [];
  const seen = new Set<unknown>([err]);
  let current = (err as { cause?: unknown } | null)?.cause;
  while (current !== undefined && current !== null && !seen.has(current) && out.length < 20) {
    out.push(current);
    seen.add(current);
    current = (current as { cause?: unknown }).cause;
  }
  return out;
}

/**
 * Every string reachable from the error through own properties, enumerable or not (as
 * `err.cause.$response.body.req._header`): what any serializer or debugger could get at.
 */
export function reachableStrings(root: unknown, limit = 50_000): string {
  const out: string[] = [];
  const seen = new Set<unknown>();
  const queue: unknown[] = [root];
  while (queue.length > 0 && seen.size < limit) {
    const value = queue.shift();
    if (typeof value === 'string') {
      out.push(value);
      continue;
    }
    if ((typeof value !== 'object' && typeof value !== 'function') || value === null || seen.has(value)) continue;
    seen.add(value);
    if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) continue;
    for (const key of Reflect.ownKeys(value)) {
      if (typeof key === 'string') out.push(key);
      const descriptor = Object.getOwnPropertyDescriptor(value, key);
      if (descriptor && 'value' in descriptor) queue.push(descriptor.value);
    }
    if (value instanceof Map) for (const [k, v] of value) queue.push(k, v);
    if (value instanceof Set) for (const v of value) queue.push(v);
  }
  return out.join('\n');
}

export function viewsOf(err: unknown): Array<[string, string]> {
  const e = err as { message?: unknown; stack?: unknown } | null;
  const views: Array<[string, string]> = [
    ['message', String(e?.message ?? '')],
    ['String()', String(err)],
    ['stack', String(e?.stack ?? '')],
    ['util.inspect', inspect(err, { depth: Infinity })],
    ['JSON.stringify', safeJson(err)],
  ];
  causesOf(err).forEach((cause, i) => views.push([`JSON.stringify(cause #${i + 1})`, safeJson(cause)]));
  views.push(['strings reachable through own properties', reachableStrings(err)]);
  views.push(['pino err serializer', safeJson(pinoErr(err))]);
  views.push(['pino errWithCause serializer', safeJson(pinoErrWithCause(err))]);
  return views;
}

/** The error a promise rejects with (or a marker error when it resolves, so the path still counts). */
export async function rejectionOf(promise: Promise<unknown> | (() => Promise<unknown>)): Promise<unknown> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    return err;
  }
  throw new Error('expected the operation to fail');
}

/** The error a function throws synchronously. */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to throw');
}
