import { escapeXml } from './escape.js';

/** Who an avatar is for. `id` keeps the colour stable when the name is edited; without it the name is used. */
export interface AvatarPerson {
  id?: string | number | null;
  name?: string | null;
}

/** How {@link initialsAvatarSvg} and {@link initialsAvatarDataUrl} draw the initials avatar: size, shape and label. */
export interface InitialsAvatarOptions {
  /** Width and height in CSS pixels. Default 64. */
  size?: number;
  /** `circle` or `square` (rounded corners). Default `circle`. */
  shape?: 'circle' | 'square';
  /** Accessible label; default `Avatar of <name>`, or `Avatar` for an empty name. */
  label?: string;
}

/** Longest name used for initials and the label; longer input is cut (the handler takes names from query strings). */
const MAX_NAME_LENGTH = 200;
const MIN_SIZE = 8;
const MAX_SIZE = 1024;

// Splits into user-perceived characters where the runtime can (Node 20+, all current browsers),
// so "É" written as E + combining accent, flags and family emoji stay whole.
const segmenter: { segment(input: string): Iterable<{ segment: string }> } | undefined =
  typeof Intl !== 'undefined' && 'Segmenter' in Intl ? new Intl.Segmenter(undefined, { granularity: 'grapheme' }) : undefined;

function graphemes(text: string): string[] {
  if (segmenter) return Array.from(segmenter.segment(text), (s) => s.segment);
  return Array.from(text);
}

const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;

/** The first letter or digit of a word ("(Bob)" → "B"), else its first character (an emoji). */
function firstInitial(word: string): string {
  const chars = graphemes(word);
  return chars.find((c) => LETTER_OR_DIGIT.test(c)) ?? chars[0] ?? '';
}

/**
 * Up to two initials: first and last word ("Ada King Lovelace" → "AL"), one for a one-word name
 * ("Madonna" → "M", "张伟" → "张"), none for an empty or blank name (the avatar then shows a
 * person silhouette).
 */
export function initialsOf(name: string | null | undefined): string {
  const words = String(name ?? '')
    .slice(0, MAX_NAME_LENGTH)
    .normalize('NFC')
    .split(/[\s\u3000]+/u)
    .filter((w) => LETTER_OR_DIGIT.test(w) || /\p{Extended_Pictographic}/u.test(w));
  if (words.length === 0) return '';
  const first = firstInitial(words[0]!);
  const last = words.length > 1 ? firstInitial(words[words.length - 1]!) : '';
  return (first + last).toLocaleUpperCase();
}

/** FNV-1a over UTF-16 code units: tiny, fast and identical in every runtime. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function hslToRgb(h: number, s: number, l: number): [number, number, number] {
  const a = s * Math.min(l, 1 - l);
  const f = (n: number): number => {
    const k = (n + h / 30) % 12;
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

function luminance([r, g, b]: [number, number, number]): number {
  const lin = (c: number): number => {
    const v = c / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** WCAG contrast ratio of two colours (1 to 21). */
export function contrastRatio(a: [number, number, number], b: [number, number, number]): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

const hex = (rgb: [number, number, number]): string => `#${rgb.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
const WHITE: [number, number, number] = [255, 255, 255];
/** WCAG AA for normal-size text, stricter than the 3:1 large initials strictly need. */
export const MIN_AVATAR_CONTRAST = 4.5;

/** The colours {@link avatarColors} picks for a person, as `#rrggbb`. */
export interface AvatarColors {
  /** Fill of the avatar's shape. */
  background: string;
  /** Colour of the initials or silhouette drawn on it (white). */
  foreground: string;
  /** Contrast ratio between them; at least {@link MIN_AVATAR_CONTRAST}. */
  contrast: number;
}

/**
 * The avatar's colours for a stable id: a hue from the id's hash, darkened until white text on it
 * reaches {@link MIN_AVATAR_CONTRAST} (yellows and greens need more darkening than blues).
 */
export function avatarColors(id: string | number | null | undefined): AvatarColors {
  const h = hash(String(id ?? ''));
  const hue = h % 360;
  const saturation = 0.45 + ((h >>> 9) % 20) / 100;
  let lightness = 0.42;
  let rgb = hslToRgb(hue, saturation, lightness);
  while (contrastRatio(rgb, WHITE) < MIN_AVATAR_CONTRAST && lightness > 0.05) {
    lightness -= 0.02;
    rgb = hslToRgb(hue, saturation, lightness);
  }
  return { background: hex(rgb), foreground: '#ffffff', contrast: Math.round(contrastRatio(rgb, WHITE) * 100) / 100 };
}

function clampSize(size: number | undefined): number {
  const n = Math.round(Number(size ?? 64));
  return Number.isFinite(n) ? Math.min(MAX_SIZE, Math.max(MIN_SIZE, n)) : 64;
}

// A head-and-shoulders silhouette on a 64-unit grid, for people without a usable name.
const SILHOUETTE = 'M32 14a10 10 0 1 1 0 20a10 10 0 1 1 0-20zM14 52c0-9 8-14 18-14s18 5 18 14z';

/**
 * The built-in default avatar: an SVG of the person's initials on a colour derived from their id.
 * Every piece of text is XML-escaped, so nothing in a name can become markup.
 */
export function initialsAvatarSvg(person: AvatarPerson = {}, options: InitialsAvatarOptions = {}): string {
  const size = clampSize(options.size);
  const name = String(person.name ?? '')
    .slice(0, MAX_NAME_LENGTH)
    .trim();
  const initials = initialsOf(name);
  const colors = avatarColors(person.id ?? name);
  const label = options.label ?? (name ? `Avatar of ${name}` : 'Avatar');
  const shape =
    options.shape === 'square'
      ? `<rect width="64" height="64" rx="10" fill="${colors.background}"/>`
      : `<circle cx="32" cy="32" r="32" fill="${colors.background}"/>`;
  // Two initials fit at 26 units; a single one (often a wide CJK glyph) at 28.
  const content = initials
    ? `<text x="32" y="32" dy=".35em" text-anchor="middle" fill="${colors.foreground}" font-family="system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans','Noto Sans CJK SC','Noto Color Emoji',sans-serif" font-size="${graphemes(initials).length > 1 ? 26 : 28}" font-weight="600">${escapeXml(initials)}</text>`
    : `<path d="${SILHOUETTE}" fill="${colors.foreground}"/>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 64 64" role="img" aria-label="${escapeXml(label)}"><title>${escapeXml(label)}</title>${shape}${content}</svg>`;
}

/** `data:image/svg+xml` URL of {@link initialsAvatarSvg}: no network, no file. */
export function initialsAvatarDataUrl(person: AvatarPerson = {}, options: InitialsAvatarOptions = {}): string {
  // Percent-encode everything but safe characters, also ' ( ) so the URL is safe inside CSS url() too.
  const encoded = encodeURIComponent(initialsAvatarSvg(person, options)).replace(/['()]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `data:image/svg+xml;charset=utf-8,${encoded}`;
}
