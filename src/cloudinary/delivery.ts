/**
 * Delivery: the URLs Cloudinary serves assets at, and reading them.
 *
 * Whether an object exists is never decided by a delivery URL: Cloudinary's CDN caches a 404 per
 * exact URL (for a minute, doubling up to a day), so a URL probed before an upload would answer
 * "missing" after it. Delivery URLs carry the asset's version, so every upload gets URLs no one
 * has asked for before, and reads of a located asset never meet a cached 404.
 */
import { Readable, Transform } from 'node:stream';
import type { ReadableStream } from 'node:stream/web';
import { MediaStorageError } from '../core/errors.js';
import { failOnStall } from '../core/stall.js';
import type { ByteRange } from '../core/types.js';
import { CloudinaryApiError, retryHintOf } from './errors.js';
import type { AssetRef } from './mapping.js';
import { loadSdk, type CloudinaryClient } from './sdk.js';

/** Builds and fetches delivery and download URLs for one storage. */
export class Delivery {
  constructor(
    private readonly client: CloudinaryClient,
    private readonly fetchImpl: (input: string, init?: RequestInit) => Promise<Response>,
  ) {}

  /**
   * A delivery URL. With `version` it is an exact URL that did not exist before that upload, so
   * no cached 404 (or older copy) can answer it; without one the SDK writes `v1` for paths with
   * folders. `format` undefined on a media asset asks for the original, as stored.
   */
  async url(ref: AssetRef, options: { version?: number; transform?: Record<string, unknown> } = {}): Promise<string> {
    const sdk = await loadSdk();
    const c = this.client.config;
    const type = ref.type ?? this.client.deliveryType;
    return sdk.utils.url(ref.publicId, {
      resource_type: ref.resourceType,
      type,
      ...(ref.resourceType !== 'raw' && ref.format ? { format: ref.format } : {}),
      ...(options.version !== undefined ? { version: options.version } : {}),
      ...(options.transform ? { transformation: [{ ...options.transform }] } : {}),
      secure: true,
      sign_url: type === 'authenticated',
      cloud_name: c.cloudName,
      api_secret: c.apiSecret,
      signature_algorithm: c.signatureAlgorithm,
      ...(c.secureDistribution ? { secure_distribution: c.secureDistribution } : {}),
      ...(c.privateCdn !== undefined ? { private_cdn: c.privateCdn } : {}),
      // Stable URLs: no `_a=` SDK-analytics query parameter.
      urlAnalytics: false,
      analytics: false,
    });
  }

  /** A signed API download URL (`private_download_url`) that expires; works for every delivery type and resource type. */
  async downloadUrl(ref: AssetRef, expiresIn: number, attachment: boolean): Promise<string> {
    const sdk = await loadSdk();
    return sdk.utils.private_download_url(
      ref.publicId,
      ref.resourceType === 'raw' ? undefined : ref.format,
      this.client.callOptions({
        resource_type: ref.resourceType,
        type: ref.type ?? this.client.deliveryType,
        expires_at: Math.floor(Date.now() / 1000) + Math.ceil(expiresIn),
        ...(attachment ? { attachment: true } : {}),
      }),
    );
  }

  /** A GET of an asset's versioned delivery URL; `timeout` bounds the wait for the response head, not the reading of a body. */
  async get(found: { ref: AssetRef; version?: number }, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
    const url = await this.url(found.ref, { version: found.version });
    const timeout = this.client.timeout;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new DOMException(`no answer from the delivery URL within ${timeout} ms`, 'TimeoutError')), timeout);
    const forward = (): void => controller.abort(signal?.reason);
    if (signal?.aborted) forward();
    signal?.addEventListener('abort', forward, { once: true });
    try {
      return await this.fetchImpl(url, { method: 'GET', headers, signal: controller.signal, redirect: 'follow' });
    } catch (err) {
      signal?.removeEventListener('abort', forward);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The bytes of a located asset (only `range` of them when given), as a stream that fails with a
   * TimeoutError when the delivery stops sending midway instead of hanging; undefined when the
   * delivery answers 404 (deleted since it was located).
   */
  async read(found: { ref: AssetRef; version?: number }, key: string, range: ByteRange | undefined, signal?: AbortSignal): Promise<Readable | undefined> {
    const res = await this.get(found, range ? { range: `bytes=${range.start}-${range.end ?? ''}` } : {}, signal);
    if (!res.ok) {
      await discard(res);
      if (res.status === 404) return undefined;
      if (res.status === 416) throw new MediaStorageError('INVALID_INPUT', `Range starts at ${range?.start}, past the end of "${key}"`, { key, status: 416 });
      throw deliveryError(res, `reading "${key}"`);
    }
    const timeout = this.client.timeout;
    const body = res.body ? Readable.fromWeb(res.body as ReadableStream<Uint8Array>) : Readable.from([]);
    const stream = failOnStall(body, timeout, () => new DOMException(`no bytes from the delivery URL for ${timeout} ms`, 'TimeoutError'));
    // A server that ignored the Range header sent everything: cut the range out here.
    if (!range || res.status !== 200) return stream;
    const sliced = sliceStream(range.start, range.end);
    stream.once('error', (err) => sliced.destroy(err));
    return stream.pipe(sliced);
  }
}

/** A delivery answer that is neither the object nor its absence. */
export function deliveryError(res: Response, what: string): CloudinaryApiError {
  const reason = res.headers.get('x-cld-error');
  const retryAfter = retryHintOf(res.status, {
    'retry-after': res.headers.get('retry-after') ?? undefined,
    'x-featureratelimit-reset': res.headers.get('x-featureratelimit-reset') ?? undefined,
  });
  return new CloudinaryApiError(`${what}: delivery answered ${res.status}${reason ? ` (${reason})` : ''}`, res.status, { source: 'delivery', retryAfter });
}

/** Drops a response's body unread. */
export async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => undefined);
}

/**
 * Up to `count` bytes of a response body, without reading the rest (a CDN may ignore Range);
 * fails with a TimeoutError when no bytes come for `timeoutMs`.
 */
export async function firstBytes(res: Response, count: number, timeoutMs: number): Promise<Buffer> {
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DOMException(`no bytes from the delivery URL for ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
  });
  try {
    while (bytes < count) {
      timer?.refresh();
      const { done, value } = await Promise.race([reader.read(), stalled]);
      if (done) break;
      chunks.push(value);
      bytes += value.length;
    }
  } finally {
    clearTimeout(timer);
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, count);
}

/** Skips `start` bytes and stops after `end`, for a server that ignored a Range header. */
export function sliceStream(start: number, end: number | undefined): Transform {
  let offset = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      const from = Math.max(0, start - offset);
      const to = end === undefined ? chunk.length : Math.min(chunk.length, end + 1 - offset);
      offset += chunk.length;
      done(null, from < to ? chunk.subarray(from, to) : undefined);
    },
  });
}
