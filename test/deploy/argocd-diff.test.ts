// The TypeScript model of Argo CD's diff (argocd-diff.ts), table-driven on the cases gitops-engine's
// ThreeWayDiff distinguishes. test/kube/gitops.test.ts runs it on objects the real kubectl applied.
import { describe, expect, it } from 'vitest';
import { applyMergePatch, argoCDDiff, threeWayMergePatch } from './argocd-diff.ts';

type Json = Parameters<typeof argoCDDiff>[0];

const manifest = {
  apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name: 'web' },
  spec: { region: 'nyc3', frontends: [{ name: 'www', port: 80 }], droplets: { count: 2 } },
};

interface Live {
  metadata: Record<string, unknown>;
  spec: { region: string; frontends: Record<string, unknown>[]; droplets: Record<string, unknown> };
  status?: unknown;
}

/** What the API server returns after `kubectl apply -f manifest`, with server-set fields. */
function live(applied: Json, edit: (o: Live) => void = () => {}): Json {
  const o = structuredClone(applied) as unknown as Live;
  o.metadata = {
    ...o.metadata, namespace: 'default', uid: 'u', generation: 1, creationTimestamp: '2026-01-01T00:00:00Z',
    annotations: {
      'kubectl.kubernetes.io/last-applied-configuration':
        JSON.stringify({ ...(applied as object), metadata: { annotations: {}, name: 'web', namespace: 'default' } }),
    },
  };
  o.spec.droplets = { size: 's-1vcpu-1gb', ...o.spec.droplets };
  o.status = { observedGeneration: 1 };
  edit(o);
  return o as unknown as Json;
}

describe("Argo CD's three-way diff of a custom resource", () => {
  it.each([
    ['the manifest as applied, with server-set fields and map defaults', manifest, live(manifest), false],
    ['a default filled inside a list item (trimmed by index, like every live-only field)', manifest,
      live(manifest, (o) => (o.spec.frontends[0]!.protocol = 'http')), false],
    ['a changed value in Git', { ...manifest, spec: { ...manifest.spec, region: 'ams3' } }, live(manifest), true],
    ['a field removed from Git that the last apply set', { ...manifest, spec: { ...manifest.spec, droplets: {} } }, live(manifest), true],
    ['a list changed on the cluster', manifest, live(manifest, (o) => o.spec.frontends.push({ name: 'extra', port: 81 })), true],
    ['a value changed on the cluster', manifest, live(manifest, (o) => (o.spec.frontends[0]!.port = 81)), true],
    ['no last-applied annotation (two-way), in sync', manifest, live(manifest, (o) => delete o.metadata.annotations), false],
    ['no last-applied annotation (two-way), drifted', manifest, live(manifest, (o) => {
      delete o.metadata.annotations;
      o.spec.region = 'fra1';
    }), true],
  ] as [string, Json, Json, boolean][])('%s', (_name, config, current, modified) => {
    expect(argoCDDiff(config as never, current as never).modified).toBe(modified);
  });
});

describe('CreateThreeWayJSONMergePatch and MergePatch', () => {
  it('keeps additions and changes from current→modified and deletions from original→modified', () => {
    const original = { a: 1, b: { c: 1, d: 1 }, l: [1] };
    const modified = { a: 2, b: { c: 1 }, l: [1], n: 'x' };
    const current = { a: 1, b: { c: 1, d: 1, e: 9 }, l: [1, 2], s: 'server' };
    expect(threeWayMergePatch(original, modified, current)).toEqual({ a: 2, b: { d: null }, l: [1], n: 'x' });
  });

  it('applies null as delete, merges maps and replaces lists', () => {
    expect(applyMergePatch({ a: 1, b: { c: 1, d: 2 }, l: [1, 2] }, { a: null, b: { d: 3 }, l: [9] }))
      .toEqual({ b: { c: 1, d: 3 }, l: [9] });
  });
});
