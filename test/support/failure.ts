import { isMediaStorageError, type MediaStorageError } from '../../src/core/errors.js';

/** The MediaStorageError the promise rejects with; fails the test on success or on any other error. */
export async function failure(promise: Promise<unknown>): Promise<MediaStorageError> {
  try {
    await promise;
  } catch (err) {
    if (isMediaStorageError(err)) return err;
    throw new Error(`expected a MediaStorageError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected the operation to fail');
}

/** The code of the MediaStorageError the promise rejects with (see {@link failure}). */
export async function failureCode(promise: Promise<unknown>): Promise<string> {
  return (await failure(promise)).code;
}
