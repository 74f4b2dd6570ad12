// The serving rules (src/core/serving.ts), the sniffer's view of markup, explicit content types,
// the headers the media handler sends, and the canonical form of signed-URL signatures.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { normalizeContentType, sniffContentType } from '../../src/core/content-type.js';
import { createMediaHandler } from '../../src/core/http-handler.js';
import { normalizeKey } from '../../src/core/keys.js';
import { DEFAULT_SERVING_RULE, isExecutableContentType, ServingRule, USER_CONTENT_CSP } from '../../src/core/serving.js';
import { UrlSigner } from '../../src/core/signed-url.js';
import { StorageLayer } from '../../src/layers/layer.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { failureCode } from '../support/failure.js';
import { listen } from '../support/http.js';

const EXECUTABLE = [
  'text/javascript',
  'application/javascript',
  'application/x-javascript',
  'application/ecmascript',
  'application/x-ecmascript',
  'text/ecmascript',
  'text/x-ecmascript',
  'text/x-javascript',
  'text/jscript',
  'text/livescript',
  'text/javascript1.5',
  'Text/JavaScript; charset=utf-8',
  'text/html',
  'text/html; charset=utf-8',
  'application/xhtml+xml',
  'image/svg+xml',
  'application/xml',
  'text/xml',
  'application/rss+xml',
  'application/mathml+xml',
  'application/xslt+xml',
  'text/xsl',
  'text/css',
  'application/wasm',
  'application/x-shockwave-flash',
  'multipart/x-mixed-replace',
  'not a type',
];

describe('ServingRule', () => {
  const rule = DEFAULT_SERVING_RULE;

  it.each(['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif', 'image/x-icon', 'video/mp4', 'video/webm', 'audio/mpeg', 'audio/ogg'])(
    'shows %s inline under its own type',
    (type) => {
      expect(rule.decide(type)).toEqual({ contentType: type, disposition: 'inline' });
    },
  );

  it.each(EXECUTABLE)('serves %s as a binary attachment', (type) => {
    expect(isExecutableContentType(type)).toBe(true);
    expect(rule.decide(type)).toEqual({ contentType: 'application/octet-stream', disposition: 'attachment' });
  });

  it.each([
    'text/plain',
    'text/plain; charset=utf-8',
    'application/json',
    'text/csv',
    'application/pdf',
    'application/zip',
    'application/octet-stream',
    'image/x-custom',
  ])('keeps %s under its own type, as an attachment', (type) => {
    expect(isExecutableContentType(type)).toBe(false);
    expect(rule.decide(type)).toEqual({ contentType: type, disposition: 'attachment' });
  });

  it('is idempotent: a decided type decides the same way again', () => {
    for (const type of [...EXECUTABLE, 'image/png', 'text/plain', 'application/pdf']) {
      const once = rule.decide(type);
      expect(rule.decide(once.contentType)).toEqual(once);
    }
  });

  it('widens the inline list only as asked: PDF by name, executable kinds only when listed exactly', () => {
    const widened = new ServingRule({ inlineContentTypes: ['application/pdf', 'image/*', 'text/*'] });
    expect(widened.decide('application/pdf')).toEqual({ contentType: 'application/pdf', disposition: 'inline' });
    expect(widened.decide('text/plain').disposition).toBe('inline');
    // A wildcard never lets an executable kind through.
    expect(widened.decide('image/svg+xml')).toEqual({ contentType: 'application/octet-stream', disposition: 'attachment' });
    expect(widened.decide('text/html')).toEqual({ contentType: 'application/octet-stream', disposition: 'attachment' });
    expect(widened.decide('text/css').contentType).toBe('application/octet-stream');
    const svg = new ServingRule({ inlineContentTypes: ['Image/SVG+XML'] });
    expect(svg.decide('image/svg+xml')).toEqual({ contentType: 'image/svg+xml', disposition: 'inline' });
    expect(svg.inlineContentTypes).toContain('image/svg+xml');
  });

  it('refuses an inline list that is not content types with CONFIG', () => {
    for (const bad of [['pdf'], ['text/html\r\nX: 1'], [42], 'application/pdf']) {
      expect(() => new ServingRule({ inlineContentTypes: bad as never }), JSON.stringify(bad)).toThrowError(expect.objectContaining({ code: 'CONFIG' }));
    }
  });

  it('never stores markup under a type a browser shows inline, whatever is claimed', () => {
    const html = Buffer.from('<!-- x --><html><script>alert(1)</script></html>');
    expect(rule.contentTypeFor('image/jpeg', html)).toBe('application/octet-stream');
    expect(rule.contentTypeFor('text/plain', html)).toBe('text/plain');
    expect(rule.contentTypeFor('image/png', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe('image/png');
    expect(new ServingRule({ inlineContentTypes: ['text/html'] }).contentTypeFor('text/html', html)).toBe('text/html');
  });

  it('stores an attachment disposition, with the file name, for everything not shown inline', () => {
    expect(rule.storedDisposition('a/photo.png', 'image/png')).toBeUndefined();
    expect(rule.storedDisposition('a/notes.txt', 'text/plain')).toBe(`attachment; filename="notes.txt"; filename*=UTF-8''notes.txt`);
    expect(rule.storedDisposition('a/x.js', 'application/octet-stream')).toMatch(/^attachment; filename="x.js"/);
  });
});

describe('sniffing markup', () => {
  it.each([
    ['<!-- x --><html><script>alert(1)</script></html>', 'text/html'],
    ['<!-- one --> \n <!-- two --><p>hi', 'text/html'],
    ['<!-- a comment that never ends', 'text/html'],
    [`<!--${'x'.repeat(600)}-->`, 'text/html'],
    ['\ufeff<!-- x --> <svg xmlns="http://www.w3.org/2000/svg">', 'image/svg+xml'],
    ['<!-- x --><?xml version="1.0"?><svg>', 'image/svg+xml'],
    ['<?xml version="1.0"?><rss/>', 'application/xml'],
    ['<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN"><svg>', 'image/svg+xml'],
    ['</p>', 'text/html'],
    ['<?php echo 1;', 'text/html'],
    ['<x:html xmlns:x="http://www.w3.org/1999/xhtml">', 'text/html'],
  ])('%j is %s', (body, type) => {
    expect(sniffContentType(Buffer.from(body))).toBe(type);
  });
  it('decodes UTF-16 with a byte order mark, in either order', () => {
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('<html><script>alert(1)</script>', 'utf16le')]);
    const be = Buffer.from(Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from('<!-- x --><svg>', 'utf16le').swap16()]));
    expect(sniffContentType(le)).toBe('text/html');
    expect(sniffContentType(be)).toBe('image/svg+xml');
  });
  it('does not take binary data that starts with "<" for markup', () => {
    expect(sniffContentType(Buffer.from('<p>\u0000\u0001\u0002binary'))).toBeUndefined();
    let markup = 0;
    for (let i = 0; i < 20_000; i++) {
      const head = randomBytes(512);
      head[0] = 0x3c; // "<"
      head[1] = 0x61 + (i % 26); // a letter: a tag, were this text
      if (sniffContentType(head) !== undefined) markup++;
    }
    expect(markup).toBe(0);
    // A comment opening is HTML whatever follows, as in the WHATWG table.
    expect(sniffContentType(Buffer.concat([Buffer.from('<!-- '), randomBytes(100)]))).toBe('text/html');
  });
  it.each(['<3 you', '< html>', 'a<html>', '1 < 2', 'plain words'])('%j is not markup', (body) => {
    expect(sniffContentType(Buffer.from(body))).toBeUndefined();
  });
});

