import { isMediaStorageError } from '../core/errors.js';
import { compareKeys, validatePrefix } from '../core/keys.js';
import type { MediaStorage } from '../core/types.js';

/** Options of {@link ExistenceCache} (and `withExistenceCache`): how long answers are trusted, how many are kept, background refresh. */
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

/** Counters of an {@link ExistenceCache} since it was made (its `stats`), for seeing how many storage requests it saves. */
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
  /** Listings made by {@link ExistenceCache.prime}, and the `list()` calls they took. */
  primes: number;
  primeRequests: number;
  /** Answers "missing" given from a primed listing, with no entry of their own. */
  primedMisses: number;
}

interface Entry {
  exists: boolean;
  expiresAt: number;
  /** The listing this "exists" came from: when the entry goes, the listing no longer answers for the key. */
  coverage?: Coverage;
}

/**
 * What a listing of `prefix` proved: every key under it (up to `upTo`, when the listing stopped
 * early) that exists has an entry, so a key without one is missing.
 */
interface Coverage {
  prefix: string;
  upTo: string | undefined;
  expiresAt: number;
  valid: boolean;
}

/** A prime in flight: keys written meanwhile keep what the write said. */
interface Priming {
  prefix: string;
  touched: Set<string>;
  /** A key under the prefix was forgotten (outcome unknown) meanwhile: the listing proves nothing. */
  spoiled: boolean;
}

/** What one listing for {@link ExistenceCache.prime} found. */
interface ListedPrefix {
  present: Set<string>;
  /** Set when the listing stopped early: the last key it reached. */
  upTo: string | undefined;
  requests: number;
  answersMissing: boolean;
  /** Every listed key was stored (the listing fits in the cache). */
  kept: boolean;
  /** Keys written while listing: their writes stand. */
  touched: Set<string>;
}

/** Options of {@link ExistenceCache.prime}: how much of the prefix to list, and which keys to answer from the listing. */
export interface PrimeOptions {
  /** Most objects listed; default 5,000. A prefix holding more is listed that far and no further. */
  maxObjects?: number;
  /** Objects per `list()` call; default 2,500 (so 5,000 objects cost two calls). */
  pageSize?: number;
  /** Stop once the listing has passed this key (backends that list in key order). */
  until?: string;
  /**
   * Keys to answer whatever the listing covers: each gets its own entry (present, or missing
   * when the listing proved it), even when the listing is too large to remember whole.
   */
  keys?: Iterable<string>;
}

/** Options of {@link ExistenceCache.primeForKeys}, also accepted as `resolveAvatars`' `prime` option: when a folder is worth a listing, and how far to list it. */
export interface PrimeForKeysOptions {
  /** Fewest unknown keys in one folder that are worth a listing; default 16. */
  minKeys?: number;
  /** See {@link PrimeOptions.maxObjects}; default 5,000. */
  maxObjects?: number;
  /** See {@link PrimeOptions.pageSize}; default 2,500. */
  pageSize?: number;
}

/** What {@link ExistenceCache.primeForKeys} did: the listings it made and those that failed (it does not reject). */
export interface PrimeForKeysResult {
  /** Listings made (one per folder primed). */
  listings: number;
  /** `list()` calls they took. */
  requests: number;
  /** Listings that failed, by prefix: the keys under it are left to per-key checks. */
  errors: Array<{ prefix: string; error: unknown }>;
}

