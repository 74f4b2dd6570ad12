import type { MediaStorage } from '../../src/core/types.js';

/** Counts exists() calls per key and the most in flight at once; each call takes `latencyMs`. */
export function countingExists<T extends MediaStorage>(storage: T, latencyMs = 5) {
  const calls = new Map<string, number>();
  const stats = { total: 0, inFlight: 0, maxInFlight: 0, calls };
  const original = storage.exists.bind(storage);
  storage.exists = async (key: string) => {
    stats.total++;
    calls.set(key, (calls.get(key) ?? 0) + 1);
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    try {
      await new Promise((r) => setTimeout(r, latencyMs));
      return await original(key);
    } finally {
      stats.inFlight--;
    }
  };
  return stats;
}
