import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    // Integration tests start real daemons in network namespaces; keep them from fighting over
    // the machine's two cores, and give them time to converge.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
