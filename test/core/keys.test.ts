import { describe, expect, it } from 'vitest';
import {
  compareKeys,
  encodeKeyPath,
  listedNameProblem,
  normalizationTwins,
  normalizeKey,
  normalizeLocation,
  normalizePrefix,
  splitKey,
  tryNormalizeKey,
  tryValidateKey,
  validateKey,
} from '../../src/core/keys.js';
import { HOSTILE_KEYS, SPECIAL_KEYS } from '../../src/testing/keys.js';
import { MediaStorageError } from '../../src/core/errors.js';

describe('normalizeKey', () => {
  it.each(HOSTILE_KEYS.map((k) => [JSON.stringify(k).slice(0, 60), k]))('rejects %s', (_label, key) => {
    expect(() => normalizeKey(key)).toThrowError(expect.objectContaining({ code: 'INVALID_KEY' }));
  });
  it.each(SPECIAL_KEYS.map((k) => [k.slice(0, 60), k]))('accepts %s', (_label, key) => {
    expect(validateKey(key)).toBe(key);
  });
  it('keeps keys byte-exact: NFD and NFC spellings are two keys', () => {
    expect(validateKey('cafe\u0301.jpg')).toBe('cafe\u0301.jpg');
    expect(validateKey('caf\u00e9.jpg')).toBe('caf\u00e9.jpg');
    // The 0.1 name still answers, now without rewriting the key.
    expect(normalizeKey('cafe\u0301.jpg')).toBe('cafe\u0301.jpg');
    expect(normalizePrefix('cafe\u0301/')).toBe('cafe\u0301/');
  });
  it('names the other spellings of a key', () => {
    expect(normalizationTwins('cafe\u0301.jpg')).toEqual(['caf\u00e9.jpg']);
    expect(normalizationTwins('caf\u00e9.jpg')).toEqual(['cafe\u0301.jpg']);
    expect(normalizationTwins('plain.jpg')).toEqual([]);
    expect(normalizationTwins('\u65e5\u672c.jpg')).toEqual([]);
  });
  it('counts the bytes of the key as given (an NFD key is longer than its NFC twin)', () => {
    expect(tryValidateKey('\u00e9'.repeat(127))).toBeDefined();
    expect(tryValidateKey('e\u0301'.repeat(127))).toBeUndefined();
  });
  it('rejects non-strings', () => {
    for (const key of [undefined, null, 42, {}, ['a']]) expect(tryNormalizeKey(key)).toBeUndefined();
  });
  it('accepts keys up to 1024 UTF-8 bytes and segments up to 255', () => {
    const longest = Array.from({ length: 5 }, () => 'a'.repeat(204)).join('/');
    expect(normalizeKey(longest)).toHaveLength(1024);
    expect(tryNormalizeKey(`${longest}b`)).toBeUndefined();
    expect(normalizeKey('s'.repeat(255))).toHaveLength(255);
    // 2-byte characters count twice
    expect(tryNormalizeKey('é'.repeat(128))).toBeUndefined();
    expect(tryNormalizeKey('é'.repeat(127))).toBeDefined();
  });
  it('does not mention a long key in full in the message', () => {
    try {
      normalizeKey(`${'z'.repeat(2000)}\u0000`);
    } catch (err) {
      expect((err as Error).message.length).toBeLessThan(200);
    }
  });
});

describe('printable ASCII keys (checked without the Unicode steps)', () => {
  it('still get every structural check', () => {
    for (const key of [
      '../a.jpg',
      'a/../b.jpg',
      'a/./b.jpg',
      '/a.jpg',
      'a\\b.jpg',
      'C:a.jpg',
      'a//b.jpg',
      'a/',
      'a/ . /b',
      'a/.../b',
      `${'a'.repeat(252)}.jpg`,
      `${'a/'.repeat(512)}a`,
    ]) {
      expect(() => normalizeKey(key), key).toThrow(MediaStorageError);
    }
  });
  it('accept the limits exactly', () => {
    expect(normalizeKey(`${'a'.repeat(251)}.jpg`)).toHaveLength(255);
    const longest = `${'a/'.repeat(511)}ab`;
    expect(Buffer.byteLength(longest)).toBe(1024);
    expect(normalizeKey(longest)).toBe(longest);
    expect(normalizeKey(' ~!$&()+,;=@[]^_`{}.jpg')).toBe(' ~!$&()+,;=@[]^_`{}.jpg');
  });
  it('DEL and other controls at the edges of the printable range go through the full checks', () => {
    for (const key of ['a\x7f.jpg', 'a\x1f.jpg', 'a\u0080.jpg']) expect(() => normalizeKey(key)).toThrow(/control characters/);
  });
});

