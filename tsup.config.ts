import path from 'node:path';
import { defineConfig } from 'tsup';
import type { Plugin } from 'esbuild';

/**
 * src/s3/sdk-load.ts loads the AWS SDK with a top-level await, so that a missing package is an
 * error naming it; CommonJS has no top-level await, so its build takes src/s3/sdk-load-cjs.ts (require).
 */
const s3SdkPerFormat: Plugin = {
  name: 's3-sdk-per-format',
  setup(build) {
    // tsup builds CommonJS with splitting as ESM and converts it after: its define says which.
    if (build.initialOptions.define?.TSUP_FORMAT !== '"cjs"') return;
    build.onResolve({ filter: /^\.\/sdk-load\.js$/ }, (args) => (path.basename(args.resolveDir) === 's3' ? { path: path.join(args.resolveDir, 'sdk-load-cjs.ts') } : undefined));
  },
};

// One entry per subpath export; backend SDKs stay external (optional peer dependencies).
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'local/index': 'src/local/index.ts',
    'memory/index': 'src/memory/index.ts',
    'testing/index': 'src/testing/index.ts',
    cli: 'src/cli/bin.ts',
    'avatar/index': 'src/avatar/index.ts',
    'multer/index': 'src/multer/index.ts',
    'cloudinary/index': 'src/cloudinary/index.ts',
    'b2/index': 'src/b2/index.ts',
    'layers/index': 'src/layers/index.ts',
    's3/index': 'src/s3/index.ts',
    'images/index': 'src/images/index.ts',
    'azure/index': 'src/azure/index.ts',
    'browser/index': 'src/browser/index.ts',
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
