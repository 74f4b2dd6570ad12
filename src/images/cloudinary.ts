/**
 * Variants on Cloudinary: not stored, but rendered by Cloudinary's delivery URLs. A declared
 * variant becomes one transformation (https://cloudinary.com/documentation/image_crop_modes,
 * image_resize_modes, image_padding_modes, transformation reference):
 *
 * | variant | transformation |
 * | --- | --- |
 * | `fit: 'cover'` (`withoutEnlargement`) | `c_fill` (`c_lfill`), with `g_north`/`g_south`/`g_west`/`g_east` for an edge, `g_auto` for `attention`/`entropy` |
 * | `fit: 'contain'` | `c_pad` (`c_lpad`), `b_rgb:<background>` |
 * | `fit: 'inside'` | `c_fit` (`c_limit`) |
 * | `fit: 'fill'` | `c_scale` (stretches when both sides are given) |
 * | width, height × density | `w_`, `h_` in pixels |
 * | format | `f_webp`, `f_avif`, `f_jpg`, `f_png` |
 * | quality | `q_<n>` |
 *
 * Cloudinary strips metadata from every image a transformation generates (its `fl_keep_iptc` and
 * `fl_keep_attribution` flags are what would keep some), and rotates by EXIF orientation unless
 * told `a_ignore`.
 */
import type { ResolvedVariant } from './variants.js';

const GRAVITY: Record<ResolvedVariant['position'], string | undefined> = {
  centre: undefined,
  top: 'north',
  bottom: 'south',
  left: 'west',
  right: 'east',
  attention: 'auto',
  entropy: 'auto',
};

const FETCH_FORMAT: Record<ResolvedVariant['format'], string> = { webp: 'webp', avif: 'avif', jpeg: 'jpg', png: 'png' };

/** The Cloudinary SDK transformation (what `url(key, { transform })` takes) that renders this variant. */
export function cloudinaryTransformation(variant: ResolvedVariant): Record<string, unknown> {
  const t: Record<string, unknown> = {};
  if (variant.width !== undefined) t.width = variant.width;
  if (variant.height !== undefined) t.height = variant.height;
  const limit = variant.withoutEnlargement;
  if (variant.fit === 'cover') {
    t.crop = limit ? 'lfill' : 'fill';
    const gravity = GRAVITY[variant.position];
    if (gravity) t.gravity = gravity;
  } else if (variant.fit === 'contain') {
    t.crop = limit ? 'lpad' : 'pad';
    t.background = `rgb:${expandHex(variant.background)}`;
  } else if (variant.fit === 'inside') {
    t.crop = limit ? 'limit' : 'fit';
  } else {
    t.crop = 'scale';
  }
  t.fetch_format = FETCH_FORMAT[variant.format];
  if (variant.format !== 'png') t.quality = variant.quality;
  return t;
}

function expandHex(color: string): string {
  const hex = color.replace(/^#/, '').toLowerCase();
  return hex.length === 3 ? hex.replace(/./g, (c) => c + c) : hex;
}
