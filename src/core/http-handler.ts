import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { ServableObject } from './base.js';
import { isMediaStorageError, MediaStorageError } from './errors.js';
import { tryNormalizeKey } from './keys.js';
import { contentDisposition, DEFAULT_SERVING_RULE, isExecutableContentType, ServingRule, USER_CONTENT_CSP } from './serving.js';
import type { UrlSigner } from './signed-url.js';
import { handleSignedUpload } from './upload-handler.js';
import type { MediaStorage } from './types.js';

/**
 * How long a response may make no progress before the handler gives up on it: 60 s, nginx's
 * `send_timeout` default.
 */
export const DEFAULT_SEND_TIMEOUT_MS = 60_000;

/** The handler options `LocalStorage.handler()` and `MemoryStorage.handler()` accept. */
export interface MediaHandlerTuning {
  /**
   * Milliseconds a response may go without sending anything (a client that stops reading, or
   * reads a byte a second, lets nothing more into its connection) before the connection is closed
   * and the file it was reading is released. Measured between writes, not over the whole response,
   * so a slow but moving download is not cut. Default {@link DEFAULT_SEND_TIMEOUT_MS}; `0` waits forever.
   */
  sendTimeout?: number;
}

/** Options of {@link createMediaHandler}: where files are served, signature checks, caching and which types show inline. */
export interface MediaHandlerOptions extends MediaHandlerTuning {
  /** URL path the files are served under, e.g. `/media`. Requests outside it are passed to `next` or get 404. */
  basePath: string;
  /**
   * Verifies `?expires=&signature=` parameters; without it signed URLs are not accepted. It also
   * verifies signed uploads (`PUT` under the URL `presignUpload` gives; see upload-handler.ts).
   */
  signer?: UrlSigner;
  /** Serve only requests with a valid signature (private storage). */
  requireSignature?: boolean;
  /** Cache-Control for public responses. Default `public, max-age=3600`. */
  cacheControl?: string;
  /**
   * Content types shown inline besides the defaults (see `ServingOptions`). Default: the
   * storage's own (`inlineContentTypes` given to a built-in backend), else the default list.
   */
  inlineContentTypes?: readonly string[];
}

/** A Node `(req, res, next?)` handler: plain `http`, Express, Connect and Fastify (via middie or `raw`) all accept it. */
export type MediaRequestHandler = (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void;

type ParsedRange = { start: number; end: number } | 'unsatisfiable' | undefined;

/** Parses a single `bytes=` range against the object size; multiple ranges are served whole. */
export function parseRangeHeader(header: string | undefined, size: number): ParsedRange {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, a, b] = match;
  if (a === '' && b === '') return undefined;
  let start: number;
  let end: number;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== '' && Number(b) < start) return undefined;
  }
  if (start >= size || size === 0) return 'unsatisfiable';
  return { start, end };
}

export { contentDisposition } from './serving.js';

/**
 * @deprecated The serving rule decides this for every backend (`ServingRule.storedDisposition`).
 * The Content-Disposition a store keeps with an object under the default rule: `attachment;
 * filename=...` for everything not shown inline, `undefined` for inline types.
 */
export function dispositionForStoredObject(key: string, contentType: string): string | undefined {
  return DEFAULT_SERVING_RULE.storedDisposition(key, contentType);
}

/** The rule a handler applies: its own option, else the storage's, else the default. */
function servingRuleFor(storage: MediaStorage, inlineContentTypes: readonly string[] | undefined): ServingRule {
  if (inlineContentTypes) return new ServingRule({ inlineContentTypes });
  const own = (storage as { servingRule?: unknown }).servingRule;
  return own instanceof ServingRule ? own : DEFAULT_SERVING_RULE;
}

function etagMatches(header: string, etag: string | undefined): boolean {
  if (!etag) return false;
  if (header === `"${etag}"`) return true;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '').replace(/"/g, '') === etag);
}

function send(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cache-Control', 'no-store');
  res.end(message);
}

// A request target `new URL` gives back unchanged: an absolute path (not `//`, which URL reads as a
// host) of unreserved, sub-delim (but `'`, which URL encodes in a query) and percent characters,
// an optional query of the same, no fragment. Dot segments (`.`, `..`, `%2e`) are checked apart.
// Anything else takes `new URL`.
const PLAIN_TARGET = /^\/(?!\/)[A-Za-z0-9\-._~!$&()*+,;=:@%/?]*$/;
const ENCODED_DOT = /%2e/i;

/**
 * The path and query of a request target, exactly as `new URL(target, base)` has them; `undefined`
 * when unparseable. Exported for its tests only.
 * @internal
 */
