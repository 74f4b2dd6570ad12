import path from 'node:path';
import { defineConfig } from 'tsup';
import type { Plugin } from 'esbuild';
import { subpathEntries } from './scripts/entry-points.mjs';

/**
 * src/s3/sdk-load.ts loads the AWS SDK with a top-level await, so that a missing package is an
 * error naming it; CommonJS has no top-level await, so its build takes src/s3/sdk-load-cjs.ts (require).
 */
const s3SdkPerFormat: Plugin = {
  name: 's3-sdk-per-format',
  setup(build) {
    // tsup builds CommonJS with splitting as ESM and converts it after: its define says which.
    if (build.initialOptions.define?.TSUP_FORMAT !== '"cjs"') return;
    build.onResolve({ filter: /^\.\/sdk-load\.js$/ }, (args) =>
      path.basename(args.resolveDir) === 's3' ? { path: path.join(args.resolveDir, 'sdk-load-cjs.ts') } : undefined,
    );
  },
};

// One entry per subpath export, derived from src/ (scripts/entry-points.mjs): a new backend's
// folder with its index.ts is built without a line here. Backend SDKs stay external (optional
// peer dependencies).
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    cli: 'src/cli/bin.ts',
    ...Object.fromEntries(subpathEntries().map((name) => [`${name}/index`, `src/${name}/index.ts`])),
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'node',
  splitting: true,
  shims: true,
  // Keep `node:` in imports: a bundler or test runner that inlines the package (vitest on a linked
  // package) must not resolve a bare "stream" as a file or a browser polyfill.
  removeNodeProtocol: false,
  external: ['vitest', /^@aws-sdk\//, /^@azure\//, 'cloudinary', 'backblaze-b2', 'sharp'],
  esbuildPlugins: [s3SdkPerFormat],
});
