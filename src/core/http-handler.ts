import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { isActiveContent, USER_CONTENT_CSP } from './content-type.js';
import { isMediaStorageError } from './errors.js';
import { tryNormalizeKey } from './keys.js';
import type { UrlSigner } from './signed-url.js';
import type { ByteRange, MediaStorage, ObjectInfo } from './types.js';

export interface MediaHandlerOptions {
  /** URL path the files are served under, e.g. `/media`. Requests outside it are passed to `next` or get 404. */
  basePath: string;
  /** Verifies `?expires=&signature=` parameters; without it signed URLs are not accepted. */
  signer?: UrlSigner;
  /** Serve only requests with a valid signature (private storage). */
  requireSignature?: boolean;
  /** Cache-Control for public responses. Default `public, max-age=3600`. */
  cacheControl?: string;
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

/** `attachment; filename="x"; filename*=UTF-8''…` with a safe ASCII fallback. */
export function contentDisposition(kind: 'attachment' | 'inline', filename: string | undefined): string {
  if (!filename) return kind;
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/**
 * The Content-Disposition a store should keep with an object so that, served from the store's
 * own domain, active content (HTML, SVG, ...) downloads instead of running: `undefined` for
 * passive content. Backends that serve objects themselves (S3, B2) store it at upload.
 */
export function dispositionForStoredObject(key: string, contentType: string): string | undefined {
  return isActiveContent(contentType) ? contentDisposition('attachment', key.slice(key.lastIndexOf('/') + 1)) : undefined;
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
 * Last-Modified, Range and 206, Cache-Control, `nosniff`, and active content (HTML, SVG, ...)
 * only as a sandboxed attachment.
 */
export function createMediaHandler(storage: MediaStorage, options: MediaHandlerOptions): MediaRequestHandler {
  const basePath = `/${options.basePath.replace(/^\/+|\/+$/g, '')}`.replace(/^\/$/, '');
  const cacheControl = options.cacheControl ?? 'public, max-age=3600';

  return (req, res, next) => {
    const notMine = (): void => (next ? next() : send(res, 404, 'Not found'));
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return send(res, 400, 'Bad request');
    }
    if (!url.pathname.startsWith(`${basePath}/`)) return notMine();
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
      cacheControl: signed ? 'private, max-age=60' : cacheControl,
      download: url.searchParams.has('download') ? (url.searchParams.get('download') ?? '') : undefined,
    }).catch((err: unknown) => {
      if (isMediaStorageError(err) && err.code === 'NOT_FOUND') return send(res, 404, 'Not found');
      if (next && !res.headersSent) return next(err);
      send(res, 500, 'Internal error');
    });
  };
}

async function serve(storage: MediaStorage, key: string, req: IncomingMessage, res: ServerResponse, opts: { cacheControl: string; download: string | undefined }): Promise<void> {
  const info: ObjectInfo = await storage.stat(key);
  res.setHeader('Content-Type', info.contentType);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Cache-Control', info.cacheControl ?? opts.cacheControl);
  if (info.etag) res.setHeader('ETag', `"${info.etag}"`);
  if (info.lastModified) res.setHeader('Last-Modified', info.lastModified.toUTCString());
  const filename = key.slice(key.lastIndexOf('/') + 1);
  if (isActiveContent(info.contentType)) {
    res.setHeader('Content-Security-Policy', USER_CONTENT_CSP);
    res.setHeader('Content-Disposition', contentDisposition('attachment', opts.download || filename));
  } else if (opts.download !== undefined) {
    res.setHeader('Content-Disposition', contentDisposition('attachment', opts.download || filename));
  }

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
