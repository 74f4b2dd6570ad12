/**
 * The request-aware sibling of the TCP fault proxy (./fault-proxy.ts): an HTTP/1.1 proxy on
 * loopback that parses each request, so a fault can target one request among many on pooled
 * keep-alive connections, chosen by method, URL and headers (e.g. `PUT ...&partNumber=3`, or
 * `POST ...?uploadId=` for the completion of a multipart upload).
 *
 * The same faults, counted per request and in body bytes (head excluded):
 * - `reset` upstream: forwards `afterBytes` bytes of the request body, then resets both sides;
 *   downstream: forwards the response head and `afterBytes` bytes of its body, then resets;
 * - `stall`: the same, but then forwards nothing more in that direction and keeps the connection;
 * - `http503`: reads the request and answers 503 (S3's SlowDown by default) without contacting
 *   the server; `httpError` answers another status (S3's InternalError 500 by default);
 * - `corrupt` (this proxy only): forwards the request with one byte of its body inverted, the
 *   middle one by its Content-Length, as a flipped bit in transit would.
 * A fault is set for the next matching requests, or decided request by request by a function.
 * Requests, headers (Host included, so signatures stay valid) and bodies are forwarded as they came.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import type net from 'node:net';
import { RESET_DELAY_MS, S3_SLOWDOWN, type Fault } from './fault-proxy.js';

const S3_INTERNAL_ERROR = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>injected by the test proxy</Message></Error>';

/** The TCP proxy's faults, and two that need the request parsed. */
export type HttpFault = Fault | { kind: 'httpError'; status: number; body?: string; contentType?: string } | { kind: 'corrupt' };

type RequestInfo = Omit<ProxiedRequest, 'fault' | 'broke'>;

export interface ProxiedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  /** The fault applied to it (`pass` when none). */
  fault: HttpFault['kind'];
  /**
   * Whether the fault took effect: answered 503, or the body reached `afterBytes` and was cut or
   * stalled there (with `afterBytes` 0: upstream, the request was not forwarded at all;
   * downstream, the answer was dropped (reset) or its head alone sent (stall), body or not).
   */
  broke?: boolean;
}

