// The operator's RBAC under the real authorizer (kube-apiserver with --authorization-mode=Node,RBAC):
// the operator runs as `halb operator`, as its ServiceAccount with a Pod-bound token, under the
// roles `kubectl kustomize deploy/base` (and deploy/overlays/namespaced) render.
//
// - With the roles as shipped, a scenario that makes the operator use every permission gets no
//   refusal, and uses each permission at least once.
// - Every permission is needed: with one verb taken out of its rule, the same scenario makes the
//   API server refuse exactly that request (403 in its audit log). Each permission has a row in
//   ROWS saying what needs it; a permission without a row fails the coverage test, so a rule added
//   to deploy/ comes with the scenario that proves it.
// - Nothing more is granted: `kubectl auth can-i --as=system:serviceaccount:...` says no to a
//   list of things the operator must not do.
//
// The objects here name Secrets that do not exist, so the operator never gets a DigitalOcean token
// and never creates a droplet: no fabric, no root, no SSH.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCRD } from '../../src/api/crd.ts';
import { startDigitalOceanSimulator, type DigitalOceanSimulator } from '../../src/sandbox/digitalocean/simulator.ts';
import { adminKubeConfig } from '../../src/sandbox/kube-real/control-plane.ts';
import { applyAsAdmin, installOperatorIdentity, kustomize, type OperatorIdentity } from '../../src/sandbox/kube-real/identity.ts';
import { waitFor } from '../wait.ts';
import {
  auditLines, realKubeBuilt, SKIP_REASON, startControlPlane, startOperatorProcess,
  type AuditRecord, type ControlPlane, type OperatorProcess,
} from './helpers.ts';

const built = realKubeBuilt();
if (!built) console.log(`skipped: ${SKIP_REASON}`);

interface Rule { apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[] }
interface Role { kind: string; metadata: { name: string; namespace?: string }; rules: Rule[] }

/** One permission as deploy/ grants it: "<role> <group>/<resource>[:<name>] <verb>". */
function permissions(role: Role): string[] {
  return role.rules.flatMap((r) => (r.apiGroups ?? []).flatMap((g) => (r.resources ?? []).flatMap((res) =>
    (r.resourceNames?.length ? r.resourceNames : ['']).flatMap((n) =>
      r.verbs.map((v) => `${role.metadata.name} ${g || 'core'}/${res}${n ? `:${n}` : ''} ${v}`)))));
}

/** The role with one verb taken out of the rule that grants it (a rule left without verbs goes). */
function without(role: Role, permission: string): Role {
  const [, target, verb] = permission.split(' ') as [string, string, string];
  const [groupResource, name = ''] = target.split(':') as [string, string?];
  const [group, resource] = groupResource.split(/\/(.*)/s) as [string, string];
  const rules = role.rules.map((r) => {
    const matches = (r.apiGroups ?? []).map((g) => g || 'core').includes(group) && (r.resources ?? []).includes(resource)
      && (name ? (r.resourceNames ?? []).includes(name) : !r.resourceNames?.length);
    return matches ? { ...r, verbs: r.verbs.filter((v) => v !== verb) } : r;
  }).filter((r) => r.verbs.length);
  return { ...role, rules };
}

interface Scenario {
  /** Objects made as the admin before the operator starts (they name Secrets that do not exist):
   *  HALoadBalancers new, with the finalizer, or being deleted; Services of type LoadBalancer with
   *  the class, new, with a HALoadBalancer whose spec is not what the Service asks for (stale),
   *  or being deleted with theirs (leaving). */
  objects: ('fresh' | 'settled' | 'leaving' | 'service' | 'service-stale' | 'service-leaving' | 'converging' | 'watched')[];
  /** Delete the Lease first, so the operator must create it. */
  noLease?: boolean;
}

interface Row {
  /** The permission, as permissions() names it. */
  permission: string;
  /** What the operator does with it; the request refused without it. */
  needs: string;
  scenario: Scenario;
  /** The request that uses it, when that is another one: admission checks services/finalizers
   *  while the operator creates a HALoadBalancer owned by the Service (blockOwnerDeletion). */
  usedBy?: string;
}

