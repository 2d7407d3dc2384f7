// @kubernetes/client-node 2.x against the emulator: typed clients, status patches, Leases and
// Events with their MicroTime rules, and an informer that survives a 410 and a restart.
import * as k8s from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { KubeEmulator } from '../../src/sandbox/kube/index.ts';
import { startKubeEmulator } from '../../src/sandbox/kube/index.ts';
import type { Harness } from './helpers.ts';
import { CRD_FILE, FIXTURES, startHarness, waitFor } from './helpers.ts';

const GROUP = 'halb.dev';
const VERSION = 'v1alpha1';
const PLURAL = 'haloadbalancers';
const crd = parse(readFileSync(CRD_FILE, 'utf8')) as k8s.V1CustomResourceDefinition;
const web = parse(readFileSync(join(FIXTURES, 'web.yaml'), 'utf8')) as { metadata: { name: string } } & Record<string, unknown>;

function lb(name: string): Record<string, unknown> {
  return { ...structuredClone(web), metadata: { name } };
}

function apiError(err: unknown): { code: number; reason: string; message: string } {
  const e = err as k8s.ApiException<string>;
  const body = JSON.parse(e.body) as { reason: string; message: string };
  return { code: e.code, reason: body.reason, message: body.message };
}

async function rejection(p: Promise<unknown>): Promise<{ code: number; reason: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return apiError(err);
  }
  throw new Error('expected the request to fail');
}

