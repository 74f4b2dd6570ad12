/**
 * `media-storage/images`: profile photos done right over any storage, on sharp (an optional peer
 * dependency: `npm install sharp`). See docs/images.md.
 *
 * ```ts
 * const storage = withImages(s3, { variants: { avatar: { width: 64, height: 64, fit: 'cover', format: 'webp', densities: [1, 2] } } });
 * await storage.save('profile_images/ada.jpg', upload);        // checked, upright, no GPS; variants stored
 * await storage.url('profile_images/ada.jpg', { variant: 'avatar', density: 2 });
 * ```
 */
export { withImages, findImageStorage, ImageStorage, type ImageOptions, type EnsuredVariant } from './layer.js';
export { DEFAULT_IMAGE_FORMATS, type ImageFormat, type OriginalOptions } from './process.js';
export {
  VARIANTS_PREFIX,
  MAX_VARIANT_SIDE,
  resolveVariant,
  parseVariantKey,
  isReservedKey as isVariantKey,
  type VariantDefinition,
  type VariantFit,
  type VariantFormat,
  type VariantPosition,
  type ResolvedVariant,
  type VariantSet,
} from './variants.js';
export { cloudinaryTransformation } from './cloudinary.js';
export { backfillVariants, type BackfillOptions, type BackfillProgress, type BackfillReport } from './backfill.js';
export { stripJpeg, stripPng, stripWebp, stripGif, type StripResult } from './strip.js';
