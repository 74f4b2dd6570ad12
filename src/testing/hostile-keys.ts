/**
 * The hostile-key corpus. Two lists:
 * - {@link MUST_REJECT_KEYS}: every backend answers INVALID_KEY, in every operation.
 * - {@link REJECT_OR_STORE_KEYS}: odd but harmless as literal names (encoded traversal, device
 *   names, look-alikes that stay look-alikes...). A backend either rejects them with INVALID_KEY
 *   or stores them and gives back exactly the same bytes under exactly the same (NFC) key.
 * Each entry is generated from a category, so the corpus says what it covers.
 */

const hex = (c: string): string => c.codePointAt(0)!.toString(16).padStart(4, '0');

// --------------------------------------------------------------------------------- must reject

const literalTraversal = [
  '..',
  '.',
  '../x.txt',
  '../../../../etc/passwd',
  'a/../x.txt',
  'a/b/../../../x.txt',
  'a/..',
  './x.txt',
  'a/./x.txt',
  'a/.',
  // Windows strips trailing dots and spaces: these name "." or ".." there.
  '...',
  '.../x.txt',
  '.. /x.txt',
  ' ../x.txt',
  '. ./x.txt',
  'a/.. ',
  '..\u00a0/x.txt',
  '....//x.txt',
];

const backslashes = ['..\\x.txt', 'a\\..\\..\\x.txt', '\\x.txt', 'a\\b.txt', '..\\..\\windows\\win.ini', 'a/..\\b'];

const absolute = ['/', '/x.txt', '/etc/passwd', '//x.txt', '///x.txt', '/./x.txt', '/../x.txt'];

const driveLetters = ['C', 'c', 'D', 'z'].flatMap((d) => [`${d}:`, `${d}:x.txt`, `${d}:/x.txt`, `${d}:\\x.txt`, `${d}:..\\x.txt`]);

const unc = ['\\\\server\\share\\x.txt', '\\\\?\\C:\\x.txt', '\\\\.\\pipe\\x', '//server/share/x.txt', '\\\\127.0.0.1\\c$\\x.txt', '\\??\\C:\\x.txt'];

// Every C0 and C1 control character and DEL, plus the Unicode line and paragraph separators.
const controlCodes = [...Array.from({ length: 0x20 }, (_, i) => i), 0x7f, ...Array.from({ length: 0x20 }, (_, i) => 0x80 + i), 0x2028, 0x2029];
const controls = controlCodes.map((code) => `ctl-${code.toString(16)}-${String.fromCodePoint(code)}.txt`);

// Bidirectional overrides, embeddings, isolates and marks ("invoice‮gpj.exe" shows as "invoiceexe.jpg").
const bidiCodes = [0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069, 0x200e, 0x200f, 0x061c];
const bidi = bidiCodes.map((code) => `invoice${String.fromCodePoint(code)}gpj.exe`);

const emptyAndBlank = ['', 'a//b.txt', 'a/', 'a/b/', ' ', '   ', 'a/ /b.txt', '\u3000/x.txt', '\u00a0', '\t'];

const overLong = [
  'x'.repeat(1025),
  'é'.repeat(513), // 1,026 UTF-8 bytes in 513 characters
  `a/${'y'.repeat(256)}`,
  `a/${'€'.repeat(86)}`, // 258 bytes in one segment
  `${'😀'.repeat(64)}.png`, // 260 bytes
  Array.from({ length: 520 }, () => 'd').join('/'), // 1,039 bytes of one-letter folders
];

// Look-alikes that compatibility normalisation (NFKC) turns into "/", "\" or ".".
const nfkcTraversal = [
  '．．/x.txt', // U+FF0E fullwidth full stop
  '．．／x.txt', // and U+FF0F fullwidth solidus
  '／etc／passwd',
  '‥/x.txt', // U+2025 two dot leader
  '․․/x.txt', // U+2024 one dot leader
  '﹒﹒/x.txt', // U+FE52 small full stop
  'a／．．／．．／x.txt',
  '．/x.txt',
  'x/．．',
  '＼x.txt', // U+FF3C fullwidth reverse solidus
  'a＼b.txt',
  '﹨x.txt', // U+FE68 small reverse solidus
  'Ｃ：／x.txt', // fullwidth drive
  'ｃ:x.txt',
];

// Strings that are not well-formed UTF-16: lone high and low surrogates, alone, in a name, in a
// folder, and a pair in the wrong order. They have no UTF-8 form.
const loneSurrogates = ['\ud800', '\udfff', 'a\ud800.jpg', 'a\udc00.jpg', '\ud83d/x.png', 'x/\ude00.png', '\ude00\ud83d.png', 'emoji-\ud83d\ud83d\ude00.png'];

/** Keys every backend must refuse with INVALID_KEY in every operation (traversal, absolute paths, drive letters, control characters, lone surrogates...). */
export const MUST_REJECT_KEYS: readonly string[] = [
  ...literalTraversal,
  ...backslashes,
  ...absolute,
  ...driveLetters,
  ...unc,
  ...controls,
  ...bidi,
  ...emptyAndBlank,
  ...overLong,
  ...nfkcTraversal,
  ...loneSurrogates,
];

// ------------------------------------------------------------------------- reject or store

