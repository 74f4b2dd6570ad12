import { defineConfig } from 'vitest/config';

// Vitest runs os.availableParallelism() - 1 files at once: one at a time on a 2-core CI machine,
// where most test time is spent waiting on servers in other processes (Azurite, RGW, s3rver,
// Chromium). MEDIA_STORAGE_TEST_WORKERS overrides the count (.ci/run sets it).
const workers = Number(process.env.MEDIA_STORAGE_TEST_WORKERS) || undefined;

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Type tests (*.test-d.ts, expectTypeOf and @ts-expect-error) run with the others: the
    // compiler checks them, and a wrong type fails `npm test` (they import the built package's
    // declarations, which the pretest build makes).
    typecheck: { enabled: true, include: ['test/**/*.test-d.ts'], tsconfig: './tsconfig.json' },
    ...(workers ? { maxWorkers: workers } : {}),
  },
});
