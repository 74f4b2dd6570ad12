import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { isMediaStorageError } from './errors.js';
import { tryNormalizeKey } from './keys.js';
import { contentDisposition, DEFAULT_SERVING_RULE, isExecutableContentType, ServingRule, USER_CONTENT_CSP } from './serving.js';
import type { UrlSigner } from './signed-url.js';
import { handleSignedUpload } from './upload-handler.js';
import type { ByteRange, MediaStorage, ObjectInfo } from './types.js';

export interface MediaHandlerOptions {
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

/**
 * Serves a storage's objects over HTTP, the way a CDN would: Content-Type, ETag and 304,
 * Last-Modified, Range and 206, Cache-Control and `nosniff`, under the serving rules: only the
 * inline list (raster images, audio, video, and what the app adds) is shown inline; everything
 * else is a sandboxed attachment, and executable kinds (HTML, SVG, XML, JavaScript, CSS,
 * WebAssembly...) are sent as `application/octet-stream`, whatever the storage reports.
 */
export function createMediaHandler(storage: MediaStorage, options: MediaHandlerOptions): MediaRequestHandler {
  const basePath = `/${options.basePath.replace(/^\/+|\/+$/g, '')}`.replace(/^\/$/, '');
  const cacheControl = options.cacheControl ?? 'public, max-age=3600';
  const rule = servingRuleFor(storage, options.inlineContentTypes);

  return (req, res, next) => {
    const notMine = (): void => (next ? next() : send(res, 404, 'Not found'));
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return send(res, 400, 'Bad request');
    }
    if (!url.pathname.startsWith(`${basePath}/`)) return notMine();
    // Direct uploads (presignUpload): the one write, kept apart from serving.
    if (req.method === 'PUT') return handleSignedUpload(storage, options.signer, basePath, url, req, res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return send(res, 405, 'Method not allowed');
    }
    let decoded: string;
    try {
      decoded = url.pathname
        .slice(basePath.length + 1)
        .split('/')
        .map((segment) => decodeURIComponent(segment))
        .join('/');
    } catch {
      return send(res, 400, 'Bad request');
    }
    const key = tryNormalizeKey(decoded);
    if (!key) return send(res, 404, 'Not found');

    const signed = url.searchParams.has('signature');
    if (signed && !options.signer?.verify(key, url.searchParams)) return send(res, 403, 'Forbidden: invalid or expired signature');
    if (!signed && options.requireSignature) return send(res, 403, 'Forbidden: this file needs a signed URL');

    serve(storage, key, req, res, {
      rule,
      cacheControl: signed ? 'private, max-age=60' : cacheControl,
      download: url.searchParams.has('download') ? (url.searchParams.get('download') ?? '') : undefined,
    }).catch((err: unknown) => {
      // INVALID_KEY: a name the backend reserves for itself (the local disk's temp files).
      if (isMediaStorageError(err) && (err.code === 'NOT_FOUND' || err.code === 'INVALID_KEY')) return send(res, 404, 'Not found');
      if (next && !res.headersSent) return next(err);
      send(res, 500, 'Internal error');
    });
  };
}

async function serve(storage: MediaStorage, key: string, req: IncomingMessage, res: ServerResponse, opts: { rule: ServingRule; cacheControl: string; download: string | undefined }): Promise<void> {
  const info: ObjectInfo = await storage.stat(key);
  const decision = opts.rule.decide(info.contentType);
  res.setHeader('Content-Type', decision.contentType);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Cache-Control', info.cacheControl ?? opts.cacheControl);
  if (info.etag) res.setHeader('ETag', `"${info.etag}"`);
  if (info.lastModified) res.setHeader('Last-Modified', info.lastModified.toUTCString());
  const filename = key.slice(key.lastIndexOf('/') + 1);
  const attachment = decision.disposition === 'attachment' || opts.download !== undefined;
  if (attachment) res.setHeader('Content-Disposition', contentDisposition('attachment', opts.download || filename));
  // Markup an app chose to show inline is still sandboxed: it renders, and runs nothing.
  if (attachment || isExecutableContentType(decision.contentType)) res.setHeader('Content-Security-Policy', USER_CONTENT_CSP);

  const ifNoneMatch = req.headers['if-none-match'];
  const ifModifiedSince = req.headers['if-modified-since'];
  const notModified = ifNoneMatch
    ? etagMatches(ifNoneMatch, info.etag)
    : !!(ifModifiedSince && info.lastModified && Math.floor(info.lastModified.getTime() / 1000) <= Math.floor(Date.parse(ifModifiedSince) / 1000));
  if (notModified) {
    res.statusCode = 304;
    res.end();
    return;
  }

  let range: ByteRange | undefined;
  const ifRange = req.headers['if-range'] as string | undefined;
  const rangeAllowed = !ifRange || etagMatches(ifRange, info.etag) || (info.lastModified !== undefined && info.lastModified.toUTCString() === ifRange);
  const parsed = rangeAllowed ? parseRangeHeader(req.headers.range, info.size) : undefined;
  if (parsed === 'unsatisfiable') {
    res.statusCode = 416;
    res.setHeader('Content-Range', `bytes */${info.size}`);
    res.end();
    return;
  }
  if (parsed) {
    range = parsed;
    res.statusCode = 206;
    res.setHeader('Content-Range', `bytes ${parsed.start}-${parsed.end}/${info.size}`);
    res.setHeader('Content-Length', String(parsed.end - parsed.start + 1));
  } else {
    res.statusCode = 200;
    res.setHeader('Content-Length', String(info.size));
  }
  if (req.method === 'HEAD' || info.size === 0) {
    res.end();
    return;
  }
  const stream = await storage.read(key, range ? { range } : {});
  await pipeline(stream, res);
}
