import { MediaStorageError } from './errors.js';

/** Longest key accepted, in UTF-8 bytes (S3's limit). */
export const MAX_KEY_BYTES = 1024;
/** Longest path segment accepted, in UTF-8 bytes (most file systems' NAME_MAX). */
export const MAX_SEGMENT_BYTES = 255;

// C0 and C1 controls and DEL: never meaningful in a name, and NUL truncates paths in C APIs.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// Bidirectional overrides and isolates disguise extensions ("gpj.exe" shown as "exe.jpg").
const BIDI = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/;
// A Windows drive ("C:") or UNC start makes a key absolute on Windows hosts.
const DRIVE = /^[a-zA-Z]:/;

function invalid(key: unknown, reason: string): MediaStorageError {
  const shown = typeof key === 'string' ? JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key) : String(typeof key);
  return new MediaStorageError('INVALID_KEY', `Invalid key ${shown}: ${reason}`, {
    key: typeof key === 'string' ? key : undefined,
  });
}

/**
 * Validates and normalises a storage key: a relative POSIX path such as `profile_images/abc.jpg`.
 * Returns the NFC form, which is what every backend stores. Throws INVALID_KEY for traversal
 * (`..`, `.`), absolute paths, drive letters, backslashes, empty segments, control and bidi
 * characters, and over-long keys or segments.
 */
export function normalizeKey(key: unknown): string {
  if (typeof key !== 'string') throw invalid(key, 'a key must be a string');
  if (key.length === 0) throw invalid(key, 'a key must not be empty');
  if (CONTROL.test(key)) throw invalid(key, 'control characters (NUL, newline, ...) are not allowed');
  if (BIDI.test(key)) throw invalid(key, 'bidirectional control characters are not allowed');
  if (key.includes('\\')) throw invalid(key, 'backslashes are not allowed; use "/" between folders');
  if (key.startsWith('/')) throw invalid(key, 'a key must be relative (no leading "/")');
  if (DRIVE.test(key)) throw invalid(key, 'a key must not start with a drive letter');
  const nfc = key.normalize('NFC');
  if (Buffer.byteLength(nfc, 'utf8') > MAX_KEY_BYTES) throw invalid(key, `longer than ${MAX_KEY_BYTES} bytes`);
  for (const segment of nfc.split('/')) {
    if (segment === '') throw invalid(key, 'empty path segment ("//" or a trailing "/")');
    if (segment === '.' || segment === '..') throw invalid(key, '"." and ".." segments are not allowed');
    if (segment.trim() === '') throw invalid(key, 'a path segment must not be only spaces');
    if (Buffer.byteLength(segment, 'utf8') > MAX_SEGMENT_BYTES) {
      throw invalid(key, `a path segment is longer than ${MAX_SEGMENT_BYTES} bytes`);
    }
  }
  return nfc;
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
