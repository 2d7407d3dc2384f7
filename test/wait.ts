// Polls until `fn` gives a value (anything but undefined or false), or fails naming what it
// waited for. Shared by the integration tests and the benchmarks.
export async function waitFor<T>(
  what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