describe('@kubernetes/client-node against the emulator', () => {
  let h: Harness;
  let kc: k8s.KubeConfig;
  let co: k8s.CustomObjectsApi;
  let core: k8s.CoreV1Api;
  const requests: string[] = [];

  beforeAll(async () => {
    h = await startHarness({
      stateFile: undefined,
      onRequest: (r) => requests.push(`${r.method} ${r.path}${r.query} ${r.code}`),
    });
    kc = new k8s.KubeConfig();
    kc.loadFromFile(h.kubeconfig);
    co = kc.makeApiClient(k8s.CustomObjectsApi);
    core = kc.makeApiClient(k8s.CoreV1Api);
    // Through kubectl: client-node's typed serializer drops `default` and x-kubernetes-* keys
    // from a plain-object schema (it expects `_default`, `xKubernetesListType`, ...).
    expect((await h.kubectl(['apply', '-f', CRD_FILE])).code).toBe(0);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('creates, reads and patches custom resources and their status', async () => {
    const created = await co.createNamespacedCustomObject({
      group: GROUP, version: VERSION, namespace: 'default', plural: PLURAL, body: { ...lb('a'), status: { floatingIP: 'dropped' } },
    }) as k8s.KubernetesObject & { status?: unknown; spec: { droplets: { count: number } } };
    expect(created.metadata?.generation).toBe(1);
    expect(created.status).toBeUndefined(); // status subresource: create drops status
    expect(created.spec.droplets.count).toBe(2); // defaulted
    const patched = await co.patchNamespacedCustomObjectStatus(
      {
        group: GROUP, version: VERSION, namespace: 'default', plural: PLURAL, name: 'a',
        body: { status: { observedGeneration: 1, floatingIP: '198.51.100.9' } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    ) as k8s.KubernetesObject & { status: { floatingIP: string } };
    expect(patched.status.floatingIP).toBe('198.51.100.9');
    expect(patched.metadata?.generation).toBe(1);
    expect(Number(patched.metadata?.resourceVersion)).toBeGreaterThan(Number(created.metadata?.resourceVersion));
    // A spec change through the main resource keeps the status and bumps the generation.
    const specPatched = await co.patchNamespacedCustomObject(
      {
        group: GROUP, version: VERSION, namespace: 'default', plural: PLURAL, name: 'a',
        body: [{ op: 'replace', path: '/spec/droplets/count', value: 3 }, { op: 'replace', path: '/status/floatingIP', value: 'ignored' }],
      },
    ) as k8s.KubernetesObject & { status: { floatingIP: string } };
    expect(specPatched.metadata?.generation).toBe(2);
    expect(specPatched.status.floatingIP).toBe('198.51.100.9');
    // A stale resourceVersion on replace is a 409 Conflict.
    const stale = await rejection(co.replaceNamespacedCustomObjectStatus({
      group: GROUP, version: VERSION, namespace: 'default', plural: PLURAL, name: 'a', body: { ...patched, status: { floatingIP: 'x' } },
    }));
    expect(stale).toEqual({
      code: 409, reason: 'Conflict',
      message: 'Operation cannot be fulfilled on haloadbalancers.halb.dev "a": the object has been modified; ' +
        'please apply your changes to the latest version and try again',
    });
    const missing = await rejection(co.getNamespacedCustomObject({
      group: GROUP, version: VERSION, namespace: 'default', plural: PLURAL, name: 'nope',
    }));
    expect(missing).toEqual({ code: 404, reason: 'NotFound', message: 'haloadbalancers.halb.dev "nope" not found' });
  });

  it('rejects strategic merge on custom resources and applies server-side', async () => {
    const objs = k8s.KubernetesObjectApi.makeApiClient(kc);
    const smp = await rejection(objs.patch({
      apiVersion: `${GROUP}/${VERSION}`, kind: 'HALoadBalancer', metadata: { name: 'a', namespace: 'default' }, spec: { region: 'fra1' },
    } as k8s.KubernetesObject));
    expect(smp.code).toBe(415);
    const applied = await objs.patch({ ...lb('ssa'), metadata: { name: 'ssa', namespace: 'default' } } as k8s.KubernetesObject,
      undefined, undefined, 'halb-test', true, k8s.PatchStrategy.ServerSideApply) as k8s.KubernetesObject;
    expect(applied.metadata?.managedFields?.[0]).toMatchObject({ manager: 'halb-test', operation: 'Apply' });
    // The operator's status write: server-side apply on /status, recorded with subresource status.
    const statusApply = (manager: string, force: boolean, ip: string): Promise<unknown> => co.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, namespace: 'default', plural: PLURAL, name: 'ssa', fieldManager: manager, force,
        body: {
          apiVersion: `${GROUP}/${VERSION}`, kind: 'HALoadBalancer', metadata: { name: 'ssa', namespace: 'default' },
          status: { floatingIP: ip, observedGeneration: 1 },
        } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply),
    );
    const st = await statusApply('halb-operator', true, '198.51.100.20') as k8s.KubernetesObject & { status: { floatingIP: string } };
    expect(st.status.floatingIP).toBe('198.51.100.20');
    expect(st.metadata?.managedFields?.find((m) => m.manager === 'halb-operator'))
      .toMatchObject({ operation: 'Apply', subresource: 'status' });
    const clash = await rejection(statusApply('someone-else', false, '198.51.100.21'));
    expect(clash).toMatchObject({
      code: 409, reason: 'Conflict', message: 'Apply failed with 1 conflict: conflict with "halb-operator": .status.floatingIP',
    });
    expect(((await statusApply('someone-else', true, '198.51.100.21')) as { status: { floatingIP: string } }).status.floatingIP)
      .toBe('198.51.100.21');
    const noManager = await rejection(co.patchNamespacedCustomObject({
      group: GROUP, version: VERSION, namespace: 'default', plural: PLURAL, name: 'ssa',
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'HALoadBalancer' },
    }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply)));
    expect(noManager).toMatchObject({
      code: 422, message: 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
    });
  });

  it('stores Secrets with stringData merged into base64 data', async () => {
    await core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 'do-api' }, stringData: { token: 'tok' } } });
    const s = await core.readNamespacedSecret({ namespace: 'default', name: 'do-api' });
    expect(s.data).toEqual({ token: Buffer.from('tok').toString('base64') });
    expect(s.type).toBe('Opaque');
    expect((s as unknown as Record<string, unknown>).stringData).toBeUndefined();
  });

  it('enforces the six-digit MicroTime on Leases', async () => {
    const coord = kc.makeApiClient(k8s.CoordinationV1Api);
    const bad = await rejection(coord.createNamespacedLease({
      namespace: 'default',
      body: { metadata: { name: 'halb-leader' }, spec: { holderIdentity: 'a', renewTime: new Date('2026-11-24T02:16:35.414Z') } },
    }));
    expect(bad.code).toBe(400);
    expect(bad.message).toContain('cannot parse ".414Z" as ".000000"');
    const lease = await coord.createNamespacedLease({
      namespace: 'default',
      body: {
        metadata: { name: 'halb-leader' },
        spec: { holderIdentity: 'a', leaseDurationSeconds: 15, renewTime: new k8s.V1MicroTime('2026-11-24T02:16:35.414Z') },
      },
    });
    expect(lease.spec?.renewTime as unknown).toBe('2026-11-24T02:16:35.414000Z');
    const taken = await rejection(coord.replaceNamespacedLease({
      namespace: 'default', name: 'halb-leader',
      body: { ...lease, metadata: { ...lease.metadata, resourceVersion: '1' }, spec: { ...lease.spec, holderIdentity: 'b' } },
    }));
    expect(taken.code).toBe(409);
  });

  it('serves events.k8s.io/v1 events through core/v1 with involvedObject selectors', async () => {
    const events = kc.makeApiClient(k8s.EventsV1Api);
    await events.createNamespacedEvent({
      namespace: 'default',
      body: {
        metadata: { name: 'a.1' }, eventTime: new k8s.V1MicroTime(), reportingController: 'halb.dev/operator', reportingInstance: 'op-1',
        action: 'Reconcile', reason: 'Provisioned', type: 'Normal', note: 'created 2 droplets',
        regarding: { apiVersion: `${GROUP}/${VERSION}`, kind: 'HALoadBalancer', name: 'a', namespace: 'default' },
      },
    });
    const list = await core.listNamespacedEvent({
      namespace: 'default', fieldSelector: 'involvedObject.name=a,involvedObject.kind=HALoadBalancer',
    });
    expect(list.items.map((e) => [e.reason, e.message, e.reportingComponent]))
      .toEqual([['Provisioned', 'created 2 droplets', 'halb.dev/operator']]);
    expect((await core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=b' })).items).toEqual([]);
    const invalid = await rejection(events.createNamespacedEvent({
      namespace: 'default',
      body: {
        metadata: { name: 'a.2' }, eventTime: new k8s.V1MicroTime(), reportingController: 'x', reportingInstance: 'y', action: 'A',
        reason: 'R', type: 'Bogus',
      },
    }));
    expect(invalid.code).toBe(422);
    const badField = await rejection(core.listNamespacedEvent({ namespace: 'default', fieldSelector: 'spec.nope=1' }));
    expect(badField).toMatchObject({ code: 400, message: 'field label not supported: spec.nope' });
  });

  it('keeps an informer in sync across a 410 Expired', async () => {
    const path = `/apis/${GROUP}/${VERSION}/namespaces/default/${PLURAL}`;
    const list = (): Promise<k8s.KubernetesListObject<k8s.KubernetesObject>> =>
      co.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'default', plural: PLURAL });
    const inf = k8s.makeInformer(kc, path, list);
    const seen: string[] = [];
    inf.on(k8s.ADD, (o) => seen.push(`add ${o.metadata?.name}`));
    inf.on(k8s.UPDATE, (o) => seen.push(`update ${o.metadata?.name}`));
    inf.on(k8s.DELETE, (o) => seen.push(`delete ${o.metadata?.name}`));
    await inf.start();
    try {
      await waitFor('initial list', () => seen.includes('add a') && seen.includes('add ssa'));
      const before = requests.length;
      h.emu.compact();
      await waitFor('relist after 410', () => requests.slice(before).some((r) => r.startsWith(`GET ${path} 200`)));
      await co.createNamespacedCustomObject({
        group: GROUP, version: VERSION, namespace: 'default', plural: PLURAL, body: lb('after-410'),
      });
      await waitFor('add after 410', () => seen.includes('add after-410'));
      await co.deleteNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'default', plural: PLURAL, name: 'after-410' });
      await waitFor('delete after 410', () => seen.includes('delete after-410'));
      expect(inf.list().map((o) => o.metadata?.name).sort()).toEqual(['a', 'ssa']);
    } finally {
      await inf.stop();
    }
  });
});