describe('normalizeContentType', () => {
  it.each([
    ['image/png', 'image/png'],
    ['Image/PNG', 'image/png'],
    ['text/plain;charset=UTF-8', 'text/plain; charset=UTF-8'],
    ['  text/plain ; Charset=utf-8 ; format=flowed ', 'text/plain; charset=utf-8; format=flowed'],
    ['multipart/form-data; boundary="a b;c"', 'multipart/form-data; boundary="a b;c"'],
    ['application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'],
    ['text/plain;', 'text/plain'],
  ])('%j is %j', (input, out) => {
    expect(normalizeContentType(input)).toBe(out);
  });
  it.each([
    'text/plain\r\nX-Injected: 1',
    'text/html\u0000',
    'text/plain\n',
    'image/jpeg\t',
    'tëxt/plain',
    'jpeg',
    '',
    'image/',
    '/png',
    'image/png/x',
    'image png',
    'image/png; charset',
    'image/png; =x',
    'image/png; a="unterminated',
    `image/${'x'.repeat(300)}`,
  ])('%j is INVALID_INPUT', (input) => {
    expect(() => normalizeContentType(input)).toThrowError(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });
});

describe('media handler headers', () => {
  const kinds: Array<[string, string | Buffer, string | undefined]> = [
    ['photo.png', Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), undefined],
    ['clip.mp4', Buffer.from('00000018667479706d703432', 'hex'), undefined],
    ['notes.txt', 'words', undefined],
    ['doc.pdf', '%PDF-1.7', undefined],
    ['app.js', 'window.x = 1', undefined],
    ['js-as.jpg', 'window.x = 1', 'text/javascript'],
    ['style.css', 'body{}', undefined],
    ['page.html', '<p>hi', undefined],
    ['comment.jpg', '<!-- x --><html>', undefined],
    ['drawing.svg', '<svg xmlns="http://www.w3.org/2000/svg"/>', undefined],
    ['module.wasm', Buffer.from('0061736d01000000', 'hex'), undefined],
  ];

  async function headersOf(storage: MemoryStorage, handler = storage.handler()): Promise<Record<string, Record<string, string | null>>> {
    const server = await listen((req, res) => handler(req, res));
    try {
      const out: Record<string, Record<string, string | null>> = {};
      for (const [name, body, contentType] of kinds) {
        const info = await storage.save(name, body, contentType ? { contentType } : {});
        const res = await fetch(`${server.url}/media/${name}`);
        await res.arrayBuffer();
        out[name] = {
          saved: info.contentType,
          type: res.headers.get('content-type'),
          disposition: res.headers.get('content-disposition')?.replace(/;.*/, '') ?? null,
          csp: res.headers.get('content-security-policy') === USER_CONTENT_CSP ? 'sandbox' : res.headers.get('content-security-policy'),
          nosniff: res.headers.get('x-content-type-options'),
        };
      }
      return out;
    } finally {
      await server.close();
    }
  }

  const inline = (type: string) => ({ saved: type, type, disposition: null, csp: null, nosniff: 'nosniff' });
  const attachment = (type: string) => ({ saved: type, type, disposition: 'attachment', csp: 'sandbox', nosniff: 'nosniff' });

  it('sends only raster images, audio and video inline; everything else as a sandboxed attachment, executable kinds as binary', async () => {
    expect(await headersOf(new MemoryStorage())).toEqual({
      'photo.png': inline('image/png'),
      'clip.mp4': inline('video/mp4'),
      'notes.txt': attachment('text/plain'),
      'doc.pdf': attachment('application/pdf'),
      'app.js': attachment('application/octet-stream'),
      'js-as.jpg': attachment('application/octet-stream'),
      'style.css': attachment('application/octet-stream'),
      'page.html': attachment('application/octet-stream'),
      'comment.jpg': attachment('application/octet-stream'),
      'drawing.svg': attachment('application/octet-stream'),
      'module.wasm': attachment('application/octet-stream'),
    });
  });

  it("follows the storage's widened list, keeps markup it shows inline sandboxed, and the handler's own option wins", async () => {
    const widened = new MemoryStorage({ inlineContentTypes: ['application/pdf', 'image/svg+xml'] });
    const seen = await headersOf(widened);
    expect(seen['doc.pdf']).toEqual(inline('application/pdf'));
    expect(seen['drawing.svg']).toEqual({ ...inline('image/svg+xml'), csp: 'sandbox' });
    expect(seen['app.js']).toEqual(attachment('application/octet-stream'));
    // Behind a layer the storage's rule is out of sight: the default applies, unless the handler is told.
    const layered = new StorageLayer(widened);
    const fromLayer = await headersOf(widened, createMediaHandler(layered, { basePath: '/media' }));
    expect(fromLayer['doc.pdf']).toMatchObject({ type: 'application/pdf', disposition: 'attachment' });
    expect(fromLayer['drawing.svg']).toMatchObject({ type: 'application/octet-stream', disposition: 'attachment' });
    const told = await headersOf(widened, createMediaHandler(layered, { basePath: '/media', inlineContentTypes: ['application/pdf'] }));
    expect(told['doc.pdf']).toMatchObject({ type: 'application/pdf', disposition: null });
  });
});

