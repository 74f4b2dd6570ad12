import mime from 'mime-types';

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
const LEADING_SPACE = new Set([0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0xa0]);

/** Whether the first byte after a UTF-8 BOM and white space is `<`: only then can the body be markup. */
function startsWithTag(head: Uint8Array): boolean {
  let i = startsWith(head, [0xef, 0xbb, 0xbf]) ? 3 : 0;
  while (i < head.length && i < SNIFF_BYTES && LEADING_SPACE.has(head[i]!)) i++;
  return i < head.length && i < SNIFF_BYTES && head[i] === 0x3c;
}

/**
 * Guesses a content type from a body's first bytes (up to {@link SNIFF_BYTES}); `undefined` when
 * the bytes say nothing (plain text, CSV, unknown binary). Recognises the common image, audio,
 * video and document formats, and markup (HTML, SVG, XML) so active content is never mistaken for
 * an image.
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
  // Markup: skip a BOM and leading white space, then look at the first tag.
  if (!startsWithTag(head)) return undefined;
  let text = ascii(head, 0, Math.min(head.length, SNIFF_BYTES));
  if (text.startsWith('\xef\xbb\xbf')) text = text.slice(3);
  text = text.trimStart().toLowerCase();
  if (text.startsWith('<svg') || (text.startsWith('<?xml') && text.includes('<svg'))) return 'image/svg+xml';
  if (text.startsWith('<!--') && text.includes('<svg')) return 'image/svg+xml';
  if (/^<(!doctype html|html|head|body|script|iframe|div|p|a|img|style|title|meta)[\s>/]/.test(text)) return 'text/html';
  if (text.startsWith('<?xml')) return 'application/xml';
  return undefined;
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

const ACTIVE = new Set([
  'text/html',
  'application/xhtml+xml',
  'image/svg+xml',
  'application/xml',
  'text/xml',
  'application/javascript',
  'text/javascript',
  'application/ecmascript',
  'text/ecmascript',
  'application/x-shockwave-flash',
  'application/pdf',
  'application/wasm',
  'text/xsl',
  'application/xslt+xml',
  'multipart/x-mixed-replace',
]);

/**
 * True for content a browser may execute when shown inline (HTML, SVG, XML, scripts, PDF, ...).
 * Such objects are served as attachments under a sandboxing Content-Security-Policy.
 */
export function isActiveContent(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const base = contentType.split(';')[0]!.trim().toLowerCase();
  return ACTIVE.has(base) || base.endsWith('+xml') || base.includes('javascript');
}

/** The Content-Security-Policy sent with user content: no scripts, no plugins, sandboxed. */
export const USER_CONTENT_CSP = "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox";
