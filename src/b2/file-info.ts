/**
 * B2's limits on file info, checked before any request, and a decoder for stored info values that
 * never throws.
 *
 * Limits (Backblaze, "b2_upload_file" and "Add File Information with the Native API"): at most 10
 * X-Bz-Info-* entries; keys of at most 50 bytes; the file name and file info must fit in 7,000 bytes
 * of fully encoded header lines (2,048 for files uploaded with server-side encryption or into an
 * Object Lock-enabled bucket), which also applies to b2_start_large_file and b2_copy_file.
 */
import { MediaStorageError } from '../core/errors.js';

/** Bytes for the file name and file info headers on an ordinary bucket. */
export const HEADER_LIMIT = 7000;
/** Bytes for them with server-side encryption or Object Lock. */
export const HEADER_LIMIT_ENCRYPTED_OR_LOCKED = 2048;
/** backblaze-b2 sends at most this many X-Bz-Info-* headers (conf.js MAX_INFO_HEADERS), as B2 allows. */
export const MAX_INFO_ENTRIES = 10;
export const MAX_INFO_KEY_BYTES = 50;
/**
 * Room kept for the other headers of an upload (Authorization with the upload token,
 * Content-Length, X-Bz-Content-Sha1), which B2 counts with the name and info ("along with the
 * other necessary headers") and whose token length we do not know up front.
 */
export const OTHER_HEADERS_RESERVE = 320;

/** File names as backblaze-b2 sends them in X-Bz-File-Name: each segment percent-encoded. */
export function encodeFileNameHeader(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

/** Bytes of the X-Bz-File-Name, Content-Type and X-Bz-Info-* header lines, CRLF included, as sent. */
export function fileInfoHeaderBytes(fileName: string, info: Readonly<Record<string, string>>, contentType: string): number {
  let bytes = Buffer.byteLength(`X-Bz-File-Name: ${encodeFileNameHeader(fileName)}\r\n`) + Buffer.byteLength(`Content-Type: ${contentType}\r\n`);
  for (const [k, v] of Object.entries(info)) bytes += Buffer.byteLength(`X-Bz-Info-${k}: ${encodeURIComponent(v)}\r\n`);
  return bytes + OTHER_HEADERS_RESERVE;
}

/**
 * INVALID_INPUT when the file info breaks a B2 limit: more than 10 entries, a key over 50 bytes, or
 * name and info over `headerLimit` bytes of headers. `info` is what will be sent (metadata,
 * Cache-Control, Content-Disposition).
 */
export function checkFileInfoLimits(fileName: string, info: Readonly<Record<string, string>>, contentType: string, headerLimit: number, key?: string): void {
  const entries = Object.keys(info);
  if (entries.length > MAX_INFO_ENTRIES)
    throw new MediaStorageError(
      'INVALID_INPUT',
      `B2 keeps at most ${MAX_INFO_ENTRIES} file info entries (metadata, Cache-Control and Content-Disposition); this save has ${entries.length}`,
      { key },
    );
  const long = entries.find((k) => Buffer.byteLength(k) > MAX_INFO_KEY_BYTES);
  if (long) throw new MediaStorageError('INVALID_INPUT', `Metadata key ${JSON.stringify(long)} is longer than B2's ${MAX_INFO_KEY_BYTES} bytes`, { key });
  checkHeaderBytes(fileName, info, contentType, headerLimit, key);
}

/** INVALID_INPUT when file name and info take more than `headerLimit` bytes of headers. */
export function checkHeaderBytes(fileName: string, info: Readonly<Record<string, string>>, contentType: string, headerLimit: number, key?: string): void {
  const bytes = fileInfoHeaderBytes(fileName, info, contentType);
  if (bytes <= headerLimit) return;
  throw new MediaStorageError(
    'INVALID_INPUT',
    `The file name and metadata take ${bytes} bytes of headers (percent-encoded, with ${OTHER_HEADERS_RESERVE} kept for the other upload headers); B2 allows ${headerLimit}${headerLimit < HEADER_LIMIT ? ' on a bucket with server-side encryption or Object Lock' : ''}: shorten the metadata or the key`,
    { key },
  );
}

/**
 * Decodes an X-Bz-Info-* value as B2 serves it (percent-encoded UTF-8, "+" for a space). Never
 * throws: a "%" not followed by two hex digits stays as it is, and bytes that are not UTF-8 become
 * U+FFFD, so a value another client stored badly still reads.
 */
export function decodeInfoHeader(value: string): string {
  const text = value.replace(/\+/g, ' ');
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    const bytes: number[] = [];
    for (let i = 0; i < text.length; i++) {
      const hex = text.slice(i + 1, i + 3);
      if (text[i] === '%' && /^[0-9a-fA-F]{2}$/.test(hex)) {
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else {
        const code = text.codePointAt(i)!;
        const char = String.fromCodePoint(code);
        bytes.push(...Buffer.from(char, 'utf8'));
        if (code > 0xffff) i++;
      }
    }
    return new TextDecoder('utf-8').decode(Uint8Array.from(bytes));
  }
}
