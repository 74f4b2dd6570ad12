// Avatars from variants: resolveAvatars(storage, people, { variant }) and the <img> helpers.
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { avatarImgHtml, avatarImgProps, resolveAvatars, safeSrcset, withExistenceCache } from '../../src/avatar/index.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { withImages } from '../../src/images/index.js';
import { CountingStorage, startImageBackend, VARIANTS, type ImageBackend } from './backends.js';
import { fixtures, type Fixtures } from '../support/image-fixtures.js';

let f: Fixtures;
beforeAll(async () => {
  f = await fixtures();
}, 60_000);

const DEFAULT = 'data:image/svg+xml,default';

describe('resolveAvatars with a variant', () => {
  it('gives the variant: src at 1x, a srcset of its densities, its width and height; one existence check per photo, cached', async () => {
    const counted = new CountingStorage(new MemoryStorage());
    const images = withImages(counted, { variants: VARIANTS });
    const storage = withExistenceCache(images);
    await storage.save('p/ada.png', f.png);
    const people = [
      { path: 'p/ada.png', id: 1, name: 'Ada' },
      { path: 'p/ada.png', id: 2, name: 'Ada again' },
      { path: 'p/missing.png', id: 3, name: 'Nobody' },
      { path: '', id: 4, name: 'Empty' },
    ];
    const [ada, again, missing, empty] = await resolveAvatars(storage, people, { variant: 'avatar', default: DEFAULT });
    expect(ada).toEqual({
      src: `/media/${images.variantKey('p/ada.png', 'avatar')}`,
      srcset: `/media/${images.variantKey('p/ada.png', 'avatar')} 1x, /media/${images.variantKey('p/ada.png', 'avatar', 2)} 2x`,
      width: 64,
      height: 64,
      fallback: DEFAULT,
      isDefault: false,
      key: 'p/ada.png',
    });
    expect(again!.src).toBe(ada!.src);
    // A photo that is not there: the default, at the variant's size, and no srcset.
    expect(missing).toEqual({ src: DEFAULT, fallback: DEFAULT, isDefault: true, key: 'p/missing.png', width: 64, height: 64 });
    expect(empty).toEqual({ src: DEFAULT, fallback: DEFAULT, isDefault: true, width: 64, height: 64 });
    // One check per distinct photo (the variant's key; for the missing one its original too), and none on the next render.
    expect(storage.cache.stats.checks).toBe(3);
    await resolveAvatars(storage, people, { variant: 'avatar', default: DEFAULT });
    expect(storage.cache.stats.checks).toBe(3);
  });

  it('generates the variant of a photo stored before the layer, once however many people share it; a non-image gets the default and onError', async () => {
    const raw = new MemoryStorage();
    const counted = new CountingStorage(raw);
    const images = withImages(counted, { variants: VARIANTS });
    await raw.save('legacy/old.jpg', f.photo);
    await raw.save('legacy/note.jpg', f.text, { contentType: 'image/jpeg' });
    const errors: Array<[string, string]> = [];
    const people = Array.from({ length: 30 }, (_, i) => ({ path: i % 10 === 9 ? 'legacy/note.jpg' : 'legacy/old.jpg', id: i, name: `P${i}` }));
    const avatars = await resolveAvatars(withExistenceCache(images), people, {
      variant: 'avatar',
      default: DEFAULT,
      onError: (err, key) => errors.push([key, (err as { code: string }).code]),
    });
    expect(avatars.filter((a) => !a.isDefault).length).toBe(27);
    expect(avatars.filter((a) => a.isDefault).map((a) => a.key)).toEqual(['legacy/note.jpg', 'legacy/note.jpg', 'legacy/note.jpg']);
    expect(errors).toEqual([['legacy/note.jpg', 'INVALID_INPUT']]);
    expect(counted.saves.sort()).toEqual([images.variantKey('legacy/old.jpg', 'avatar'), images.variantKey('legacy/old.jpg', 'avatar', 2)].sort());
    const bytes = await raw.readBuffer(images.variantKey('legacy/old.jpg', 'avatar', 2));
    expect(await sharp(bytes).metadata()).toMatchObject({ format: 'webp', width: 128, height: 128 });

    // Told not to generate: the default until the variant exists.
    await raw.save('legacy/other.jpg', f.polyglot);
    const [other] = await resolveAvatars(images, ['legacy/other.jpg'], { variant: 'avatar', default: DEFAULT, generateMissingVariants: false });
    expect(other!.isDefault).toBe(true);
    expect(await raw.exists(images.variantKey('legacy/other.jpg', 'avatar'))).toBe(false);
  });

  it('refuses a variant on a storage without withImages, and an undeclared variant, loudly', async () => {
    await expect(resolveAvatars(new MemoryStorage(), ['a.jpg'], { variant: 'avatar' })).rejects.toThrow(/needs a storage wrapped by withImages/);
    await expect(resolveAvatars(withImages(new MemoryStorage(), { variants: VARIANTS }), ['a.jpg'], { variant: 'huge' })).rejects.toThrow(
      /no variant named "huge"; declared: avatar, card/,
    );
  });

  describe('on Cloudinary (fake)', () => {
    let b: ImageBackend;
    beforeAll(async () => {
      b = await startImageBackend('cloudinary (fake Cloudinary)');
    }, 60_000);
    afterAll(() => b?.stop());

    it('gives transformation URLs in src and srcset, which the HTML keeps as they are', async () => {
      await b.images.save('people/ada.jpg', f.polyglot);
      const [ada] = await resolveAvatars(b.images, ['people/ada.jpg'], { variant: 'avatar', default: DEFAULT });
      expect(ada!.src).toMatch(/\/c_fill,f_webp,h_64,q_80,w_64\/v\d+\/img\/people\/ada\.jpg$/);
      expect(ada!.srcset).toMatch(
        /c_fill,f_webp,h_64,q_80,w_64\/v\d+\/img\/people\/ada\.jpg 1x, \S+\/c_fill,f_webp,h_128,q_80,w_128\/v\d+\/img\/people\/ada\.jpg 2x$/,
      );
      const html = avatarImgHtml({ ...ada!, alt: 'Ada' });
      expect(html).toContain(`srcset="${ada!.srcset!.replace(/=/g, '&#61;')}"`);
      const two = await b.fetch(ada!.srcset!.split(', ')[1]!.split(' ')[0]!);
      expect(await sharp(Buffer.from(await two.arrayBuffer())).metadata()).toMatchObject({ format: 'webp', width: 128, height: 128 });
    });
  });
});

