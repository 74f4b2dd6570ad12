import mime from 'mime-types';
import { MediaStorageError } from './errors.js';

/** The content type of bytes of no known kind, used when nothing else says what an object is. */
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/** How many leading bytes {@link sniffContentType} looks at. */
export const SNIFF_BYTES = 512;

interface Signature {
  type: string;
  offset?: number;
  bytes: number[];
}

// Magic numbers of the formats users upload as media. Kept small on purpose: the goal is to catch
// a body whose extension lies (HTML named .jpg), not to identify every format.
const SIGNATURES: Signature[] = [
  { type: 'image/jpeg', bytes: [0xff, 0xd8, 0xff] },
  { type: 'image/png', bytes: [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] },
  { type: 'image/gif', bytes: [0x47, 0x49, 0x46, 0x38] },
  { type: 'image/bmp', bytes: [0x42, 0x4d] },
  { type: 'image/x-icon', bytes: [0x00, 0x00, 0x01, 0x00] },
  { type: 'image/tiff', bytes: [0x49, 0x49, 0x2a, 0x00] },
  { type: 'image/tiff', bytes: [0x4d, 0x4d, 0x00, 0x2a] },
  { type: 'application/pdf', bytes: [0x25, 0x50, 0x44, 0x46, 0x2d] },
  { type: 'application/zip', bytes: [0x50, 0x4b, 0x03, 0x04] },
  { type: 'application/gzip', bytes: [0x1f, 0x8b] },
  { type: 'audio/mpeg', bytes: [0x49, 0x44, 0x33] },
  { type: 'audio/ogg', bytes: [0x4f, 0x67, 0x67, 0x53] },
  { type: 'audio/flac', bytes: [0x66, 0x4c, 0x61, 0x43] },
  { type: 'video/webm', bytes: [0x1a, 0x45, 0xdf, 0xa3] },
];

