/**
 * Custom metadata, once for every backend: what `save` accepts, how names are normalised, and how
 * values that HTTP headers cannot carry travel to S3 (RFC 2047 encoded words, as S3 itself returns
 * non-ASCII values). A value is stored so that `stat` gives back exactly what `save` was given,
 * on every backend, or it is refused with INVALID_INPUT before any request is sent.
 */
import { MediaStorageError } from './errors.js';

/**
 * What a backend's metadata store allows beyond the core rule, declared by the backend
 * (`BaseStorage.metadataRules`) and checked by the core before any request.
 */
export interface MetadataRules {
  /** Characters a (lower-cased) name may use, when fewer than the core's HTTP token characters. */
  name?: { pattern: RegExp; description: string };
  /** Longest name, in UTF-8 bytes. */
  maxNameBytes?: number;
  /** Most entries. */
  maxEntries?: number;
  /** Most bytes of all names and values together, as the backend stores them (see `storedValue`). */
  maxTotalBytes?: number;
  /** A value as the backend sends it, for `maxTotalBytes`; default the value itself. */
  storedValue?: (value: string) => string;
}

// RFC 9110 token characters: what an HTTP header name (x-amz-meta-NAME) can hold.
const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
// C0 controls and DEL: S3 drops or mangles them (HTTP cannot carry them), and they forge log lines.
const CONTROL = /[\u0000-\u001f\u007f]/;
// An RFC 2047 encoded word. S3 decodes these in what it is sent, and readers decode them in what
// they get back, so a value that merely looks like one could never come back as it was.
const ENCODED_WORD = /=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function refuse(message: string, backend?: string): MediaStorageError {
  return new MediaStorageError('INVALID_INPUT', message, { backend, operation: 'save' });
}

function shown(text: string): string {
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 60)}…` : text);
}

/**
 * Checks `metadata` against the core rule and the backend's `rules`, and returns it with its names
 * lower-cased (as S3 and B2 store them, so `stat` gives the same names everywhere). Values are
 * kept exactly; refused with INVALID_INPUT are: names that are not HTTP tokens, two names that
 * differ only in case, values that are not well-formed strings, values with control characters
 * (line breaks, tabs, NUL), values with a leading or trailing space (HTTP trims them), and values
 * containing an RFC 2047 encoded word (`=?UTF-8?B?...?=`), which S3 would decode.
 */
export function prepareMetadata(metadata: unknown, rules: MetadataRules = {}, backend?: string): Record<string, string> | undefined {
  if (metadata === undefined) return undefined;
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata))
    throw refuse('metadata must be an object of string names and string values', backend);
  const out: Record<string, string> = {};
  let total = 0;
  for (const [given, value] of Object.entries(metadata as Record<string, unknown>)) {
    const name = given.toLowerCase();
    if (!TOKEN.test(name)) throw refuse(`Metadata name ${shown(given)} is not allowed: use ASCII letters, digits and -_.!#$%&'*+^\`|~`, backend);
    if (rules.name && !rules.name.pattern.test(name))
      throw refuse(`Metadata name ${shown(given)} is not allowed on ${backend ?? 'this backend'}: ${rules.name.description}`, backend);
    if (Object.prototype.hasOwnProperty.call(out, name))
      throw refuse(`Metadata names ${shown(given)} and another differ only in case; they are stored lower-cased, so one would replace the other`, backend);
    if (rules.maxNameBytes !== undefined && Buffer.byteLength(name) > rules.maxNameBytes)
      throw refuse(`Metadata name ${shown(given)} is longer than the ${rules.maxNameBytes} bytes ${backend ?? 'this backend'} allows`, backend);
    if (typeof value !== 'string') throw refuse(`Metadata value of ${shown(given)} must be a string`, backend);
    if (LONE_SURROGATE.test(value)) throw refuse(`Metadata value of ${shown(given)} is not well-formed Unicode (a lone surrogate)`, backend);
    if (CONTROL.test(value))
      throw refuse(`Metadata value of ${shown(given)} has a control character (line break, tab, NUL...), which HTTP headers cannot carry`, backend);
    if (value.startsWith(' ') || value.endsWith(' ')) throw refuse(`Metadata value of ${shown(given)} starts or ends with a space, which HTTP drops`, backend);
    if (ENCODED_WORD.test(value))
      throw refuse(
        `Metadata value of ${shown(given)} contains an RFC 2047 encoded word ("=?...?="), which S3 and its clients decode; it could not be read back as given`,
        backend,
      );
    total += Buffer.byteLength(name) + Buffer.byteLength(rules.storedValue ? rules.storedValue(value) : value);
    out[name] = value;
  }
  const entries = Object.keys(out).length;
  if (rules.maxEntries !== undefined && entries > rules.maxEntries)
    throw refuse(`${entries} metadata entries; ${backend ?? 'this backend'} keeps at most ${rules.maxEntries}`, backend);
  if (rules.maxTotalBytes !== undefined && total > rules.maxTotalBytes)
    throw refuse(`The metadata takes ${total} bytes as stored; ${backend ?? 'this backend'} keeps at most ${rules.maxTotalBytes}`, backend);
  return out;
}

