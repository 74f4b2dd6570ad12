/**
 * The serving rules, in one place: from an object's content type and the storage's options, the
 * Content-Type it is stored and served under, and whether a browser may show it inline. Modelled
 * on Rails Active Storage (`content_types_allowed_inline`, `content_types_to_serve_as_binary`),
 * with every kind a browser executes or applies as script or style in the binary list.
 */
import { MediaStorageError } from './errors.js';
import { contentTypeEssence, contentTypeFromKey, DEFAULT_CONTENT_TYPE, normalizeContentType, sniffContentType } from './content-type.js';

/**
 * Types shown inline by default: raster images, audio and video. Nothing in these runs as a
 * script, a style or a document (browsers refuse `image/*`, `audio/*` and `video/*` as scripts
 * whatever the headers). PDF is not here: add `application/pdf` with `inlineContentTypes`.
 */
export const DEFAULT_INLINE_CONTENT_TYPES: readonly string[] = Object.freeze([
  'image/jpeg',
  'image/png',
  'image/gif',
  'image/webp',
  'image/avif',
  'image/apng',
  'image/bmp',
  'image/tiff',
  'image/x-icon',
  'image/vnd.microsoft.icon',
  'image/heic',
  'image/heif',
  'audio/*',
  'video/*',
]);

// The JavaScript MIME type essences of the WHATWG MIME Sniffing standard, and the other kinds a
// browser runs, renders as an active document or applies: markup (HTML, XHTML, SVG and all XML,
// which can carry XHTML scripts or XSLT), stylesheets, WebAssembly, and legacy plugin and IE kinds.
const EXECUTABLE = new Set([
  'application/ecmascript',
  'application/javascript',
  'application/x-ecmascript',
  'application/x-javascript',
  'text/ecmascript',
  'text/javascript',
  'text/jscript',
  'text/livescript',
  'text/x-ecmascript',
  'text/x-javascript',
  'text/babel',
  'text/jsx',
  'text/html',
  'application/xhtml+xml',
  'application/xml',
  'text/xml',
  'text/xsl',
  'application/xslt+xml',
  'image/svg+xml',
  'text/css',
  'application/wasm',
  'application/x-shockwave-flash',
  'application/futuresplash',
  'application/x-silverlight-app',
  'text/x-component',
  'application/hta',
  'text/cache-manifest',
  'multipart/x-mixed-replace',
]);

/**
 * Whether a browser would execute content of this type, render it as an active document, or
 * apply it as a stylesheet: every JavaScript spelling (`text/javascript1.5`, `application/x-javascript`,
 * `text/jscript`, ...), HTML, XHTML, SVG, any XML (`+xml` included), CSS, WebAssembly and plugin
 * kinds. Malformed types count as executable: nothing says what a browser makes of them.
 */
export function isExecutableContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const essence = contentTypeEssence(contentType);
  if (essence === undefined) return true;
  if (EXECUTABLE.has(essence) || essence.endsWith('+xml') || essence.endsWith('/xml')) return true;
  // text/javascript1.0 ... 1.5 and any other script spelling.
  return /javascript|ecmascript|jscript|livescript/.test(essence);
}

/** The Content-Security-Policy sent with everything not shown inline: no scripts, no plugins, sandboxed. */
export const USER_CONTENT_CSP = "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox";

/** How an object is served. */
export interface ServingDecision {
  /** The Content-Type it is stored and sent under: `application/octet-stream` for executable kinds. */
  contentType: string;
  /** `inline`: a browser may show it in the page. `attachment`: downloaded, under nosniff and {@link USER_CONTENT_CSP}. */
  disposition: 'inline' | 'attachment';
}

/** The serving option every backend accepts (through {@link BaseStorage}) and the media handler too. */
export interface ServingOptions {
  /**
   * Content types shown inline besides {@link DEFAULT_INLINE_CONTENT_TYPES}, e.g.
   * `['application/pdf']`. Entries are exact types or `type/*`. An executable kind (HTML, SVG,
   * JavaScript, CSS...) is kept under its own type only when listed exactly, never through a
   * wildcard: listing one is a deliberate choice to let browsers run it from wherever the store
   * serves it (the media handler still sends it with nosniff and, for markup, a sandboxing CSP).
   */
  inlineContentTypes?: readonly string[];
}

function configError(message: string): MediaStorageError {
  return new MediaStorageError('CONFIG', message);
}

