import { execFile } from 'node:child_process';
import { mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { subpathEntries } from '../scripts/entry-points.mjs';
import { tempDir } from './support/tmp.js';

/** The subpath entry points: every src/ folder with an index.ts but the internal ones. */
const SUBPATHS = subpathEntries();

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

  /** Every subpath's export names, loaded in a fresh Node process of the consumer project. */
  const exportNames = async (format: 'esm' | 'cjs', subpaths: string[]): Promise<Record<string, string[]>> => {
    const specifiers = JSON.stringify(subpaths.map((s) => (s === '.' ? 'media-storage' : `media-storage/${s}`)));
    const load = format === 'esm' ? 'await import(s)' : 'require(s)';
    const body = `const out = {}; for (const s of ${specifiers}) out[s] = Object.keys(${load}).sort(); console.log(JSON.stringify(out));`;
    return JSON.parse(await node(format === 'esm' ? ['--input-type=module', '-e', body] : ['-e', body])) as Record<string, string[]>;
  };

  it('loads every subpath with import and with require, with the same names in both', async () => {
    // media-storage/testing imports vitest, which refuses require(): its CommonJS build only resolves.
    const cjsLoadable = SUBPATHS.filter((s) => s !== 'testing');
    const [esm, cjs] = await Promise.all([exportNames('esm', ['.', ...SUBPATHS]), exportNames('cjs', ['.', ...cjsLoadable])]);
    expect(Object.keys(esm)).toHaveLength(SUBPATHS.length + 1);
    for (const [specifier, names] of Object.entries(esm)) expect(names.length, `${specifier} exports nothing`).toBeGreaterThan(0);
    for (const [specifier, names] of Object.entries(cjs)) expect(names, specifier).toEqual(esm[specifier]);
    expect(await node(['-e', `console.log(require.resolve('media-storage/testing'))`])).toMatch(/testing[/\\]index\.cjs$/);
  });

  it('works through the root and the backend subpaths, as ESM and as CommonJS', async () => {
    const script = (load: string): string => `${load}
       const m = new MemoryStorage();
       m.save('a/b.txt', 'hello').then(async () => {
         const err = await m.stat('missing.txt').catch((e) => e);
         console.log(JSON.stringify({ local: typeof LocalStorage, key: normalizeKey('cafe\\u0301.jpg'), text: (await m.readBuffer('a/b.txt')).toString(), notFound: core.isNotFound(err), isError: err instanceof core.MediaStorageError }));
       });`;
    const esm = await node([
      '--input-type=module',
      '-e',
      script(
        `import * as core from 'media-storage'; import { normalizeKey } from 'media-storage/adapter'; import { LocalStorage } from 'media-storage/local'; import { MemoryStorage } from 'media-storage/memory';`,
      ),
    ]);
    const cjs = await node([
      '-e',
      script(
        `const core = require('media-storage'); const { normalizeKey } = require('media-storage/adapter'); const { LocalStorage } = require('media-storage/local'); const { MemoryStorage } = require('media-storage/memory');`,
      ),
    ]);
    for (const out of [esm, cjs]) expect(JSON.parse(out)).toEqual({ local: 'function', key: 'cafe\u0301.jpg', text: 'hello', notFound: true, isError: true });
  });

  it('loads media-storage/images with import and with require, and processes an image through the peer dependency sharp', async () => {
    const script = (load: string): string => `${load}
       const png = Buffer.from('89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a730000000970485973000003e8000003e801b57b526b0000001349444154089963f8cfc0f09f018cff333000001fee03fda92fc0e20000000049454e44ae426082', 'hex');
       const s = withImages(new MemoryStorage(), { variants: { a: { width: 1, height: 1 } } });
       s.save('x/a.png', png).then(async (info) => console.log(JSON.stringify({ type: info.contentType, variants: (await s.list('_variants/')).items.length })));`;
    const esm = await node([
      '--input-type=module',
      '-e',
      script(`import { withImages } from 'media-storage/images'; import { MemoryStorage } from 'media-storage/memory';`),
    ]);
    const cjs = await node([
      '-e',
      script(`const { withImages } = require('media-storage/images'); const { MemoryStorage } = require('media-storage/memory');`),
    ]);
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

// Adding a backend is its folder: tsup builds every entry folder by itself, and this names the
// package.json lines a new folder still needs (or the stale ones a removed folder left).
it('exports, and maps for node10 types, exactly the entry folders of src/', async () => {
  const { readFile } = await import('node:fs/promises');
  const pkg = JSON.parse(await readFile(path.join(import.meta.dirname, '..', 'package.json'), 'utf8')) as {
    exports: Record<string, unknown>;
    typesVersions: Record<string, Record<string, string[]>>;
  };
  const entry = (name: string) => ({
    import: { types: `./dist/${name}/index.d.ts`, default: `./dist/${name}/index.js` },
    require: { types: `./dist/${name}/index.d.cts`, default: `./dist/${name}/index.cjs` },
  });
  const exported = Object.fromEntries(Object.entries(pkg.exports).filter(([subpath]) => subpath !== '.' && subpath !== './package.json'));
  expect(exported).toEqual(Object.fromEntries(SUBPATHS.map((name) => [`./${name}`, entry(name)])));
  expect(Object.keys(pkg.typesVersions['*'] ?? {}).sort()).toEqual(SUBPATHS);
  expect(SUBPATHS).toEqual(expect.arrayContaining(['adapter', 'tools', 'mirror', 's3', 'local']));
});
