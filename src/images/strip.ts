/**
 * Lossless metadata removal: the container is rewritten without its metadata blocks, the
 * compressed pixels are copied as they are (no re-encoding, no quality lost). What is kept is what
 * a decoder needs to show the same pixels in the same colours: for JPEG the tables, frames and
 * scans, JFIF (without its thumbnail), the ICC profile and Adobe's colour-transform marker; for
 * PNG the critical chunks, transparency, colour and animation chunks; for WebP the image,
 * alpha, animation and ICC chunks; for GIF the images, graphic controls and the loop count.
 * Everything else goes: EXIF (GPS, device, time, thumbnails), XMP, IPTC/Photoshop, comments,
 * text chunks, MPF (the extra images phones append), and any bytes after the image's end, where
 * polyglot files hide their second format.
 */
import { MediaStorageError } from '../core/errors.js';

/** What a strip function gives back: the file without its metadata, and what was taken out. */
export interface StripResult {
  /** The rewritten file, with the same compressed pixels. */
  data: Buffer;
  /** What was removed, for logs and tests (`APP1 Exif`, `tEXt`, `EXIF`, `trailing 1,234 bytes`...). */
  removed: string[];
}

function malformed(what: string, detail: string): MediaStorageError {
  return new MediaStorageError('INVALID_INPUT', `Not a valid ${what} image: ${detail}`, { operation: 'save' });
}

function startsWith(data: Buffer, offset: number, text: string): boolean {
  return data.length >= offset + text.length && data.toString('latin1', offset, offset + text.length) === text;
}

// ----------------------------------------------------------------------------------------- JPEG

const SOS = 0xda;
const EOI = 0xd9;

/** Kept APPn segments: JFIF (rewritten without thumbnail), ICC profile chunks, Adobe (colour transform). */
function jpegAppKept(marker: number, segment: Buffer): boolean | 'jfif' {
  const body = 4; // after FF xx LL LL
  if (marker === 0xe0) return startsWith(segment, body, 'JFIF\0') ? 'jfif' : false;
  if (marker === 0xe2) return startsWith(segment, body, 'ICC_PROFILE\0');
  if (marker === 0xee) return startsWith(segment, body, 'Adobe');
  return false;
}

function jpegLabel(marker: number, segment: Buffer): string {
  const id = segment.toString('latin1', 4, Math.min(segment.length, 16)).replace(/[^\x20-\x7e].*$/s, '');
  if (marker === 0xfe) return 'COM';
  return `APP${marker - 0xe0}${id ? ` ${id}` : ''}`;
}

/**
 * A JPEG without its metadata (EXIF, XMP, IPTC, comments, the JFIF thumbnail, bytes after the
 * image), losslessly. A file that is not a well-formed JPEG is INVALID_INPUT.
 */
