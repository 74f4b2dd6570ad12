import { defineConfig } from 'tsup';

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
  external: ['vitest', /^@aws-sdk\//, /^@azure\//, 'cloudinary', 'backblaze-b2', 'sharp'],
});
