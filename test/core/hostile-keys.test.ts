import { describe, expect, it } from 'vitest';
import { normalizeKey, tryNormalizeKey } from '../../src/core/keys.js';
import { SPECIAL_KEYS } from '../../src/testing/keys.js';
import { describeKey, MUST_REJECT_KEYS, REJECT_OR_STORE_KEYS } from '../../src/testing/hostile-keys.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
    return 'accepted';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

describe('the hostile-key corpus against the core key rule', () => {
  it('has at least 200 keys, without duplicates', () => {
    expect(MUST_REJECT_KEYS.length + REJECT_OR_STORE_KEYS.length).toBeGreaterThanOrEqual(200);
    expect(new Set(MUST_REJECT_KEYS).size).toBe(MUST_REJECT_KEYS.length);
    expect(new Set(REJECT_OR_STORE_KEYS).size).toBe(REJECT_OR_STORE_KEYS.length);
  });

  it('rejects every must-reject key with INVALID_KEY', () => {
    const accepted = MUST_REJECT_KEYS.filter((k) => codeOf(() => normalizeKey(k)) !== 'INVALID_KEY').map(describeKey);
    expect(accepted).toEqual([]);
  });

  it('accepts the reject-or-store keys except where a rule says otherwise, and keeps them literal', () => {
    for (const key of REJECT_OR_STORE_KEYS) {
      const out = tryNormalizeKey(key);
      if (out === undefined) continue;
      expect(out, describeKey(key)).toBe(key);
      // Whatever is accepted has no traversal segment, literally or after NFKC.
      for (const form of [out, out.normalize('NFKC')]) {
        expect(
          form.split('/').some((s) => s === '..' || s === '.'),
          describeKey(key),
        ).toBe(false);
        expect(form.startsWith('/') || form.includes('\\'), describeKey(key)).toBe(false);
      }
    }
    // Percent-encodings are never decoded by the key rule.
    expect(normalizeKey('%2e%2e/x.txt')).toBe('%2e%2e/x.txt');
    expect(normalizeKey('..%2fetc%2fpasswd')).toBe('..%2fetc%2fpasswd');
  });
});

describe('key rules added for the corpus', () => {
  it('rejects the Unicode line and paragraph separators like other line breaks', () => {
    expect(codeOf(() => normalizeKey('a\u2028b.txt'))).toBe('INVALID_KEY');
    expect(codeOf(() => normalizeKey('a\u2029b.txt'))).toBe('INVALID_KEY');
  });

  it('rejects segments of only dots and spaces (Windows trims them to "." or "..")', () => {
    for (const key of ['...', 'a/.../b', '.. /x', ' ../x', '. .', 'a/.. '])
      expect(
        codeOf(() => normalizeKey(key)),
        key,
      ).toBe('INVALID_KEY');
    for (const key of ['.hidden', '..x', 'x..', 'a..b', 'file.txt.']) expect(normalizeKey(key)).toBe(key);
  });

  it('rejects look-alikes that become traversal, absolute paths or backslashes under NFKC', () => {
    for (const key of ['．．/x', '．．／x', '‥/x', '․․/x', '﹒﹒/x', '／etc／passwd', '＼x', 'a＼b', 'Ｃ：／x', 'ｃ:x', 'a／／b']) {
      expect(
        codeOf(() => normalizeKey(key)),
        key,
      ).toBe('INVALID_KEY');
    }
  });

  it('still accepts look-alikes that NFKC maps to harmless names, and every special key', () => {
    for (const key of ['a／b.txt', 'photo．jpg', '資料／2024.pdf', 'résumé/ﬁle-ligature.txt', '..∕etc∕passwd', '2024․report.txt']) {
      expect(normalizeKey(key)).toBe(key);
    }
    for (const key of SPECIAL_KEYS) expect(normalizeKey(key)).toBe(key);
  });
});
