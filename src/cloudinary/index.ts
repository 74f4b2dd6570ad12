/**
 * `media-storage/cloudinary`: MediaStorage on Cloudinary through the official `cloudinary` SDK
 * (v2). The storage is in ./storage.ts; see docs/cloudinary.md.
 */
export { CloudinaryStorage } from './storage.js';
export type { CloudinaryStorageOptions } from './config.js';
export { CloudinaryApiError, fromSdkRejection, mapCloudinaryError, rateLimitRetryAfter } from './errors.js';
export { MEDIA_FORMATS, MAX_PUBLIC_ID_LENGTH, escapePublicId, unescapePublicId, publicIdPrefix, homesOf, homeFor, keyOf, mediaFormatOf, type AssetRef, type KeyHomes, type ResourceType } from './mapping.js';
export { djangoCloudinaryStorage, type AdoptNames, type AdoptedAsset, type DjangoCloudinaryStorageNames } from './adopt.js';
