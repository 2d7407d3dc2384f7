import { describe, expect, it } from 'vitest';
import { validateHALoadBalancer } from '../../src/api/validate.ts';
import type { HALoadBalancer } from '../../src/api/types.ts';
import type { Observed, ObservedHost } from '../../src/controller/observed.ts';
import { computeStatus, stalledStatus, statusChanged } from '../../src/controller/status.ts';

const now = '2026-11-24T10:00:00Z';
const later = '2026-11-24T10:01:00Z';

function object(extra: Record<string, unknown> = {}): HALoadBalancer {
  const { object: o } = validateHALoadBalancer({
    apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name: 'web', generation: 3 },
    spec: {
      region: 'nyc3',
      credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'k' } },
      frontends: [{ name: 'www', port: 80, defaultBackend: 'web' }],
      backends: [{ name: 'web', servers: [{ name: 's1', address: '10.0.0.1' }] }],
      access: { sshSourceCIDRs: ['203.0.113.0/24'] },
      ...extra,
    },
  });
  return { ...o!, metadata: { ...o!.metadata, generation: 3 } };
}

const host = (vrrpState: ObservedHost['vrrpState'], extra: Partial<ObservedHost> = {}): ObservedHost =>
  ({ reachable: true, vrrpState, configHash: 'sha256:aa', anchorIPv4: '10.20.0.5', privateIPv4: '10.10.0.11', ...extra });

function observed(states: (ObservedHost | undefined)[], holder: number | null = 101): Observed {
  return {
    droplets: states.map((_, i) =>
      ({ id: 101 + i, name: `web-${i}`, index: i, status: 'active', createdAt: now, publicIPv4: `203.0.113.${11 + i}` })),
    reservedIP: { ip: '198.51.100.10', dropletId: holder, locked: false },
    hosts: Object.fromEntries(states.flatMap((h, i) => (h ? [[`web-${i}`, h]] : []))),
  };
}

const hashes = { 'web-0': 'sha256:aa', 'web-1': 'sha256:aa' };
const cond = (s: ReturnType<typeof computeStatus>, type: string) => s.conditions!.find((c) => c.type === type)!;

