/**
 * `media-storage/cloudinary`: MediaStorage on Cloudinary through the official `cloudinary` SDK
 * (v2). The storage is in ./storage.ts; see docs/cloudinary.md.
 *
 * Only what an app uses is exported: the storage, its options, the types its methods return
 * (`homesOf`) and the `adopt` helpers. The SDK plumbing, the key mapping's functions and the error
 * mapping are internal.
 */
export { CloudinaryStorage } from './storage.js';
export type { CloudinaryStorageOptions } from './config.js';
export type { AssetRef, KeyHomes, ResourceType } from './mapping.js';
export { djangoCloudinaryStorage, type AdoptNames, type AdoptedAsset, type DjangoCloudinaryStorageNames } from './adopt.js';
