// Argo CD sees no drift after a sync: the operator never writes spec. In the sandbox, a
// HALoadBalancer goes all the way to Ready (droplets, reserved IP, configs applied, VRRP
// settled) and through further resyncs; its spec stays byte-identical, its generation stays 1,
// only kubectl ever managed spec fields, and re-applying the same file changes nothing
// (`kubectl diff` is empty).
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startE2E, type E2E } from '../e2e/helpers.ts';

interface ManagedFields { manager: string; operation: string; subresource?: string; fieldsV1?: Record<string, unknown> }
interface Got {
  metadata: { generation: number; managedFields?: ManagedFields[]; finalizers?: string[] }; spec: unknown;
  status?: { observedGeneration?: number };
}

let e2e: E2E;
beforeAll(async () => { e2e = await startE2E(); }, 120_000);
afterAll(async () => { await e2e?.close(); }, 120_000);
afterEach((ctx) => e2e?.printLogIfFailed(ctx));

describe('no drift after a full reconcile', () => {
  it('leaves the spec byte-identical', async () => {
    const file = `${ROOT}examples/basic.yaml`;
    const get = async () => {
      const r = await e2e.kubectl(['get', 'halb', 'basic', '-o', 'json']);
      expect(r.code).toBe(0);
      return { raw: r.stdout, obj: JSON.parse(r.stdout) as Got };
    };
    const applied = await e2e.kubectl(['apply', '-f', file, '-o', 'json']);
    expect(applied.stderr).toBe('');
    const before = JSON.parse(applied.stdout) as Got;
    expect(before.metadata.generation).toBe(1);

    const wait = await e2e.kubectl(['wait', '--for=condition=Ready', 'halb/basic', '--timeout=120s']);
    expect(wait.stdout + wait.stderr).toContain('condition met');
    // Let a few resyncs (every 2 s here) pass over the converged object as well.
    await new Promise((r) => setTimeout(r, 5000));

    const after = (await get()).obj;
    expect(JSON.stringify(after.spec)).toBe(JSON.stringify(before.spec));
    expect(after.metadata.generation).toBe(1);
    expect(after.status?.observedGeneration).toBe(1);
    expect(after.metadata.finalizers).toContain('halb.dev/cleanup');
    // Only kubectl owns spec fields; the operator's entries touch status and finalizers only.
    for (const entry of after.metadata.managedFields ?? []) {
      if (entry.manager.startsWith('kubectl')) continue;
      const fields = entry.fieldsV1 ?? {};
      expect(Object.keys(fields).filter((k) => k !== 'f:status' && k !== 'f:metadata'), `${entry.manager} ${entry.operation}`).toEqual([]);
      const meta = (fields['f:metadata'] ?? {}) as Record<string, unknown>;
      expect(Object.keys(meta).filter((k) => k !== 'f:finalizers'), `${entry.manager} metadata`).toEqual([]);
    }

    // The CRD defaults nothing inside list items, so kubectl's patch is empty: "unchanged".
    const reapplied = await e2e.kubectl(['apply', '-f', file]);
    expect(reapplied.code).toBe(0);
    expect(reapplied.stdout).toBe('haloadbalancer.halb.dev/basic unchanged\n');
    const again = (await get()).obj;
    expect(JSON.stringify(again.spec)).toBe(JSON.stringify(before.spec));
    expect(again.metadata.generation).toBe(1);
    const diff = await e2e.kubectl(['diff', '-f', file]);
    expect(diff.stdout).toBe('');
    expect(diff.code).toBe(0);
    expect(readFileSync(file, 'utf8')).toContain('name: basic');
  }, 180_000);
});
