/**
 * `media-storage/s3`: AWS S3 and the stores that speak its API (MinIO, Cloudflare R2, Backblaze
 * B2's S3 endpoint, DigitalOcean Spaces, Ceph RGW). See docs/s3.md.
 */
export { mapS3Error, type S3ErrorMapping, type S3Target } from './errors.js';
export type { ChecksumMode, S3StorageOptions, PresignedUpload, PresignUploadOptions } from './config.js';
export { S3Storage } from './storage.js';
