import { describe, expect, it } from 'vitest';
import { resolveContentType, sniffContentType } from '../../src/core/content-type.js';
import { isActiveContent } from '../../src/core/serving.js';

const hex = (h: string): Buffer => Buffer.from(h, 'hex');

describe('sniffContentType', () => {
  it.each([
    ['ffd8ffe000104a464946', 'image/jpeg'],
    ['89504e470d0a1a0a0000', 'image/png'],
    ['474946383961', 'image/gif'],
    ['52494646000000005745425056503820', 'image/webp'],
    ['000000206674797061766966', 'image/avif'],
    ['000000186674797068656963', 'image/heic'],
    ['00000018667479706d703432', 'video/mp4'],
    ['255044462d312e37', 'application/pdf'],
  ])('%s is %s', (bytes, type) => {
    expect(sniffContentType(hex(bytes))).toBe(type);
  });
  it('recognises markup, even after a BOM and white space', () => {
    expect(sniffContentType(Buffer.from('\ufeff  <!DOCTYPE html><html>'))).toBe('text/html');
    expect(sniffContentType(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'))).toBe('image/svg+xml');
    expect(sniffContentType(Buffer.from('<?xml version="1.0"?>\n<svg>'))).toBe('image/svg+xml');
    expect(sniffContentType(Buffer.from('<script>alert(1)</script>'))).toBe('text/html');
  });
  it('skips exactly the white space a latin1 trimStart would (tab, line breaks, space, NBSP) before the first tag', () => {
    expect(sniffContentType(Buffer.from([0xef, 0xbb, 0xbf, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0xa0, ...Buffer.from('<html>')]))).toBe('text/html');
    expect(sniffContentType(Buffer.from(' \n <svg>'))).toBe('image/svg+xml');
    expect(sniffContentType(Buffer.from('x<html>'))).toBeUndefined();
    expect(sniffContentType(Buffer.from([0x1c, ...Buffer.from('<html>')]))).toBeUndefined();
    // U+0085 (NEL) is not white space to trimStart, so it is not skipped either.
    expect(sniffContentType(Buffer.from([0x85, ...Buffer.from('<html>')]))).toBeUndefined();
    expect(sniffContentType(Buffer.concat([Buffer.alloc(600, 0x20), Buffer.from('<html>')]))).toBeUndefined();
  });
  it('says nothing about plain text', () => {
    expect(sniffContentType(Buffer.from('name,email\nAda,ada@example.com'))).toBeUndefined();
    expect(sniffContentType(Buffer.alloc(0))).toBeUndefined();
  });
});

describe('resolveContentType', () => {
  it('prefers the explicit option, then the bytes, then the extension', () => {
    const png = hex('89504e470d0a1a0a');
    expect(resolveContentType('a.jpg', png, 'image/x-custom')).toBe('image/x-custom');
    expect(resolveContentType('a.jpg', png)).toBe('image/png');
    expect(resolveContentType('a.csv', Buffer.from('a,b'))).toBe('text/csv');
    expect(resolveContentType('a', Buffer.from('?'))).toBe('application/octet-stream');
  });
});

describe('isActiveContent', () => {
  it.each(['text/html', 'text/html; charset=utf-8', 'image/svg+xml', 'application/xhtml+xml', 'text/javascript', 'application/pdf', 'application/rss+xml'])(
    '%s is active',
    (t) => {
      expect(isActiveContent(t)).toBe(true);
    },
  );
  it.each(['image/png', 'image/jpeg', 'text/plain', 'video/mp4', 'application/octet-stream', undefined])('%s is passive', (t) => {
    expect(isActiveContent(t)).toBe(false);
  });
});
