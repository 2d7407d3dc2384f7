// The Helm chart against the real kube-apiserver. `helm install --dry-run=server` talks to the
// server (capabilities, lookups) but does not have it validate the objects; so the chart's
// objects also go through `kubectl apply --dry-run=server`, which the server validates and admits
// without storing. What `helm template` and `helm lint` cannot see (the server's schemas,
// quantities, RBAC rules) is checked here; a value the server refuses fails naming the field.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upstreamTool } from '../deploy/upstream.ts';
import { realKubeBuilt, ROOT, run, startControlPlane, type ControlPlane } from './helpers.ts';

const CHART = join(ROOT, 'deploy/helm/halb');

describe.skipIf(!realKubeBuilt())('the Helm chart, dry run on the real kube-apiserver', () => {
  let cp: ControlPlane;
  let helm: string;
  beforeAll(async () => {
    helm = await upstreamTool('helm');
    cp = await startControlPlane();
  }, 180_000);
  afterAll(async () => {
    await cp?.close();
  }, 60_000);

  const env = () => ({ ...process.env, KUBECONFIG: cp.kubeconfig, HOME: cp.dir });
  const install = (sets: string[]) => run(helm, [
    'install', 'halb', CHART, '--namespace', 'halb-system', '--create-namespace', '--dry-run=server',
    ...sets.flatMap((s) => ['--set', s]),
  ], env(), undefined, 120_000);
  /** The chart's objects, rendered, then applied by the server in dry-run mode. */
  const serverDryRun = async (sets: string[]) => {
    const rendered = await run(helm, ['template', 'halb', CHART, '--namespace', 'halb-system', '--include-crds',
      ...sets.flatMap((s) => ['--set', s])], env());
    expect(rendered.code, rendered.stderr).toBe(0);
    return cp.kubectl(['apply', '--dry-run=server', '-f', '-'], rendered.stdout);
  };

  const variants: [string, string[]][] = [
    ['the defaults', []],
    ['one watched namespace (a Role instead of a ClusterRole)', ['watchNamespace=apps']],
  ];

  it.each(variants)('helm install --dry-run=server passes with %s', async (_name, sets) => {
    const r = await install(sets);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('STATUS: pending-install');
  }, 120_000);

  it.each(variants)('the server admits every object of the chart with %s', async (_name, sets) => {
    // Namespaced objects need their namespace to exist, even in a dry run (after the installs
    // above: the chart makes halb-system itself, and Helm will not adopt one it did not make).
    for (const namespace of ['halb-system', 'apps']) await cp.kubectl(['create', 'namespace', namespace]);
    const applied = await serverDryRun(sets);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/deployment\.apps\/halb-operator created \(server dry run\)/);
    expect(applied.stdout).toContain('customresourcedefinition.apiextensions.k8s.io/haloadbalancers.halb.dev created (server dry run)');
  }, 120_000);

  it('is refused by the server for a value only the server checks, naming the field', async () => {
    const applied = await serverDryRun(['resources.limits.memory=lots']);
    expect(applied.code).not.toBe(0);
    expect(applied.stderr).toMatch(/resources\.limits.*memory|quantities must match/);
  }, 120_000);
});
