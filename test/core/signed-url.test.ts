import { describe, expect, it } from 'vitest';
import { UrlSigner } from '../../src/core/signed-url.js';

const secret = 'a-secret-of-sixteen-bytes';
const now = Date.UTC(2026, 0, 1);

function params(url: string): URLSearchParams {
  return new URL(url, 'http://x').searchParams;
}

describe('core/signed-url: UrlSigner', () => {
  const signer = new UrlSigner(secret);

  it('refuses a secret shorter than 16 bytes', () => {
    expect(() => new UrlSigner('short')).toThrow(expect.objectContaining({ code: 'CONFIG' }));
  });

  it('a signature verifies for its key until it expires, and not after', () => {
    const p = new URLSearchParams({ ...signer.sign('a/b.jpg', 60, undefined, now) });
    expect(signer.verify('a/b.jpg', p, now)).toBe(true);
    expect(signer.verify('a/b.jpg', p, now + 60_000)).toBe(true);
    expect(signer.verify('a/b.jpg', p, now + 61_000)).toBe(false);
  });

  it('binds the key, the expiry, the download name and the secret', () => {
    const p = new URLSearchParams({ ...signer.sign('a.jpg', 60, 'cv.pdf', now) });
    expect(signer.verify('a.jpg', p, now)).toBe(true);
    expect(signer.verify('b.jpg', p, now)).toBe(false);
    expect(new UrlSigner(`${secret}-other`).verify('a.jpg', p, now)).toBe(false);
    const renamed = new URLSearchParams(p);
    renamed.set('download', 'other.pdf');
    expect(signer.verify('a.jpg', renamed, now)).toBe(false);
    const dropped = new URLSearchParams(p);
    dropped.delete('download');
    expect(signer.verify('a.jpg', dropped, now)).toBe(false);
    const later = new URLSearchParams(p);
    later.set('expires', String(Number(p.get('expires')) + 3600));
    expect(signer.verify('a.jpg', later, now)).toBe(false);
  });

  it('accepts only the spelling sign() writes (no padding, no other base64 forms)', () => {
    const p = new URLSearchParams({ ...signer.sign('a.jpg', 60, undefined, now) });
    const padded = new URLSearchParams(p);
    padded.set('signature', `${p.get('signature')}=`);
    expect(signer.verify('a.jpg', padded, now)).toBe(false);
    expect(signer.verify('a.jpg', new URLSearchParams({ expires: 'soon', signature: p.get('signature')! }), now)).toBe(false);
  });

  it('signUrl appends to a URL with or without a query', () => {
    const url = signer.signUrl('/media/a.jpg?v=1', 'a.jpg', 60, 'x y.pdf');
    expect(url.startsWith('/media/a.jpg?v=1&expires=')).toBe(true);
    expect(params(url).get('download')).toBe('x y.pdf');
    expect(signer.verify('a.jpg', params(url))).toBe(true);
  });

  it('upload signatures grant type and size, and never pass for read signatures (or back)', () => {
    const { url, expiresAt } = signer.signUploadUrl('/media/a.jpg', 'a.jpg', 60, 'image/jpeg', 1000, now);
    expect(expiresAt.getTime()).toBe(now + 60_000);
    const p = params(url);
    expect(signer.verifyUpload('a.jpg', p, now)).toEqual({ contentType: 'image/jpeg', maxSize: 1000 });
    expect(signer.verify('a.jpg', p, now)).toBe(false);
    const bigger = new URLSearchParams(p);
    bigger.set('max', '100000');
    expect(signer.verifyUpload('a.jpg', bigger, now)).toBeUndefined();
    const retyped = new URLSearchParams(p);
    retyped.set('type', 'text/html');
    expect(signer.verifyUpload('a.jpg', retyped, now)).toBeUndefined();
    expect(signer.verifyUpload('a.jpg', p, now + 61_000)).toBeUndefined();
    expect(signer.verifyUpload('a.jpg', new URLSearchParams({ ...signer.sign('a.jpg', 60, undefined, now), type: 'image/jpeg' }), now)).toBeUndefined();
  });
});