describe('an informer across an emulator restart with --state', () => {
  let h: Harness;
  let second: KubeEmulator | undefined;
  beforeAll(async () => {
    h = await startHarness({ stateFile: undefined });
  });
  afterAll(async () => {
    await second?.close();
    await h?.close();
  });

  it('resumes, keeps objects and keeps resourceVersion increasing', async () => {
    // Its own emulator with a state file, on a port we can reuse after the restart.
    await h.emu.close();
    const stateFile = join(h.dir, 'state.json');
    let emu = await startKubeEmulator({ port: 0, stateFile });
    const port = emu.port;
    const kubeconfig = join(h.dir, 'kc-state');
    emu.writeKubeconfig(kubeconfig);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(kubeconfig);
    await kc.makeApiClient(k8s.ApiextensionsV1Api).createCustomResourceDefinition({ body: crd });
    const co = kc.makeApiClient(k8s.CustomObjectsApi);
    const first = await co.createNamespacedCustomObject({
      group: GROUP, version: VERSION, namespace: 'default', plural: PLURAL, body: lb('before'),
    }) as k8s.KubernetesObject;

    const inf = k8s.makeInformer(kc, `/apis/${GROUP}/${VERSION}/namespaces/default/${PLURAL}`,
      () => co.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: 'default', plural: PLURAL }));
    let stopped = false;
    let errors = 0;
    // client-node 2.0.1 stops an informer for good on any error: restart it, unless we stopped it.
    inf.on(k8s.ERROR, () => {
      errors++;
      if (!stopped) setTimeout(() => void inf.start().catch(() => {}), 200);
    });
    const seen: string[] = [];
    inf.on(k8s.ADD, (o) => seen.push(`add ${o.metadata?.name}`));
    await inf.start();
    try {
      await waitFor('initial add', () => seen.includes('add before'));
      await emu.close();
      await waitFor('the informer to notice', () => errors > 0);
      emu = await startKubeEmulator({ port, stateFile });
      second = emu;
      const after = await co.createNamespacedCustomObject({
        group: GROUP, version: VERSION, namespace: 'default', plural: PLURAL, body: lb('after'),
      }) as k8s.KubernetesObject;
      expect(Number(after.metadata?.resourceVersion)).toBeGreaterThan(Number(first.metadata?.resourceVersion));
      await waitFor('add after restart', () => seen.includes('add after'), 15_000);
      expect(inf.list().map((o) => o.metadata?.name).sort()).toEqual(['after', 'before']);
      const kept = await co.getNamespacedCustomObject({
        group: GROUP, version: VERSION, namespace: 'default', plural: PLURAL, name: 'before',
      }) as k8s.KubernetesObject;
      expect(kept.metadata?.uid).toBe(first.metadata?.uid);
    } finally {
      stopped = true;
      await inf.stop();
    }
  });
});
