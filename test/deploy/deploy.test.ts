// deploy/ as kubectl sees it: `kubectl kustomize` renders the base and both overlays, the RBAC
// is least privilege (pinned rules, no wildcards), the Deployment runs `halb operator` with
// flags it knows, hardened; and the real kubectl applies each to the Kubernetes emulator.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KUBECTL, requireKubectl, startHarness, waitFor, type Harness } from '../kube/helpers.ts';
import { serveDeployKinds } from './builtins.ts';

const ROOT = join(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules/node/bin/node');

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}
interface Rule { apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[]; nonResourceURLs?: string[] }
interface Binding extends Obj { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace?: string }[] }
interface Container {
  name: string; image: string; args?: string[]; env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown>;
}
interface Deployment extends Obj {
  spec: {
    replicas: number;
    template: {
      metadata: { labels: Record<string, string> };
      spec: { serviceAccountName: string; securityContext?: Record<string, unknown>; containers: Container[] };
    };
  };
}

function run(file: string, args: string[], cwd = ROOT): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, timeout: 30_000, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

async function render(path: string): Promise<Obj[]> {
  requireKubectl();
  const r = await run(KUBECTL, ['kustomize', path]);
  expect(r.stderr, `kubectl kustomize ${path}`).toBe('');
  expect(r.code).toBe(0);
  return parseAllDocuments(r.stdout).map((d) => d.toJSON() as Obj);
}

const ofKind = <T extends Obj = Obj>(objs: Obj[], kind: string) => objs.filter((o) => o.kind === kind) as T[];
const one = <T extends Obj = Obj>(objs: Obj[], kind: string): T => {
  const found = ofKind<T>(objs, kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
};

/** Every permission as "group/resource[:name] verb", sorted: the least-privilege contract. */
function permissions(rules: Rule[]): string[] {
  return rules.flatMap((r) => (r.apiGroups ?? []).flatMap((g) => (r.resources ?? []).flatMap((res) =>
    (r.resourceNames?.length ? r.resourceNames : ['']).flatMap((n) =>
      r.verbs.map((v) => `${g || 'core'}/${res}${n ? `:${n}` : ''} ${v}`))))).sort();
}

const OPERATOR_PERMISSIONS = [
  'core/events create', 'core/events patch',
  'core/services create', 'discovery.k8s.io/endpointslices create', 'discovery.k8s.io/endpointslices patch',
  'core/secrets list', 'core/secrets watch',
  'halb.dev/haloadbalancers list', 'halb.dev/haloadbalancers patch', 'halb.dev/haloadbalancers watch',
  'halb.dev/haloadbalancers/status patch',
  // The Service controller's.
  'core/services list', 'core/services patch', 'core/services watch', 'core/services/finalizers update', 'core/services/status patch',
  'halb.dev/haloadbalancers create', 'halb.dev/haloadbalancers delete', 'halb.dev/haloadbalancers update',
].sort();
/** The Service controller's backends: Nodes, cluster-wide even when the operator watches one namespace. */
const NODES_PERMISSIONS = ['core/nodes list', 'core/nodes watch'];
const clusterRole = (objs: Obj[], name: string) => ofKind(objs, 'ClusterRole').find((r) => r.metadata.name === name)!;
const LEADER_PERMISSIONS = [
  'coordination.k8s.io/leases create', 'coordination.k8s.io/leases:halb-operator get', 'coordination.k8s.io/leases:halb-operator update',
].sort();

function expectNoWildcards(objs: Obj[]): void {
  const roles = objs.filter((o) => o.kind === 'Role' || o.kind === 'ClusterRole');
  expect(roles.length).toBeGreaterThan(0);
  for (const role of roles) {
    expect(role.aggregationRule, `${role.kind}/${role.metadata.name}`).toBeUndefined();
    for (const rule of role.rules as Rule[]) {
      const where = `${role.kind}/${role.metadata.name} ${JSON.stringify(rule)}`;
      for (const field of ['apiGroups', 'resources', 'verbs', 'resourceNames'] as const) {
        for (const v of rule[field] ?? []) expect(v.includes('*'), where).toBe(false);
      }
      expect(rule.nonResourceURLs, where).toBeUndefined();
      expect(rule.verbs.length, where).toBeGreaterThan(0);
    }
  }
}

/** Every binding grants a Role/ClusterRole of this render to the operator's ServiceAccount. */
function expectBindingsToOperator(objs: Obj[], operatorNamespace: string): void {
  const sa = one(objs, 'ServiceAccount');
  expect(sa.metadata.namespace).toBe(operatorNamespace);
  const bindings = objs.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding') as Binding[];
  expect(bindings.length).toBeGreaterThan(0);
  for (const b of bindings) {
    expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: operatorNamespace }]);
    const role = objs.find((o) => o.kind === b.roleRef.kind && o.metadata.name === b.roleRef.name &&
      (o.kind === 'ClusterRole' || o.metadata.namespace === b.metadata.namespace));
    expect(role, `${b.kind}/${b.metadata.name} → ${b.roleRef.kind}/${b.roleRef.name}`).toBeDefined();
  }
}

