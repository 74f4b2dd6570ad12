// A project that uses the built package (dist/) as an app would: media-storage in its node_modules,
// and, linked from this repository's node_modules, the packages `keep` allows.
import { cp, mkdir, readdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { tempDir } from './tmp.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

export interface ConsumerProject {
  dir: string;
  remove: () => Promise<void>;
}

/**
 * `copy: true` copies dist/ and package.json in (so nothing resolves from this repository's
 * node_modules unless linked); otherwise media-storage is a link to this repository. The CLI is
 * linked as node_modules/.bin/media-storage, so `npx media-storage` runs it offline.
 */
export async function consumerProject(label: string, keep: (name: string) => boolean, { copy = true } = {}): Promise<ConsumerProject> {
  const tmp = await tempDir(label);
  const modules = path.join(tmp.dir, 'node_modules');
  await mkdir(modules, { recursive: true });
  if (copy) {
    await mkdir(path.join(modules, 'media-storage'));
    await cp(path.join(ROOT, 'dist'), path.join(modules, 'media-storage', 'dist'), { recursive: true });
    await cp(path.join(ROOT, 'package.json'), path.join(modules, 'media-storage', 'package.json'));
  } else {
    await symlink(ROOT, path.join(modules, 'media-storage'), 'dir');
  }
  await mkdir(path.join(modules, '.bin'));
  await symlink(path.join(modules, 'media-storage', 'dist', 'cli.js'), path.join(modules, '.bin', 'media-storage'));
  for (const entry of await readdir(path.join(ROOT, 'node_modules'))) {
    if (entry === 'media-storage' || entry.startsWith('.')) continue;
    if (entry.startsWith('@')) {
      for (const inner of await readdir(path.join(ROOT, 'node_modules', entry))) {
        if (!keep(`${entry}/${inner}`)) continue;
        await mkdir(path.join(modules, entry), { recursive: true });
        await symlink(path.join(ROOT, 'node_modules', entry, inner), path.join(modules, entry, inner), 'dir');
      }
    } else if (keep(entry)) {
      await symlink(path.join(ROOT, 'node_modules', entry), path.join(modules, entry), 'dir');
    }
  }
  return tmp;
}