const CLUSTER_ROLE = 'halb-operator';
const LEADER_ROLE = 'halb-operator-leader-election';
const NODES_ROLE = 'halb-operator-nodes';

// One row per permission deploy/ grants. A new rule needs a new row: the scenario in which the
// operator uses it, and what it does with it. The test proves the refusal without it.
const ROWS: Row[] = [
  { permission: `${CLUSTER_ROLE} halb.dev/haloadbalancers list`, needs: 'the informer lists HALoadBalancers', scenario: { objects: [] } },
  {
    permission: `${CLUSTER_ROLE} halb.dev/haloadbalancers watch`, needs: 'the informer watches HALoadBalancers',
    scenario: { objects: [] },
  },
  {
    permission: `${CLUSTER_ROLE} halb.dev/haloadbalancers patch`, needs: 'the reconciler adds (and removes) its finalizer',
    scenario: { objects: ['fresh'] },
  },
  {
    permission: `${CLUSTER_ROLE} halb.dev/haloadbalancers/status patch`, needs: 'the reconciler writes status',
    scenario: { objects: ['settled'] },
  },
  { permission: `${CLUSTER_ROLE} core/secrets list`, needs: 'the Secret informer lists Secrets', scenario: { objects: [] } },
  {
    permission: `${CLUSTER_ROLE} core/secrets watch`, needs: 'the Secret informer watches Secrets (rotations reach the nodes at once)',
    scenario: { objects: [] },
  },
  {
    permission: `${CLUSTER_ROLE} core/events create`, needs: 'an Event records what the operator did (here CleanupBlocked)',
    scenario: { objects: ['leaving'] },
  },
  {
    permission: `${CLUSTER_ROLE} core/events patch`, needs: 'a repeated Event bumps its count (CleanupBlocked, on every pass)',
    scenario: { objects: ['leaving'] },
  },
  // The Service controller's (src/controller/services/).
  { permission: `${CLUSTER_ROLE} core/services list`, needs: 'the Service informer lists Services', scenario: { objects: [] } },
  { permission: `${CLUSTER_ROLE} core/services watch`, needs: 'the Service informer watches Services', scenario: { objects: [] } },
  { permission: `${CLUSTER_ROLE} core/services patch`, needs: 'it adds (and removes) its finalizer on a Service of its class',
    scenario: { objects: ['service'] } },
  { permission: `${CLUSTER_ROLE} core/services/status patch`, needs: 'it writes the Service\'s condition and address',
    scenario: { objects: ['service-stale'] } },
  { permission: `${CLUSTER_ROLE} core/services/finalizers update`,
    needs: 'the HALoadBalancer it creates is owned by the Service with blockOwnerDeletion',
    scenario: { objects: ['service'] }, usedBy: `${CLUSTER_ROLE} halb.dev/haloadbalancers create` },
  { permission: `${CLUSTER_ROLE} halb.dev/haloadbalancers create`, needs: 'it creates the Service\'s HALoadBalancer',
    scenario: { objects: ['service'] } },
  { permission: `${CLUSTER_ROLE} halb.dev/haloadbalancers update`,
    needs: 'it replaces a HALoadBalancer whose spec the Service no longer asks for', scenario: { objects: ['service-stale'] } },
  { permission: `${CLUSTER_ROLE} halb.dev/haloadbalancers delete`, needs: 'it deletes the HALoadBalancer of a deleted Service',
    scenario: { objects: ['service-leaving'] } },
  { permission: `${NODES_ROLE} core/nodes list`, needs: 'the Node informer lists Nodes (the backends)', scenario: { objects: [] } },
  { permission: `${NODES_ROLE} core/nodes watch`, needs: 'the Node informer watches Nodes (joins, leaves, exclusions)',
    scenario: { objects: [] } },
  {
    permission: `${CLUSTER_ROLE} core/services create`, needs: 'a HALoadBalancer gets its metrics Service',
    scenario: { objects: ['converging'] },
  },
  {
    permission: `${CLUSTER_ROLE} discovery.k8s.io/endpointslices create`, needs: 'the metrics Service gets its EndpointSlice of nodes',
    scenario: { objects: ['converging'] },
  },
  {
    permission: `${CLUSTER_ROLE} discovery.k8s.io/endpointslices patch`, needs: 'an EndpointSlice that exists is brought up to date',
    scenario: { objects: ['watched'] },
  },
  {
    permission: `${LEADER_ROLE} coordination.k8s.io/leases create`, needs: 'leader election creates the Lease when there is none',
    scenario: { objects: [], noLease: true },
  },
  {
    permission: `${LEADER_ROLE} coordination.k8s.io/leases:halb-operator get`, needs: 'leader election reads the Lease',
    scenario: { objects: [] },
  },
  {
    permission: `${LEADER_ROLE} coordination.k8s.io/leases:halb-operator update`, needs: 'leader election takes and renews the Lease',
    scenario: { objects: [] },
  },
];

