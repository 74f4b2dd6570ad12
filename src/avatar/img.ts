import { escapeHtml } from './escape.js';

/** The attribute carrying the default avatar's URL on every `<img>` these helpers make. */
export const AVATAR_FALLBACK_ATTRIBUTE = 'data-avatar-fallback';
/** Set once the fallback has been applied, so a failing fallback cannot start a loop. */
const APPLIED_ATTRIBUTE = 'data-avatar-fallback-applied';

/**
 * The browser script of the strict-CSP variant: no inline handler, only `data-avatar-fallback`
 * attributes. One capturing `error` listener on the document (error events do not bubble, but
 * they are captured) swaps a failed image for its fallback once; a sweep catches images that
 * failed before the script ran. Serve it as a file (`createAvatarHandler` does, at
 * `<basePath>/fallback.js`) so `script-src 'self'` suffices.
 */
export const AVATAR_FALLBACK_SCRIPT = `/* media-storage avatar fallback */
(function () {
  'use strict';
  var FALLBACK = '${AVATAR_FALLBACK_ATTRIBUTE}';
  var APPLIED = '${APPLIED_ATTRIBUTE}';
  function swap(img) {
    var fallback = img.getAttribute(FALLBACK);
    if (!fallback || img.hasAttribute(APPLIED)) return;
    img.setAttribute(APPLIED, '');
    img.removeAttribute('srcset');
    img.src = fallback;
  }
  document.addEventListener('error', function (event) {
    var target = event.target;
    if (target && target.tagName === 'IMG' && target.hasAttribute(FALLBACK)) swap(target);
  }, true);
  function sweep() {
    var images = document.querySelectorAll('img[' + FALLBACK + ']');
    for (var i = 0; i < images.length; i++) {
      var img = images[i];
      // Lazy images may not have started; their error event will come to the listener above.
      if (img.complete && img.naturalWidth === 0 && img.getAttribute('loading') !== 'lazy') swap(img);
    }
  }
  sweep();
  document.addEventListener('DOMContentLoaded', sweep);
  window.addEventListener('load', sweep);
})();
`;

// Browsers ignore ASCII whitespace and controls inside a scheme ("java\\tscript:"), so we do too.
const IGNORED_IN_SCHEME = /[\u0000-\u0020]/g;
const SAFE_DATA_IMAGE = /^data:image\/(png|jpeg|gif|webp|avif|svg\+xml)[;,]/i;

/**
 * `url` if it is safe as an image source (relative, http:, https:, blob:, or a data: URL of an
 * image type), else `undefined`: a `javascript:` or other scheme never reaches the page.
 */
export function safeImageUrl(url: string | null | undefined): string | undefined {
  if (typeof url !== 'string' || url.trim() === '') return undefined;
  const compact = url.replace(IGNORED_IN_SCHEME, '');
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(compact)?.[1]?.toLowerCase();
  if (scheme === undefined) return url;
  if (scheme === 'http' || scheme === 'https' || scheme === 'blob') return url;
  if (scheme === 'data' && SAFE_DATA_IMAGE.test(compact)) return url;
  return undefined;
}

/**
 * What {@link avatarImgHtml} and {@link avatarImgProps} render: a resolver's `src`, `fallback` and
 * `srcset`, the alt text, and plain `<img>` attributes.
 */
export interface AvatarImgOptions {
  /** The URL to show (a resolver's `src`). Unsafe schemes are replaced by `fallback`. */
  src: string | null | undefined;
  /** The default avatar to switch to when `src` fails to load (a resolver's `fallback`). */
  fallback: string;
  /**
   * Higher-density versions (a resolver's `srcset` for a variant: `"<url> 1x, <url> 2x"`).
   * Candidates with an unsafe URL or a malformed descriptor are dropped. The fallback removes it.
   */
  srcset?: string | null;
  /** Text alternative, e.g. the person's name. Required: an avatar without one is invisible to screen readers. */
  alt: string;
  width?: number;
  height?: number;
  className?: string;
  loading?: 'lazy' | 'eager';
  /** More attributes (escaped). Event-handler attributes (`on*`) are refused. */
  attributes?: Record<string, string | number | boolean | null | undefined>;
  /**
   * `inline` (default): an `onerror` attribute does the switch. `strict`: no inline handler, for
   * pages whose Content-Security-Policy forbids them; the page must load {@link AVATAR_FALLBACK_SCRIPT}
   * (see {@link avatarFallbackScriptTag}).
   */
  csp?: 'inline' | 'strict';
}

// Constant, so it cannot carry user input; removing itself first is what prevents a loop.
const INLINE_ONERROR = `this.onerror=null;this.removeAttribute('srcset');this.setAttribute('${APPLIED_ATTRIBUTE}','');this.src=this.getAttribute('${AVATAR_FALLBACK_ATTRIBUTE}')`;
const ATTRIBUTE_NAME = /^[a-zA-Z_:][-a-zA-Z0-9_:.]*$/;

/**
 * `srcset` with only safe candidates: a URL `safeImageUrl` accepts, without whitespace, and a
 * density (`2x`) or width (`128w`) descriptor; `undefined` when none is left.
 */
