// The CommonJS form of sdk-load.ts: require, which CommonJS can catch.
import type * as ClientS3 from '@aws-sdk/client-s3';
import { missingPackageError } from '../core/errors.js';

let loaded: typeof ClientS3;
try {
  loaded = require('@aws-sdk/client-s3') as typeof ClientS3;
} catch (err) {
  throw missingPackageError(err, '@aws-sdk/client-s3', 'media-storage/s3 (S3Storage)', 's3') ?? err;
}

export const sdk: typeof ClientS3 = loaded;
