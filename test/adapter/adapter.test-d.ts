/**
 * Type tests of `media-storage/adapter` (what a backend author builds on), through the built
 * package as a third-party backend's compiler sees it. Run by `npm test` (vitest typecheck).
 */
import { describe, expectTypeOf, it } from 'vitest';
import type { ListPage, MediaStorage, MediaStorageError, ObjectInfo, ReadOptions, UrlOptions } from 'media-storage';
import { BaseStorage, prepareBody, toMediaStorageError, joinPrefix, splitKey, type PreparedBody, type WriteOptions } from 'media-storage/adapter';

describe('media-storage/adapter', () => {
  it('BaseStorage is a MediaStorage whose subclass implements the backend hooks', () => {
    expectTypeOf<BaseStorage>().toExtend<MediaStorage>();
    // @ts-expect-error not abstract, so it must implement writeObject, readObject, statObject, deleteObject, listObjects and objectUrl
    class Incomplete extends BaseStorage {
      readonly name = 'incomplete';
      readonly capabilities = {
        publicUrls: false,
        signedUrls: false,
        downloadUrls: false,
        rangeReads: false,
        serverSideCopy: false,
        metadata: false,
        atomicCreate: false,
        md5Etag: false,
      };
    }
    expectTypeOf<Incomplete>().toExtend<MediaStorage>();
  });

  it('prepareBody resolves to a PreparedBody, and the helpers keep their shapes', () => {
    expectTypeOf(prepareBody).returns.resolves.toEqualTypeOf<PreparedBody>();
    expectTypeOf(toMediaStorageError).returns.toEqualTypeOf<MediaStorageError>();
    expectTypeOf(joinPrefix).toEqualTypeOf<(prefix: string | undefined, key: string) => string>();
    expectTypeOf(splitKey).returns.toEqualTypeOf<{ dir: string; stem: string; ext: string }>();
  });

  it('the types a backend implements with come from the app entry', () => {
    expectTypeOf<WriteOptions>().toBeObject();
    expectTypeOf<ListPage['items']>().toEqualTypeOf<ObjectInfo[]>();
    expectTypeOf<ReadOptions>().toBeObject();
    expectTypeOf<UrlOptions>().toBeObject();
  });
});