export function splitTarget(target: string): { pathname: string; search: string } | undefined {
  if (PLAIN_TARGET.test(target)) {
    const q = target.indexOf('?');
    const pathname = q < 0 ? target : target.slice(0, q);
    if (!pathname.includes('/.') && !ENCODED_DOT.test(pathname)) return { pathname, search: q < 0 ? '' : target.slice(q + 1) };
  }
  try {
    const url = new URL(target, 'http://localhost');
    return { pathname: url.pathname, search: url.search.slice(1) };
  } catch {
    return undefined;
  }
}

/** How content of one stored type is served, decided once per type. */
interface Served {
  contentType: string;
  attachment: boolean;
  /** Markup an app chose to show inline is still sandboxed: it renders, and runs nothing. */
  executable: boolean;
}

/** A backend's own serving path when it has one (`BaseStorage.openForServing`), else stat() then read(). */
function opener(storage: MediaStorage): (key: string) => Promise<ServableObject> {
  const viaPublicApi = async (key: string): Promise<ServableObject> => {
    const info = await storage.stat(key);
    return { info, body: (range) => storage.read(key, range ? { range } : {}) };
  };
  const own = (storage as { openForServing?: (key: string) => Promise<ServableObject | undefined> }).openForServing;
  if (typeof own !== 'function') return viaPublicApi;
  return async (key) => (await own.call(storage, key)) ?? viaPublicApi(key);
}

function onSendTimeout(this: ServerResponse): void {
  this.destroy();
}

/**
 * Closes the connection when the response sends nothing for `ms`: the socket's idle timeout, which
 * Node keeps from firing while a write is still draining. The server sets its keep-alive timeout
 * again when the response finishes; when it has none, the socket's own timeout is put back.
 */
function armSendTimeout(res: ServerResponse, ms: number): void {
  const socket = res.socket;
  if (ms === 0 || !socket) return;
  res.setTimeout(ms, onSendTimeout);
  const server = (socket as { server?: { timeout?: number; keepAliveTimeout?: number } }).server;
  if (!server?.keepAliveTimeout) res.once('finish', () => socket.setTimeout(server?.timeout ?? 0));
}

/**
 * Serves a storage's objects over HTTP, the way a CDN would: Content-Type, ETag and 304,
 * Last-Modified, Range and 206, Cache-Control and `nosniff`, under the serving rules: only the
 * inline list (raster images, audio, video, and what the app adds) is shown inline; everything
 * else is a sandboxed attachment, and executable kinds (HTML, SVG, XML, JavaScript, CSS,
 * WebAssembly...) are sent as `application/octet-stream`, whatever the storage reports.
 *
 * On a built-in backend each request takes one lookup (`BaseStorage.openForServing`); small bodies
 * are sent from one Buffer, larger ones streamed; a response that stops moving for `sendTimeout`
 * is abandoned.
 */