export interface HttpFaultProxy {
  readonly url: string;
  readonly port: number;
  /** Every request seen, in order of arrival: what an SDK really sent. */
  readonly requests: readonly ProxiedRequest[];
  /**
   * Applies `fault` to the next `requests` requests that `match` (default: every request, until
   * changed); others pass. A function instead decides each request's fault (until changed).
   */
  setFault(fault: HttpFault | ((req: RequestInfo) => HttpFault), options?: { requests?: number; match?: (req: RequestInfo) => boolean }): void;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

function forwardedHeaders(headers: IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

/** Resets a socket (RST) a moment later, so that bytes already written reach the reader first. */
function resetSoon(socket: net.Socket | null | undefined): void {
  setTimeout(() => {
    if (socket && !socket.destroyed) socket.resetAndDestroy();
  }, RESET_DELAY_MS);
}

export async function startHttpFaultProxy(target: string): Promise<HttpFaultProxy> {
  const to = new URL(target);
  const agent = new http.Agent({ keepAlive: true });
  const requests: ProxiedRequest[] = [];
  let fault: HttpFault | ((req: RequestInfo) => HttpFault) = { kind: 'pass' };
  let remaining = Number.POSITIVE_INFINITY;
  let match: ((req: RequestInfo) => boolean) | undefined;
  const sockets = new Set<net.Socket>();

  const choose = (info: RequestInfo): HttpFault => {
    if (typeof fault === 'function') return fault(info);
    if (remaining <= 0 || (match && !match(info))) return { kind: 'pass' };
    remaining--;
    return fault;
  };

  const server = http.createServer((req, res) => {
    const info = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers };
    const chosen = choose(info);
    const record: ProxiedRequest = { ...info, fault: chosen.kind };
    requests.push(record);

    if (chosen.kind === 'http503' || chosen.kind === 'httpError') {
      record.broke = true;
      req.resume();
      req.once('end', () => {
        const body = Buffer.from(chosen.body ?? (chosen.kind === 'http503' ? S3_SLOWDOWN : S3_INTERNAL_ERROR));
        res.writeHead(chosen.kind === 'http503' ? 503 : chosen.status, {
          'content-type': chosen.contentType ?? 'application/xml',
          'content-length': body.length,
          ...(chosen.kind === 'http503' ? { 'retry-after': String(chosen.retryAfterSeconds ?? 1) } : {}),
        });
        res.end(body);
      });
      return;
    }

    const limited = chosen.kind === 'reset' || chosen.kind === 'stall' ? chosen : undefined;
    if (limited?.direction === 'upstream' && limited.afterBytes === 0) {
      // Nothing of the request reaches the server, whether it has a body or not (a DELETE, a
      // CopyObject): it never arrives. The client sees a reset, or silence.
      record.broke = true;
      req.resume();
      if (limited.kind === 'reset') resetSoon(req.socket);
      return;
    }
    const upstream = http.request({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: forwardedHeaders(req.headers), agent });
    let breaking = false; // set when this proxy cuts the exchange on purpose
    upstream.on('error', () => {
      if (breaking) return;
      if (!res.headersSent) res.writeHead(502).end();
      else req.socket.destroy();
    });

    // Request body, client → server.
    let sentUp = 0;
    let cutUp = false;
    const flipAt = chosen.kind === 'corrupt' ? Math.floor(Number(req.headers['content-length'] ?? 0) / 2) : -1;
    req.on('data', (chunk: Buffer) => {
      if (cutUp) return;
      if (flipAt >= sentUp && flipAt < sentUp + chunk.length) {
        chunk = Buffer.from(chunk);
        chunk[flipAt - sentUp]! ^= 0xff;
        record.broke = true;
      }
      if (limited?.direction === 'upstream' && sentUp + chunk.length >= limited.afterBytes) {
        cutUp = true;
        record.broke = true;
        breaking = true;
        const head = chunk.subarray(0, limited.afterBytes - sentUp);
        sentUp += head.length;
        upstream.write(head, () => {
          if (limited.kind === 'reset') {
            resetSoon(upstream.socket);
            resetSoon(req.socket);
          }
        });
        return;
      }
      sentUp += chunk.length;
      upstream.write(chunk);
    });
    req.on('end', () => {
      if (!cutUp) upstream.end();
    });

    // Response, server → client.
    upstream.on('response', (answer) => {
      if (limited?.direction === 'downstream' && limited.afterBytes === 0) {
        // The server carried the request out; nothing of its answer reaches the client (a reset),
        // or only the head (a stall), also when the answer has no body (PutObject, DeleteObject).
        record.broke = true;
        breaking = true;
        answer.resume();
        if (limited.kind === 'reset') resetSoon(req.socket);
        else {
          res.writeHead(answer.statusCode ?? 502, answer.statusMessage, forwardedHeaders(answer.headers));
          res.flushHeaders();
        }
        return;
      }
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, forwardedHeaders(answer.headers));
      let sentDown = 0;
      let cutDown = false;
      answer.on('data', (chunk: Buffer) => {
        if (cutDown) return;
        if (limited?.direction === 'downstream' && sentDown + chunk.length >= limited.afterBytes) {
          cutDown = true;
          record.broke = true;
          breaking = true;
          const head = chunk.subarray(0, limited.afterBytes - sentDown);
          sentDown += head.length;
          res.write(head, () => {
            if (limited.kind === 'reset') resetSoon(req.socket);
          });
          return;
        }
        sentDown += chunk.length;
        res.write(chunk);
      });
      answer.on('end', () => {
        if (!cutDown) res.end();
      });
    });
  });
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    setFault(next, options = {}) {
      if (typeof next !== 'function' && (next.kind === 'reset' || next.kind === 'stall') && !(Number.isInteger(next.afterBytes) && next.afterBytes >= 0)) {
        throw new Error('afterBytes must be a whole number of bytes');
      }
      fault = next;
      remaining = typeof next === 'function' ? Number.POSITIVE_INFINITY : (options.requests ?? Number.POSITIVE_INFINITY);
      match = options.match;
    },
    close() {
      for (const s of sockets) s.destroy();
      agent.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