/** The audit log's request as a permission (role unknown): "<group>/<resource>[/<sub>][:<name>] <verb>". */
function requested(r: AuditRecord): string {
  const o = r.objectRef ?? {};
  return `${o.apiGroup || 'core'}/${o.resource ?? '?'}${o.subresource ? `/${o.subresource}` : ''} ${r.verb}`;
}
/** Whether an audit record is a request the permission covers. */
function covers(permission: string, r: AuditRecord): boolean {
  const [, target, verb] = permission.split(' ') as [string, string, string];
  const [groupResource, name] = target.split(':') as [string, string?];
  const o = r.objectRef ?? {};
  const resource = `${o.apiGroup || 'core'}/${o.resource ?? ''}${o.subresource ? `/${o.subresource}` : ''}`;
  return resource === groupResource && r.verb === verb && (!name || o.name === name);
}

const halbWithSecrets = (name: string, namespace: string, extra: Record<string, unknown> = {}) => {
  const object = halb(name, namespace, extra);
  object.spec.credentials = {
    tokenSecretRef: { name: 'rbac-token', key: 'token' }, sshKeySecretRef: { name: 'rbac-ssh', key: 'ssh-privatekey' },
  };
  return object;
};

const halb = (name: string, namespace: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer',
  metadata: { name, namespace, ...extra },
  spec: {
    region: 'nyc3',
    credentials: {
      tokenSecretRef: { name: 'rbac-missing-token', key: 'token' }, sshKeySecretRef: { name: 'rbac-missing-ssh', key: 'ssh-privatekey' },
    },
    frontends: [{ name: 'www', port: 80, defaultBackend: 'web' }],
    backends: [{ name: 'web', servers: [{ name: 'web-1', address: '10.10.0.21' }] }],
  },
});

