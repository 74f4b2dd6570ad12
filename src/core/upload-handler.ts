/**
 * The media handler's one write: a `PUT` of a file under a signed upload URL (what
 * `presignUpload` gives on the local disk and in memory). Kept apart from serving: the handler
 * hands every PUT here and nothing else.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { contentTypeEssence } from './content-type.js';
import { isMediaStorageError, type MediaStorageErrorCode } from './errors.js';
import { tryNormalizeKey } from './keys.js';
import type { UrlSigner } from './signed-url.js';
import type { MediaStorage } from './types.js';

const STATUS: Partial<Record<MediaStorageErrorCode, number>> = {
  TOO_LARGE: 413,
  INVALID_INPUT: 400,
  INVALID_KEY: 400,
  ALREADY_EXISTS: 409,
  ABORTED: 400,
  UNSUPPORTED: 415,
};

function answer(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Cache-Control', 'no-store');
  if (status >= 400) res.setHeader('Connection', 'close');
  res.end(text);
}

/** Refuses without reading the body; the connection closes, so the rest of an upload is not waited for. */
function refuse(req: IncomingMessage, res: ServerResponse, status: number, message: string): void {
  answer(res, status, { error: message });
  req.resume();
}

/** The key a request path names under `basePath`, or undefined. */
function keyOf(url: URL, basePath: string): string | undefined {
  try {
    const decoded = url.pathname
      .slice(basePath.length + 1)
      .split('/')
      .map((segment) => decodeURIComponent(segment))
      .join('/');
    return tryNormalizeKey(decoded);
  } catch {
    return undefined;
  }
}

/**
 * Stores the body of a signed `PUT` under the key the URL names, through `storage.save` (so it is
 * atomic, and the key, size and serving rules apply as for any save): the signature must cover
 * this key and be unexpired, the declared Content-Type must be the signed one, and the body may
 * not exceed the signed size. Answers 200 with `{ key, size, contentType, etag }`; 403 for a bad
 * or expired signature, 415 for another type, 413 when too large.
 */
export function handleSignedUpload(
  storage: MediaStorage,
  signer: UrlSigner | undefined,
  basePath: string,
  url: URL,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const key = keyOf(url, basePath);
  if (!key) return refuse(req, res, 404, 'Not found');
  const grant = signer?.verifyUpload(key, url.searchParams);
  if (!grant) return refuse(req, res, 403, 'Forbidden: invalid or expired upload signature');
  const declared = req.headers['content-type'];
  if (!declared || contentTypeEssence(declared) !== contentTypeEssence(grant.contentType)) {
    return refuse(req, res, 415, `This upload must be sent with Content-Type: ${grant.contentType}`);
  }
  const length = req.headers['content-length'];
  if (grant.maxSize !== undefined && length !== undefined && Number(length) > grant.maxSize) {
    return refuse(req, res, 413, `This upload may be at most ${grant.maxSize} bytes`);
  }
  // A client that goes away mid-body aborts the save: nothing is stored.
  const aborted = new AbortController();
  const onClose = (): void => {
    if (!req.complete) aborted.abort();
  };
  req.once('close', onClose);
  storage
    .save(key, req, { contentType: grant.contentType, maxSize: grant.maxSize, signal: aborted.signal })
    .then(
      (info) => answer(res, 200, { key: info.key, size: info.size, contentType: info.contentType, ...(info.etag ? { etag: info.etag } : {}) }),
      (err: unknown) => {
        const code = isMediaStorageError(err) ? err.code : undefined;
        const status = (code && STATUS[code]) ?? 500;
        refuse(req, res, status, status === 500 ? 'Upload failed' : (err as Error).message);
      },
    )
    .finally(() => req.off('close', onClose));
}
