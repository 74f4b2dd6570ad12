/**
 * `media-storage/cloudinary`: MediaStorage on Cloudinary through the official `cloudinary` SDK
 * (v2). The storage is in ./storage.ts; see docs/cloudinary.md.
 */
export { CloudinaryStorage } from './storage.js';
export type { CloudinaryStorageOptions } from './config.js';
export { CloudinaryApiError, mapCloudinaryError } from './errors.js';
export { djangoCloudinaryStorage, type AdoptNames, type AdoptedAsset, type DjangoCloudinaryStorageNames } from './adopt.js';
