/**
 * `MEDIA_STORAGE_TEST_QUICK=1` (set by .ci/run for its second runtime, Node 24): the contract runs
 * one configuration per backend instead of every variant, and the scale tests use smaller counts.
 * What differs between Node versions (streams, fs, http, fetch) is exercised by any one variant;
 * the variants themselves are configuration logic, which the full run on Node 20 covers.
 */
export const QUICK = process.env.MEDIA_STORAGE_TEST_QUICK === '1';

/** All the variants, or only the first in a quick run. */
export function variants<T>(all: readonly T[]): readonly T[] {
  return QUICK ? all.slice(0, 1) : all;
}