describe('listed names that are not keys', () => {
  it('calls an empty name ending in "/" a folder marker, and everything else that breaks the rule an invalid key', () => {
    expect(listedNameProblem('profile_images/', 0)?.reason).toBe('folder-marker');
    expect(listedNameProblem('', 0)?.reason).toBe('folder-marker');
    expect(listedNameProblem('profile_images/', 12)?.reason).toBe('invalid-key');
    expect(listedNameProblem('a//', 0)?.reason).toBe('invalid-key');
    for (const name of ['./dot.jpg', '//double.jpg', 'a//b.jpg', 'ctl\u0001.txt', 'x'.repeat(1025)])
      expect(listedNameProblem(name, 1)?.reason, name).toBe('invalid-key');
    expect(listedNameProblem('Jose\u0301.jpg', 1)).toBeUndefined();
    expect(listedNameProblem('ctl\u0001.txt', 1)?.message).toMatch(/control characters/);
  });
});

describe('prefixes and helpers', () => {
  it('normalizePrefix allows empty and trailing slash, rejects traversal', () => {
    expect(normalizePrefix('')).toBe('');
    expect(normalizePrefix(undefined)).toBe('');
    expect(normalizePrefix('a/b/')).toBe('a/b/');
    expect(normalizePrefix('a/b')).toBe('a/b');
    expect(() => normalizePrefix('../')).toThrow();
    expect(() => normalizePrefix('/')).toThrow();
  });
  it('normalizeLocation trims slashes', () => {
    expect(normalizeLocation('/media/')).toBe('media/');
    expect(normalizeLocation('media')).toBe('media/');
    expect(normalizeLocation('')).toBe('');
    expect(() => normalizeLocation('../x')).toThrow();
  });
  it('encodeKeyPath encodes each segment', () => {
    expect(encodeKeyPath('a b/c#d?e.jpg')).toBe('a%20b/c%23d%3Fe.jpg');
  });
  it('splitKey', () => {
    expect(splitKey('a/b/c.tar.gz')).toEqual({ dir: 'a/b/', stem: 'c.tar', ext: '.gz' });
    expect(splitKey('.hidden')).toEqual({ dir: '', stem: '.hidden', ext: '' });
    expect(splitKey('noext')).toEqual({ dir: '', stem: 'noext', ext: '' });
  });
});

describe('compareKeys', () => {
  const utf8 = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
  it('orders by UTF-8 bytes where UTF-16 order disagrees (above U+FFFF against U+E000-U+FFFF)', () => {
    expect('\u{1f600}' < '\uff21').toBe(true); // JavaScript's order
    expect(compareKeys('\u{1f600}', '\uff21')).toBeGreaterThan(0);
    expect(compareKeys('\ue000', '\u{10000}')).toBeLessThan(0);
    expect(compareKeys('a/\u{1f600}.jpg', 'a/\uffff.jpg')).toBeGreaterThan(0);
  });
  it('agrees with a byte comparison on every pair of a mixed sample, and is 0 only for equal keys', () => {
    const sample = [
      '',
      'a',
      'a-b',
      'a.b',
      'a/b',
      'a0',
      'B',
      'b',
      '\u007f',
      '\u0080',
      '\u00e9',
      '\u07ff',
      '\u0800',
      '\ud7ff',
      '\ue000',
      '\uff21',
      '\uffff',
      '\u{10000}',
      '\u{1f600}',
      '\u{10ffff}',
      'ab\u{1f600}',
      'ab\uffee',
      'ab',
    ];
    for (const a of sample)
      for (const b of sample) expect(Math.sign(compareKeys(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(Math.sign(utf8(a, b)));
    expect([...sample].sort(compareKeys)).toEqual([...sample].sort(utf8));
  });
});
