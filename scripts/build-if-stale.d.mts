/** Whether dist/ is missing or older than the sources. */
export function isStale(): boolean;
/** Builds dist/ (tsup) when stale; true when it built. */
export function buildIfStale(options?: { quiet?: boolean }): boolean;
