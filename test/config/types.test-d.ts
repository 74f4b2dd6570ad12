/**
 * src/config restates each backend's option types instead of importing them (so the main entry's
 * declarations do not need every SDK's types). These compile-time checks, run by `npm run
 * typecheck` in CI, fail when a backend renames or retypes an option the restatement still has.
 * vitest typecheck runs them in `npm test` (the `.test-d.ts` files), so a mismatch fails the run.
 */
import { expectTypeOf, it } from 'vitest';
import type { B2StorageOptions } from '../../src/b2/index.js';
import type { CloudinaryStorageOptions } from '../../src/cloudinary/index.js';
import type { AzureBlobStorageOptions } from '../../src/azure/index.js';
import type { AzureConfig, B2Config, CloudinaryConfig, S3Config } from '../../src/config/index.js';
import type { S3StorageOptions } from '../../src/s3/index.js';

it('each backend has every option configuration can give it, with the same type', () => {
  // No option the backend lacks (a rename there would leave configuration setting nothing)...
  expectTypeOf<Exclude<keyof S3Config, keyof S3StorageOptions>>().toEqualTypeOf<never>();
  expectTypeOf<Exclude<keyof CloudinaryConfig, keyof CloudinaryStorageOptions>>().toEqualTypeOf<never>();
  expectTypeOf<Exclude<keyof B2Config, keyof B2StorageOptions>>().toEqualTypeOf<never>();
  expectTypeOf<Exclude<keyof AzureConfig, keyof AzureBlobStorageOptions>>().toEqualTypeOf<never>();
  // ...and each value one the backend accepts.
  expectTypeOf<S3Config>().toExtend<S3StorageOptions>();
  expectTypeOf<CloudinaryConfig>().toExtend<CloudinaryStorageOptions>();
  expectTypeOf<B2Config>().toExtend<B2StorageOptions>();
  expectTypeOf<AzureConfig>().toExtend<AzureBlobStorageOptions>();
});
