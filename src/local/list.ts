import type * as nodeFs from 'node:fs';
import path from 'node:path';
import { compareKeys } from '../core/keys.js';
import { isCode } from './errors.js';
import type { LocalFileSystem } from './fs.js';
import { TEMP_PREFIX } from './tree.js';

/**
 * Whether a listing may start in this folder: it exists and resolves inside the root. (The walk
 * below never follows a link; this catches a prefix that names one, `list('link/')`.)
 */
export async function folderInsideRoot(fs: LocalFileSystem, realRoot: string, dirKey: string): Promise<boolean> {
  if (dirKey === '') return true;
  try {
    const real = await fs.promises.realpath(path.join(realRoot, dirKey));
    return real.startsWith(realRoot + path.sep);
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENOTDIR')) return false;
    throw err;
  }
}

/**
 * Yields `[key, path]` of regular files in key order. Folders sort as "name/" so that the walk
 * order equals the order of the full keys; subtrees wholly before the cursor or outside the
 * prefix are skipped without being read. Symbolic links are never followed.
 */
export async function* walk(
  fs: LocalFileSystem,
  realRoot: string,
  dirKey: string,
  prefix: string,
  after: string | undefined,
): AsyncGenerator<[string, string]> {
  let entries: nodeFs.Dirent[];
  try {
    entries = (await fs.promises.readdir(path.join(realRoot, dirKey), { withFileTypes: true })) as nodeFs.Dirent[];
  } catch (err) {
    if (isCode(err, 'ENOENT', 'ENOTDIR')) return;
    throw err;
  }
  const named = entries
    .filter((e) => (e.isFile() || e.isDirectory()) && !e.name.startsWith(TEMP_PREFIX))
    // Names as stored: keys are byte-exact, so a decomposed "Jose\u0301.jpg" is listed as such.
    .map((e) => ({ entry: e, sortKey: dirKey + e.name + (e.isDirectory() ? '/' : '') }))
    .sort((a, b) => compareKeys(a.sortKey, b.sortKey));
  for (const { entry, sortKey } of named) {
    if (!(sortKey.startsWith(prefix) || prefix.startsWith(sortKey))) continue;
    if (entry.isDirectory()) {
      if (after !== undefined && compareKeys(sortKey, after) < 0 && !after.startsWith(sortKey)) continue;
      yield* walk(fs, realRoot, sortKey, prefix, after);
    } else if (after === undefined || compareKeys(sortKey, after) > 0) {
      yield [sortKey, path.join(realRoot, dirKey, entry.name)];
    }
  }
}
