/**
 * `media-storage/azure`: Azure Blob Storage through the official `@azure/storage-blob` SDK (an
 * optional peer dependency), tested against Azurite, Microsoft's own emulator. See docs/azure.md.
 *
 * Writes are atomic: one Put Blob, or blocks staged under IDs of their own and made visible
 * together by one Put Block List (uncommitted blocks are never visible, and Azure discards them
 * after a week). `ifExists: 'fail'` sends `If-None-Match: *`, which Azure enforces.
 */
export { mapAzureError, type AzureErrorMapping, type AzureTarget } from './errors.js';
export { AzureBlobStorage, decodeMetadataName, encodeMetadataName, type AzureBlobStorageOptions } from './storage.js';
