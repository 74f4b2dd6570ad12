/**
 * The documented, reversible mapping between storage keys and Cloudinary assets (see
 * docs/cloudinary.md). A key has at most two possible homes:
 *
 * - its **media** home, when its extension is one of Cloudinary's image or video formats written
 *   exactly as Cloudinary names the format (`jpg`, `png`, `mp4`, ...) and the rest of its name has
 *   no other dot: resource type `image` or
 *   `video`, public ID = the key without the extension, format = the extension
 *   (`profile_images/abc.jpg` → image `profile_images/abc`, format `jpg`);
 * - its **raw** home: resource type `raw`, public ID = the whole key, extension included
 *   (`docs/cv.pdf` → raw `docs/cv.pdf`).
 *
 * A key with a media extension is stored in its media home when its body really is that kind of
 * media (the content type decided by the core: explicit, sniffed, or from the extension), and in
 * its raw home otherwise (HTML named `.jpg` is never an image). Going back: an image or video
 * asset is the key `public_id + "." + format`; a raw asset is the key `public_id`.
 *
 * Public IDs hold only what Cloudinary keeps as given (its "permitted naming" rules: letters of
 * any language, digits, `.`, `-`, `_`, `/`); every other character of a key (space, `~`, `+`, `?`,
 * emoji, ...) is written as `_x<hex code point>_`, and so is a `_` that would otherwise read as
 * the start of such an escape, and the `v` of a folder named `v` + digits. So every valid key has
 * exactly one public ID and back, and Cloudinary never changes one.
 */
import { contentTypeFromKey, DEFAULT_CONTENT_TYPE } from '../core/content-type.js';
import { MediaStorageError } from '../core/errors.js';
import { splitKey } from '../core/keys.js';

/** Cloudinary's three resource types: an asset of each may sit under one public id. */
export type ResourceType = 'image' | 'video' | 'raw';

/** An asset's address at Cloudinary (besides the cloud and the delivery type). */
export interface AssetRef {
  resourceType: ResourceType;
  publicId: string;
  /** The format (extension) for image and video assets; raw assets keep theirs in the public ID. */
  format?: string;
  /** Delivery type when it is not the storage's own (an adopted asset uploaded as `upload`). */
  type?: string;
}

/** Both homes of a key: `media` only when its extension is an image or video format. */
export interface KeyHomes {
  media?: AssetRef;
  raw: AssetRef;
}

/** Cloudinary's longest public ID, in characters. */
export const MAX_PUBLIC_ID_LENGTH = 255;

/**
 * Image and video formats, by Cloudinary's name for the format, with the content types a body of
 * that format has. Only these exact (lowercase) extensions map to a media home; `.jpeg` or `.JPG`
 * keys are raw files, because Cloudinary reports such images as format `jpg` and the key could not
 * be given back.
 */
export const MEDIA_FORMATS: Readonly<Record<string, { resourceType: 'image' | 'video'; contentTypes: readonly string[] }>> = {
  jpg: { resourceType: 'image', contentTypes: ['image/jpeg'] },
  png: { resourceType: 'image', contentTypes: ['image/png'] },
  gif: { resourceType: 'image', contentTypes: ['image/gif'] },
  webp: { resourceType: 'image', contentTypes: ['image/webp'] },
  avif: { resourceType: 'image', contentTypes: ['image/avif'] },
  bmp: { resourceType: 'image', contentTypes: ['image/bmp'] },
  tiff: { resourceType: 'image', contentTypes: ['image/tiff'] },
  ico: { resourceType: 'image', contentTypes: ['image/x-icon', 'image/vnd.microsoft.icon'] },
  heic: { resourceType: 'image', contentTypes: ['image/heic'] },
  mp4: { resourceType: 'video', contentTypes: ['video/mp4'] },
  webm: { resourceType: 'video', contentTypes: ['video/webm'] },
  mov: { resourceType: 'video', contentTypes: ['video/quicktime'] },
  mp3: { resourceType: 'video', contentTypes: ['audio/mpeg'] },
  ogg: { resourceType: 'video', contentTypes: ['audio/ogg', 'video/ogg'] },
  flac: { resourceType: 'video', contentTypes: ['audio/flac'] },
  wav: { resourceType: 'video', contentTypes: ['audio/wav', 'audio/x-wav', 'audio/wave'] },
  m4a: { resourceType: 'video', contentTypes: ['audio/mp4', 'audio/x-m4a'] },
};

// What Cloudinary keeps in a public ID as given ("Permitted naming conventions", read strictly:
// letters and marks of any language, decimal digits, `.`, `-`, `_`, and `/` between folders).
// It refuses `?&#\%<>+` and turns every other character into `_`.
const KEPT = /^[\p{L}\p{M}\p{Nd}._-]$/u;
/** The continuation after a `_` that makes it an escape: `x`, hex digits, `_`. */
const ESCAPE_TAIL = /^x[0-9a-f]+_/;
const ESCAPE = /^_x([0-9a-f]{1,6})_/;
/** A folder Cloudinary would read as a version ("you can't use 'v' followed by numeric characters as the name of a folder"). */
const VERSION_LIKE = /^v\p{Nd}+$/u;

function escapeChar(ch: string): string {
  return `_x${ch.codePointAt(0)!.toString(16)}_`;
}