// Traversal in every encoding, as literal strings: a backend must never decode them into "..".
const encodedDots = ['%2e', '%2E', '%252e', '%25252e', '%c0%ae', '%C0%AE', '%e0%80%ae', '%f0%80%80%ae', '%u002e', '%uff0e', '%c0.'];
const encodedSlashes = ['%2f', '%2F', '%252f', '%c0%af', '%e0%80%af', '%5c', '%5C', '%255c', '%c1%9c', '%u2215', '%c0%5c'];
const encodedTraversal = [
  ...encodedDots.map((d) => `${d}${d}/x.txt`),
  ...encodedDots.map((d) => `${d}${d}${encodedSlashes[0]}etc${encodedSlashes[0]}passwd`),
  ...encodedSlashes.map((s) => `..${s}etc${s}passwd`),
  ...encodedSlashes.map((s) => `a/..${s}..${s}x.txt`),
  ...encodedDots.slice(0, 5).flatMap((d) => encodedSlashes.slice(0, 5).map((s) => `${d}${d}${s}${d}${d}${s}x.txt`)),
  '..%00/x.txt',
  'x.txt%00.jpg',
  '%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '..;/x.txt',
  '%2e%2e;/x.txt',
];

// Reserved Windows device names, bare, lowercase, with an extension and as a folder.
const deviceNames = [
  'CON',
  'PRN',
  'AUX',
  'NUL',
  'CONIN$',
  'CONOUT$',
  'CLOCK$',
  ...Array.from({ length: 9 }, (_, i) => `COM${i + 1}`),
  ...Array.from({ length: 9 }, (_, i) => `LPT${i + 1}`),
  'COM¹',
  'COM²',
  'COM³',
  'LPT¹',
];
const devices = deviceNames.flatMap((n, i) => [n, `${n.toLowerCase()}.txt`, ...(i % 3 === 0 ? [`a/${n}/b.txt`, `${n}.tar.gz`] : [])]);

// Look-alikes that stay look-alikes (no compatibility decomposition), or that NFKC maps to a
// harmless name: stored literally, they are just names.
const lookAlikes = [
  '..∕etc∕passwd', // U+2215 division slash
  'a⁄b.txt', // U+2044 fraction slash
  '⧸etc⧸passwd', // U+29F8 big solidus
  '..∖x.txt', // U+2216 set minus
  '..⁄..⁄x.txt',
  'a／b.txt', // NFKC "a/b.txt": still two harmless segments
  'photo．jpg',
  '2024․report.txt',
  'report‥final.txt',
  '。。/x.txt', // U+3002 ideographic full stop (no decomposition)
  '｡｡/x.txt', // U+FF61 halfwidth ideographic full stop → U+3002
  'a\u0338b.txt', // combining long solidus overlay
  '‧‧/x.txt', // U+2027 hyphenation point
];

const dotsAndTrailing = [
  'file.txt.',
  'file.txt ',
  'a./b.txt',
  'name .txt',
  '.hidden',
  '..hidden',
  'a..b.txt',
  '.well-known/x.txt',
  '.git/config',
  '.htaccess',
  '.env',
  'x/.ssh/authorized_keys',
  '..x/y.txt',
  'x..',
];

const invisibleAndCombining = [
  'a\u200bb.txt',
  '\ufeffbom.txt',
  'soft\u00adhyphen.txt',
  'e\u0301.txt',
  '\u212bngstrom.txt',
  'x\u034f.txt',
  'zw\u200djoin.txt',
  'tag\u{e0041}.txt',
  'var\ufe0f.txt',
];

const urlAndShellSpecial = [
  '?x.txt',
  '#x.txt',
  'a?b=c.txt',
  'a#b.txt',
  '%',
  '%%',
  '%zz.txt',
  'a+b.txt',
  'a%20b.txt',
  '~user.txt',
  '*.txt',
  ';.txt',
  'a;jsessionid=x.txt',
  "'.txt",
  '"x".txt',
  '<script>alert(1)<',
  '${HOME}.txt',
  '`id`.txt',
  '|x.txt',
  'ab:cd.txt',
  'file.txt::$DATA',
  'avatar.jpg:evil',
  '&amp;.txt',
  'a b/c d.txt',
  '-rf',
  '--help',
];

const boundaries = [`${'s'.repeat(255)}`, `${'é'.repeat(127)}.`, `${Array.from({ length: 100 }, () => 'abcdefgh').join('/')}.txt`];

/**
 * Odd keys a backend may either refuse with INVALID_KEY or store and give back exactly (encoded
 * traversal, device names, look-alikes, invisible characters, URL and shell specials, length
 * boundaries); the contract suite's `rejectOrStoreKeys`.
 */
export const REJECT_OR_STORE_KEYS: readonly string[] = [
  ...encodedTraversal,
  ...devices,
  ...lookAlikes,
  ...dotsAndTrailing,
  ...invisibleAndCombining,
  ...urlAndShellSpecial,
  ...boundaries,
];

/** Both lists, for tests that only need "no escape, no crash". */
export const ALL_HOSTILE_KEYS: readonly string[] = [...MUST_REJECT_KEYS, ...REJECT_OR_STORE_KEYS];

/** A readable label for test titles and messages. */
export function describeKey(key: string): string {
  const shown = [...key].map((c) => (/[\p{L}\p{N}\p{P}\p{S} ]/u.test(c) && !/[\u2028\u2029]/.test(c) ? c : `<U+${hex(c)}>`)).join('');
  return shown.length > 60 ? `${shown.slice(0, 60)}… (${key.length} chars)` : shown;
}

/**
 * The corpus and the concurrency bar the built-in backends meet, as contract-suite options:
 * `describeStorageContract(name, factory, { ...HOSTILE_INPUT_OPTIONS })`.
 */
export const HOSTILE_INPUT_OPTIONS = {
  extraHostileKeys: MUST_REJECT_KEYS,
  rejectOrStoreKeys: REJECT_OR_STORE_KEYS,
  concurrentSavesOneKey: 64,
  concurrentSavesDistinctKeys: 1000,
} as const;
