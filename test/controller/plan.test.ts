import { describe, expect, it } from 'vitest';
import { validateHALoadBalancer } from '../../src/api/validate.ts';
import type { HALoadBalancer } from '../../src/api/types.ts';
import type { HostVRRPState, Observed, ObservedDroplet } from '../../src/controller/observed.ts';
import {
  FAILOVER_UNDER_WAY_MS, MASTER_REPAIR_GRACE_MS, MOVING_REQUEUE_MS, PROGRESS_REQUEUE_MS, plan, type Action, type PlanInput,
} from '../../src/controller/plan.ts';

const now = new Date('2026-11-24T10:00:00Z');

function object(
  droplets: Record<string, unknown> = {}, floatingIP: Record<string, unknown> = {}, access: Record<string, unknown> = {},
): HALoadBalancer {
  return validateHALoadBalancer({
    apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name: 'web' },
    spec: {
      region: 'nyc3',
      credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'k' } },
      droplets, floatingIP, access,
      frontends: [{ name: 'www', port: 80, defaultBackend: 'web' }],
      backends: [{ name: 'web', servers: [{ name: 's1', address: '10.0.0.1' }] }],
    },
  }).object!;
}

type D = [id: number, index: number, status?: string, state?: HostVRRPState, extra?: Partial<ObservedDroplet>];
function observe(droplets: D[], holder: number | null | 'none' = 1, locked = false): Observed {
  return {
    droplets: droplets.map(([id, index, status = 'active', , extra]) =>
      ({ id, index, name: `web-${index}`, status, createdAt: '', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', ...extra })),
    ...(holder === 'none' ? {} : { reservedIP: { ip: '198.51.100.10', dropletId: holder, locked } }),
    hosts: Object.fromEntries(droplets.filter(([, , , state]) => state)
      .map(([, index, , state]) => [`web-${index}`, { reachable: true, vrrpState: state, configHash: 'h' }])),
  };
}

const input = (object_: HALoadBalancer, observed: Observed, extra: Partial<PlanInput> = {}): PlanInput =>
  ({ object: object_, observed, desiredHashes: { 'web-0': 'h', 'web-1': 'h', 'web-2': 'h' }, now, backstopGraceMs: 30_000, ...extra });

const kinds = (actions: Action[]) => actions.map((a) => {
  switch (a.kind) {
    case 'CreateDroplet': return `create ${a.node}`;
    case 'DeleteDroplet': return `delete ${a.dropletId} ${a.reason}`;
    case 'CreateReservedIP': return `reserve onto ${a.node}`;
    case 'AdoptReservedIP': return `adopt ${a.ip}`;
    case 'AssignReservedIP': return `assign ${a.node} ${a.reason}`;
    case 'ApplyConfig': return `apply ${a.node}`;
    case 'HandOverMaster': return `handover ${a.node}`;
  }
});

describe('plan', () => {
  const rows: [string, PlanInput, string[]][] = [
    ['nothing exists: create both droplets, wait for them before the IP', input(object(), observe([], 'none')),
      ['create web-0', 'create web-1']],
    ['a converged pair needs nothing', input(object(), observe([[1, 0, 'active', 'MASTER'], [2, 1, 'active', 'BACKUP']])), []],
    ['droplets active, no IP: reserve it onto node 0', input(object(), observe([[1, 0], [2, 1]], 'none')),
      ['reserve onto web-0', 'apply web-0', 'apply web-1']],
    ['an adopted address is adopted', input(object({}, { address: '198.51.100.77' }), observe([[1, 0], [2, 1]], 'none')),
      ['adopt 198.51.100.77', 'apply web-0', 'apply web-1']],
    ['an address being reserved in the region may be ours: none is made meanwhile',
      input(object(), { ...observe([[1, 0], [2, 1]], 'none'), reservedIPSettling: true }), ['apply web-0', 'apply web-1']],
    ['unassigned IP goes to the sole MASTER', input(object(), observe([[1, 0, 'active', 'BACKUP'], [2, 1, 'active', 'MASTER']], null)),
      ['assign web-1 FirstAssignment']],
    ['unassigned IP with no MASTER goes to node 0',
      input(object(), observe([[1, 0, 'active', 'BACKUP'], [2, 1, 'active', 'BACKUP']], null)), ['assign web-0 FirstAssignment']],
    ['a locked IP is left alone', input(object(), observe([[1, 0, 'active', 'BACKUP'], [2, 1, 'active', 'MASTER']], null, true)), []],
    ['the IP on the MASTER chosen by keepalived is never moved back',
      input(object(), observe([[1, 0, 'active', 'BACKUP'], [2, 1, 'active', 'MASTER']], 2)), []],
    ['a lost droplet is recreated', input(object(), observe([[1, 0, 'active', 'MASTER']])), ['create web-1']],
    ['a dead droplet is deleted; its replacement is created', input(object(), observe([[1, 0, 'active', 'MASTER'], [2, 1, 'off']])),
      ['delete 2 Dead', 'create web-1']],
    ['a duplicate for one index is deleted, keeping the IP holder',
      input(object(), observe([[1, 0, 'active', 'MASTER'], [3, 1, 'active', 'BACKUP'], [2, 1, 'active']], 3)), ['delete 2 Duplicate']],
    ['scale up adds a BACKUP', input(object({ count: 3 }), observe([[1, 0, 'active', 'MASTER'], [2, 1, 'active', 'BACKUP']])),
      ['create web-2']],
    ['scale down removes a BACKUP',
      input(object({ count: 2 }), observe([[1, 0, 'active', 'MASTER'], [2, 1, 'active', 'BACKUP'], [3, 2, 'active', 'BACKUP']])),
      ['delete 3 ScaleDown']],
    ['scale down hands over first when the leaving node is MASTER',
      input(object({ count: 2 }), observe([[1, 0, 'active', 'BACKUP'], [2, 1, 'active', 'BACKUP'], [3, 2, 'active', 'MASTER']], 3)),
      ['handover web-2']],
    ['a size change replaces a BACKUP first',
      input(object({ size: 's-2vcpu-2gb' }), observe([[1, 0, 'active', 'MASTER'], [2, 1, 'active', 'BACKUP']])), ['delete 2 Replace']],
    ['then hands over the MASTER',
      input(object({ size: 's-2vcpu-2gb' }), observe([[1, 0, 'active', 'MASTER'], [2, 1, 'active', 'BACKUP', { size: 's-2vcpu-2gb' }]])),
      ['handover web-0']],
    ['and replaces the old MASTER once it is BACKUP',
      input(object({ size: 's-2vcpu-2gb' }), observe([[1, 0, 'active', 'BACKUP'], [2, 1, 'active', 'MASTER', { size: 's-2vcpu-2gb' }]], 2)),
      ['delete 1 Replace']],
    ['an image named by id is not drift', input(object({ image: '12345' }), observe([
      [1, 0, 'active', 'MASTER', { image: 'ubuntu-24-04-x64', imageId: '12345' }],
      [2, 1, 'active', 'BACKUP', { image: 'ubuntu-24-04-x64', imageId: '12345' }],
    ])), []],
    ['an image change replaces a BACKUP first',
      input(object({ image: 'ubuntu-26-04-x64' }), observe([[1, 0, 'active', 'MASTER'], [2, 1, 'active', 'BACKUP']])),
      ['delete 2 Replace']],
    ['no replacement while the pair is unhealthy',
      input(object({ size: 's-2vcpu-2gb' }), observe([[1, 0, 'active', 'MASTER'], [2, 1, 'active', 'FAULT']])), []],
    ['a handed-over MASTER is replaced once the other node leads',
      input(object({ size: 's-2vcpu-2gb' }), observe([[1, 0, 'active', 'STOP'], [2, 1, 'active', 'MASTER', { size: 's-2vcpu-2gb' }]], 2)),
      ['delete 1 Replace']],
    ['stopped daemons on a staying node are restarted', input(object(), {
      ...observe([[1, 0, 'active', 'MASTER'], [2, 1, 'active', 'BACKUP']]),
      hosts: {
        'web-0': { reachable: true, vrrpState: 'MASTER', configHash: 'h', haproxyRunning: true, keepalivedRunning: true },
        'web-1': { reachable: true, vrrpState: 'FAULT', configHash: 'h', haproxyRunning: false, keepalivedRunning: true },
      },
    }), ['apply web-1']],
    ['a new node starts only after the running nodes carry its address', input(object({ count: 3 }), {
      ...observe([[1, 0], [2, 1], [3, 2]]),
      hosts: {
        'web-0': { reachable: true, vrrpState: 'MASTER', configHash: 'old', keepalivedRunning: true },
        'web-1': { reachable: true, vrrpState: 'BACKUP', configHash: 'old', keepalivedRunning: true },
        'web-2': { reachable: true },
      },
    }), ['apply web-0', 'apply web-1']],
    ['then it starts', input(object({ count: 3 }), {
      ...observe([[1, 0], [2, 1], [3, 2]]),
      hosts: {
        'web-0': { reachable: true, vrrpState: 'MASTER', configHash: 'h', keepalivedRunning: true },
        'web-1': { reachable: true, vrrpState: 'BACKUP', configHash: 'h', keepalivedRunning: true },
        'web-2': { reachable: true },
      },
    }), ['apply web-2']],
    ['at creation one node starts first, the one the reserved IP is on', input(object(), {
      ...observe([[1, 0], [2, 1]], 1),
      hosts: { 'web-0': { reachable: true }, 'web-1': { reachable: true } },
    }), ['apply web-0']],
    ['the node holding the reserved IP starts first even when it is not node 0', input(object(), {
      ...observe([[1, 0], [2, 1]], 2),
      hosts: { 'web-0': { reachable: true }, 'web-1': { reachable: true } },
    }), ['apply web-1']],
    ['with no reserved IP yet, node 0 starts first', input(object(), {
      ...observe([[1, 0], [2, 1], [3, 2]], 'none'),
      hosts: { 'web-0': { reachable: true }, 'web-1': { reachable: true }, 'web-2': { reachable: true } },
    }, { object: object({ count: 3 }) }), ['reserve onto web-0', 'apply web-0']],
    ['once the first runs keepalived with the current config, the others start', input(object(), {
      ...observe([[1, 0], [2, 1]], 1),
      hosts: { 'web-0': { reachable: true, configHash: 'h', keepalivedRunning: true, haproxyRunning: true }, 'web-1': { reachable: true } },
    }), ['apply web-1']],
    ['an unreachable peer does not hold a new node back', input(object(), {
      ...observe([[1, 0], [2, 1]]),
      hosts: { 'web-0': { reachable: false }, 'web-1': { reachable: true } },
    }), ['apply web-0', 'apply web-1']],
    ['a firewall that would lock the operator out is never applied', input(object(), {
      ...observe([[1, 0, 'active', 'MASTER'], [2, 1, 'active', 'BACKUP']]),
      hosts: {
        'web-0': { reachable: true, vrrpState: 'MASTER', configHash: 'old', keepalivedRunning: true, operatorAddress: '10.254.0.1' },
        'web-1': { reachable: true, vrrpState: 'BACKUP', configHash: 'old', keepalivedRunning: true, operatorAddress: '203.0.113.253' },
      },
    }, { object: object({}, {}, { sshSourceCIDRs: ['203.0.113.0/24'] }) }), ['apply web-1']],
    ['a flushed firewall is reloaded', input(object(), {
      ...observe([[1, 0, 'active', 'MASTER'], [2, 1, 'active', 'BACKUP']]),
      hosts: {
        'web-0': {
          reachable: true, vrrpState: 'MASTER', configHash: 'h', keepalivedRunning: true, haproxyRunning: true, firewallLoaded: false,
        },
        'web-1': {
          reachable: true, vrrpState: 'BACKUP', configHash: 'h', keepalivedRunning: true, haproxyRunning: true, firewallLoaded: true,
        },
      },
    }), ['apply web-0']],
    ['a stale config is applied', input(object(), observe([[1, 0, 'active', 'MASTER'], [2, 1, 'active', 'BACKUP']]), {
      desiredHashes: { 'web-0': 'h', 'web-1': 'new' },
    }), ['apply web-1']],
  ];
  it.each(rows)('%s', (_name, planInput, expected) => {
    expect(kinds(plan(planInput).actions)).toEqual(expected);
  });

  it('gives keepalived time to fail over before restarting HAProxy on the MASTER, then restarts it', () => {
    const dead = {
      ...observe([[1, 0, 'active', 'MASTER'], [2, 1, 'active', 'BACKUP']]),
      hosts: {
        'web-0': { reachable: true, vrrpState: 'MASTER' as const, configHash: 'h', keepalivedRunning: true, haproxyRunning: false },
        'web-1': { reachable: true, vrrpState: 'BACKUP' as const, configHash: 'h', keepalivedRunning: true, haproxyRunning: true },
      },
    };
    const first = plan(input(object(), dead));
    expect(kinds(first.actions)).toEqual([]);
    expect(first.masterHAProxyDownSince).toEqual(now);
    expect(first.requeueAfterMs).toBe(MASTER_REPAIR_GRACE_MS);
    const later = new Date(now.getTime() + MASTER_REPAIR_GRACE_MS);
    expect(kinds(plan(input(object(), dead, { now: later, masterHAProxyDownSince: now })).actions)).toEqual(['apply web-0']);
    // Once keepalived has acted (the node is FAULT), HAProxy is restarted at once.
    const failed = { ...dead, hosts: { ...dead.hosts, 'web-0': { ...dead.hosts['web-0'], vrrpState: 'FAULT' as const } } };
    expect(kinds(plan(input(object(), failed)).actions)).toEqual(['apply web-0']);
  });

  // HAProxy died on web-0, keepalived made it FAULT and web-1 MASTER; the IP is on `holder`
  // (droplet 1 is web-0, 2 is web-1); status still names `activeNode`.
  const afterHAProxyDied = (holder: number) => ({
    ...observe([[1, 0, 'active', 'FAULT'], [2, 1, 'active', 'MASTER']], holder),
    hosts: {
      'web-0': { reachable: true, vrrpState: 'FAULT' as const, configHash: 'h', keepalivedRunning: true, haproxyRunning: false },
      'web-1': { reachable: true, vrrpState: 'MASTER' as const, configHash: 'h', keepalivedRunning: true, haproxyRunning: true },
    },
  });
  const reporting = (activeNode: string) => ({ ...object(), status: { activeNode } }) as HALoadBalancer;

  it('after keepalived moved the IP, reports the new holder before repairing the old MASTER, then repairs it', () => {
    const first = plan(input(reporting('web-0'), afterHAProxyDied(2)));
    expect(kinds(first.actions)).toEqual([]);
    expect(first.requeueAfterMs).toBeLessThanOrEqual(10);
    // Status written (activeNode web-1): the repair runs.
    expect(kinds(plan(input(reporting('web-1'), afterHAProxyDied(2))).actions)).toEqual(['apply web-0']);
  });

  it('while the failover script moves the IP, repairs wait (2 s at most) so status follows first', () => {
    const first = plan(input(reporting('web-0'), afterHAProxyDied(1)));
    expect(kinds(first.actions)).toEqual([]);
    expect(first.requeueAfterMs).toBe(MOVING_REQUEUE_MS);
    const later = plan(input(reporting('web-0'), afterHAProxyDied(1), { backstopSince: new Date(now.getTime() - FAILOVER_UNDER_WAY_MS) }));
    expect(kinds(later.actions)).toEqual(['apply web-0']);
  });

  it('asks to look again while something is in progress, and not when converged', () => {
    expect(plan(input(object(), observe([], 'none'))).requeueAfterMs).toBe(PROGRESS_REQUEUE_MS);
    expect(plan(input(object(), observe([[1, 0, 'new'], [2, 1, 'new']], 'none'))).requeueAfterMs).toBe(PROGRESS_REQUEUE_MS);
    expect(plan(input(object(), observe([[1, 0, 'active', 'MASTER'], [2, 1, 'active', 'BACKUP']]))).requeueAfterMs).toBeUndefined();
  });

  describe('backstop', () => {
    const stuck = observe([[1, 0, 'active', 'BACKUP'], [2, 1, 'active', 'MASTER']], 1);
    it('waits out the grace period first, looking every 250 ms while the script is usually moving the IP, then every second', () => {
      const p = plan(input(object(), stuck));
      expect(p.actions).toEqual([]);
      expect(p.backstopSince).toEqual(now);
      expect(p.requeueAfterMs).toBe(MOVING_REQUEUE_MS);
      const after = plan(input(object(), stuck, { backstopSince: new Date(now.getTime() - FAILOVER_UNDER_WAY_MS) }));
      expect(after.requeueAfterMs).toBe(PROGRESS_REQUEUE_MS);
      const late = plan(input(object(), stuck, { backstopSince: new Date(now.getTime() - 29_700) }));
      expect(late.requeueAfterMs).toBe(300);
    });
    it('moves the IP to the MASTER once the grace period has passed', () => {
      const p = plan(input(object(), stuck, { backstopSince: new Date(now.getTime() - 31_000) }));
      expect(kinds(p.actions)).toEqual(['assign web-1 Backstop']);
      expect(p.backstopSince).toBeUndefined();
    });
    it('forgets the mismatch once the IP is on the MASTER again', () => {
      const p = plan(input(object(), observe([[1, 0, 'active', 'BACKUP'], [2, 1, 'active', 'MASTER']], 2), {
        backstopSince: new Date(now.getTime() - 10_000),
      }));
      expect(p.backstopSince).toBeUndefined();
    });
    it('does nothing when no node is MASTER (keepalived has not decided), but looks again within a second', () => {
      for (const holderState of ['BACKUP', 'FAULT'] as const) {
        const p = plan(input(object(), observe([[1, 0, 'active', holderState], [2, 1, 'active', 'BACKUP']], 1)));
        expect(p.actions, holderState).toEqual([]);
        expect(p.backstopSince, holderState).toBeUndefined();
        expect(p.requeueAfterMs, holderState).toBe(PROGRESS_REQUEUE_MS);
      }
    });
  });
});