function startsWith(head: Uint8Array, bytes: number[], offset = 0): boolean {
  if (head.length < offset + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (head[offset + i] !== bytes[i]) return false;
  return true;
}

function ascii(head: Uint8Array, start: number, end: number): string {
  const bytes = Buffer.isBuffer(head) ? head : Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  return start >= bytes.length ? '' : bytes.toString('latin1', start, Math.min(end, bytes.length));
}

/** Bytes that String.prototype.trimStart removes from latin1 text: tab, line breaks, space, NBSP. */
const LEADING_SPACE = /^[\t\n\v\f\r \xa0]*/;

/**
 * The first bytes as text, without a byte order mark: UTF-16 (either order) is decoded, anything
 * else is read as latin1, which keeps every ASCII tag where it is.
 */
function leadingText(head: Uint8Array): string {
  const bytes = Buffer.isBuffer(head) ? head : Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  const window = bytes.subarray(0, SNIFF_BYTES);
  if (startsWith(window, [0xff, 0xfe])) return window.subarray(2).toString('utf16le');
  if (startsWith(window, [0xfe, 0xff])) {
    const swapped = Buffer.from(window.subarray(2, 2 + ((window.length - 2) & ~1)));
    return swapped.swap16().toString('utf16le');
  }
  return window.toString('latin1', startsWith(window, [0xef, 0xbb, 0xbf]) ? 3 : 0);
}

// The WHATWG sniffing standard's binary data bytes (vertical tab aside, which is skipped as space).
const BINARY_BYTE = /[\x00-\x08\x0e-\x1a\x1c-\x1f]/;

/**
 * Markup as a browser would sniff it: after white space and any number of `<!-- comments -->`,
 * a tag (`<` and a letter, `!`, `?` or `/`) in text (no binary bytes in the window, so random
 * or compressed data that happens to start with `<` is not markup). A body that opens a comment
 * is HTML even when the comment runs past the sniffed window, as in the WHATWG sniffing table.
 */
function sniffMarkup(head: Uint8Array): string | undefined {
  const text = leadingText(head);
  let i = 0;
  let comment = false;
  for (;;) {
    i += LEADING_SPACE.exec(text.slice(i))![0].length;
    if (!text.startsWith('<!--', i)) break;
    comment = true;
    const close = text.indexOf('-->', i + 4);
    if (close < 0) return 'text/html';
    i = close + 3;
  }
  if (BINARY_BYTE.test(text)) return comment ? 'text/html' : undefined;
  const rest = text.slice(i).toLowerCase();
  if (rest.startsWith('<?xml')) return /<svg[\s>/]|<!doctype\s+svg/.test(rest) ? 'image/svg+xml' : 'application/xml';
  if (/^<svg[\s>/]|^<!doctype\s+svg/.test(rest)) return 'image/svg+xml';
  if (/^<[a-z!?/]/.test(rest)) return 'text/html';
  return comment ? 'text/html' : undefined;
}

/**
 * Guesses a content type from a body's first bytes (up to {@link SNIFF_BYTES}); `undefined` when
 * the bytes say nothing (plain text, CSV, unknown binary). Recognises the common image, audio,
 * video and document formats, and markup (HTML, SVG, XML) after a byte order mark, white space
 * and comments, so active content is never mistaken for an image.
 */
export function sniffContentType(head: Uint8Array): string | undefined {
  for (const sig of SIGNATURES) if (startsWith(head, sig.bytes, sig.offset)) return sig.type;
  if (ascii(head, 0, 4) === 'RIFF') {
    const kind = ascii(head, 8, 12);
    if (kind === 'WEBP') return 'image/webp';
    if (kind === 'WAVE') return 'audio/wav';
    if (kind === 'AVI ') return 'video/x-msvideo';
  }
  if (ascii(head, 4, 8) === 'ftyp') {
    const brand = ascii(head, 8, 12);
    if (brand === 'avif' || brand === 'avis') return 'image/avif';
    if (brand === 'heic' || brand === 'heix' || brand === 'mif1' || brand === 'msf1') return 'image/heic';
    if (brand.startsWith('qt')) return 'video/quicktime';
    if (brand.startsWith('M4A')) return 'audio/mp4';
    return 'video/mp4';
  }
  return sniffMarkup(head);
}

/** Content type from a key's extension via mime-types, or `undefined`. */
export function contentTypeFromKey(key: string): string | undefined {
  return mime.lookup(key) || undefined;
}

/**
 * The one content-type rule every backend follows: the explicit option, else what the first bytes
 * say, else the extension, else application/octet-stream.
 */
export function resolveContentType(key: string, head: Uint8Array | undefined, explicit?: string): string {
  if (explicit) return explicit;
  return (head && head.length > 0 ? sniffContentType(head) : undefined) ?? contentTypeFromKey(key) ?? DEFAULT_CONTENT_TYPE;
}

// RFC 9110 tokens (type, subtype, parameter names) and parameter values (token or quoted string).
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const CONTENT_TYPE = new RegExp(`^(${TOKEN})/(${TOKEN})((?:[ ]*;[ ]*${TOKEN}=(?:${TOKEN}|"(?:[^"\\\\]|\\\\.)*"))*)[ ]*;?[ ]*$`);
const PARAMETER = new RegExp(`;[ ]*(${TOKEN})=(${TOKEN}|"(?:[^"\\\\]|\\\\.)*")`, 'g');
const ESSENCE = new RegExp(`^${TOKEN}/${TOKEN}$`);
/** Longest content type accepted (RFC 6838 allows 127 characters each for type and subtype). */
export const MAX_CONTENT_TYPE_LENGTH = 255;

/**
 * Validates an explicit content type and gives its canonical form: `type/subtype` in lower case,
 * then any parameters as `; name=value` (names in lower case, values as given). Throws
 * INVALID_INPUT for anything else: control characters (CR, LF, NUL...), characters outside
 * printable ASCII, a missing subtype, a malformed parameter, or more than 255 characters.
 */
export function normalizeContentType(value: unknown): string {
  const shown = typeof value === 'string' ? JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value) : typeof value;
  const invalid = (why: string): MediaStorageError => new MediaStorageError('INVALID_INPUT', `Invalid contentType ${shown}: ${why}`);
  if (typeof value !== 'string') throw invalid('a content type is a string such as "image/jpeg"');
  if (/[^\x20-\x7e]/.test(value)) throw invalid('control characters (CR, LF, NUL, ...) and characters outside printable ASCII are not allowed');
  if (value.length > MAX_CONTENT_TYPE_LENGTH) throw invalid(`longer than ${MAX_CONTENT_TYPE_LENGTH} characters`);
  const match = CONTENT_TYPE.exec(value.trim());
  if (!match) throw invalid('not of the form type/subtype[; name=value]');
  let out = `${match[1]!.toLowerCase()}/${match[2]!.toLowerCase()}`;
  for (const [, name, paramValue] of match[3]!.matchAll(PARAMETER)) out += `; ${name!.toLowerCase()}=${paramValue}`;
  return out;
}

/** Like {@link normalizeContentType} but answers `undefined` instead of throwing. */
export function tryNormalizeContentType(value: unknown): string | undefined {
  try {
    return normalizeContentType(value);
  } catch {
    return undefined;
  }
}

/** `type/subtype` of a content type, in lower case, without parameters; `undefined` when it has no such form. */
export function contentTypeEssence(contentType: string): string | undefined {
  const essence = contentType.split(';')[0]!.trim().toLowerCase();
  return ESSENCE.test(essence) ? essence : undefined;
}
