/**
 * Backblaze B2 on its native API, through the official `backblaze-b2` SDK (./storage.ts).
 */
export { B2Storage, type B2StorageOptions } from './storage.js';
export { B2ApiError } from './errors.js';
