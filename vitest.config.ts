import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    // Integration tests start real daemons in network namespaces, and the sandbox's link from
    // this machine (routes for 203.0.113.0/24 and 198.51.100.0/24) can exist once per machine:
    // files run one at a time. Give them time to converge.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