let operatorHelp: string;
beforeAll(async () => {
  const r = await run(NODE, ['src/cli/main.ts', 'operator', '--help']);
  expect(r.code).toBe(0);
  operatorHelp = r.stdout;
});

describe('kubectl kustomize deploy/', () => {
  let objs: Obj[];
  beforeAll(async () => {
    objs = await render('deploy');
  });

  it('renders the namespace, the CRD, the ServiceAccount, the RBAC, the Deployment and the metrics Service', () => {
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ClusterRole/halb-operator', 'ClusterRole/halb-operator-nodes', 'ClusterRoleBinding/halb-operator',
      'ClusterRoleBinding/halb-operator-nodes', 'CustomResourceDefinition/haloadbalancers.halb.dev',
      'Deployment/halb-operator', 'Namespace/halb-system', 'Role/halb-operator-leader-election',
      'RoleBinding/halb-operator-leader-election', 'Service/halb-operator-metrics', 'ServiceAccount/halb-operator',
    ]);
    for (const o of objs) {
      if (!['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind)) {
        expect(o.metadata.namespace, o.kind).toBe('halb-system');
      }
    }
  });

  it('carries crds/haloadbalancer.yaml unchanged but for labels', () => {
    const crd = one(objs, 'CustomResourceDefinition');
    const source = parse(readFileSync(join(ROOT, 'crds/haloadbalancer.yaml'), 'utf8')) as Obj;
    const strip = (o: Obj) => ({ ...o, metadata: { ...o.metadata, labels: undefined } });
    expect(strip(crd)).toEqual(strip(source));
  });

  it('RBAC: exactly what the operator calls, with no wildcards', () => {
    expectNoWildcards(objs);
    expect(permissions(clusterRole(objs, 'halb-operator').rules as Rule[])).toEqual(OPERATOR_PERMISSIONS);
    expect(permissions(clusterRole(objs, 'halb-operator-nodes').rules as Rule[])).toEqual(NODES_PERMISSIONS);
    const leader = one(objs, 'Role');
    expect(leader.metadata.namespace).toBe('halb-system');
    expect(permissions(leader.rules as Rule[])).toEqual(LEADER_PERMISSIONS);
    expectBindingsToOperator(objs, 'halb-system');
  });

  it('the Deployment: 2 replicas with leader election, probes, requests and limits, hardened', () => {
    const d = one<Deployment>(objs, 'Deployment');
    expect(d.spec.replicas).toBe(2);
    const pod = d.spec.template.spec;
    expect(pod.serviceAccountName).toBe(one(objs, 'ServiceAccount').metadata.name);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.containers).toHaveLength(1);
    const c = pod.containers[0]!;
    expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(c.resources?.requests).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    expect(c.resources?.limits).toMatchObject({ cpu: expect.any(String), memory: expect.any(String) });
    // The probes and the Service reach the port `halb operator` serves /healthz, /readyz, /metrics on.
    const metricsPort = Number(/--metrics-port=(\d+)/.exec((c.args ?? []).join(' '))?.[1] ?? 8080);
    expect(c.ports).toEqual([{ name: 'metrics', containerPort: metricsPort, protocol: 'TCP' }]);
    expect(c.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c.readinessProbe?.httpGet).toEqual({ path: '/readyz', port: 'metrics' });
    const svc = one(objs, 'Service') as Obj & { spec: { selector: Record<string, string>; ports: { targetPort: string }[] } };
    expect(d.spec.template.metadata.labels).toMatchObject(svc.spec.selector);
    expect(svc.spec.ports.map((p) => p.targetPort)).toEqual(['metrics']);
    // The Lease goes in the pod's namespace, which the role above covers.
    expect(c.env).toContainEqual({ name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });
  });

  it('the Deployment runs `halb operator` with flags `halb operator --help` lists, leader election on', () => {
    const c = one<Deployment>(objs, 'Deployment').spec.template.spec.containers[0]!;
    expect(c.image).toBe('halb:0.1.0');
    const args = c.args ?? [];
    expect(args[0]).toBe('operator');
    for (const a of args.slice(1)) {
      const flag = /^--[a-z-]+/.exec(a)?.[0];
      expect(flag, a).toBeDefined();
      expect(operatorHelp, a).toContain(`  ${flag}`);
    }
    expect(args).not.toContain('--no-leader-elect');
  });

  it('the operator\'s heap is capped below the memory limit, with flags Node 22 takes from NODE_OPTIONS', async () => {
    const c = one<Deployment>(objs, 'Deployment').spec.template.spec.containers[0]!;
    const nodeOptions = c.env?.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
    const oldSpaceMiB = Number(/--max-old-space-size=(\d+)/.exec(nodeOptions)?.[1]);
    const limitMiB = Number(/^(\d+)Mi$/.exec(String(c.resources?.limits?.memory))?.[1]);
    expect(oldSpaceMiB).toBeGreaterThan(0);
    expect(oldSpaceMiB).toBeLessThanOrEqual(limitMiB / 2);
    expect(c.env).toContainEqual({ name: 'MALLOC_ARENA_MAX', value: '2' });
    // Node refuses to start on a flag it does not allow in NODE_OPTIONS.
    const node = join(ROOT, 'node_modules/node/bin/node');
    const started = await new Promise<string>((resolve) => execFile(node, ['-p', 'v8.getHeapStatistics().heap_size_limit'],
      { env: { NODE_OPTIONS: nodeOptions } }, (err, stdout, stderr) => resolve(err ? `failed: ${stderr}` : stdout.trim())));
    expect(Number(started) / 2 ** 20, started).toBeLessThan(limitMiB);
  });
});

