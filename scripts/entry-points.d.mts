/** Folders of src/ that are code shared by the entry points, not entry points themselves. */
export declare const INTERNAL_FOLDERS: readonly string[];
/** Subpath names (`s3`, `adapter`, ...), sorted; the root entry (`src/index.ts`) is not among them. */
export declare function subpathEntries(src?: string): string[];
