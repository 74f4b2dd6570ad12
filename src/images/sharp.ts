import { MediaStorageError } from '../core/errors.js';

/** The part of sharp's default export this module uses (kept structural: sharp is an optional peer dependency). */
export type SharpFactory = typeof import('sharp').default;

let sharpPromise: Promise<SharpFactory> | undefined;

/** Loads sharp on first use, so importing media-storage/images costs nothing and a missing package is a clear CONFIG error. */
export function loadSharp(): Promise<SharpFactory> {
  sharpPromise ??= import('sharp').then(
    (mod) => {
      const m = mod as unknown as { default?: SharpFactory } & SharpFactory;
      const factory = (typeof m.default === 'function' ? m.default : m) as SharpFactory;
      if (typeof factory !== 'function') throw new Error('the sharp module has no default export');
      return factory;
    },
    (err: unknown) => {
      sharpPromise = undefined;
      throw new MediaStorageError('CONFIG', 'media-storage/images needs the "sharp" package (libvips; prebuilt binaries install from npm): npm install sharp', {
        cause: err,
      });
    },
  );
  return sharpPromise;
}
