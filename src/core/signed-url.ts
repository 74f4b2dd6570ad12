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

  constructor(secret: string | Buffer) {
    const bytes = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
    if (bytes.length < 16) {
      throw new MediaStorageError('CONFIG', 'The URL signing secret must be at least 16 bytes long');
    }
    this.secret = bytes;
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