describe('computeStatus', () => {
  it('a converged pair is Ready, names the holder, and counts ready nodes', () => {
    const s = computeStatus({ object: object(), observed: observed([host('MASTER'), host('BACKUP')]), desiredHashes: hashes, now });
    expect(cond(s, 'Ready')).toMatchObject({ status: 'True', observedGeneration: 3 });
    expect(cond(s, 'Degraded').status).toBe('False');
    expect(s).toMatchObject({ floatingIP: '198.51.100.10', activeNode: 'web-0', nodesReady: '2/2', observedGeneration: 3 });
    expect(s.nodes!.map((n) => n.vrrpState)).toEqual(['MASTER', 'BACKUP']);
  });

  it('counts the servers each node sees UP', () => {
    const s = computeStatus({
      object: object(),
      observed: observed([
        host('MASTER', { servers: { 'web/s1': 'UP', 'web/s2': 'UP 1/2' } }),
        host('BACKUP', { servers: { 'web/s1': 'UP', 'web/s2': 'DOWN' } }),
      ]),
      desiredHashes: hashes,
      now,
    });
    expect(s.nodes!.map((n) => n.serversUp)).toEqual(['2/2', '1/2']);
    expect(cond(s, 'Degraded').status).toBe('False');
  });

  type Row = [string, Observed, Record<string, string>, Record<string, [string, string]>];
  const rows: Row[] = [
    ['two MASTERs: split brain, degraded', observed([host('MASTER'), host('MASTER')]), hashes,
      { FailoverReady: ['False', 'SplitBrain'], Degraded: ['True', 'SplitBrain'], Ready: ['False', 'SplitBrain'] }],
    ['no MASTER', observed([host('BACKUP'), host('BACKUP')]), hashes,
      { FailoverReady: ['False', 'NoMaster'], Degraded: ['True', 'NoMaster'] }],
    ['a FAULT backup: traffic flows, degraded', observed([host('MASTER'), host('FAULT')]), hashes,
      { FailoverReady: ['False', 'NodeFault'], Degraded: ['True', 'NodeFault'], FloatingIPAssigned: ['True', 'Assigned'] }],
    ['the IP on a BACKUP while the other is MASTER', observed([host('BACKUP'), host('MASTER')], 101), hashes,
      { Degraded: ['True', 'HolderNotMaster'], FailoverReady: ['True', 'OneMaster'] }],
    ['a stale config hash', observed([host('MASTER'), host('BACKUP', { configHash: 'sha256:old' })]), hashes,
      { ConfigApplied: ['False', 'Applying'], Ready: ['False', 'Applying'] }],
    ['a failed validation on a host carries the daemon message',
      observed([host('MASTER', { applyError: "haproxy: [ALERT] parsing line 3" }), host('BACKUP')]), hashes,
      { ConfigApplied: ['False', 'ValidationFailed'] }],
    ['a changed host key refuses the host', observed([host('MASTER'), { reachable: false, hostKeyChanged: true }]), hashes,
      { ConfigApplied: ['False', 'HostKeyChanged'] }],
    ['an unreachable backup', observed([host('MASTER'), { reachable: false, error: 'connect ETIMEDOUT' }]), hashes,
      { ConfigApplied: ['False', 'HostUnreachable'], FailoverReady: ['Unknown', 'StateUnknown'], Degraded: ['True', 'NodeUnreachable'] }],
    ['a backend with no server UP on the MASTER: degraded',
      observed([host('MASTER', { servers: { 'web/s1': 'DOWN', 'web/s2': 'MAINT', 'api/a1': 'UP' } }), host('BACKUP')]), hashes,
      { Degraded: ['True', 'BackendDown'], Ready: ['True', 'Ready'] }],
    ['an unassigned reserved IP', observed([host('MASTER'), host('BACKUP')], null), hashes,
      { FloatingIPAssigned: ['False', 'Unassigned'] }],
    ['the IP on a droplet that is not ours', observed([host('MASTER'), host('BACKUP')], 999), hashes,
      { FloatingIPAssigned: ['False', 'AssignedElsewhere'] }],
    ['a missing droplet', { ...observed([host('MASTER')]), droplets: observed([host('MASTER')]).droplets }, hashes,
      { DropletsReady: ['False', 'Creating'], Ready: ['False', 'Creating'] }],
  ];
  it.each(rows)('%s', (_name, obs, desired, expected) => {
    const s = computeStatus({ object: object(), observed: obs, desiredHashes: desired, now });
    for (const [type, [status, reason]] of Object.entries(expected)) {
      expect([type, cond(s, type).status, cond(s, type).reason]).toEqual([type, status, reason]);
    }
  });

  it('records a failover when the holder changes, and keeps it afterwards', () => {
    const first = computeStatus({
      object: object(), observed: observed([host('MASTER'), host('BACKUP')], 101), desiredHashes: hashes, now,
    });
    const moved = computeStatus({
      object: { ...object(), status: first }, observed: observed([host('FAULT'), host('MASTER')], 102), desiredHashes: hashes, now: later,
    });
    expect(moved.activeNode).toBe('web-1');
    expect(moved.lastFailover).toEqual({ time: later, from: 'web-0', to: 'web-1', reason: 'Unplanned' });
    const again = computeStatus({
      object: { ...object(), status: moved }, observed: observed([host('BACKUP'), host('MASTER')], 102), desiredHashes: hashes,
      now: '2026-11-24T11:00:00Z',
    });
    expect(again.lastFailover).toEqual(moved.lastFailover);
  });

  it('an unchanged observation gives an unchanged status, so nothing is written', () => {
    const first = computeStatus({ object: object(), observed: observed([host('MASTER'), host('BACKUP')]), desiredHashes: hashes, now });
    const second = computeStatus({
      object: { ...object(), status: first }, observed: observed([host('MASTER'), host('BACKUP')]), desiredHashes: hashes, now: later,
    });
    expect(statusChanged(first, second)).toBe(false);
    const third = computeStatus({
      object: { ...object(), status: second }, observed: observed([host('BACKUP'), host('MASTER')]), desiredHashes: hashes, now: later,
    });
    expect(statusChanged(second, third)).toBe(true);
  });

  it('warns when SSH is open to all and when the nodes carry the operator token', () => {
    const s = computeStatus({
      object: object({ access: { sshSourceCIDRs: [] } }), observed: observed([host('MASTER'), host('BACKUP')]), desiredHashes: hashes, now,
    });
    expect(cond(s, 'SSHExposed')).toMatchObject({ status: 'True', reason: 'OpenToAll' });
    expect(cond(s, 'FailoverTokenShared')).toMatchObject({ status: 'True', reason: 'OperatorToken' });
  });

  const sshRows: [string, (ObservedHost | undefined)[], Record<string, string>, [string, string]][] = [
    ['restricted once every node has loaded the current firewall',
      [host('MASTER', { firewallLoaded: true }), host('BACKUP', { firewallLoaded: true })], hashes, ['False', 'Restricted']],
    ['not claimed while a node has no firewall loaded',
      [host('MASTER', { firewallLoaded: true }), host('BACKUP', { firewallLoaded: false })], hashes, ['Unknown', 'NotEnforcedYet']],
    ['not claimed while a node carries an older firewall',
      [host('MASTER', { firewallLoaded: true }), host('BACKUP', { firewallLoaded: true })], { ...hashes, 'web-1': 'sha256:new' },
      ['Unknown', 'NotEnforcedYet']],
    ['exposed when sshd takes passwords',
      [host('MASTER', { firewallLoaded: true, sshd: { passwordauthentication: 'yes' } }), host('BACKUP', { firewallLoaded: true })], hashes,
      ['True', 'PasswordLogin']],
  ];
  it.each(sshRows)('SSHExposed: %s', (_name, hosts, desired, [status, reason]) => {
    const s = computeStatus({ object: object(), observed: observed(hosts), desiredHashes: desired, now });
    expect(cond(s, 'SSHExposed')).toMatchObject({ status, reason });
  });

  it('refuses a firewall that leaves out the operator\'s address, naming it and the field', () => {
    const s = computeStatus({
      object: object(),
      observed: observed([host('MASTER', { operatorAddress: '10.254.0.1' }), host('BACKUP', { operatorAddress: '10.254.0.1' })]),
      desiredHashes: hashes,
      now,
    });
    expect(cond(s, 'ConfigApplied')).toMatchObject({ status: 'False', reason: 'WouldLockOut' });
    expect(cond(s, 'ConfigApplied').message).toContain('spec.access.sshSourceCIDRs (203.0.113.0/24) leaves out 10.254.0.1');
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'WouldLockOut' });
    const inside = computeStatus({
      object: object(),
      observed: observed([host('MASTER', { operatorAddress: '203.0.113.253' }), host('BACKUP', { operatorAddress: '203.0.113.253' })]),
      desiredHashes: hashes,
      now,
    });
    expect(cond(inside, 'ConfigApplied')).toMatchObject({ status: 'True' });
  });
});

describe('stalledStatus', () => {
  it('sets Ready=False and Stalled=True InvalidSpec naming the field, Reconciling=False, and keeps the rest of the status', () => {
    const o = object();
    o.status = { floatingIP: '198.51.100.10', activeNode: 'web-0' };
    const s = stalledStatus(o, [{ path: 'spec.frontends[0].defaultBackend', message: 'backend "x" is not defined' }], now, 'InvalidSpec');
    const message = 'spec.frontends[0].defaultBackend: backend "x" is not defined';
    expect(s.conditions).toEqual([
      { type: 'Ready', status: 'False', reason: 'InvalidSpec', message, observedGeneration: 3, lastTransitionTime: now },
      {
        type: 'Reconciling', status: 'False', reason: 'InvalidSpec', message: 'waiting for a person to act: see Stalled',
        observedGeneration: 3, lastTransitionTime: now,
      },
      { type: 'Stalled', status: 'True', reason: 'InvalidSpec', message, observedGeneration: 3, lastTransitionTime: now },
    ]);
    expect(s.activeNode).toBe('web-0');
  });
});
