// The operator's Kubernetes plumbing against the API-server emulator, through client-node:
// an informer that survives the server going away, Lease leader election with a hand-over,
// and Events that `kubectl describe` can show.
import * as k8s from '@kubernetes/client-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCRD } from '../../src/api/crd.ts';
import { createEventRecorder } from '../../src/controller/events.ts';
import { createHALoadBalancerInformer } from '../../src/controller/informer.ts';
import { createLeaderElector } from '../../src/controller/leader.ts';
import { createLogger } from '../../src/log.ts';
import { startKubeEmulator, type KubeEmulator } from '../../src/sandbox/kube/index.ts';
import type { HALoadBalancer } from '../../src/api/types.ts';
import { waitFor } from '../kube/helpers.ts';

const log = createLogger({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'halb-engine-'));
const stateFile = join(dir, 'state.json');
let emu: KubeEmulator;
let kc: k8s.KubeConfig;

const lb = (name: string) => ({
  apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name, namespace: 'default' },
  spec: {
    region: 'nyc3',
    credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'ssh-privatekey' } },
    frontends: [{ name: 'www', port: 80, defaultBackend: 'web' }],
    backends: [{ name: 'web', servers: [{ name: 's1', address: '10.10.0.21' }] }],
  },
});

async function post(path: string, body: unknown) {
  const r = await fetch(`${emu.url}${path}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  if (r.status >= 300) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json() as Promise<Record<string, unknown>>;
}

beforeAll(async () => {
  emu = await startKubeEmulator({ port: 0, stateFile });
  const kubeconfig = join(dir, 'kubeconfig');
  emu.writeKubeconfig(kubeconfig);
  kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  // Plain JSON: client-node's typed serializer would drop `default` and x-kubernetes-* keys.
  await post('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', buildCRD());
  await waitFor('the CRD to be served', async () => (await fetch(`${emu.url}/apis/halb.dev/v1alpha1`)).ok || undefined);
});
afterAll(async () => {
  await emu?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('HALoadBalancer informer', () => {
  it('enqueues keys, survives a server restart, and stays stopped once stopped', async () => {
    await post('/apis/halb.dev/v1alpha1/namespaces/default/haloadbalancers', lb('before'));
    const keys: string[] = [];
    const informer = createHALoadBalancerInformer(kc, (k) => keys.push(k), log, { baseDelayMs: 100, maxDelayMs: 500 });
    await informer.start();
    try {
      await waitFor('the first key', () => keys.includes('default/before') || undefined);
      expect(informer.synced()).toBe(true);
      const port = emu.port;
      await emu.close();
      await new Promise((r) => setTimeout(r, 300));
      emu = await startKubeEmulator({ port, stateFile });
      await post('/apis/halb.dev/v1alpha1/namespaces/default/haloadbalancers', lb('after'));
      await waitFor('the key created after the restart', () => keys.includes('default/after') || undefined, 20_000);
      expect(informer.keys().sort()).toEqual(['default/after', 'default/before']);
    } finally {
      informer.stop();
    }
    const before = keys.length;
    await post('/apis/halb.dev/v1alpha1/namespaces/default/haloadbalancers', lb('ignored'));
    await new Promise((r) => setTimeout(r, 1000));
    expect(keys.length).toBe(before);
  });
});

describe('informer caches', () => {
  it('hold objects without their managedFields, which the API server sends', async () => {
    await post('/apis/halb.dev/v1alpha1/namespaces/default/haloadbalancers', lb('stripped'));
    const response = await fetch(`${emu.url}/apis/halb.dev/v1alpha1/namespaces/default/haloadbalancers/stripped`);
    const served = await response.json() as { metadata: { uid: string; managedFields?: unknown[] } };
    expect(served.metadata.managedFields?.length).toBeGreaterThan(0);
    const informer = createHALoadBalancerInformer(kc, () => undefined, log);
    await informer.start();
    try {
      await waitFor('the object in the cache', () => informer.get('default', 'stripped'));
      expect(informer.get('default', 'stripped')?.metadata).not.toHaveProperty('managedFields');
      expect(informer.get('default', 'stripped')?.metadata?.uid).toBe(served.metadata.uid);
    } finally {
      informer.stop();
    }
  });
});

describe('leader election on a Lease', () => {
  it('elects one replica, and hands over promptly when the leader stops', async () => {
    const opts = { namespace: 'default', name: 'halb-operator', leaseDurationSeconds: 15, renewIntervalMs: 200, retryIntervalMs: 100 };
    const a = createLeaderElector(kc, { ...opts, identity: 'a' }, log);
    const b = createLeaderElector(kc, { ...opts, identity: 'b' }, log);
    const events: string[] = [];
    const runA = a.run({ onStarted: () => events.push('a+'), onStopped: () => events.push('a-') });
    await waitFor('a to lead', () => a.isLeader() || undefined);
    const runB = b.run({ onStarted: () => events.push('b+'), onStopped: () => events.push('b-') });
    await new Promise((r) => setTimeout(r, 600));
    expect(b.isLeader()).toBe(false);
    const stoppedAt = Date.now();
    await a.stop();
    await waitFor('b to take over', () => b.isLeader() || undefined, 5000);
    // Far sooner than the 15 s lease: the release made the lease free.
    expect(Date.now() - stoppedAt).toBeLessThan(3000);
    await b.stop();
    await Promise.all([runA, runB]);
    expect(events).toEqual(['a+', 'b+']);
    const lease = await kc.makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ name: 'halb-operator', namespace: 'default' });
    expect(lease.spec?.leaseTransitions).toBe(1);
    expect(lease.spec?.holderIdentity).toBe('');
  });
});

describe('events', () => {
  it('are core/v1 Events on the object, and a repeat bumps the count', async () => {
    const created = await post('/apis/halb.dev/v1alpha1/namespaces/default/haloadbalancers', lb('evented')) as unknown as HALoadBalancer;
    const recorder = createEventRecorder(kc, log);
    await recorder.record(created, 'Normal', 'DropletCreated', 'created droplet evented-0 (id 101)');
    await recorder.record(created, 'Normal', 'DropletCreated', 'created droplet evented-0 (id 101)');
    await recorder.record(created, 'Warning', 'FailoverObserved', 'reserved IP moved from evented-0 to evented-1');
    const list = await kc.makeApiClient(k8s.CoreV1Api)
      .listNamespacedEvent({ namespace: 'default', fieldSelector: 'involvedObject.name=evented' });
    const byReason = Object.fromEntries(list.items.map((e) => [e.reason, e]));
    expect(Object.keys(byReason).sort()).toEqual(['DropletCreated', 'FailoverObserved']);
    expect(byReason.DropletCreated!.count).toBe(2);
    expect(byReason.FailoverObserved!.type).toBe('Warning');
    expect(byReason.FailoverObserved!.involvedObject.uid).toBe(created.metadata.uid);
  });
});

describe('Secret informer', () => {
  it('reports the key of a Secret that changes, so the objects naming it are reconciled', async () => {
    const { createSecretInformer } = await import('../../src/controller/informer.ts');
    const keys: string[] = [];
    const informer = createSecretInformer(kc, (k) => keys.push(k), log);
    await informer.start();
    try {
      await post('/api/v1/namespaces/default/secrets', {
        apiVersion: 'v1', kind: 'Secret', metadata: { name: 'www-tls', namespace: 'default' }, stringData: { 'tls.crt': 'a' },
      });
      await waitFor('the new Secret', () => keys.includes('default/www-tls') || undefined);
      const seen = keys.length;
      const r = await fetch(`${emu.url}/api/v1/namespaces/default/secrets/www-tls`, {
        method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json' },
        body: JSON.stringify({ stringData: { 'tls.crt': 'b' } }),
      });
      expect(r.status).toBe(200);
      await waitFor('the rotated Secret', () => keys.length > seen || undefined);
      expect(keys.at(-1)).toBe('default/www-tls');
    } finally {
      informer.stop();
    }
  });
});
