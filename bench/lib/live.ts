// "Live on a node": the node's haproxy.cfg holds the edit and HAProxy has started a worker
// since (a reload: the master forks new workers; old ones finish their connections and exit).
import type { Bench } from './harness.ts';
import { nowMs, waitFor } from './harness.ts';

const WORKERS = 'pgrep -P "$(cat /run/haproxy.pid)" | sort -n | tr "\\n" " "';

export async function haproxyWorkers(b: Bench, node: string): Promise<Set<string>> {
  return new Set((await b.exec(node, ['sh', '-c', WORKERS])).trim().split(/\s+/).filter(Boolean));
}

/** Edits the object and resolves with the ms from the edit until it is live on every node. */
export async function editUntilLive(
  b: Bench, name: string, nodes: readonly string[], patch: unknown, marker: string, timeoutMs = 60_000,
): Promise<number> {
  const before = new Map(await Promise.all(nodes.map(async (n) => [n, await haproxyWorkers(b, n)] as const)));
  const t0 = nowMs();
  await b.patch(name, patch);
  const live = new Set<string>();
  await waitFor(`"${marker}" live on ${nodes.join(', ')}`, async () => {
    await Promise.all(nodes.filter((n) => !live.has(n)).map(async (n) => {
      const out = await b.exec(n, ['sh', '-c', `grep -qF -- '${marker}' /etc/haproxy/haproxy.cfg && ${WORKERS}`]).catch(() => '');
      const workers = out.trim().split(/\s+/).filter(Boolean);
      if (workers.some((w) => !before.get(n)!.has(w))) live.add(n);
    }));
    return live.size === nodes.length || undefined;
  }, timeoutMs, 50);
  return nowMs() - t0;
}