describe.skipIf(!built)('the operator under the real RBAC authorizer', () => {
  let cp: ControlPlane;
  let digitalocean: DigitalOceanSimulator;
  let identity: OperatorIdentity;
  let roles: Record<string, Role>;
  let custom: k8s.CustomObjectsApi;
  let coordination: k8s.CoordinationV1Api;
  let core: k8s.CoreV1Api;
  let discovery: k8s.DiscoveryV1Api;

  /** The token and SSH key Secrets converging objects name (the simulator takes any token). */
  async function ensureSecrets(namespace: string): Promise<void> {
    const dir = mkdtempSync(join(tmpdir(), 'halb-rbac-key-'));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'key')]);
    const key = readFileSync(join(dir, 'key'), 'utf8');
    rmSync(dir, { recursive: true, force: true });
    for (const [name, data] of [['rbac-token', { token: 'dop_v1_rbac' }], ['rbac-ssh', { 'ssh-privatekey': key }]] as const) {
      await core.createNamespacedSecret({ namespace, body: { metadata: { name }, stringData: data } }).catch((err: unknown) => {
        if ((err as { code?: number }).code !== 409) throw err;
      });
    }
  }

  /** The metrics Service and EndpointSlice as an earlier operator left them: owned by the object
   *  (changing ownerReferences would take delete, under OwnerReferencesPermissionEnforcement). */
  async function makeMetricsObjects(owner: string, namespace: string, uid: string): Promise<void> {
    const name = `${owner}-metrics`;
    const ownerReferences = [{ apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', name: owner, uid, controller: true }];
    await core.createNamespacedService({
      namespace,
      body: { metadata: { name, ownerReferences }, spec: { clusterIP: 'None', ports: [{ name: 'haproxy-metrics', port: 8404 }] } },
    });
    await discovery.createNamespacedEndpointSlice({
      namespace,
      body: { metadata: { name, ownerReferences, labels: { 'kubernetes.io/service-name': name } }, addressType: 'IPv4', endpoints: [] },
    });
  }
  const operators = new Set<OperatorProcess>();

  beforeAll(async () => {
    cp = await startControlPlane();
    // Droplets would never become active, so nothing could ever be dialled over SSH; the
    // scenarios make none anyway (no token Secret).
    digitalocean = await startDigitalOceanSimulator({ host: '127.0.0.1', port: 0, delays: { dropletActiveMs: 3_600_000 } });
    await applyAsAdmin(cp.kube, [buildCRD() as unknown as Record<string, unknown>]);
    await cp.kubectl(['wait', '--for=condition=Established', 'crd/haloadbalancers.halb.dev', '--timeout=60s']);
    identity = await installOperatorIdentity(cp.kube, cp.dir, 'base');
    roles = Object.fromEntries((await kustomize('base'))
      .filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role')
      .map((o) => [(o as unknown as Role).metadata.name, o as unknown as Role]));
    const admin = adminKubeConfig(cp.kube);
    custom = admin.makeApiClient(k8s.CustomObjectsApi);
    coordination = admin.makeApiClient(k8s.CoordinationV1Api);
    core = admin.makeApiClient(k8s.CoreV1Api);
    discovery = admin.makeApiClient(k8s.DiscoveryV1Api);
    // The Service controller's backend: one Ready node in the region (no kubelet writes it here).
    await core.createNode({
      body: {
        metadata: { name: 'rbac-node', labels: { 'topology.kubernetes.io/region': 'nyc3' } },
        status: { conditions: [{ type: 'Ready', status: 'True' } as k8s.V1NodeCondition], addresses: [{ type: 'InternalIP',
          address: '10.10.0.31' }] },
      },
    });
  }, 180_000);

  afterAll(async () => {
    for (const p of operators) p.child.kill('SIGKILL');
    await digitalocean?.close();
    await cp?.close();
  }, 60_000);

  function startOperator(namespace?: string): OperatorProcess {
    const operator = startOperatorProcess({
      kubeconfig: identity.kubeconfig, leaseNamespace: identity.namespace, doEndpoint: digitalocean.endpoint,
      ...(namespace ? { namespace } : {}),
    });
    operators.add(operator);
    return operator;
  }
  async function stopOperator(operator: OperatorProcess): Promise<void> {
    await operator.stop();
    operators.delete(operator);
  }

  /** A Service of type LoadBalancer with the class; stale and leaving ones come with their
   *  HALoadBalancer (owned, labelled, with a spec the Service does not ask for), leaving ones deleted. */
  async function arrangeService(kind: string, name: string, namespace: string): Promise<void> {
    const finalizers = kind === 'service' ? {} : { finalizers: ['service.kubernetes.io/load-balancer-cleanup'] };
    const created = await core.createNamespacedService({
      namespace,
      body: {
        metadata: { name, namespace, ...finalizers },
        spec: { type: 'LoadBalancer', loadBalancerClass: 'halb.dev/haproxy', ports: [{ name: 'http', port: 80,
          targetPort: 8080 as never }] },
      },
    });
    if (kind === 'service') return;
    const owner = { apiVersion: 'v1', kind: 'Service', name, uid: created.metadata!.uid, controller: true, blockOwnerDeletion: true };
    const labels = { 'halb.dev/service': name, 'app.kubernetes.io/managed-by': 'halb-service-controller' };
    await custom.createNamespacedCustomObject({
      group: 'halb.dev', version: 'v1alpha1', namespace, plural: 'haloadbalancers', body: halb(name, namespace, { labels,
        ownerReferences: [owner] }),
    });
    if (kind === 'service-leaving') await core.deleteNamespacedService({ name, namespace });
  }

  /** Makes the scenario's objects in `namespace`; returns a function that removes them. */
  async function arrange(scenario: Scenario, namespace: string): Promise<() => Promise<void>> {
    const made: string[] = [];
    if (scenario.noLease) {
      await coordination.deleteNamespacedLease({ name: 'halb-operator', namespace: identity.namespace }).catch(() => undefined);
    }
    for (const kind of scenario.objects) {
      const name = `rbac-${kind}`;
      if (kind.startsWith('service')) {
        await arrangeService(kind, name, namespace);
        made.push(name);
        continue;
      }
      const finalizers = kind === 'fresh' ? {} : { finalizers: ['halb.dev/cleanup'] };
      // converging and watched have their Secrets, so a pass reaches status and the metrics
      // Service; watched's Service and EndpointSlice exist already (made here, as the admin).
      const withSecrets = kind === 'converging' || kind === 'watched';
      if (withSecrets) await ensureSecrets(namespace);
      const body = withSecrets ? halbWithSecrets(name, namespace, finalizers) : halb(name, namespace, finalizers);
      const created = await custom.createNamespacedCustomObject({
        group: 'halb.dev', version: 'v1alpha1', namespace, plural: 'haloadbalancers', body,
      });
      if (kind === 'watched') await makeMetricsObjects(name, namespace, (created as { metadata: { uid: string } }).metadata.uid);
      if (kind === 'leaving') {
        await custom.deleteNamespacedCustomObject({ group: 'halb.dev', version: 'v1alpha1', namespace, plural: 'haloadbalancers', name });
      }
      made.push(name);
    }
    return async () => {
      for (const name of made.filter((n) => n.startsWith('rbac-service'))) {
        await core.patchNamespacedService({ name, namespace, body: { metadata: { finalizers: null } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch)).catch(() => undefined);
        await core.deleteNamespacedService({ name, namespace }).catch(() => undefined);
      }
      for (const name of made) {
        await core.deleteNamespacedService({ name: `${name}-metrics`, namespace }).catch(() => undefined);
        await discovery.deleteNamespacedEndpointSlice({ name: `${name}-metrics`, namespace }).catch(() => undefined);
        await custom.patchNamespacedCustomObject(
          { group: 'halb.dev', version: 'v1alpha1', namespace, plural: 'haloadbalancers', name, body: { metadata: { finalizers: null } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        ).catch(() => undefined);
        await custom.deleteNamespacedCustomObject({ group: 'halb.dev', version: 'v1alpha1', namespace, plural: 'haloadbalancers', name })
          .catch(() => undefined);
      }
      await waitFor('the scenario objects gone', async () => {
        const list = await custom.listNamespacedCustomObject({
          group: 'halb.dev', version: 'v1alpha1', namespace, plural: 'haloadbalancers',
        }) as { items: unknown[] };
        return list.items.length === 0 || undefined;
      }, 30_000, 200);
    };
  }

  const mine = (records: AuditRecord[]) => records.filter((r) => r.user.username === identity.user);
  const summary = (records: AuditRecord[]) =>
    [...new Set(mine(records).map((r) => `${requested(r)} -> ${r.responseStatus?.code}`))].sort().join('\n  ');

  it('has a row for every permission deploy/base grants, and no row for one it does not', () => {
    const granted = [...permissions(roles[CLUSTER_ROLE]!), ...permissions(roles[LEADER_ROLE]!), ...permissions(roles[NODES_ROLE]!)].sort();
    const rows = ROWS.map((r) => r.permission).sort();
    for (const p of granted) {
      expect(rows, `deploy/base/rbac.yaml grants "${p}", but test/kube-real/rbac.test.ts has no row proving the operator needs it: ` +
        'add one to ROWS (the scenario in which the operator uses it, and what for)').toContain(p);
    }
    for (const r of rows) {
      expect(granted, `ROWS has "${r}", which deploy/base/rbac.yaml no longer grants: remove the row`).toContain(r);
    }
  });

  it('the namespaced overlay grants, in its Role, exactly what the ClusterRole grants', async () => {
    const overlay = (await kustomize('overlays/namespaced'))
      .filter((o) => o.kind === 'Role' && (o as unknown as Role).metadata.name === CLUSTER_ROLE) as unknown as Role[];
    expect(overlay).toHaveLength(1);
    expect(permissions(overlay[0]!).sort()).toEqual(permissions(roles[CLUSTER_ROLE]!).sort());
  });

  it('with the roles as shipped: nothing is refused, and every permission is used', async () => {
    const since = auditLines(cp.kube);
    const cleanup = await arrange({
      objects: ['fresh', 'settled', 'leaving', 'service', 'service-stale', 'service-leaving', 'converging', 'watched'],
      noLease: true,
    }, 'default');
    const operator = startOperator();
    try {
      await waitFor('every permission used', () => {
        const records = mine(cp.audit(since));
        return ROWS.every((row) => records.some((r) => covers(row.usedBy ?? row.permission, r) && r.responseStatus?.code !== 403))
          || undefined;
      }, 60_000, 500).catch((err: Error) => { throw new Error(`${err.message}; the operator made:\n  ${summary(cp.audit(since))}`); });
    } finally {
      await stopOperator(operator);
      await cleanup();
    }
    const refused = mine(cp.audit(since)).filter((r) => r.responseStatus?.code === 403).map(requested);
    expect(refused, 'requests the shipped roles refuse').toEqual([]);
  }, 120_000);

  for (const row of ROWS) {
    it(`without "${row.permission}": refused, and the operator needs it because ${row.needs}`, async () => {
      const role = roles[row.permission.split(' ')[0]!]!;
      await applyAsAdmin(cp.kube, [without(role, row.permission) as unknown as Record<string, unknown>]);
      const since = auditLines(cp.kube);
      const cleanup = await arrange(row.scenario, 'default');
      const operator = startOperator();
      try {
        await waitFor(`a 403 for ${row.permission}`, () => mine(cp.audit(since)).some((r) => covers(row.usedBy ?? row.permission, r)
          && r.responseStatus?.code === 403) || undefined, 45_000, 500)
          .catch((err: Error) => { throw new Error(`${err.message}; the operator made:\n  ${summary(cp.audit(since))}`); });
      } finally {
        await stopOperator(operator);
        await applyAsAdmin(cp.kube, [role as unknown as Record<string, unknown>]);
        await cleanup();
      }
    }, 90_000);
  }

  it('kubectl auth can-i refuses what the operator must not do', async () => {
    const as = `--as=${identity.user}`;
    const refused: string[][] = [
      ['deletecollection', 'haloadbalancers.halb.dev'], ['update', 'haloadbalancers.halb.dev', '--subresource=status'],
      ['update', 'haloadbalancers.halb.dev', '--subresource=finalizers'],
      ['get', 'secrets'], ['get', 'haloadbalancers.halb.dev'], ['get', 'haloadbalancers.halb.dev', '--subresource=status'],
      ['create', 'secrets'], ['update', 'secrets'], ['patch', 'secrets'], ['delete', 'secrets'],
      ['get', 'configmaps'], ['list', 'pods'], ['create', 'pods'], ['create', 'pods', '--subresource=exec'],
      ['create', 'deployments.apps'], ['create', 'serviceaccounts', '--subresource=token'],
      ['delete', 'events'], ['update', 'events'], ['list', 'events'],
      ['get', 'leases.coordination.k8s.io/someone-else', '-n', 'halb-system'],
      ['update', 'leases.coordination.k8s.io/someone-else', '-n', 'halb-system'],
      ['delete', 'leases.coordination.k8s.io/halb-operator', '-n', 'halb-system'],
      ['list', 'leases.coordination.k8s.io', '-n', 'halb-system'],
      ['create', 'leases.coordination.k8s.io', '-n', 'default'], ['get', 'leases.coordination.k8s.io/halb-operator', '-n', 'default'],
      ['get', 'nodes'], ['patch', 'nodes'], ['create', 'namespaces'], ['delete', 'namespaces'],
      ['get', 'services'], ['update', 'services'], ['delete', 'services'], ['delete', 'endpointslices.discovery.k8s.io'],
      ['update', 'services', '--subresource=status'],
      ['create', 'customresourcedefinitions.apiextensions.k8s.io'], ['update', 'customresourcedefinitions.apiextensions.k8s.io'],
      ['create', 'clusterrolebindings.rbac.authorization.k8s.io'], ['escalate', 'clusterroles.rbac.authorization.k8s.io'],
      ['bind', 'clusterroles.rbac.authorization.k8s.io'], ['impersonate', 'users'], ['impersonate', 'serviceaccounts'],
      ['*', '*'],
    ];
    const allowed: string[][] = [['list', 'haloadbalancers.halb.dev', '-A'], ['watch', 'secrets', '-A'], ['patch',
      'haloadbalancers.halb.dev', '--subresource=status'],
      ['create', 'haloadbalancers.halb.dev'], ['delete', 'haloadbalancers.halb.dev'], ['watch', 'nodes'], ['patch', 'services',
        '--subresource=status', '-A'], ['create', 'services'], ['create', 'endpointslices.discovery.k8s.io']];
    for (const args of refused) {
      const r = await cp.kubectl(['auth', 'can-i', ...args, as]);
      expect({ args: args.join(' '), answer: r.stdout.trim() }, r.stderr).toEqual({ args: args.join(' '), answer: 'no' });
    }
    for (const args of allowed) {
      const r = await cp.kubectl(['auth', 'can-i', ...args, as]);
      expect({ args: args.join(' '), answer: r.stdout.trim() }, r.stderr).toEqual({ args: args.join(' '), answer: 'yes' });
    }
  }, 120_000);

  describe('deploy/overlays/namespaced', () => {
    let namespaced: OperatorIdentity;
    beforeAll(async () => {
      await applyAsAdmin(cp.kube, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'apps' } }]);
      // The overlay removes the ClusterRole and its binding; an install of it has neither.
      await cp.kubectl(['delete', 'clusterrolebinding', CLUSTER_ROLE, '--ignore-not-found']);
      namespaced = await installOperatorIdentity(cp.kube, join(cp.dir, 'namespaced'), 'overlays/namespaced');
      identity = namespaced;
    }, 60_000);

    it('watches and writes in its namespace with nothing refused; outside it, can-i says no', async () => {
      const since = auditLines(cp.kube);
      const cleanup = await arrange({
        objects: ['fresh', 'settled', 'leaving', 'service', 'service-stale', 'service-leaving', 'converging', 'watched'],
      }, 'apps');
      const operator = startOperator('apps');
      try {
        await waitFor('the namespaced operator to use its Role', () => {
          const records = mine(cp.audit(since));
          const inApps = (row: Row) => records.some((r) => covers(row.usedBy ?? row.permission, r) && r.objectRef?.namespace === 'apps'
            && r.responseStatus?.code !== 403);
          return ROWS.filter((r) => r.permission.startsWith(`${CLUSTER_ROLE} `)).every(inApps) || undefined;
        }, 60_000, 500).catch((err: Error) => { throw new Error(`${err.message}; the operator made:\n  ${summary(cp.audit(since))}`); });
      } finally {
        await stopOperator(operator);
        await cleanup();
      }
      expect(mine(cp.audit(since)).filter((r) => r.responseStatus?.code === 403).map(requested)).toEqual([]);
      const as = `--as=${namespaced.user}`;
      for (const args of [
        ['list', 'secrets', '-n', 'default'], ['list', 'haloadbalancers.halb.dev', '-A'], ['create', 'events', '-n', 'default'],
        ['watch', 'secrets', '-A'],
      ]) {
        const answer = (await cp.kubectl(['auth', 'can-i', ...args, as])).stdout.trim();
        expect({ args: args.join(' '), answer }).toEqual({ args: args.join(' '), answer: 'no' });
      }
      expect((await cp.kubectl(['auth', 'can-i', 'watch', 'secrets', '-n', 'apps', as])).stdout.trim()).toBe('yes');
    }, 120_000);
  });
});