/** Checks a Cache-Control value: printable ASCII, as the header requires (INVALID_INPUT otherwise). */
export function prepareCacheControl(value: unknown, backend?: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !PRINTABLE_ASCII.test(value)) throw refuse('cacheControl must be printable ASCII, e.g. "public, max-age=3600"', backend);
  return value;
}

// Bytes of UTF-8 per encoded word: 45 bytes are 60 Base64 characters, and with "=?UTF-8?B?" and
// "?=" the word stays within RFC 2047's 75 characters. Words are split between characters.
const WORD_BYTES = 45;

/**
 * A metadata value as an HTTP header can carry it: printable ASCII as it is, anything else as RFC
 * 2047 `=?UTF-8?B?...?=` words separated by spaces (what S3 returns for non-ASCII values, and what
 * the S3 console and email libraries decode). {@link decodeHeaderValue} reverses it.
 */
export function encodeHeaderValue(value: string): string {
  if (PRINTABLE_ASCII.test(value) && !ENCODED_WORD.test(value)) return value;
  const words: string[] = [];
  let chunk = '';
  for (const ch of value) {
    if (Buffer.byteLength(chunk + ch) > WORD_BYTES) {
      words.push(chunk);
      chunk = '';
    }
    chunk += ch;
  }
  words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join(' ');
}

const WHOLE_ENCODED = /^\s*=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=(?:\s+=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=)*\s*$/;
const ONE_WORD = /=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=/g;

function decodeWord(charset: string, encoding: string, text: string): string | undefined {
  const cs = charset.toLowerCase().replace(/\*.*$/, ''); // RFC 2231 language suffix
  const bytes =
    encoding.toLowerCase() === 'b'
      ? Buffer.from(text, 'base64')
      : Buffer.from(
          text.replace(/_/g, ' ').replace(/=([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))),
          'latin1',
        );
  if (cs === 'utf-8' || cs === 'utf8') {
    const decoded = bytes.toString('utf8');
    return decoded.includes('\ufffd') && !Buffer.from(decoded, 'utf8').equals(bytes) ? undefined : decoded;
  }
  if (cs === 'iso-8859-1' || cs === 'latin1' || cs === 'us-ascii') return bytes.toString('latin1');
  return undefined;
}

/**
 * A metadata value as read from an HTTP header: a value made only of RFC 2047 encoded words (UTF-8,
 * ISO-8859-1 or US-ASCII; B or Q encoding) is decoded, as written by {@link encodeHeaderValue}, the
 * S3 console or S3 itself; anything else (including a word in an unknown charset) is returned as it is.
 */
export function decodeHeaderValue(value: string): string {
  if (!value.includes('=?') || !WHOLE_ENCODED.test(value)) return value;
  let out = '';
  for (const m of value.matchAll(ONE_WORD)) {
    const decoded = decodeWord(m[1]!, m[2]!, m[3]!);
    if (decoded === undefined) return value;
    out += decoded;
  }
  return out;
}
