import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Builds dist/ once (the CLI and server the end-to-end tests run); FERRY_SKIP_BUILD=1 skips it.
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Integration and end-to-end tests share two database servers on a 2-core machine.
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
