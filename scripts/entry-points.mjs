// The package's subpath entry points, derived from src/: every folder with an index.ts is one
// (`src/s3/index.ts` is `media-storage/s3`), except the internal folders below. tsup.config.ts
// builds these, and test/package.test.ts checks that package.json's `exports` and
// `typesVersions` list exactly these, so adding a backend is its folder plus those two lines.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Folders of src/ that are code shared by the entry points, not entry points themselves. */
export const INTERNAL_FOLDERS = Object.freeze(['cli', 'config', 'core']);

const SRC = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'src');

/** Subpath names (`s3`, `adapter`, ...), sorted; the root entry (`src/index.ts`) is not among them. */
export function subpathEntries(src = SRC) {
  return readdirSync(src, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && !INTERNAL_FOLDERS.includes(entry.name) && existsSync(path.join(src, entry.name, 'index.ts')))
    .map((entry) => entry.name)
    .sort();
}
