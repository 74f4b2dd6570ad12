import type { ContractOptions } from '../../src/testing/index.js';
import { MUST_REJECT_KEYS, REJECT_OR_STORE_KEYS } from './keys.js';

/** The corpus and the concurrency bar of issue 8, as contract-suite options for every backend's contract run. */
export const HOSTILE_INPUT_OPTIONS: ContractOptions = {
  extraHostileKeys: MUST_REJECT_KEYS,
  rejectOrStoreKeys: REJECT_OR_STORE_KEYS,
  concurrentSavesOneKey: 64,
  concurrentSavesDistinctKeys: 1000,
};
