import { MediaStorageError } from './errors.js';

/** Longest key accepted, in UTF-8 bytes (S3's limit). */
export const MAX_KEY_BYTES = 1024;
/** Longest path segment accepted, in UTF-8 bytes (most file systems' NAME_MAX). */
export const MAX_SEGMENT_BYTES = 255;

// C0 and C1 controls, DEL, and the Unicode line and paragraph separators: never meaningful in a
// name; NUL truncates paths in C APIs, and line breaks forge log lines and headers.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
// Bidirectional overrides and isolates disguise extensions ("gpj.exe" shown as "exe.jpg").
const BIDI = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/;
// In a `u` regex, a surrogate pair is one code point: only unpaired halves match.
const LONE_SURROGATE = /\p{Cs}/u;
// A Windows drive ("C:") or UNC start makes a key absolute on Windows hosts.
const DRIVE = /^[a-zA-Z]:/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

function invalid(key: unknown, reason: string): MediaStorageError {
  const shown = typeof key === 'string' ? JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key) : String(typeof key);
  return new MediaStorageError('INVALID_KEY', `Invalid key ${shown}: ${reason}`, {
    key: typeof key === 'string' ? key : undefined,
  });
}

/**
 * Why `key` is not a valid storage key, or `undefined` when it is one. The rule: a relative POSIX
 * path such as `profile_images/abc.jpg`, with no traversal (`..`, `.`, segments of only dots and
 * spaces), no absolute path, drive letter or backslash, no empty segment (`//`, a trailing `/`),
 * no control, line-separator or bidi character or unpaired surrogate, no look-alike of `/`, `\\` or `.` that becomes
 * traversal under NFKC, and at most {@link MAX_KEY_BYTES} bytes ({@link MAX_SEGMENT_BYTES} per
 * segment) in UTF-8.
 */
export function keyProblem(key: unknown): string | undefined {
  if (typeof key !== 'string') return 'a key must be a string';
  if (key.length === 0) return 'a key must not be empty';
  // Printable ASCII (the usual `profile_images/abc.jpg`) has no controls, no bidi marks, is its own
  // NFKC form, and takes one byte per character: the Unicode steps are skipped for it.
  const ascii = PRINTABLE_ASCII.test(key);
  if (!ascii && CONTROL.test(key)) return 'control characters (NUL, newline, ...) are not allowed';
  if (!ascii && BIDI.test(key)) return 'bidirectional control characters are not allowed';
  // A lone surrogate has no UTF-8 form: file systems store U+FFFD (so two keys alias), URLs
  // cannot encode it (encodeURIComponent throws), and S3 refuses it.
  if (!ascii && LONE_SURROGATE.test(key)) return 'not well-formed Unicode (an unpaired surrogate)';
  if (key.includes('\\')) return 'backslashes are not allowed; use "/" between folders';
  if (key.startsWith('/')) return 'a key must be relative (no leading "/")';
  if (DRIVE.test(key)) return 'a key must not start with a drive letter';
  const bytes = (text: string): number => (ascii ? text.length : Buffer.byteLength(text, 'utf8'));
  if (bytes(key) > MAX_KEY_BYTES) return `longer than ${MAX_KEY_BYTES} bytes`;
  for (const segment of key.split('/')) {
    if (segment === '') return 'empty path segment ("//" or a trailing "/")';
    if (segment === '.' || segment === '..') return '"." and ".." segments are not allowed';
    // Windows drops trailing dots and spaces, so ".. " and "..." name the parent or this folder there.
    if (DOTS_AND_SPACES.test(segment)) return 'a path segment must not be only dots and spaces';
    if (bytes(segment) > MAX_SEGMENT_BYTES) return `a path segment is longer than ${MAX_SEGMENT_BYTES} bytes`;
  }
  if (ascii) return undefined;
  // Look-alikes (fullwidth "．．／", "‥", "＼") turn into traversal under compatibility
  // normalisation, which some tools and Windows' best-fit code page conversion apply.
  const nfkc = key.normalize('NFKC');
  if (nfkc !== key && compatibilityTraversal(nfkc)) {
    return 'look-alikes of "/", "\\" or "." make it a traversal or absolute path once NFKC-normalised';
  }
  return undefined;
}

/**
 * Validates a storage key (see {@link keyProblem} for the rule) and returns it unchanged: keys are
 * byte-exact identifiers. `cafe\u0301.jpg` (decomposed, as macOS writes names) and `caf\u00e9.jpg`
 * (composed) are two keys, as they are two objects to S3, B2 and Linux file systems; no operation
 * on one ever reads, replaces or deletes the other. Throws INVALID_KEY.
 */
export function validateKey(key: unknown): string {
  const problem = keyProblem(key);
  if (problem !== undefined) throw invalid(key, problem);
  return key as string;
}

/**
 * @deprecated Keys are no longer normalised (see {@link validateKey}); this is `validateKey`,
 * kept for code written against 0.1, and returns the key unchanged.
 */
export const normalizeKey: (key: unknown) => string = validateKey;

const DOTS_AND_SPACES = /^[.\s]+$/;