describe('avatarImgHtml and avatarImgProps with a srcset', () => {
  const resolved = {
    src: '/media/v/a-1.webp',
    srcset: '/media/v/a-1.webp 1x, /media/v/a-2.webp 2x',
    fallback: '/avatars/initials.svg?name=A',
    width: 64,
    height: 64,
  };

  it('emit srcset, width and height, so the browser picks the density and reserves the space', () => {
    const html = avatarImgHtml({ ...resolved, alt: 'Ada' });
    expect(html).toContain('srcset="/media/v/a-1.webp 1x, /media/v/a-2.webp 2x"');
    expect(html).toContain('width="64"');
    expect(html).toContain('height="64"');
    // The fallback drops the srcset first, or the browser would keep showing the broken candidate.
    expect(html).toContain('this.removeAttribute(&#39;srcset&#39;)');
    expect(avatarImgProps({ ...resolved, alt: 'Ada' })).toMatchObject({ src: resolved.src, srcSet: resolved.srcset, width: 64, height: 64 });
  });

  it('drop unsafe candidates, and any srcset beside a substituted default', () => {
    expect(safeSrcset('javascript:alert(1) 2x, /ok.webp 1x, /x.webp onerror=1, /y.webp 3q')).toBe('/ok.webp 1x');
    expect(safeSrcset('data:text/html,<script> 2x')).toBeUndefined();
    const html = avatarImgHtml({ src: 'javascript:alert(1)', srcset: '/a.webp 1x', fallback: '/d.svg', alt: 'x' });
    expect(html).not.toContain('srcset="');
    expect(html).toContain('src="/d.svg"');
  });
});
