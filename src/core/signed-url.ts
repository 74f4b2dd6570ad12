import { createHmac, timingSafeEqual } from 'node:crypto';
import { MediaStorageError } from './errors.js';

/** The query parameters a signed URL carries. */
export interface SignedParams {
  /** Expiry, Unix seconds. */
  expires: string;
  /** HMAC-SHA256, base64url. */
  signature: string;
  /** Present when the URL asks for a download; its value (possibly empty) is the file name. */
  download?: string;
}

/**
 * Signs and verifies expiring URLs for backends that serve files themselves (local disk,
 * memory), like Active Storage's signed blob URLs: an HMAC over the key, the expiry and the
 * download choice, compared in constant time and in one canonical spelling.
 */
export class UrlSigner {
  private readonly secret: Buffer;
  /** Upload signatures use a key of their own, so no read signature can ever pass for an upload's. */
  private readonly uploadSecret: Buffer;

  constructor(secret: string | Buffer) {
    const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
    if (bytes.length < 16) {
      throw new MediaStorageError('CONFIG', 'The URL signing secret must be at least 16 bytes long');
    }
    this.secret = bytes;
    this.uploadSecret = createHmac('sha256', bytes).update('media-storage direct upload').digest();
  }

  private mac(key: string, expires: string, download: string | undefined): Buffer {
    return createHmac('sha256', this.secret)
      .update(`${key}\n${expires}\n${download === undefined ? '-' : `+${download}`}`)
      .digest();
  }

  /** Query parameters that make `key` readable until `now + expiresIn` seconds. */
  sign(key: string, expiresIn: number, download?: string, now: number = Date.now()): SignedParams {
    const expires = String(Math.floor(now / 1000) + Math.ceil(expiresIn));
    const params: SignedParams = { expires, signature: this.mac(key, expires, download).toString('base64url') };
    if (download !== undefined) params.download = download;
    return params;
  }

  /** Appends signed parameters to a URL. */
  signUrl(url: string, key: string, expiresIn: number, download?: string): string {
    const p = this.sign(key, expiresIn, download);
    let query = `expires=${p.expires}&signature=${p.signature}`;
    if (p.download !== undefined) query += `&download=${encodeURIComponent(p.download)}`;
    return `${url}${url.includes('?') ? '&' : '?'}${query}`;
  }

  private uploadMac(key: string, expires: string, contentType: string, maxSize: string): string {
    return createHmac('sha256', this.uploadSecret).update(`${key}\n${expires}\n${contentType}\n${maxSize}`).digest('base64url');
  }

  /**
   * Appends to `url` the parameters of a signed upload: `key` may be written once through the
   * media handler until `now + expiresIn` seconds, with this content type and at most `maxSize`
   * bytes (`expires`, `type`, `max` and `signature`, all covered by the HMAC).
   */
  signUploadUrl(
    url: string,
    key: string,
    expiresIn: number,
    contentType: string,
    maxSize: number | undefined,
    now: number = Date.now(),
  ): { url: string; expiresAt: Date } {
    const expires = String(Math.floor(now / 1000) + Math.ceil(expiresIn));
    const max = maxSize === undefined ? '' : String(maxSize);
    const query = new URLSearchParams({ expires, type: contentType, ...(max ? { max } : {}), signature: this.uploadMac(key, expires, contentType, max) });
    return { url: `${url}${url.includes('?') ? '&' : '?'}${query.toString()}`, expiresAt: new Date(Number(expires) * 1000) };
  }

  /** The grant of a valid, unexpired upload signature for `key`; undefined otherwise. */
  verifyUpload(key: string, params: URLSearchParams, now: number = Date.now()): { contentType: string; maxSize: number | undefined } | undefined {
    const expires = params.get('expires');
    const signature = params.get('signature');
    const contentType = params.get('type');
    const max = params.get('max') ?? '';
    if (!expires || !signature || contentType === null || !/^\d{1,12}$/.test(expires) || !/^(\d{1,15})?$/.test(max)) return undefined;
    if (Number(expires) * 1000 < now) return undefined;
    const expected = Buffer.from(this.uploadMac(key, expires, contentType, max), 'latin1');
    const given = Buffer.from(signature, 'latin1');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    return { contentType, maxSize: max === '' ? undefined : Number(max) };
  }

  /** True when the parameters are a valid, unexpired signature for `key`. */
  verify(key: string, params: URLSearchParams, now: number = Date.now()): boolean {
    const expires = params.get('expires');
    const signature = params.get('signature');
    if (!expires || !signature || !/^\d{1,12}$/.test(expires)) return false;
    if (Number(expires) * 1000 < now) return false;
    const download = params.has('download') ? (params.get('download') ?? '') : undefined;
    // Compared as text in the one form sign() writes (unpadded base64url): decoding first would
    // also accept padding and other spellings of the same bytes.
    const expected = Buffer.from(this.mac(key, expires, download).toString('base64url'), 'latin1');
    const given = Buffer.from(signature, 'latin1');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