/**
 * The serving rule of one storage. Executable kinds are stored and served as
 * `application/octet-stream` attachments (as Rails serves its binary list); the inline list is
 * shown inline; everything else keeps its type and is an attachment. Idempotent: a decided type
 * decides the same way again.
 */
export class ServingRule {
  /** The effective inline list: the defaults and the storage's additions. */
  readonly inlineContentTypes: readonly string[];
  private readonly exact: ReadonlySet<string>;
  private readonly wildcards: readonly string[];

  constructor(options: ServingOptions = {}) {
    const extra = options.inlineContentTypes ?? [];
    if (!Array.isArray(extra)) throw configError('inlineContentTypes must be an array of content types such as "application/pdf"');
    const entries = [...DEFAULT_INLINE_CONTENT_TYPES];
    for (const entry of extra) {
      const normalized = typeof entry === 'string' && /^[a-z0-9!#$&^_.+-]+\/\*$/i.test(entry.trim()) ? entry.trim().toLowerCase() : tryEssence(entry);
      if (!normalized) throw configError(`inlineContentTypes: ${JSON.stringify(entry)} is not a content type (type/subtype or type/*)`);
      if (!entries.includes(normalized)) entries.push(normalized);
    }
    this.inlineContentTypes = Object.freeze(entries);
    this.exact = new Set(entries.filter((e) => !e.endsWith('/*')));
    this.wildcards = entries.filter((e) => e.endsWith('/*')).map((e) => e.slice(0, -1));
  }

  /** Whether content of this type may be shown inline. */
  isInline(contentType: string): boolean {
    const essence = contentTypeEssence(contentType);
    if (essence === undefined) return false;
    if (this.exact.has(essence)) return true;
    return !isExecutableContentType(essence) && this.wildcards.some((w) => essence.startsWith(w));
  }

  /** The Content-Type and disposition content of this type is stored and served with. */
  decide(contentType: string): ServingDecision {
    if (this.isInline(contentType)) return { contentType, disposition: 'inline' };
    return { contentType: isExecutableContentType(contentType) ? DEFAULT_CONTENT_TYPE : contentType, disposition: 'attachment' };
  }

  /**
   * The type to store for a body: `claimed` (the explicit option, else the sniffed type, else the
   * extension's) through {@link decide}, except that bytes that sniff as markup (HTML, SVG, XML)
   * are never stored under another type a browser would show inline: they become binary unless
   * their own type is on the inline list.
   */
  contentTypeFor(claimed: string, head: Uint8Array | undefined): string {
    const sniffed = head && head.length > 0 ? sniffContentType(head) : undefined;
    if (sniffed && isExecutableContentType(sniffed) && !this.isInline(sniffed) && this.isInline(claimed)) return DEFAULT_CONTENT_TYPE;
    return this.decide(claimed).contentType;
  }

  /** The type a listing reports for a key when it has only the name: the extension's, decided. */
  typeFromKey(key: string): string {
    return this.decide(contentTypeFromKey(key) ?? DEFAULT_CONTENT_TYPE).contentType;
  }

  /**
   * The Content-Disposition a store that serves objects itself (S3, B2) keeps with an object:
   * `attachment; filename=...` unless its type is shown inline (then `undefined`).
   */
  storedDisposition(key: string, contentType: string): string | undefined {
    return this.decide(contentType).disposition === 'inline' ? undefined : contentDisposition('attachment', key.slice(key.lastIndexOf('/') + 1));
  }
}

function tryEssence(entry: unknown): string | undefined {
  if (typeof entry !== 'string') return undefined;
  try {
    return contentTypeEssence(normalizeContentType(entry));
  } catch {
    return undefined;
  }
}

/** The rule with the default inline list, for code that has no storage options at hand. */
export const DEFAULT_SERVING_RULE = new ServingRule();

/** `attachment; filename="x"; filename*=UTF-8''…` with a safe ASCII fallback. */
export function contentDisposition(kind: 'attachment' | 'inline', filename: string | undefined): string {
  if (!filename) return kind;
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

/**
 * @deprecated Use {@link ServingRule} (`isInline`, {@link isExecutableContentType}). True for
 * content not shown inline by default that a browser may run or render as a document: the
 * executable kinds and PDF.
 */
export function isActiveContent(contentType: string | undefined): boolean {
  if (!contentType) return false;
  return isExecutableContentType(contentType) || contentTypeEssence(contentType) === 'application/pdf';
}
