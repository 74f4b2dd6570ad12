// Web-standard handlers (Request in, Response out: Next.js route handlers, Hono, Remix, Bun,
// Deno, workers on Node) over the Node handlers of this package, so serving rules, Range, ETag
// and signatures live once, in createMediaHandler, and every transport gets the same answers.
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { PassThrough, Readable, Writable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import type { MediaRequestHandler } from './http-handler.js';

/** A handler of the fetch API's shape. */
export type WebRequestHandler = (request: Request) => Promise<Response>;

/** Options of {@link toWebHandler}. */
export interface WebHandlerOptions {
  /**
   * The answer for a request the Node handler passes on (outside its base path), i.e. where
   * Express would call `next()`. Default: a plain 404.
   */
  notFound?: (request: Request) => Response | Promise<Response>;
}

/** Statuses whose response has no body, whatever the handler wrote (Fetch: "null body status"). */
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** The response side a Node handler writes to, turned into a Response on its first byte or its end. */
class ResponseCollector extends Writable {
  statusCode = 200;
  statusMessage = '';
  headersSent = false;
  private readonly fields = new Map<string, OutgoingHttpHeader>();
  private readonly body = new PassThrough();
  private settle!: (response: Response) => void;
  readonly response = new Promise<Response>((resolve) => (this.settle = resolve));

  constructor(private readonly method: string) {
    super();
    this.on('error', () => undefined);
  }

  setHeader(name: string, value: OutgoingHttpHeader): this {
    if (this.headersSent) throw new Error(`cannot set ${name}: the headers were sent`);
    this.fields.set(name.toLowerCase(), value);
    return this;
  }
  getHeader(name: string): OutgoingHttpHeader | undefined {
    return this.fields.get(name.toLowerCase());
  }
  getHeaders(): OutgoingHttpHeaders {
    return Object.fromEntries(this.fields);
  }
  hasHeader(name: string): boolean {
    return this.fields.has(name.toLowerCase());
  }
  removeHeader(name: string): void {
    this.fields.delete(name.toLowerCase());
  }
  writeHead(status: number, reason?: string | OutgoingHttpHeaders | string[], headers?: OutgoingHttpHeaders | string[]): this {
    this.statusCode = status;
    const fields = typeof reason === 'object' ? reason : headers;
    if (typeof reason === 'string') this.statusMessage = reason;
    if (Array.isArray(fields)) {
      // Node's raw form, which createMediaHandler uses: name, value, name, value, ...
      for (let i = 0; i + 1 < fields.length; i += 2) this.setHeader(fields[i]!, fields[i + 1]!);
    } else {
      for (const [name, value] of Object.entries(fields ?? {})) if (value !== undefined) this.setHeader(name, value);
    }
    this.sendHead();
    return this;
  }
  /** Node's `res.setTimeout`: the web runtime owns timeouts. */
  setTimeout(): this {
    return this;
  }

  private sendHead(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    const headers = new Headers();
    for (const [name, value] of this.fields) {
      for (const item of Array.isArray(value) ? value : [value]) headers.append(name, String(item));
    }
    const empty = NULL_BODY.has(this.statusCode) || this.method === 'HEAD';
    if (empty) this.body.resume();
    // Pulled a chunk at a time (Readable.toWeb reads ahead without limit, so a body the handler wrote
    // whole would be queued and closed before a client's abort could stop it).
    const body = empty ? null : (ReadableStream as unknown as { from(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> }).from(this.body);
    this.settle(new Response(body, { status: this.statusCode, ...(this.statusMessage ? { statusText: this.statusMessage } : {}), headers }));
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.sendHead();
    if (this.body.write(chunk)) callback();
    else this.body.once('drain', () => callback());
  }
  override _final(callback: (err?: Error | null) => void): void {
    this.sendHead();
    this.body.end();
    callback();
  }
  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    // Destroyed before answering (a failure mid-way): the client sees an error, not a hang.
    if (!this.headersSent) this.settle(Response.error());
    // Destroyed after a clean end is Node's autoDestroy: the body still has bytes to give.
    if (err || !this.writableFinished) this.body.destroy(err ?? undefined);
    callback(err);
  }
}

/** The request side: the body as a Node stream, with method, url and lower-cased headers. */
function nodeRequest(request: Request): IncomingMessage {
  const body = request.body ? Readable.fromWeb(request.body as unknown as NodeReadableStream<Uint8Array>) : Readable.from([]);
  const url = new URL(request.url);
  const headers: IncomingHttpHeaders = {};
  request.headers.forEach((value, name) => {
    headers[name] = value;
  });
  return Object.assign(body, { method: request.method, url: `${url.pathname}${url.search}`, headers, httpVersion: '1.1' }) as unknown as IncomingMessage;
}

/**
 * Turns a Node `(req, res, next)` handler of this package (`storage.handler()`,
 * `createMediaHandler`, `createAvatarHandler`) into `(request: Request) => Promise<Response>`,
 * for frameworks built on the fetch API. The response streams: a large file is not buffered, a
 * Range request gets its 206 and only its bytes, and a client that goes away (`request.signal`)
 * stops the read.
 *
 * ```ts
 * // app/media/[...key]/route.ts (Next.js)
 * const serve = toWebHandler(storage.handler());
 * export const GET = serve;
 * export const HEAD = serve;
 * ```
 */
export function toWebHandler(handler: MediaRequestHandler, options: WebHandlerOptions = {}): WebRequestHandler {
  return async (request) => {
    const req = nodeRequest(request);
    const res = new ResponseCollector(request.method);
    const onAbort = (): void => {
      (req as unknown as Readable).destroy();
      // With an error, so the body stops even when the handler already wrote all of it (one Buffer).
      res.destroy(new Error('the client went away'));
    };
    request.signal?.addEventListener('abort', onAbort, { once: true });
    res.once('close', () => request.signal?.removeEventListener('abort', onAbort));
    // `next()` without an error: the request is not the handler's (Express would try the next route).
    const passedOn = new Promise<'passed'>((resolve) => {
      handler(req, res as unknown as ServerResponse, (err?: unknown) => {
        if (err) res.destroy(err instanceof Error ? err : new Error(String(err)));
        else resolve('passed');
      });
    });
    const first = await Promise.race([res.response, passedOn]);
    if (first !== 'passed') return first;
    return options.notFound
      ? options.notFound(request)
      : new Response('Not found', { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' } });
  };
}