describe('overlays', () => {
  it('namespaced: a Role and RoleBinding in the watched namespace replace the cluster-wide ones, ' +
    'and the operator watches only it', async () => {
    const objs = await render('deploy/overlays/namespaced');
    expectNoWildcards(objs);
    // Only reading Nodes stays cluster-wide (Nodes have no namespace).
    expect(ofKind(objs, 'ClusterRole').map((r) => r.metadata.name)).toEqual(['halb-operator-nodes']);
    expect(permissions(clusterRole(objs, 'halb-operator-nodes').rules as Rule[])).toEqual(NODES_PERMISSIONS);
    expect(ofKind(objs, 'ClusterRoleBinding').map((r) => r.metadata.name)).toEqual(['halb-operator-nodes']);
    const watched = ofKind(objs, 'Role').find((r) => r.metadata.name === 'halb-operator')!;
    expect(watched.metadata.namespace).toBe('apps');
    expect(permissions(watched.rules as Rule[])).toEqual(OPERATOR_PERMISSIONS);
    const leader = ofKind(objs, 'Role').find((r) => r.metadata.name === 'halb-operator-leader-election')!;
    expect(permissions(leader.rules as Rule[])).toEqual(LEADER_PERMISSIONS);
    expectBindingsToOperator(objs, 'halb-system');
    const args = one<Deployment>(objs, 'Deployment').spec.template.spec.containers[0]!.args!;
    expect(args.filter((a) => a.startsWith('--namespace'))).toEqual(['--namespace=apps']);
  });

  it('existing-namespace: no Namespace object, everything (and the binding subjects) in the given namespace', async () => {
    const objs = await render('deploy/overlays/existing-namespace');
    expectNoWildcards(objs);
    expect(ofKind(objs, 'Namespace')).toEqual([]);
    for (const o of objs) {
      if (!['CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind)) {
        expect(o.metadata.namespace, o.kind).toBe('platform');
      }
    }
    expectBindingsToOperator(objs, 'platform');
    expect(permissions(clusterRole(objs, 'halb-operator').rules as Rule[])).toEqual(OPERATOR_PERMISSIONS);
  });
});

describe('the real kubectl applies deploy/ to the Kubernetes emulator', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
    serveDeployKinds(h.emu);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('kubectl apply -k deploy/ creates everything; a second apply changes nothing', async () => {
    const first = await h.kubectl(['apply', '-k', join(ROOT, 'deploy')]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout.trim().split('\n').sort()).toEqual([
      'clusterrole.rbac.authorization.k8s.io/halb-operator created',
      'clusterrole.rbac.authorization.k8s.io/halb-operator-nodes created',
      'clusterrolebinding.rbac.authorization.k8s.io/halb-operator created',
      'clusterrolebinding.rbac.authorization.k8s.io/halb-operator-nodes created',
      'customresourcedefinition.apiextensions.k8s.io/haloadbalancers.halb.dev created',
      'deployment.apps/halb-operator created',
      'namespace/halb-system created',
      'role.rbac.authorization.k8s.io/halb-operator-leader-election created',
      'rolebinding.rbac.authorization.k8s.io/halb-operator-leader-election created',
      'service/halb-operator-metrics created',
      'serviceaccount/halb-operator created',
    ]);
    const again = await h.kubectl(['apply', '-k', join(ROOT, 'deploy')]);
    expect(again.code).toBe(0);
    expect(again.stdout.trim().split('\n').every((l) => l.endsWith(' unchanged')), again.stdout).toBe(true);
    const replicas = await h.kubectl(['-n', 'halb-system', 'get', 'deployment', 'halb-operator', '-o', 'jsonpath={.spec.replicas}']);
    expect(replicas.stdout).toBe('2');
  });

  it('after it, the CRD is established and a HALoadBalancer can be created', async () => {
    await waitFor('the CRD to be established', async () =>
      (await h.kubectl(['wait', '--for=condition=Established', 'crd/haloadbalancers.halb.dev', '--timeout=5s'])).code === 0 || undefined);
    const lb = readFileSync(join(ROOT, 'examples/basic.yaml'), 'utf8');
    const r = await h.kubectl(['apply', '-f', '-'], lb);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('haloadbalancer.halb.dev/basic created');
  });

  it('both overlays apply too, into namespaces that exist', async () => {
    for (const ns of ['apps', 'platform']) expect((await h.kubectl(['create', 'namespace', ns])).code).toBe(0);
    for (const overlay of ['namespaced', 'existing-namespace']) {
      const r = await h.kubectl(['apply', '-k', join(ROOT, 'deploy/overlays', overlay)]);
      expect(r.stderr, overlay).toBe('');
      expect(r.code, overlay).toBe(0);
    }
    expect((await h.kubectl(['-n', 'apps', 'get', 'role', 'halb-operator'])).code).toBe(0);
    expect((await h.kubectl(['-n', 'platform', 'get', 'deployment', 'halb-operator'])).code).toBe(0);
  });

  it('the stand-in kinds check what a real server checks: a Deployment with a malformed field is refused', async () => {
    const bad = 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bad, namespace: default}\n' +
      'spec: {replicas: two, selector: {}, template: {spec: {containers: []}}}\n';
    const r = await h.kubectl(['apply', '-f', '-'], bad);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/spec\.replicas/);
  });
});