describe('signed URLs', () => {
  const signer = new UrlSigner('serving-test-secret-0123456789');
  it('accept a signature only in the one form sign() writes', () => {
    const params = signer.sign('a/b.jpg', 60);
    const query = (signature: string): URLSearchParams => new URLSearchParams({ expires: params.expires, signature });
    expect(signer.verify('a/b.jpg', query(params.signature))).toBe(true);
    // The same bytes, spelled otherwise: padded, or with the unused low bits of the last character set.
    const last = params.signature.slice(-1);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sibling = alphabet[alphabet.indexOf(last) ^ 1]!;
    const sameBytes = [`${params.signature}=`, `${params.signature}==`, params.signature.slice(0, -1) + sibling];
    for (const variant of sameBytes) {
      expect(Buffer.from(variant, 'base64url').equals(Buffer.from(params.signature, 'base64url')), variant).toBe(true);
      expect(signer.verify('a/b.jpg', query(variant)), variant).toBe(false);
    }
  });
});

describe('keys that are not well-formed UTF-16', () => {
  it('are INVALID_KEY, so they never alias U+FFFD, and url() never throws anything else', async () => {
    for (const key of ['sur/\ud800x.jpg', 'sur/x\udfff.jpg', '\ud83d.png', 'a/\ude00\ud83d.png']) {
      expect(() => normalizeKey(key), JSON.stringify(key)).toThrowError(expect.objectContaining({ code: 'INVALID_KEY' }));
    }
    expect(normalizeKey('sur/\ufffdx.jpg')).toBe('sur/\ufffdx.jpg');
    expect(normalizeKey('emoji 😀.png')).toBe('emoji 😀.png');
    const memory = new MemoryStorage();
    expect(await failureCode(memory.url('sur/\ud800x.jpg'))).toBe('INVALID_KEY');
    expect(await failureCode(memory.list('half-\ud83d'))).toBe('INVALID_KEY');
  });
});
