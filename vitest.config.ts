import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // CI asks for a JSON report beside the console output (.ci/run).
    ...(process.env['TONGBU_VITEST_JSON']
      ? {
          reporters: ['default', 'json'],
          outputFile: { json: process.env['TONGBU_VITEST_JSON'] },
        }
      : {}),
  },
});