function escapeSegment(segment: string, isFolder: boolean): string {
  const chars = Array.from(segment);
  // Right to left, so each `_` is judged by what finally follows it.
  let out = '';
  for (let i = chars.length - 1; i >= 0; i--) {
    const ch = chars[i]!;
    const literal = KEPT.test(ch) && !(ch === '_' && ESCAPE_TAIL.test(out)) && !(i === 0 && isFolder && VERSION_LIKE.test(segment));
    out = (literal ? ch : escapeChar(ch)) + out;
  }
  return out;
}

/** A key path (folder included) as a public ID: only characters Cloudinary keeps. */
export function escapePublicId(path: string): string {
  const segments = path.split('/');
  return segments.map((segment, i) => escapeSegment(segment, i < segments.length - 1)).join('/');
}

/** The inverse of {@link escapePublicId}; `undefined` when the public ID was not written by it. */
export function unescapePublicId(publicId: string): string | undefined {
  let out = '';
  for (let i = 0; i < publicId.length;) {
    const escape = publicId[i] === '_' ? ESCAPE.exec(publicId.slice(i, i + 10)) : null;
    if (escape) {
      const codePoint = parseInt(escape[1]!, 16);
      if (codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) return undefined;
      out += String.fromCodePoint(codePoint);
      i += escape[0].length;
      continue;
    }
    const ch = String.fromCodePoint(publicId.codePointAt(i)!);
    if (ch !== '/' && !KEPT.test(ch)) return undefined;
    out += ch;
    i += ch.length;
  }
  // Only the one spelling this mapping writes gives a key back (not `_x41_` for `A`).
  return escapePublicId(out) === publicId ? out : undefined;
}

/**
 * The public-ID prefix of every key path starting with `path`. The end of a partial path can
 * still change how it is written (`a_x1` + `f_`, a folder `v2` + `/`): that part is left out, and
 * listings filter by key afterwards.
 */
export function publicIdPrefix(path: string): string {
  let stable = path;
  for (let before = ''; before !== stable;) {
    before = stable;
    const lastSlash = stable.lastIndexOf('/');
    if (/^v\p{Nd}*$/u.test(stable.slice(lastSlash + 1))) stable = stable.slice(0, lastSlash + 1);
    const open = /_(x[0-9a-f]*)?$/.exec(stable);
    if (open) stable = stable.slice(0, open.index);
  }
  return escapePublicId(stable);
}

/** The content types that belong in a key's media home; `undefined` when the key has none. */
export function mediaFormatOf(key: string): string | undefined {
  const { ext } = splitKey(key);
  const format = ext.slice(1);
  return Object.prototype.hasOwnProperty.call(MEDIA_FORMATS, format) ? format : undefined;
}

/** Where a key may live. `folder` is the storage's normalised prefix (`""` or `media/`). */
export function homesOf(key: string, folder: string): KeyHomes {
  const raw: AssetRef = { resourceType: 'raw', publicId: checkLength(escapePublicId(folder + key), key) };
  const format = mediaFormatOf(key);
  const { dir, stem } = splitKey(key);
  // A dot left in the public ID would be read as a format in delivery URLs (`me.v2` → format `v2`).
  if (!format || stem.includes('.')) return { raw };
  const media: AssetRef = { resourceType: MEDIA_FORMATS[format]!.resourceType, publicId: escapePublicId(folder + dir + stem), format };
  return { media, raw };
}

/** The home a body of this content type goes to. */
export function homeFor(homes: KeyHomes, contentType: string): AssetRef {
  if (!homes.media) return homes.raw;
  const base = contentType.split(';')[0]!.trim().toLowerCase();
  return MEDIA_FORMATS[homes.media.format!]!.contentTypes.includes(base) ? homes.media : homes.raw;
}

/** Whether a content type (e.g. from a delivery response) is the format of this media home. */
export function contentTypeMatches(home: AssetRef, contentType: string | null | undefined): boolean {
  if (!home.format || !contentType) return false;
  const base = contentType.split(';')[0]!.trim().toLowerCase();
  return MEDIA_FORMATS[home.format]?.contentTypes.includes(base) ?? false;
}

/** The key an asset holds, or `undefined` when it lies outside `folder` or was not written by this mapping. */
export function keyOf(asset: { resourceType: string; publicId: string; format?: string }, folder: string): string | undefined {
  const path = unescapePublicId(asset.publicId);
  if (path === undefined || !path.startsWith(folder)) return undefined;
  const rel = path.slice(folder.length);
  if (asset.resourceType === 'raw') return rel;
  if (asset.resourceType !== 'image' && asset.resourceType !== 'video') return undefined;
  // Only what this mapping writes gives a key back; anything else has no reversible key.
  if (!asset.format || MEDIA_FORMATS[asset.format]?.resourceType !== asset.resourceType) return undefined;
  if (splitKey(rel).ext !== '') return undefined;
  return `${rel}.${asset.format}`;
}

function checkLength(publicId: string, key: string): string {
  if (publicId.length > MAX_PUBLIC_ID_LENGTH) {
    throw new MediaStorageError(
      'INVALID_KEY',
      `Invalid key "${key.length > 80 ? `${key.slice(0, 80)}…` : key}": its Cloudinary public ID would be ${publicId.length} characters, more than Cloudinary's ${MAX_PUBLIC_ID_LENGTH}`,
      { key },
    );
  }
  return publicId;
}

/** The content type of an image or video format, including formats outside MEDIA_FORMATS (adopted assets). */
export function contentTypeOfFormat(format: string | undefined): string {
  if (!format) return DEFAULT_CONTENT_TYPE;
  return MEDIA_FORMATS[format]?.contentTypes[0] ?? contentTypeFromKey(`asset.${format}`) ?? DEFAULT_CONTENT_TYPE;
}