function compatibilityTraversal(nfkc: string): boolean {
  if (nfkc.includes('\\') || nfkc.startsWith('/') || DRIVE.test(nfkc)) return true;
  return nfkc.split('/').some((segment) => segment === '' || DOTS_AND_SPACES.test(segment));
}

/** Like {@link validateKey} but answers `undefined` instead of throwing. */
export function tryValidateKey(key: unknown): string | undefined {
  return keyProblem(key) === undefined ? (key as string) : undefined;
}

/** @deprecated Use {@link tryValidateKey}; keys are no longer normalised. */
export const tryNormalizeKey: (key: unknown) => string | undefined = tryValidateKey;

/**
 * The other Unicode spellings of a key: its NFC and NFD forms where they differ from it. Such a
 * twin is another key; tools use this to find an object whose name was stored in another form
 * than the one asked for (`media-storage audit`).
 */
export function normalizationTwins(key: string): string[] {
  if (PRINTABLE_ASCII.test(key)) return [];
  return [...new Set([key.normalize('NFC'), key.normalize('NFD')])].filter((form) => form !== key);
}

/**
 * Why a name a backend listed is not given out as a key, or `undefined` when it is a key. A name
 * ending in "/" is a folder marker (what the S3 console and many clients create for an empty
 * folder): `folder-marker` when it holds no bytes.
 */
export function listedNameProblem(name: string, size: number): { reason: 'folder-marker' | 'invalid-key'; message: string } | undefined {
  // "" is the marker of the storage's own prefix (S3's `media/` under location `media/`).
  if (size === 0 && (name === '' || (name.endsWith('/') && keyProblem(name.slice(0, -1)) === undefined))) {
    return { reason: 'folder-marker', message: 'a folder marker (an empty object whose name ends in "/"), not a file' };
  }
  const problem = keyProblem(name);
  return problem === undefined ? undefined : { reason: 'invalid-key', message: `not a valid key: ${problem}` };
}

/**
 * Validates a listing prefix: `""` (everything), a folder (`profile_images/`) or the start of a
 * name (`profile_images/ab`). The same rules as keys apply, except that it may be empty and may
 * end with "/". Returned unchanged, like keys.
 */
export function validatePrefix(prefix: unknown): string {
  if (prefix === undefined || prefix === '') return '';
  if (typeof prefix !== 'string') throw invalid(prefix, 'a prefix must be a string');
  const trailing = prefix.endsWith('/');
  const body = trailing ? prefix.slice(0, -1) : prefix;
  if (body === '') throw invalid(prefix, 'a prefix must not be "/"');
  return validateKey(body) + (trailing ? '/' : '');
}

/** @deprecated Use {@link validatePrefix}; prefixes are no longer normalised. */
export const normalizePrefix: (prefix: unknown) => string = validatePrefix;

/**
 * The key order of every listing: by UTF-8 bytes, as S3, B2 and `LC_ALL=C sort` order names.
 * JavaScript's `<` and `Array.prototype.sort` compare UTF-16 code units instead, which disagree
 * where a character above U+FFFF (a surrogate pair, 0xD800-0xDFFF) meets one in U+E000-U+FFFF:
 * `"\u{1F600}" < "\uFF21"` is true, yet its UTF-8 bytes (F0...) come after (EF...). Comparing code
 * points gives the UTF-8 order without encoding anything. Negative when `a` sorts first, 0 when equal.
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Only where both units are 0xD800 or above can the two orders differ: surrogates (code points
    // above U+FFFF) move after U+E000-U+FFFF.
    if (x >= 0xd800 && y >= 0xd800) return codePointRank(x) - codePointRank(y);
    return x - y;
  }
  return a.length - b.length;
}

/** A UTF-16 unit of 0xD800 or more, ranked in code point order: surrogates after U+E000-U+FFFF. */
function codePointRank(unit: number): number {
  return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
}

/** Percent-encodes each segment of a key for use in a URL path, keeping the "/" separators. */
export function encodeKeyPath(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

/** Joins a base prefix (e.g. `media/`) and a key; the prefix may lack its trailing slash. */
export function joinPrefix(prefix: string | undefined, key: string): string {
  if (!prefix) return key;
  return prefix.endsWith('/') ? prefix + key : `${prefix}/${key}`;
}

/** Normalises a configured key prefix (`media`, `/media/` → `media/`); empty stays empty. */
export function normalizeLocation(location: string | undefined): string {
  if (!location) return '';
  const trimmed = location.replace(/^\/+|\/+$/g, '');
  if (trimmed === '') return '';
  return `${validateKey(trimmed)}/`;
}

/** `dir/name.ext` → `{ dir: 'dir/', stem: 'name', ext: '.ext' }`. */
export function splitKey(key: string): { dir: string; stem: string; ext: string } {
  const slash = key.lastIndexOf('/');
  const dir = slash >= 0 ? key.slice(0, slash + 1) : '';
  const base = key.slice(slash + 1);
  const dot = base.lastIndexOf('.');
  if (dot <= 0) return { dir, stem: base, ext: '' };
  return { dir, stem: base.slice(0, dot), ext: base.slice(dot) };
}
