import { execFile } from 'node:child_process';
import { mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './support/tmp.js';

const run = promisify(execFile);

// Imports the built package (dist/, made by `npm test`'s pretest build) from another project,
// through package.json "exports", both as ESM and as CommonJS.
describe('the built package', () => {
  let app: Awaited<ReturnType<typeof tempDir>>;
  beforeAll(async () => {
    app = await tempDir('consumer');
    await mkdir(path.join(app.dir, 'node_modules'));
    await symlink(path.resolve('.'), path.join(app.dir, 'node_modules', 'media-storage'), 'dir');
  });
  afterAll(() => app.remove());

  const node = async (args: string[]): Promise<string> => (await run(process.execPath, args, { cwd: app.dir })).stdout.trim();

  it('loads every subpath with import', async () => {
    const out = await node([
      '--input-type=module',
      '-e',
      `import * as core from 'media-storage';
       import { LocalStorage } from 'media-storage/local';
       import { MemoryStorage } from 'media-storage/memory';
       const m = new MemoryStorage();
       await m.save('a/b.txt', 'hello');
       const err = await m.stat('missing.txt').catch((e) => e);
       console.log(JSON.stringify({ local: typeof LocalStorage, text: (await m.readBuffer('a/b.txt')).toString(), notFound: core.isNotFound(err), isError: err instanceof core.MediaStorageError }));`,
    ]);
    expect(JSON.parse(out)).toEqual({ local: 'function', text: 'hello', notFound: true, isError: true });
  });

  it('loads every subpath with require', async () => {
    const out = await node([
      '-e',
      `const core = require('media-storage');
       const { LocalStorage } = require('media-storage/local');
       const { MemoryStorage } = require('media-storage/memory');
       const testing = require.resolve('media-storage/testing');
       console.log(JSON.stringify({ key: core.validateKey('cafe\\u0301.jpg'), local: typeof LocalStorage, memory: typeof MemoryStorage, testing: testing.endsWith('.cjs') }));`,
    ]);
    expect(JSON.parse(out)).toEqual({ key: 'cafe\u0301.jpg', local: 'function', memory: 'function', testing: true });
  });

  it('loads media-storage/images with import and with require, and processes an image through the peer dependency sharp', async () => {
    const script = (load: string): string => `${load}
       const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a730000000970485973000003e8000003e801b57b526b0000001349444154089963f8cfc0f09f018cff333000001fee03fda92fc0e20000000049454e44ae426082', 'hex');
       const s = withImages(new MemoryStorage(), { variants: { a: { width: 1, height: 1 } } });
       s.save('x/a.png', png).then(async (info) => console.log(JSON.stringify({ type: info.contentType, variants: (await s.list('_variants/')).items.length })));`;
    const esm = await node(['--input-type=module', '-e', script(`import { withImages } from 'media-storage/images'; import { MemoryStorage } from 'media-storage/memory';`)]);
    const cjs = await node(['-e', script(`const { withImages } = require('media-storage/images'); const { MemoryStorage } = require('media-storage/memory');`)]);
    for (const out of [esm, cjs]) expect(JSON.parse(out)).toEqual({ type: 'image/png', variants: 1 });
  });
});

// TypeScript's node10 resolution (moduleResolution "node", still the default of many projects)
// ignores "exports"; typesVersions gives it each subpath's types. attw checks that they resolve;
// this checks that no export was added without its typesVersions entry.
it('maps every subpath export to its types for node10 resolution (typesVersions)', async () => {
  const { readFile } = await import('node:fs/promises');
  const pkg = JSON.parse(await readFile(path.join(import.meta.dirname, '..', 'package.json'), 'utf8')) as {
    exports: Record<string, string | { require: { types: string } }>;
    typesVersions: Record<string, Record<string, string[]>>;
  };
  const expected = Object.fromEntries(
    Object.entries(pkg.exports)
      .filter(([subpath, target]) => subpath !== '.' && typeof target !== 'string')
      .map(([subpath, target]) => [subpath.slice(2), [(target as { require: { types: string } }).require.types]]),
  );
  expect(pkg.typesVersions).toEqual({ '*': expected });
});
