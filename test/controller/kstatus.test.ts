// Status against kstatus's rules (sigs.k8s.io/cli-utils pkg/kstatus/status, generic.go), which
// Flux's health checks and `kubectl wait` users rely on: a deletion is Terminating; an
// observedGeneration behind metadata.generation is InProgress; Reconciling=True is InProgress;
// Stalled=True is Failed; otherwise the object is Current. The classifier below restates those
// rules; the rows check what each of halb's states classifies as.
import { describe, expect, it } from 'vitest';
import { validateHALoadBalancer } from '../../src/api/validate.ts';
import type { HALoadBalancer, HALoadBalancerStatus } from '../../src/api/types.ts';
import type { Observed, ObservedHost } from '../../src/controller/observed.ts';
import { computeStatus, stalledStatus } from '../../src/controller/status.ts';

type KStatus = 'Terminating' | 'InProgress' | 'Failed' | 'Current';

function kstatus(object: { metadata: { generation?: number; deletionTimestamp?: string } }, status: HALoadBalancerStatus): KStatus {
  if (object.metadata.deletionTimestamp) return 'Terminating';
  const stale = object.metadata.generation !== undefined && status.observedGeneration !== undefined &&
    status.observedGeneration !== object.metadata.generation;
  if (stale) return 'InProgress';
  for (const c of status.conditions ?? []) {
    if (c.type === 'Reconciling' && c.status === 'True') return 'InProgress';
    if (c.type === 'Stalled' && c.status === 'True') return 'Failed';
  }
  return 'Current';
}

const now = '2026-12-06T10:00:00Z';
const object = (): HALoadBalancer => {
  const o = validateHALoadBalancer({
    apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name: 'web' },
    spec: {
      region: 'nyc3',
      credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'k' } },
      access: { sshSourceCIDRs: ['203.0.113.0/24'] },
      frontends: [{ name: 'www', port: 80, defaultBackend: 'web' }],
      backends: [{ name: 'web', servers: [{ name: 's1', address: '10.0.0.1' }] }],
    },
  }).object!;
  return { ...o, metadata: { ...o.metadata, generation: 2 } };
};
const host = (vrrpState: ObservedHost['vrrpState'], extra: Partial<ObservedHost> = {}): ObservedHost =>
  ({
    reachable: true, vrrpState, configHash: 'h', anchorIPv4: '10.20.0.5', privateIPv4: '10.10.0.11', firewallLoaded: true,
    keepalivedRunning: true, haproxyRunning: true, ...extra,
  });
const observed = (hosts: ObservedHost[], droplets = hosts.length): Observed => ({
  droplets: Array.from({ length: droplets }, (_, i) => ({ id: 101 + i, name: `web-${i}`, index: i, status: 'active', createdAt: now })),
  reservedIP: { ip: '198.51.100.10', dropletId: 101, locked: false },
  hosts: Object.fromEntries(hosts.map((h, i) => [`web-${i}`, h])),
});
const hashes = { 'web-0': 'h', 'web-1': 'h' };
const status = (o: Observed, desired: Record<string, string> = hashes) =>
  computeStatus({ object: object(), observed: o, desiredHashes: desired, now });

describe('kstatus', () => {
  const rows: [string, HALoadBalancerStatus, KStatus][] = [
    ['a converged pair is Current', status(observed([host('MASTER'), host('BACKUP')])), 'Current'],
    ['droplets still being created are InProgress', status(observed([host('MASTER')], 1), {}), 'InProgress'],
    ['config not applied yet is InProgress', status(observed([host('MASTER'), host('BACKUP', { configHash: 'old' })])), 'InProgress'],
    ['a backend down while Ready is Current (Degraded says why)',
      status(observed([host('MASTER', { servers: { 'web/s1': 'DOWN' } }), host('BACKUP')])), 'Current'],
    ['a config a daemon refused is Failed',
      status(observed([host('MASTER', { applyError: 'haproxy refused' }), host('BACKUP')])), 'Failed'],
    ['a changed host key is Failed',
      status(observed([host('MASTER'), { reachable: false, hostKeyChanged: true, error: 'changed' }])), 'Failed'],
    ['a firewall that would lock the operator out is Failed',
      status(observed([host('MASTER', { operatorAddress: '10.254.0.1' }), host('BACKUP', { operatorAddress: '10.254.0.1' })])), 'Failed'],
    ['an invalid spec is Failed', stalledStatus(object(), [{ path: 'spec', message: 'bad' }], now, 'InvalidSpec'), 'Failed'],
    ['a missing Secret is Failed', stalledStatus(object(), [{ path: 'spec', message: 'no Secret' }], now, 'SecretNotFound'), 'Failed'],
    ['a missing DigitalOcean SSH key is Failed',
      stalledStatus(object(), [{ path: 'spec.droplets.sshKeys', message: 'not in the account' }], now, 'CloudResourceNotFound'), 'Failed'],
    ['a status of an older generation is InProgress',
      { ...status(observed([host('MASTER'), host('BACKUP')])), observedGeneration: 1 }, 'InProgress'],
  ];
  it.each(rows)('%s', (_name, s, want) => {
    expect(kstatus(object(), s)).toBe(want);
  });

  it('Stalled and Reconciling are never True together, and Ready=True means both are False', () => {
    for (const [, s] of rows) {
      const get = (type: string) => s.conditions?.find((c) => c.type === type)?.status;
      expect([get('Stalled'), get('Reconciling')]).not.toEqual(['True', 'True']);
      if (get('Ready') === 'True') expect([get('Stalled'), get('Reconciling')]).toEqual(['False', 'False']);
    }
  });
});
