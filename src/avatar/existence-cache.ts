export interface ExistenceCacheOptions {
  /** How long "it exists" is trusted, in ms. Default 5 minutes. */
  positiveTtl?: number;
  /** How long "it is missing" is trusted, in ms. Default 30 seconds (a new upload elsewhere shows soon). */
  negativeTtl?: number;
  /** Most keys remembered; the least recently used are dropped first. Default 10,000. */
  maxEntries?: number;
  /**
   * After an entry expires, keep answering with it for this many ms while one background check
   * refreshes it (stale-while-revalidate). Default 0: expired entries are checked before answering.
   */
  staleWhileRevalidate?: number;
  /** Called when a background refresh fails (the stale answer is kept). */
  onRefreshError?: (err: unknown, key: string) => void;
  /** Clock in ms, for tests. Default `Date.now`. */
  now?: () => number;
}

export interface ExistenceCacheStats {
  /** Answers from a fresh entry. */
  hits: number;
  /** Answers from an expired entry inside the stale-while-revalidate window. */
  staleHits: number;
  /** Checks started (each is one call of the check function, i.e. one storage request). */
  checks: number;
  /** Callers who joined a check already in flight instead of starting another. */
  coalesced: number;
  /** Entries dropped to stay under maxEntries. */
  evictions: number;
}

interface Entry {
  exists: boolean;
  expiresAt: number;
}

interface Pending {
  promise: Promise<boolean>;
  /** Set when a write happened while the check was in flight: its result is then out of date. */
  superseded: boolean;
}

/** A cached answer as {@link ExistenceCache.peek} sees it. */
export interface CachedExistence {
  exists: boolean;
  /** Expired but inside the stale-while-revalidate window. */
  stale: boolean;
}

const DEFAULTS = { positiveTtl: 5 * 60_000, negativeTtl: 30_000, maxEntries: 10_000, staleWhileRevalidate: 0 };

function nonNegative(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(typeof value === 'number' && value >= 0 && !Number.isNaN(value))) throw new TypeError(`${name} must be a number >= 0`);
  return value;
}

/**
 * Remembers whether keys exist: separate TTLs for present and missing, an LRU bound, one check in
 * flight per key however many callers ask at once, and writes (`set`) that win over any check
 * that started before them, so a fresh upload shows at once.
 */
export class ExistenceCache {
  readonly positiveTtl: number;
  readonly negativeTtl: number;
  readonly maxEntries: number;
  readonly staleWhileRevalidate: number;
  private readonly now: () => number;
  private readonly onRefreshError: ExistenceCacheOptions['onRefreshError'];
  // Map iteration order is insertion order: re-inserting on use makes the first key the least recently used.
  private readonly entries = new Map<string, Entry>();
  private readonly pending = new Map<string, Pending>();
  readonly stats: ExistenceCacheStats = { hits: 0, staleHits: 0, checks: 0, coalesced: 0, evictions: 0 };

  constructor(options: ExistenceCacheOptions = {}) {
    this.positiveTtl = nonNegative('positiveTtl', options.positiveTtl, DEFAULTS.positiveTtl);
    this.negativeTtl = nonNegative('negativeTtl', options.negativeTtl, DEFAULTS.negativeTtl);
    this.staleWhileRevalidate = nonNegative('staleWhileRevalidate', options.staleWhileRevalidate, DEFAULTS.staleWhileRevalidate);
    const max = options.maxEntries ?? DEFAULTS.maxEntries;
    if (!Number.isInteger(max) || max < 1) throw new TypeError('maxEntries must be a whole number >= 1');
    this.maxEntries = max;
    this.now = options.now ?? Date.now;
    this.onRefreshError = options.onRefreshError;
  }

  /** Number of remembered keys (expired ones included until they are touched or evicted). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The cached answer without any check: fresh, or stale inside the revalidation window;
   * `undefined` when unknown or expired. Counts as a use for the LRU order.
   */
  peek(key: string): CachedExistence | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    const age = this.now() - entry.expiresAt;
    if (age >= 0 && age >= this.staleWhileRevalidate) {
      this.entries.delete(key);
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, entry);
    return { exists: entry.exists, stale: age >= 0 };
  }

  /**
   * Whether `key` exists: from the cache when fresh; otherwise from `check`, called at most once
   * at a time per key (concurrent callers share its promise). Within the stale-while-revalidate
   * window the stale answer is returned at once and `check` runs in the background. A failed
   * check is not cached and rejects every caller waiting on it.
   */
  async get(key: string, check: () => Promise<boolean>): Promise<boolean> {
    const cached = this.peek(key);
    if (cached && !cached.stale) {
      this.stats.hits++;
      return cached.exists;
    }
    if (cached) {
      this.stats.staleHits++;
      this.refresh(key, check).catch((err: unknown) => this.onRefreshError?.(err, key));
      return cached.exists;
    }
    return this.refresh(key, check);
  }

  /** Starts (or joins) the check of `key` and stores its result unless a write happened meanwhile. */
  private refresh(key: string, check: () => Promise<boolean>): Promise<boolean> {
    const inFlight = this.pending.get(key);
    if (inFlight) {
      this.stats.coalesced++;
      return inFlight.promise;
    }
    this.stats.checks++;
    const pending: Pending = { promise: undefined as unknown as Promise<boolean>, superseded: false };
    pending.promise = (async () => {
      try {
        const exists = await check();
        if (!pending.superseded) this.store(key, exists);
        return exists;
      } finally {
        if (this.pending.get(key) === pending) this.pending.delete(key);
      }
    })();
    this.pending.set(key, pending);
    return pending.promise;
  }

  /**
   * Records a known answer (after a save, a delete, a 404): it replaces the entry, and a check
   * already in flight for the key no longer overwrites it.
   */
  set(key: string, exists: boolean): void {
    this.supersede(key);
    this.store(key, exists);
  }

  /** Forgets `key` (after a write whose outcome is unknown); the next `get` checks. */
  delete(key: string): void {
    this.supersede(key);
    this.entries.delete(key);
  }

  /** Forgets everything, including the results of checks still in flight. */
  clear(): void {
    for (const key of [...this.pending.keys()]) this.supersede(key);
    this.entries.clear();
  }

  /** Callers arriving after a write must not join, nor be overwritten by, a check that started before it. */
  private supersede(key: string): void {
    const pending = this.pending.get(key);
    if (!pending) return;
    pending.superseded = true;
    this.pending.delete(key);
  }

  private store(key: string, exists: boolean): void {
    const ttl = exists ? this.positiveTtl : this.negativeTtl;
    this.entries.delete(key);
    if (ttl === 0 && this.staleWhileRevalidate === 0) return;
    this.entries.set(key, { exists, expiresAt: this.now() + ttl });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
      this.stats.evictions++;
    }
  }
}
