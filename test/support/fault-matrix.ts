/**
 * What the fault matrices of the Cloudinary and B2 backends (test/faults-*.test.ts) share: a chain
 * of both fault proxies in front of one host, running one operation with a deadline, and the
 * outcome rules of issue 8 (success, or a MediaStorageError with an allowed code; never a hang,
 * never an untyped error).
 */
import { createHash } from 'node:crypto';
import { isMediaStorageError, type MediaStorageErrorCode } from '../../src/core/errors.js';
import { startFaultProxy, type Fault, type FaultProxy } from './fault-proxy.js';
import { startHttpFaultProxy, type HttpFaultProxy, type ProxiedRequest } from './http-fault-proxy.js';

/** `ok`, or the code of the MediaStorageError the operation failed with. */
export type Outcome = 'ok' | MediaStorageErrorCode;

/** Which proxy breaks the exchange: the TCP one (per connection) or the HTTP one (per request). */
export type Layer = 'tcp' | 'http';

export type RequestMatch = (req: Omit<ProxiedRequest, 'fault'>) => boolean;

/** Client → TCP fault proxy → HTTP fault proxy → host; `url` is what the client is given. */
export interface ProxyChain {
  readonly url: string;
  readonly tcp: FaultProxy;
  readonly http: HttpFaultProxy;
  /**
   * Breaks the next `times` connections (tcp) or matching requests (http, after letting `skip`
   * matching requests through); default 1.
   */
  inject(layer: Layer, fault: Fault, options?: { times?: number; match?: RequestMatch; skip?: number }): Promise<void>;
  /** Lets everything through again. */
  heal(): Promise<void>;
  /**
   * Whether a fault injected since the last heal took effect: a request answered 503 or cut or
   * stalled at its byte count (http), or a connection broken (tcp). A row whose fault never bit
   * proves nothing.
   */
  broke(): boolean;
  close(): Promise<void>;
}

export async function startProxyChain(target: string): Promise<ProxyChain> {
  const http = await startHttpFaultProxy(target);
  const tcp = await startFaultProxy(http.url);
  let armed = false;
  let since = { requests: 0, faultedConnections: 0 };
  return {
    url: tcp.url,
    tcp,
    http,
    async inject(layer, fault, options = {}) {
      if (!armed) since = { requests: http.requests.length, faultedConnections: tcp.stats.faulted };
      armed = true;
      const times = options.times ?? 1;
      const { match, skip = 0 } = options;
      let seen = 0;
      const skipping: RequestMatch | undefined = match && skip > 0 ? (req) => match(req) && ++seen > skip : match;
      if (layer === 'http') http.setFault(fault, { requests: times, match: skipping });
      else await tcp.setFault(fault, { connections: times });
    },
    async heal() {
      armed = false;
      http.setFault({ kind: 'pass' });
      await tcp.setFault({ kind: 'pass' });
    },
    broke() {
      return http.requests.slice(since.requests).some((r) => r.broke) || tcp.stats.faulted > since.faultedConnections;
    },
    async close() {
      await tcp.close();
      await http.close();
    },
  };
}

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/**
 * Runs `op` and classifies how it ended. A rejection that is not a MediaStorageError, or no answer
 * within `deadlineMs`, fails the test: both are bugs the matrix exists to find.
 */
export async function outcomeOf<T>(op: () => Promise<T>, deadlineMs: number): Promise<{ outcome: Outcome; value?: T; message?: string }> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${deadlineMs} ms (a hang)`)), deadlineMs);
  });
  try {
    const value = await Promise.race([op(), deadline]);
    return { outcome: 'ok', value };
  } catch (err) {
    if (!isMediaStorageError(err)) throw new Error(`not a MediaStorageError: ${String(err)}`, { cause: err });
    return { outcome: err.code, message: err.message };
  } finally {
    clearTimeout(timer);
  }
}

/** Which body a key holds afterwards, by hash: one of the named candidates, `absent`, or `other` (a partial or foreign object). */
export function whichBody(held: Buffer | undefined, candidates: Record<string, Buffer>): string {
  if (held === undefined) return 'absent';
  const hash = sha256(held);
  for (const [name, body] of Object.entries(candidates)) if (sha256(body) === hash) return name;
  return `other (${held.length} bytes)`;
}
