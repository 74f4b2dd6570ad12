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
 * Validates and normalises a storage key: a relative POSIX path such as `profile_images/abc.jpg`.
 * Returns the NFC form, which is what every backend stores. Throws INVALID_KEY for traversal
 * (`..`, `.`, and segments of only dots and spaces), absolute paths, drive letters, backslashes,
 * empty segments, control, line-separator and bidi characters, unpaired surrogates, look-alikes of `/`, `\` and `.`
 * that become traversal under NFKC, and over-long keys or segments.
 */
export function normalizeKey(key: unknown): string {
  if (typeof key !== 'string') throw invalid(key, 'a key must be a string');
  if (key.length === 0) throw invalid(key, 'a key must not be empty');
  // Printable ASCII (the usual `profile_images/abc.jpg`) has no controls, no bidi marks, is its own
  // NFC and NFKC form, and takes one byte per character: the Unicode steps are skipped for it.
  const ascii = PRINTABLE_ASCII.test(key);
  if (!ascii && CONTROL.test(key)) throw invalid(key, 'control characters (NUL, newline, ...) are not allowed');
  if (!ascii && BIDI.test(key)) throw invalid(key, 'bidirectional control characters are not allowed');
  // A lone surrogate has no UTF-8 form: file systems store U+FFFD (so two keys alias), URLs
  // cannot encode it (encodeURIComponent throws), and S3 refuses it.
  if (!ascii && LONE_SURROGATE.test(key)) throw invalid(key, 'not well-formed Unicode (an unpaired surrogate)');
  if (key.includes('\\')) throw invalid(key, 'backslashes are not allowed; use "/" between folders');
  if (key.startsWith('/')) throw invalid(key, 'a key must be relative (no leading "/")');
  if (DRIVE.test(key)) throw invalid(key, 'a key must not start with a drive letter');
  const nfc = ascii ? key : key.normalize('NFC');
  const bytes = (text: string): number => (ascii ? text.length : Buffer.byteLength(text, 'utf8'));
  if (bytes(nfc) > MAX_KEY_BYTES) throw invalid(key, `longer than ${MAX_KEY_BYTES} bytes`);
  for (const segment of nfc.split('/')) {
    if (segment === '') throw invalid(key, 'empty path segment ("//" or a trailing "/")');
    if (segment === '.' || segment === '..') throw invalid(key, '"." and ".." segments are not allowed');
    // Windows drops trailing dots and spaces, so ".. " and "..." name the parent or this folder there.
    if (DOTS_AND_SPACES.test(segment)) throw invalid(key, 'a path segment must not be only dots and spaces');
    if (bytes(segment) > MAX_SEGMENT_BYTES) {
      throw invalid(key, `a path segment is longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
  }
  if (ascii) return nfc;
  // Look-alikes (fullwidth "．．／", "‥", "＼") turn into traversal under compatibility
  // normalisation, which some tools and Windows' best-fit code page conversion apply.
  const nfkc = nfc.normalize('NFKC');
  if (nfkc !== nfc && compatibilityTraversal(nfkc)) {
    throw invalid(key, 'look-alikes of "/", "\\" or "." make it a traversal or absolute path once NFKC-normalised');
  }
  return nfc;
}

const DOTS_AND_SPACES = /^[.\s]+$/;

function compatibilityTraversal(nfkc: string): boolean {
  if (nfkc.includes('\\') || nfkc.startsWith('/') || DRIVE.test(nfkc)) return true;
  return nfkc.split('/').some((segment) => segment === '' || DOTS_AND_SPACES.test(segment));
}

/** Like {@link normalizeKey} but answers `undefined` instead of throwing. */
export function tryNormalizeKey(key: unknown): string | undefined {
  try {
    return normalizeKey(key);
  } catch {
    return undefined;
  }
}

/**
 * Validates a listing prefix: `""` (everything), a folder (`profile_images/`) or the start of a
 * name (`profile_images/ab`). The same rules as keys apply, except that it may be empty and may
 * end with "/".
 */
export function normalizePrefix(prefix: unknown): string {
  if (prefix === undefined || prefix === '') return '';
  if (typeof prefix !== 'string') throw invalid(prefix, 'a prefix must be a string');
  const trailing = prefix.endsWith('/');
  const body = trailing ? prefix.slice(0, -1) : prefix;
  if (body === '') throw invalid(prefix, 'a prefix must not be "/"');
  return normalizeKey(body) + (trailing ? '/' : '');
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
  return `${normalizeKey(trimmed)}/`;
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
