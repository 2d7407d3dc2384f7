// GitOps stays in sync, proven with the real kubectl (v1.32) against the emulator: applying
// every example, and the demo's manifest, a second time prints `unchanged` for every object;
// `kubectl diff` is empty; and Argo CD's own diff (gitops-engine's three-way diff, in
// test/deploy/argocd-diff.ts) finds each HALoadBalancer in sync. The last test shows that the
// check can fail: the same file against a CRD that still defaults list items is "configured".
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { buildCRD } from '../../src/api/crd.ts';
import { rootSchema } from '../../src/api/schema.ts';
import { DEMO_MANIFEST } from '../../src/sandbox/demo.ts';
import { argoCDDiff } from '../deploy/argocd-diff.ts';
import type { Harness } from './helpers.ts';
import { installCRD, kubectlOK, startHarness } from './helpers.ts';

type Json = Parameters<typeof argoCDDiff>[0];

const examplesDir = join(import.meta.dirname, '../../examples');
const manifests = [...new Set([
  ...readdirSync(examplesDir).filter((f) => f.endsWith('.yaml')).map((f) => join(examplesDir, f)),
  DEMO_MANIFEST,
])].sort();

function documents(file: string): Json[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as Json).filter((d) => d !== null);
}

describe('re-applying a manifest changes nothing', () => {
  let h: Harness;
  const kubectl = (args: string[], stdin?: string) => kubectlOK(h)(args, stdin);

  beforeAll(async () => {
    h = await startHarness();
    await installCRD(h);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('covers every example and the demo manifest', () => {
    expect(manifests.map((m) => m.slice(examplesDir.length + 1)))
      .toEqual(expect.arrayContaining(['basic.yaml', 'seed-tutorial.yaml', 'tcp.yaml']));
    expect(manifests).toContain(DEMO_MANIFEST);
  });

  it.each(manifests)('%s: the second apply is unchanged, kubectl diff is empty, Argo CD sees it in sync', async (file) => {
    const first = (await kubectl(['apply', '-f', file])).trim().split('\n');
    expect(first.every((line) => / (created|configured|unchanged)$/.test(line)), first.join('\n')).toBe(true);
    const second = (await kubectl(['apply', '-f', file])).trim().split('\n');
    expect(second.length).toBe(first.length);
    for (const line of second) expect(line).toMatch(/ unchanged$/);

    const diff = await h.kubectl(['diff', '-f', file]);
    expect(diff.stdout + diff.stderr).toBe('');
    expect(diff.code).toBe(0);

    for (const doc of documents(file)) {
      const { kind, metadata } = doc as { kind: string; metadata: { name: string } };
      if (kind !== 'HALoadBalancer') continue;
      const live = JSON.parse(await kubectl(['get', 'halb', metadata.name, '-o', 'json'])) as Json;
      const verdict = argoCDDiff(doc, live);
      expect(verdict.patch).toEqual({});
      expect(verdict.modified).toBe(false);
    }
  });

  it('the API server fills the defaults outside lists, and they cause no drift', async () => {
    // basic.yaml leaves out floatingIP, failover and access; the stored object has them.
    const live = JSON.parse(await kubectl(['get', 'halb', 'basic', '-o', 'json'])) as { spec: Record<string, Record<string, unknown>> };
    expect(live.spec.floatingIP).toEqual({ address: '', reclaimPolicy: 'Retain' });
    expect(live.spec.failover).toEqual({ preempt: false, virtualRouterID: 0 });
    // ...and keeps list items as written: no balance, healthCheck.intervalSeconds, maxconnPerServer.
    const [backend] = live.spec.backends as unknown as Record<string, unknown>[];
    expect(Object.keys(backend!).sort()).toEqual(['balance', 'healthCheck', 'name', 'port', 'servers']);
    expect(await kubectl(['apply', '-f', join(examplesDir, 'basic.yaml')])).toBe('haloadbalancer.halb.dev/basic unchanged\n');
  });

  it('a change is still seen: configured by kubectl, OutOfSync for Argo CD', async () => {
    const file = join(examplesDir, 'tcp.yaml');
    const changed = readFileSync(file, 'utf8').replace('maxconnPerServer: 100', 'maxconnPerServer: 50');
    const [doc] = documents(file).filter((d) => (d as { kind: string }).kind === 'HALoadBalancer');
    const edited = structuredClone(doc) as { spec: { backends: { maxconnPerServer: number }[] } };
    edited.spec.backends[0]!.maxconnPerServer = 50;
    const live = JSON.parse(await kubectl(['get', 'halb', 'db', '-o', 'json'])) as Json;
    expect(argoCDDiff(edited as unknown as Json, live).modified).toBe(true);
    const diff = await h.kubectl(['diff', '-f', '-'], changed);
    expect(diff.code).toBe(1);
    expect(diff.stdout).toMatch(/^\+ +maxconnPerServer: 50$/m);
    expect(await kubectl(['apply', '-f', '-'], changed)).toBe('haloadbalancer.halb.dev/db configured\n');
  });

  it('with defaults inside list items (the CRD before this change), the second apply is "configured"', async () => {
    // The same CRD, but carrying the schema's defaults everywhere, list items included.
    const crd = buildCRD() as { spec: { versions: { schema: { openAPIV3Schema: unknown } }[] } };
    crd.spec.versions[0]!.schema.openAPIV3Schema = JSON.parse(JSON.stringify(rootSchema));
    const file = join(h.dir, 'crd-with-list-defaults.yaml');
    writeFileSync(file, stringify(crd));
    await kubectl(['apply', '-f', file]);
    await kubectl(['delete', 'halb', 'basic']);
    expect(await kubectl(['apply', '-f', DEMO_MANIFEST])).toBe('haloadbalancer.halb.dev/basic created\n');
    expect(await kubectl(['apply', '-f', DEMO_MANIFEST])).toBe('haloadbalancer.halb.dev/basic configured\n');
    // gitops-engine's default diff first trims the live object to the fields of the last-applied
    // configuration, list items included (by index), so it does not see these server-filled
    // defaults: its verdict is "in sync" either way. kubectl's apply is what they break.
    const live = JSON.parse(await kubectl(['get', 'halb', 'basic', '-o', 'json'])) as Json;
    expect(argoCDDiff(documents(DEMO_MANIFEST)[0]!, live).modified).toBe(false);
  });
});
