import { defineConfig } from 'tsup';

// One entry per subpath export; backend SDKs stay external (optional peer dependencies).
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    'local/index': 'src/local/index.ts',
    'memory/index': 'src/memory/index.ts',
    'testing/index': 'src/testing/index.ts',
    's3/index': 'src/s3/index.ts',
  },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  platform: 'node',
  splitting: true,
  shims: true,
  external: ['vitest', /^@aws-sdk\//, 'cloudinary', 'backblaze-b2'],
});