export function stripJpeg(data: Buffer): StripResult {
  if (data.length < 4 || data[0] !== 0xff || data[1] !== 0xd8) throw malformed('JPEG', 'no start-of-image marker');
  const out: Buffer[] = [data.subarray(0, 2)];
  const removed: string[] = [];
  let i = 2;
  for (;;) {
    if (i >= data.length) throw malformed('JPEG', 'the file ends before its end-of-image marker (truncated)');
    if (data[i] !== 0xff) throw malformed('JPEG', `unexpected byte at offset ${i} between segments`);
    while (data[i] === 0xff) i++; // fill bytes
    if (i >= data.length) throw malformed('JPEG', 'truncated');
    const marker = data[i]!;
    i++;
    if (marker === EOI) {
      out.push(Buffer.from([0xff, EOI]));
      if (i < data.length) removed.push(`trailing ${data.length - i} bytes after the image`);
      break;
    }
    if ((marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      out.push(Buffer.from([0xff, marker]));
      continue;
    }
    if (i + 2 > data.length) throw malformed('JPEG', 'truncated');
    const length = data.readUInt16BE(i);
    if (length < 2 || i + length > data.length) throw malformed('JPEG', 'a segment runs past the end of the file (truncated)');
    const segment = data.subarray(i - 2, i + length);
    let end = i + length;
    if ((marker >= 0xe0 && marker <= 0xef) || marker === 0xfe) {
      const kept = marker === 0xfe ? false : jpegAppKept(marker, segment);
      if (kept === 'jfif') out.push(minimalJfif(segment, removed));
      else if (kept) out.push(segment);
      else removed.push(jpegLabel(marker, segment));
    } else {
      out.push(segment);
    }
    if (marker === SOS) {
      // Entropy-coded data runs to the next marker that is neither a stuffed 00 nor a restart.
      let j = end;
      while (j < data.length) {
        if (data[j] === 0xff && j + 1 < data.length) {
          const next = data[j + 1]!;
          if (next === 0x00 || (next >= 0xd0 && next <= 0xd7)) {
            j += 2;
            continue;
          }
          if (next === 0xff) {
            j++;
            continue;
          }
          break;
        }
        j++;
      }
      if (j >= data.length - 1) throw malformed('JPEG', 'the scan data ends without an end-of-image marker (truncated)');
      out.push(data.subarray(end, j));
      end = j;
    }
    i = end;
  }
  return { data: Buffer.concat(out), removed };
}

/** JFIF APP0 with its embedded thumbnail (if any) dropped: version, units and density only. */
function minimalJfif(segment: Buffer, removed: string[]): Buffer {
  if (segment.length < 18) return segment;
  const thumbW = segment[16]!;
  const thumbH = segment[17]!;
  // FF E0, length 16, "JFIF\0", version, units, densities, thumbnail size: 18 bytes.
  if (thumbW === 0 && thumbH === 0 && segment.length === 18) return segment;
  const out = Buffer.from(segment.subarray(0, 18));
  out.writeUInt16BE(16, 2);
  out[16] = 0;
  out[17] = 0;
  removed.push('JFIF thumbnail');
  return out;
}

// ------------------------------------------------------------------------------------------ PNG

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
// Critical chunks, and the ancillary chunks that change how the pixels look or move.
const PNG_KEPT = new Set([
  'IHDR',
  'PLTE',
  'IDAT',
  'IEND',
  'tRNS',
  'cHRM',
  'gAMA',
  'iCCP',
  'sBIT',
  'sRGB',
  'cICP',
  'mDCV',
  'mDCv',
  'cLLI',
  'cLLi',
  'bKGD',
  'hIST',
  'pHYs',
  'acTL',
  'fcTL',
  'fdAT',
]);

/**
 * A PNG with only the chunks that affect its pixels, colours and animation (text and EXIF chunks
 * and bytes after IEND go), losslessly. A malformed PNG, or one with an unknown critical chunk, is INVALID_INPUT.
 */
export function stripPng(data: Buffer): StripResult {
  if (data.length < 8 || !data.subarray(0, 8).equals(PNG_SIGNATURE)) throw malformed('PNG', 'no PNG signature');
  const out: Buffer[] = [PNG_SIGNATURE];
  const removed: string[] = [];
  let i = 8;
  for (;;) {
    if (i + 12 > data.length) throw malformed('PNG', 'the file ends before its IEND chunk (truncated)');
    const length = data.readUInt32BE(i);
    const type = data.toString('latin1', i + 4, i + 8);
    if (!/^[A-Za-z]{4}$/.test(type)) throw malformed('PNG', `invalid chunk type at offset ${i}`);
    const end = i + 12 + length;
    if (end > data.length) throw malformed('PNG', `chunk ${type} runs past the end of the file (truncated)`);
    const critical = type.charCodeAt(0) < 0x61;
    if (PNG_KEPT.has(type)) out.push(data.subarray(i, end));
    else if (critical) throw malformed('PNG', `unknown critical chunk ${type}`);
    else removed.push(type);
    i = end;
    if (type === 'IEND') {
      if (i < data.length) removed.push(`trailing ${data.length - i} bytes after the image`);
      break;
    }
  }
  return { data: Buffer.concat(out), removed };
}

// ----------------------------------------------------------------------------------------- WebP

const WEBP_KEPT = new Set(['VP8 ', 'VP8L', 'VP8X', 'ALPH', 'ANIM', 'ANMF', 'ICCP']);
const VP8X_EXIF = 0x08;
const VP8X_XMP = 0x04;

/**
 * A WebP with only its image, alpha, animation and ICC chunks (EXIF, XMP and bytes after the
 * container go, and the VP8X flags say so), losslessly. A malformed WebP is INVALID_INPUT.
 */
export function stripWebp(data: Buffer): StripResult {
  if (data.length < 20 || !startsWith(data, 0, 'RIFF') || !startsWith(data, 8, 'WEBP')) throw malformed('WebP', 'no RIFF/WEBP header');
  const riffEnd = 8 + data.readUInt32LE(4);
  if (riffEnd > data.length) throw malformed('WebP', 'the RIFF container runs past the end of the file (truncated)');
  const chunks: Buffer[] = [];
  const removed: string[] = [];
  let i = 12;
  while (i < riffEnd) {
    if (i + 8 > riffEnd) throw malformed('WebP', 'truncated chunk header');
    const type = data.toString('latin1', i, i + 4);
    const size = data.readUInt32LE(i + 4);
    const end = i + 8 + size + (size & 1);
    if (i + 8 + size > riffEnd) throw malformed('WebP', `chunk ${JSON.stringify(type)} runs past the end of the container (truncated)`);
    if (WEBP_KEPT.has(type)) {
      const chunk = Buffer.from(data.subarray(i, Math.min(end, riffEnd)));
      // VP8X flags: the file no longer has EXIF or XMP.
      if (type === 'VP8X' && size >= 1) chunk[8] = chunk[8]! & ~(VP8X_EXIF | VP8X_XMP);
      chunks.push(chunk);
    } else {
      removed.push(type.trim() || type);
    }
    i = end;
  }
  if (riffEnd < data.length) removed.push(`trailing ${data.length - riffEnd} bytes after the image`);
  const body = Buffer.concat(chunks);
  const header = Buffer.alloc(12);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(4 + body.length, 4);
  header.write('WEBP', 8, 'latin1');
  return { data: Buffer.concat([header, body]), removed };
}

// ------------------------------------------------------------------------------------------ GIF

/** Application extensions that change playback (the loop count); others (XMP, ICC, vendor) go. */
const GIF_KEPT_APPLICATIONS = new Set(['NETSCAPE2.0', 'ANIMEXTS1.0']);

/**
 * A GIF with only its images, graphic controls and loop count (comments, other application
 * extensions and bytes after the trailer go), losslessly. A malformed GIF is INVALID_INPUT.
 */
export function stripGif(data: Buffer): StripResult {
  if (data.length < 13 || !(startsWith(data, 0, 'GIF87a') || startsWith(data, 0, 'GIF89a'))) throw malformed('GIF', 'no GIF header');
  const removed: string[] = [];
  const out: Buffer[] = [];
  const flags = data[10]!;
  let i = 13 + (flags & 0x80 ? 3 * 2 ** ((flags & 0x07) + 1) : 0);
  if (i > data.length) throw malformed('GIF', 'truncated colour table');
  out.push(data.subarray(0, i));
  /** Offset just past a run of sub-blocks starting at `j`. */
  const subBlocks = (j: number): number => {
    for (;;) {
      if (j >= data.length) throw malformed('GIF', 'truncated data sub-blocks');
      const size = data[j]!;
      j += 1 + size;
      if (size === 0) return j;
    }
  };
  for (;;) {
    if (i >= data.length) throw malformed('GIF', 'the file ends before its trailer (truncated)');
    const introducer = data[i]!;
    if (introducer === 0x3b) {
      out.push(data.subarray(i, i + 1));
      if (i + 1 < data.length) removed.push(`trailing ${data.length - i - 1} bytes after the image`);
      break;
    }
    if (introducer === 0x21) {
      const label = data[i + 1];
      const end = subBlocks(i + 2);
      if (label === 0xf9) out.push(data.subarray(i, end));
      else if (label === 0xff && GIF_KEPT_APPLICATIONS.has(data.toString('latin1', i + 3, i + 14))) out.push(data.subarray(i, end));
      else
        removed.push(
          label === 0xfe
            ? 'comment'
            : label === 0xff
              ? `application ${data.toString('latin1', i + 3, i + 14).replace(/[^\x20-\x7e]/g, '')}`
              : `extension 0x${(label ?? 0).toString(16)}`,
        );
      i = end;
      continue;
    }
    if (introducer === 0x2c) {
      if (i + 10 > data.length) throw malformed('GIF', 'truncated image descriptor');
      const local = data[i + 9]!;
      const j = i + 10 + (local & 0x80 ? 3 * 2 ** ((local & 0x07) + 1) : 0) + 1; // + LZW minimum code size
      const end = subBlocks(j);
      out.push(data.subarray(i, end));
      i = end;
      continue;
    }
    throw malformed('GIF', `unexpected block 0x${introducer.toString(16)} at offset ${i}`);
  }
  return { data: Buffer.concat(out), removed };
}

// ----------------------------------------------------------------------------- ISO BMFF (AVIF)

/**
 * AVIF keeps its metadata in items its `iloc` box points at by absolute offset, so boxes cannot
 * be removed without rewriting offsets; what can be dropped losslessly is anything after the last
 * top-level box. Files with EXIF or XMP are re-encoded instead (see process.ts).
 */
export function trimIsoBmff(data: Buffer): StripResult {
  let i = 0;
  while (i + 8 <= data.length) {
    let size = data.readUInt32BE(i);
    if (size === 1) {
      if (i + 16 > data.length) break;
      size = Number(data.readBigUInt64BE(i + 8));
    } else if (size === 0) {
      size = data.length - i;
    }
    if (size < 8 || i + size > data.length) break;
    i += size;
  }
  if (i === 0) throw malformed('AVIF', 'no ISO BMFF boxes');
  return i < data.length ? { data: data.subarray(0, i), removed: [`trailing ${data.length - i} bytes after the image`] } : { data, removed: [] };
}