/** What one {@link ExistenceCache.prime} listing found and what the cache can now answer. */
export interface PrimeResult {
  /** Keys listed (present). */
  listed: number;
  /** `list()` calls made. */
  requests: number;
  /** The whole prefix was listed. */
  complete: boolean;
  /**
   * Whether missing keys are now answered too: the backend declares `listingAnswersExists`, and
   * the listing could be remembered. Otherwise only the listed keys were recorded (as present).
   */
  answersMissing: boolean;
  /** When the listing stopped early, the last key it reached: keys after it are checked one by one. */
  upTo?: string;
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
const PRIME_DEFAULTS = { maxObjects: 5000, pageSize: 2500 };
/** Listings remembered at once (the oldest is forgotten first). */
const MAX_COVERAGES = 64;

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
  private coverages: Coverage[] = [];
  private readonly primings = new Set<Priming>();
  private readonly primesInFlight = new Map<string, Promise<ListedPrefix>>();
  /** Folders found to hold more than a prime lists, until when: not listed again for the page's sake. */
  private readonly oversized = new Map<string, number>();
  /** Until when listings are not tried (the backend refused one: no list permission). */
  private listingRefusedUntil = 0;
  readonly stats: ExistenceCacheStats = { hits: 0, staleHits: 0, checks: 0, coalesced: 0, evictions: 0, primes: 0, primeRequests: 0, primedMisses: 0 };

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
    const age = entry ? this.now() - entry.expiresAt : 0;
    if (!entry || (age >= 0 && age >= this.staleWhileRevalidate)) {
      if (entry) this.drop(key, entry);
      if (!this.covered(key)) return undefined;
      this.stats.primedMisses++;
      return { exists: false, stale: false };
    }
    this.entries.delete(key);
    this.entries.set(key, entry);
    return { exists: entry.exists, stale: age >= 0 };
  }

  /** Whether a fresh listing proved that `key`, which has no entry, is missing. */
  private covered(key: string): boolean {
    if (this.coverages.length === 0) return false;
    const now = this.now();
    return this.coverages.some((c) => c.valid && c.expiresAt > now && key.startsWith(c.prefix) && (c.upTo === undefined || compareKeys(key, c.upTo) <= 0));
  }

  /** Removes an entry that is not being replaced: a listing it came from no longer answers for its key. */
  private drop(key: string, entry: Entry): void {
    this.entries.delete(key);
    if (entry.coverage) entry.coverage.valid = false;
  }

  /**
   * Lists `prefix` (in bounded pages) and records what the listing shows, so that one request
   * answers the existence of many keys: a cold page of avatars under one folder costs one or two
   * listings instead of a check per photo. Listed keys are recorded as present. On a backend whose
   * listing answers `exists()` (`capabilities.listingAnswersExists`: S3, B2) the keys under
   * `prefix` that the listing did not show are answered as missing too, up to the last key listed
   * when the prefix holds more than `maxObjects`; elsewhere (a local disk, whose `exists` follows
   * links the listing does not; Cloudinary, whose listings are rate-limited and miss adopted
   * names) only the present keys are recorded. Both kinds of answer last
   * `min(positiveTtl, negativeTtl)` as a whole, and a write through the cache (`set`) wins over a
   * listing in flight. Concurrent primes of one prefix share one listing. A failing listing
   * rejects, recording nothing.
   */
  async prime(storage: MediaStorage, prefix: string, options: PrimeOptions = {}): Promise<PrimeResult> {
    let listing = this.primesInFlight.get(prefix);
    if (listing) {
      this.stats.coalesced++;
    } else {
      const started: Promise<ListedPrefix> = this.listForPrime(storage, prefix, options).finally(() => {
        if (this.primesInFlight.get(prefix) === started) this.primesInFlight.delete(prefix);
      });
      listing = started;
      this.primesInFlight.set(prefix, started);
    }
    const done = await listing;
    // The keys asked about get entries of their own, whether or not the whole listing was kept.
    let answered = 0;
    for (const key of options.keys ?? []) {
      if (done.touched.has(key) || !key.startsWith(prefix)) continue;
      if (done.present.has(key)) {
        if (!done.kept) this.store(key, true);
        answered++;
      } else if (done.answersMissing && (done.upTo === undefined || compareKeys(key, done.upTo) <= 0)) {
        // An entry learnt otherwise stands, as it would without the listing.
        if (!this.entries.has(key)) this.store(key, false);
        answered++;
      }
    }
    return {
      listed: done.present.size,
      requests: done.requests,
      complete: done.upTo === undefined,
      answersMissing: done.answersMissing && (done.kept || answered > 0),
      ...(done.upTo !== undefined ? { upTo: done.upTo } : {}),
    };
  }

  /**
   * The heuristic `resolveAvatars` uses: the keys this cache knows nothing about are grouped by
   * folder, and each folder holding at least `minKeys` of them is primed once, from the longest
   * prefix its keys share up to the last of them (so a page's photos under `profile_images/` cost
   * one or two listings, not a check each). Only on backends whose listing answers `exists()`
   * (`capabilities.listingAnswersExists`); a folder found larger than `maxObjects` is left to
   * per-key checks for `positiveTtl`, and a backend that refuses listings (PERMISSION, AUTH,
   * UNSUPPORTED, CONFIG) is not asked again for `negativeTtl`.
   */
  async primeForKeys(storage: MediaStorage, keys: Iterable<string>, options: PrimeForKeysOptions = {}): Promise<PrimeForKeysResult> {
    const result: PrimeForKeysResult = { listings: 0, requests: 0, errors: [] };
    const now = this.now();
    if (storage.capabilities.listingAnswersExists !== true || this.listingRefusedUntil > now) return result;
    const minKeys = Math.max(1, options.minKeys ?? 16);
    const folders = new Map<string, string[]>();
    for (const key of keys) {
      if (this.known(key)) continue;
      const folder = key.slice(0, key.lastIndexOf('/') + 1);
      const group = folders.get(folder);
      if (group) group.push(key);
      else folders.set(folder, [key]);
    }
    await Promise.all(
      [...folders].map(async ([folder, group]) => {
        if (group.length < minKeys || (this.oversized.get(folder) ?? 0) > now) return;
        group.sort(compareKeys);
        const prefix = sharedPrefix(group[0]!, group[group.length - 1]!, folder);
        try {
          const primed = await this.prime(storage, prefix, {
            until: group[group.length - 1]!,
            maxObjects: options.maxObjects,
            pageSize: options.pageSize,
            keys: group,
          });
          result.listings++;
          result.requests += primed.requests;
          if (primed.upTo !== undefined && compareKeys(group[group.length - 1]!, primed.upTo) > 0) this.oversized.set(folder, this.now() + this.positiveTtl);
        } catch (error) {
          result.errors.push({ prefix, error });
          if (isMediaStorageError(error) && ['PERMISSION', 'AUTH', 'UNSUPPORTED', 'CONFIG'].includes(error.code))
            this.listingRefusedUntil = this.now() + this.negativeTtl;
        }
      }),
    );
    return result;
  }

  /** Whether the cache has an answer for `key` (fresh or stale), without counting a use. */
  private known(key: string): boolean {
    const entry = this.entries.get(key);
    if (entry && this.now() - entry.expiresAt < this.staleWhileRevalidate) return true;
    return this.covered(key);
  }

  /** One listing of `prefix` for {@link prime}, shared by concurrent primes; keeps it when it fits. */
  private async listForPrime(storage: MediaStorage, prefix: string, options: PrimeOptions): Promise<ListedPrefix> {
    const maxObjects = options.maxObjects ?? PRIME_DEFAULTS.maxObjects;
    if (!Number.isInteger(maxObjects) || maxObjects < 1) throw new TypeError('maxObjects must be a whole number >= 1');
    const pageSize = Math.min(options.pageSize ?? PRIME_DEFAULTS.pageSize, maxObjects);
    if (!Number.isInteger(pageSize) || pageSize < 1) throw new TypeError('pageSize must be a whole number >= 1');
    const priming: Priming = { prefix, touched: new Set(), spoiled: false };
    this.primings.add(priming);
    const present = new Set<string>();
    let last: string | undefined;
    let requests = 0;
    let seen = 0;
    let complete = false;
    this.stats.primes++;
    try {
      let cursor: string | undefined;
      for (;;) {
        const page = await storage.list(prefix, { limit: Math.min(pageSize, maxObjects - seen), ...(cursor ? { cursor } : {}) });
        requests++;
        this.stats.primeRequests++;
        for (const item of page.items) present.add((last = item.key));
        seen += page.items.length + (page.skipped?.length ?? 0);
        cursor = page.cursor;
        if (!cursor) {
          complete = true;
          break;
        }
        if (seen >= maxObjects || (options.until !== undefined && last !== undefined && compareKeys(last, options.until) >= 0)) break;
      }
    } finally {
      this.primings.delete(priming);
    }
    // The listing stands for the whole prefix (or, stopped early, its part up to the last key
    // listed: listings are in key order) only where the backend says a listing answers exists(),
    // and while nothing under the prefix was forgotten meanwhile.
    const answersMissing = storage.capabilities.listingAnswersExists === true && !priming.spoiled && (complete || last !== undefined);
    const upTo = complete ? undefined : last;
    const ttl = Math.min(this.positiveTtl, this.negativeTtl);
    const fits = present.size <= this.maxEntries / 2;
    const coverage: Coverage | undefined = answersMissing && fits && ttl > 0 ? { prefix, upTo, expiresAt: this.now() + ttl, valid: true } : undefined;
    if (fits) for (const key of present) if (!priming.touched.has(key)) this.store(key, true, coverage);
    if (coverage) {
      const now = this.now();
      this.coverages = [...this.coverages.filter((c) => c.valid && c.expiresAt > now), coverage].slice(-MAX_COVERAGES);
    }
    return { present, upTo, requests, answersMissing, kept: fits, touched: priming.touched };
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
    for (const priming of this.primings) priming.touched.add(key);
    this.store(key, exists);
  }

  /** Forgets `key` (after a write whose outcome is unknown); the next `get` checks. */
  delete(key: string): void {
    this.supersede(key);
    const entry = this.entries.get(key);
    if (entry) this.drop(key, entry);
    // No listing may now answer "missing" for it.
    for (const coverage of this.coverages) if (key.startsWith(coverage.prefix)) coverage.valid = false;
    for (const priming of this.primings) {
      priming.touched.add(key);
      if (key.startsWith(priming.prefix)) priming.spoiled = true;
    }
  }

  /** Forgets everything, including the results of checks and listings still in flight. */
  clear(): void {
    for (const key of [...this.pending.keys()]) this.supersede(key);
    this.entries.clear();
    this.coverages = [];
    for (const priming of this.primings) priming.spoiled = true;
  }

  /** Callers arriving after a write must not join, nor be overwritten by, a check that started before it. */
  private supersede(key: string): void {
    const pending = this.pending.get(key);
    if (!pending) return;
    pending.superseded = true;
    this.pending.delete(key);
  }

  private store(key: string, exists: boolean, coverage?: Coverage): void {
    const ttl = exists ? this.positiveTtl : this.negativeTtl;
    this.entries.delete(key);
    if (ttl === 0 && this.staleWhileRevalidate === 0) return;
    this.entries.set(key, { exists, expiresAt: this.now() + ttl, ...(coverage ? { coverage } : {}) });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.drop(oldest, this.entries.get(oldest)!);
      this.stats.evictions++;
    }
  }
}

/**
 * The longest prefix `first` and `last` (sorted keys of one folder) share, as a listing prefix:
 * never ending inside a surrogate pair, and the folder itself when the shared part is not a
 * valid prefix (`a/.`).
 */
function sharedPrefix(first: string, last: string, folder: string): string {
  let n = 0;
  while (n < first.length && n < last.length && first.charCodeAt(n) === last.charCodeAt(n)) n++;
  if (n > 0 && n < first.length && first.charCodeAt(n - 1) >= 0xd800 && first.charCodeAt(n - 1) <= 0xdbff) n--;
  const shared = first.slice(0, n);
  if (shared.length <= folder.length) return folder;
  try {
    return validatePrefix(shared);
  } catch {
    return folder;
  }
}
