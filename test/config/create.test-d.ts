/**
 * Type tests of the app entry, run by `npm test` (vitest's typecheck: a wrong type fails the run)
 * against the built declarations, as an app's compiler sees them through package.json "exports".
 */
import { describe, expectTypeOf, it } from 'vitest';
import { createMediaStorage, createMediaStorageFromEnv, withExistenceCache, type MediaStorage, type StorageConfig } from 'media-storage';
import type { MemoryStorage } from 'media-storage/memory';

describe('createMediaStorage', () => {
  it('takes a config or a URL and resolves to the MediaStorage interface', () => {
    expectTypeOf(createMediaStorage).parameter(0).toEqualTypeOf<StorageConfig | string>();
    expectTypeOf(createMediaStorage({ backend: 'memory' })).resolves.toEqualTypeOf<MediaStorage>();
    expectTypeOf(createMediaStorageFromEnv).returns.resolves.toEqualTypeOf<MediaStorage>();
  });

  it("narrows the config by backend: each backend's options and required fields, no other's", () => {
    expectTypeOf({ backend: 's3', bucket: 'photos', region: 'eu-west-1' } as const).toExtend<StorageConfig>();
    expectTypeOf({ backend: 'local', root: '/srv/media' } as const).toExtend<StorageConfig>();
    // S3 without its bucket, and a backend that does not exist.
    expectTypeOf({ backend: 's3' } as const).not.toExtend<StorageConfig>();
    expectTypeOf({ backend: 'gcs', bucket: 'photos' } as const).not.toExtend<StorageConfig>();
    // Cloudinary's cloudName in an S3 config literal: the compiler names the stray option.
    // @ts-expect-error 'cloudName' does not exist in the s3 member of the union
    const stray: StorageConfig = { backend: 's3', bucket: 'photos', cloudName: 'demo' };
    expectTypeOf(stray).toEqualTypeOf<StorageConfig>();
    const narrow = (config: StorageConfig): string | undefined => (config.backend === 's3' ? config.bucket : undefined);
    expectTypeOf(narrow).returns.toEqualTypeOf<string | undefined>();
    expectTypeOf<Extract<StorageConfig, { backend: 'b2' }>['bucketName']>().toEqualTypeOf<string>();
  });
});

describe('withExistenceCache', () => {
  it('returns a MediaStorage whose methods keep their signatures', () => {
    const cached = withExistenceCache({} as MemoryStorage);
    expectTypeOf(cached).toExtend<MediaStorage>();
    expectTypeOf(cached.exists).toEqualTypeOf<MediaStorage['exists']>();
    expectTypeOf(cached.save).toEqualTypeOf<MediaStorage['save']>();
    expectTypeOf(withExistenceCache).parameter(0).toEqualTypeOf<MediaStorage>();
  });
});
