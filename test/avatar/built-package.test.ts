import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildIfStale } from '../../scripts/build-if-stale.mjs';

// Specifiers in variables: type-checking must not depend on dist/ existing.
type AvatarModule = typeof import('../../src/avatar/index.js');
type MulterModule = typeof import('../../src/multer/index.js');
type MainModule = typeof import('../../src/index.js');
const AVATAR = 'media-storage/avatar';
const MULTER = 'media-storage/multer';
const MAIN = 'media-storage';

// The new subpaths as users load them: through the package's exports, ESM and CJS.
describe('built package: media-storage/avatar and media-storage/multer', () => {
  beforeAll(() => {
    buildIfStale({ quiet: true });
  }, 180_000);

  it('loads with import', async () => {
    const avatar = (await import(AVATAR)) as AvatarModule;
    const main = (await import(MAIN)) as MainModule;
    const multer = (await import(MULTER)) as MulterModule;
    expect(typeof avatar.resolveAvatarUrls).toBe('function');
    expect(main.resolveAvatarUrl).toBe(avatar.resolveAvatarUrl);
    expect(typeof multer.mediaStorageEngine).toBe('function');
    expect(avatar.initialsOf('Ada Lovelace')).toBe('AL');
  });

  it('loads with require', () => {
    const require = createRequire(import.meta.url);
    const avatar = require(AVATAR) as AvatarModule;
    const multer = require(MULTER) as MulterModule;
    const main = require(MAIN) as MainModule;
    expect(avatar.initialsAvatarDataUrl({ name: 'Ada' })).toMatch(/^data:image\/svg\+xml/);
    expect(typeof multer.mediaStorageEngine).toBe('function');
    expect(main.withExistenceCache).toBe(avatar.withExistenceCache);
  });
});