export function safeSrcset(srcset: string | null | undefined): string | undefined {
  if (typeof srcset !== 'string') return undefined;
  const candidates = srcset
    .split(/,\s+/)
    .map((candidate) => candidate.trim().split(/\s+/))
    .filter(
      (parts) =>
        parts.length >= 1 &&
        parts.length <= 2 &&
        safeImageUrl(parts[0]) !== undefined &&
        !parts[0]!.endsWith(',') &&
        (parts[1] === undefined || /^(?:\d+(?:\.\d+)?x|\d+w)$/.test(parts[1])),
    )
    .map((parts) => parts.join(' '));
  return candidates.length > 0 ? candidates.join(', ') : undefined;
}

function checkedSources(options: AvatarImgOptions): { src: string; fallback: string | undefined; srcset: string | undefined } {
  const fallback = safeImageUrl(options.fallback);
  const safeSrc = safeImageUrl(options.src);
  const src = safeSrc ?? fallback ?? '';
  // A srcset only beside the photo it belongs to, never beside a substituted default.
  return { src, fallback, srcset: safeSrc !== undefined ? safeSrcset(options.srcset) : undefined };
}

/**
 * An `<img>` as an HTML string, every attribute value escaped, that switches to the default
 * avatar once if its URL fails to load (a 404 after a deploy wiped the disk, a purged CDN).
 * With a resolver's variant result, `srcset` (1x/2x), `width` and `height` are emitted too.
 */
export function avatarImgHtml(options: AvatarImgOptions): string {
  const { src, fallback, srcset } = checkedSources(options);
  const attrs: [string, string | number | boolean | null | undefined][] = [
    ['src', src],
    ['srcset', srcset],
    ['alt', options.alt ?? ''],
    ['width', options.width],
    ['height', options.height],
    ['class', options.className],
    ['loading', options.loading],
    ['decoding', 'async'],
    [AVATAR_FALLBACK_ATTRIBUTE, fallback],
  ];
  if (fallback !== undefined && options.csp !== 'strict') attrs.push(['onerror', INLINE_ONERROR]);
  for (const [name, value] of Object.entries(options.attributes ?? {})) {
    if (!ATTRIBUTE_NAME.test(name) || /^on/i.test(name))
      throw new TypeError(`Refusing attribute ${JSON.stringify(name)}: not a plain attribute name, or an event handler`);
    if (['src', 'srcset', 'alt', AVATAR_FALLBACK_ATTRIBUTE, APPLIED_ATTRIBUTE].includes(name.toLowerCase()))
      throw new TypeError(`Attribute ${name} is set by avatarImgHtml itself`);
    attrs.push([name, value]);
  }
  const rendered = attrs
    .filter(([, value]) => value !== undefined && value !== null && value !== false)
    .map(([name, value]) => (value === true ? name : `${name}="${escapeHtml(value)}"`));
  return `<img ${rendered.join(' ')}>`;
}

/** The few members of an image element the JSX error handler touches (no DOM typings needed). */
interface ImageElementLike {
  src: string;
  getAttribute(name: string): string | null;
  setAttribute(name: string, value: string): void;
  hasAttribute(name: string): boolean;
  removeAttribute(name: string): void;
}

/** Props for `<img {...avatarImgProps(...)} />` in React, Preact, Solid and the like. */
export interface AvatarImgProps {
  src: string;
  /** React's spelling of `srcset`. */
  srcSet?: string;
  alt: string;
  width?: number;
  height?: number;
  className?: string;
  loading?: 'lazy' | 'eager';
  decoding: 'async';
  'data-avatar-fallback'?: string;
  /** Switches to the fallback once. A handler set from script, so it works under a strict CSP too. */
  onError: (event: { currentTarget: ImageElementLike }) => void;
}

/** The props object for JSX (the framework escapes attribute values itself). */
export function avatarImgProps(options: Omit<AvatarImgOptions, 'attributes' | 'csp'>): AvatarImgProps {
  const { src, fallback, srcset } = checkedSources(options);
  return {
    src,
    ...(srcset !== undefined ? { srcSet: srcset } : {}),
    alt: options.alt ?? '',
    ...(options.width !== undefined ? { width: options.width } : {}),
    ...(options.height !== undefined ? { height: options.height } : {}),
    ...(options.className !== undefined ? { className: options.className } : {}),
    ...(options.loading !== undefined ? { loading: options.loading } : {}),
    decoding: 'async',
    ...(fallback !== undefined ? { [AVATAR_FALLBACK_ATTRIBUTE]: fallback } : {}),
    onError: (event) => {
      const img = event.currentTarget;
      if (fallback === undefined || img.hasAttribute(APPLIED_ATTRIBUTE)) return;
      img.setAttribute(APPLIED_ATTRIBUTE, '');
      img.removeAttribute('srcset');
      img.src = fallback;
    },
  };
}

/** `<script src="/avatars/fallback.js"></script>` for the strict-CSP variant; put it in `<head>`. */
export function avatarFallbackScriptTag(options: { src?: string; nonce?: string } = {}): string {
  const src = options.src ?? '/avatars/fallback.js';
  const nonce = options.nonce !== undefined ? ` nonce="${escapeHtml(options.nonce)}"` : '';
  return `<script src="${escapeHtml(src)}"${nonce}></script>`;
}