export function createMediaHandler(storage: MediaStorage, options: MediaHandlerOptions): MediaRequestHandler {
  const basePath = `/${options.basePath.replace(/^\/+|\/+$/g, '')}`.replace(/^\/$/, '');
  const prefix = `${basePath}/`;
  const publicCacheControl = options.cacheControl ?? 'public, max-age=3600';
  const rule = servingRuleFor(storage, options.inlineContentTypes);
  const sendTimeout = options.sendTimeout ?? DEFAULT_SEND_TIMEOUT_MS;
  if (!(typeof sendTimeout === 'number' && sendTimeout >= 0 && Number.isFinite(sendTimeout))) {
    throw new MediaStorageError('CONFIG', `sendTimeout must be a number of milliseconds, 0 or more, not ${String(sendTimeout)}`);
  }
  const open = opener(storage);
  const decided = new Map<string, Served>();
  const servedAs = (contentType: string): Served => {
    let served = decided.get(contentType);
    if (!served) {
      const decision = rule.decide(contentType);
      served = {
        contentType: decision.contentType,
        attachment: decision.disposition === 'attachment',
        executable: isExecutableContentType(decision.contentType),
      };
      if (decided.size >= 256) decided.clear(); // types stored by other software can be anything
      decided.set(contentType, served);
    }
    return served;
  };

  /** Status, headers and body for one object, from the request's conditions and range. */
  const respond = async (
    req: IncomingMessage,
    res: ServerResponse,
    key: string,
    object: ServableObject,
    cacheControl: string,
    download: string | undefined,
  ): Promise<void> => {
    const { info } = object;
    const served = servedAs(info.contentType);
    const headers: string[] = [
      'Content-Type',
      served.contentType,
      'X-Content-Type-Options',
      'nosniff',
      'Accept-Ranges',
      'bytes',
      'Cache-Control',
      info.cacheControl ?? cacheControl,
    ];
    if (info.etag) headers.push('ETag', `"${info.etag}"`);
    const lastModified = info.lastModified?.toUTCString();
    if (lastModified) headers.push('Last-Modified', lastModified);
    const attachment = served.attachment || download !== undefined;
    if (attachment) headers.push('Content-Disposition', contentDisposition('attachment', download || key.slice(key.lastIndexOf('/') + 1)));
    if (attachment || served.executable) headers.push('Content-Security-Policy', USER_CONTENT_CSP);

    const ifNoneMatch = req.headers['if-none-match'];
    const ifModifiedSince = req.headers['if-modified-since'];
    const notModified = ifNoneMatch
      ? etagMatches(ifNoneMatch, info.etag)
      : !!(ifModifiedSince && info.lastModified && Math.floor(info.lastModified.getTime() / 1000) <= Math.floor(Date.parse(ifModifiedSince) / 1000));
    if (notModified) {
      res.writeHead(304, headers);
      res.end();
      return;
    }

    const size = info.size;
    let range: { start: number; end: number } | undefined;
    const rangeHeader = req.headers.range;
    if (rangeHeader) {
      const ifRange = req.headers['if-range'] as string | undefined;
      const parsed = !ifRange || etagMatches(ifRange, info.etag) || lastModified === ifRange ? parseRangeHeader(rangeHeader, size) : undefined;
      if (parsed === 'unsatisfiable') {
        headers.push('Content-Range', `bytes */${size}`);
        res.writeHead(416, headers);
        res.end();
        return;
      }
      range = parsed;
    }
    if (range) headers.push('Content-Range', `bytes ${range.start}-${range.end}/${size}`, 'Content-Length', String(range.end - range.start + 1));
    else headers.push('Content-Length', String(size));
    const status = range ? 206 : 200;
    if (req.method === 'HEAD' || size === 0) {
      res.writeHead(status, headers);
      res.end();
      return;
    }
    // The body is in hand (or its file open) before the status goes out: a file that vanished
    // since the lookup is still a clean 404.
    const body = await object.body(range);
    if (res.destroyed) {
      if (!Buffer.isBuffer(body)) body.destroy();
      return;
    }
    res.writeHead(status, headers);
    armSendTimeout(res, sendTimeout);
    if (Buffer.isBuffer(body)) res.end(body);
    else stream(body, res);
  };

  return (req, res, next) => {
    const notMine = (): void => (next ? next() : send(res, 404, 'Not found'));
    const target = splitTarget(req.url ?? '/');
    if (!target) return send(res, 400, 'Bad request');
    if (!target.pathname.startsWith(prefix)) return notMine();
    // Direct uploads (presignUpload): the one write, kept apart from serving (and off its fast path).
    if (req.method === 'PUT') return handleSignedUpload(storage, options.signer, basePath, new URL(req.url ?? '/', 'http://localhost'), req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, 'Method not allowed');
    }
    const encoded = target.pathname.slice(prefix.length);
    let decoded: string;
    try {
      decoded = encoded.includes('%') ? decodeURIComponent(encoded) : encoded;
    } catch {
      return send(res, 400, 'Bad request');
    }
    const key = tryNormalizeKey(decoded);
    if (!key) return send(res, 404, 'Not found');

    const params = target.search ? new URLSearchParams(target.search) : undefined;
    const signed = params?.has('signature') ?? false;
    if (signed && !options.signer?.verify(key, params!)) return send(res, 403, 'Forbidden: invalid or expired signature');
    if (!signed && options.requireSignature) return send(res, 403, 'Forbidden: this file needs a signed URL');
    const download = params?.has('download') ? (params.get('download') ?? '') : undefined;

    open(key)
      .then((object) => respond(req, res, key, object, signed ? 'private, max-age=60' : publicCacheControl, download))
      .catch((err: unknown) => {
        // INVALID_KEY: a name the backend reserves for itself (the local disk's temp files).
        if (isMediaStorageError(err) && (err.code === 'NOT_FOUND' || err.code === 'INVALID_KEY')) return send(res, 404, 'Not found');
        if (next && !res.headersSent) return next(err);
        send(res, 500, 'Internal error');
      });
  };
}

/**
 * `body.pipe(res)`, with each side's end releasing the other: a failed read closes the connection
 * (the status line is gone), and a closed connection closes the file. (stream.pipeline costs two
 * to three times the instructions per 64 KiB chunk of pipe into a ServerResponse, on Node 20.)
 */
function stream(body: Readable, res: ServerResponse): void {
  body.on('error', () => res.destroy());
  res.once('close', () => body.destroy());
  body.pipe(res);
}
