// Prints one plain closing line, "N passed, N failed, N skipped", that any CI log reader can
// count, after vitest's own colourful summary, and the Kubernetes API server the end-to-end
// tests ran against.
import type { Reporter, SerializedError, TestModule } from 'vitest/node';
import { describeE2EKube } from './kube-server.ts';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    // An unhandled error fails the run even when every test passed: count it as a failure.
    const counts = { passed: 0, failed: unhandledErrors.length, skipped: 0 };
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') counts.passed++;
        else if (state === 'failed') counts.failed++;
        else counts.skipped++;
      }
    }
    process.stdout.write(`\ntests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
    process.stdout.write(`end-to-end Kubernetes API: ${describeE2EKube()}\n`);
  }
}
