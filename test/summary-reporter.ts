// Prints one plain closing line, "N passed, N failed, N skipped", that any CI log reader can
// count, after vitest's own colourful summary, and the Kubernetes API server the end-to-end
// tests ran against.
import type { Reporter, SerializedError, TestModule } from 'vitest/node';
import { describeE2EKube } from './kube-server.ts';
import { clearFailureDigests, takeFailureDigests } from './failure-digest.ts';

export default class SummaryReporter implements Reporter {
  onInit(): void {
    clearFailureDigests();
  }

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
    // What the failed sandbox tests' logs said, where a CI log's tail still shows it.
    const digests = takeFailureDigests();
    if (digests) process.stdout.write(`\n--- why the sandbox tests failed (the first failure of each file) ---\n${digests}`);
    process.stdout.write(`\ntests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`);
    process.stdout.write(`end-to-end Kubernetes API: ${describeE2EKube()}\n`);
  }
}
