// Day two in the planner, table-driven and pure: planned failovers through the priority-offset
// files (requested, under way, the IP moving, done, timed out and retried), refusals that move
// nothing, maintenance (handed over first, left alone, kept when off, powered on after), and
// colocated nodes.
import { describe, expect, it } from 'vitest';
import { validateHALoadBalancer } from '../../src/api/validate.ts';
import type { HALoadBalancer, HALoadBalancerStatus, PlannedFailover } from '../../src/api/types.ts';
import { HANDOVER_RETRY_MS, HANDOVER_TIMEOUT_MS } from '../../src/controller/handover.ts';
import type { HostVRRPState, Observed, ObservedHost } from '../../src/controller/observed.ts';
import { plan, type Action, type Plan } from '../../src/controller/plan.ts';
import { computeStatus } from '../../src/controller/status.ts';

const now = new Date('2026-11-24T10:00:00Z');
const ago = (ms: number) => new Date(now.getTime() - ms).toISOString();

function object(
  annotations: Record<string, string> = {}, droplets: Record<string, unknown> = {}, status?: HALoadBalancerStatus,
): HALoadBalancer {
  const o = validateHALoadBalancer({
    apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name: 'web', annotations },
    spec: {
      region: 'nyc3',
      credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'k' } },
      droplets,
      frontends: [{ name: 'www', port: 80, defaultBackend: 'web' }],
      backends: [{ name: 'web', servers: [{ name: 's1', address: '10.0.0.1' }] }],
    },
  }).object!;
  return status ? { ...o, status } : o;
}

/** A node: its VRRP state, the number in its priority-offset file, and anything else about it. */
type N = [state: HostVRRPState | 'off' | 'down', offset?: number, extra?: Partial<ObservedHost>];

/** Droplet ids are 1 + index; the IP is on `holder` (an index). */
function observed(nodes: N[], holder = 0, neighborGroups?: number[][]): Observed {
  return {
    droplets: nodes.map(([state], index) =>
      ({ id: index + 1, index, name: `web-${index}`, status: state === 'off' ? 'off' : 'active', createdAt: '' })),
    reservedIP: { ip: '198.51.100.10', dropletId: holder + 1, locked: false },
    hosts: Object.fromEntries(nodes.flatMap(([state, offset, extra], index): [string, ObservedHost][] => {
      if (state === 'off') return [];
      if (state === 'down') return [[`web-${index}`, { reachable: false, error: 'connect ECONNREFUSED' }]];
      return [[`web-${index}`, {
        reachable: true, vrrpState: state, configHash: 'h', keepalivedRunning: true, haproxyRunning: true, firewallLoaded: true,
        ...(offset === undefined ? {} : { priorityOffset: offset }), ...extra,
      }]];
    })),
    ...(neighborGroups ? { neighborGroups } : {}),
  };
}

const hashes = { 'web-0': 'h', 'web-1': 'h', 'web-2': 'h' };
const planFor = (o: HALoadBalancer, seen: Observed): Plan =>
  plan({ object: o, observed: seen, desiredHashes: hashes, now, backstopGraceMs: 30_000 });

const kinds = (actions: Action[]) => actions.map((a) => {
  switch (a.kind) {
    case 'SetPriorityOffset': return `offset ${a.node} ${a.offset}`;
    case 'PowerOnDroplet': return `power on ${a.node}`;
    case 'DeleteDroplet': return `delete ${a.node} ${a.reason}`;
    case 'CreateDroplet': return `create ${a.node}`;
    case 'ApplyConfig': return `apply ${a.node}`;
    case 'HandOverMaster': return `handover ${a.node}`;
    case 'AssignReservedIP': return `assign ${a.node} ${a.reason}`;
    default: return a.kind;
  }
});

const PREFER_1 = { 'halb.dev/preferred-node': 'web-1' };
const record = (extra: Partial<PlannedFailover> = {}): PlannedFailover =>
  ({ from: 'web-0', to: 'web-1', reason: 'PreferredNode', requested: ago(1000), ...extra });
const withRecord = (annotations: Record<string, string>, planned: PlannedFailover) => object(annotations, {}, { plannedFailover: planned });

describe('planned failover', () => {
  const rows: [string, HALoadBalancer, Observed, string[], { planned?: Partial<PlannedFailover> | 'none'; condition?: string }][] = [
    ['a preferred BACKUP: it is lifted first, then the MASTER is asked to leave',
      object(PREFER_1), observed([['MASTER'], ['BACKUP']]), ['offset web-1 50', 'offset web-0 -254'],
      {
        planned: { from: 'web-0', to: 'web-1', reason: 'PreferredNode', requested: now.toISOString() },
        condition: 'True FailoverRequested',
      }],
    ['under way (the MASTER is FAULT): nothing more to write, the record stays',
      withRecord(PREFER_1, record()), observed([['FAULT', -254], ['BACKUP', 50]]), [],
      { planned: record(), condition: 'True FailoverRequested' }],
    ['the target is MASTER, the IP not yet moved: the old MASTER drops to the lowest priority, eligible again',
      withRecord(PREFER_1, record()), observed([['FAULT', -254], ['MASTER', 50]]), ['offset web-0 -253'],
      { planned: record(), condition: 'True FailoverRequested' }],
    ['done once the target holds the IP: the old MASTER back to 0, the preferred node keeps its lift',
      withRecord(PREFER_1, record()), observed([['BACKUP', -253], ['MASTER', 50]], 1), ['offset web-0 0'],
      { planned: 'none' }],
    ['the preferred node already holds the IP: nothing moves',
      object(PREFER_1), observed([['BACKUP'], ['MASTER', 50]], 1), [], { planned: 'none' }],
    [`the target still BACKUP ${HANDOVER_TIMEOUT_MS / 1000} s later: priorities put back, timed out`,
      withRecord(PREFER_1, record({ requested: ago(HANDOVER_TIMEOUT_MS + 1000) })), observed([['FAULT', -254], ['BACKUP', 50]]),
      ['offset web-0 0', 'offset web-1 0'],
      { planned: { timedOut: now.toISOString() }, condition: 'False TimedOut' }],
    ['timed out a short while ago: no new attempt yet',
      withRecord(PREFER_1, record({ requested: ago(40_000), timedOut: ago(30_000) })), observed([['MASTER', 0], ['BACKUP', 0]]), [],
      { planned: { timedOut: ago(30_000) }, condition: 'False TimedOut' }],
    ['timed out long enough ago: asked again',
      withRecord(PREFER_1, record({ requested: ago(HANDOVER_RETRY_MS + 20_000), timedOut: ago(HANDOVER_RETRY_MS + 1) })),
      observed([['MASTER', 0], ['BACKUP', 0]]),
      ['offset web-1 50', 'offset web-0 -254'], { planned: { requested: now.toISOString() }, condition: 'True FailoverRequested' }],
    ['the preference removed before the target took over: the request ends, priorities put back',
      withRecord({}, record()), observed([['FAULT', -254], ['BACKUP', 50]]), ['offset web-0 0', 'offset web-1 0'], { planned: 'none' }],
    ['with three nodes the preferred one is lifted above the other BACKUP',
      object({ 'halb.dev/preferred-node': 'web-2' }, { count: 3 }), observed([['MASTER'], ['BACKUP'], ['BACKUP']]),
      ['offset web-2 50', 'offset web-0 -254'],
      { planned: { from: 'web-0', to: 'web-2' }, condition: 'True FailoverRequested' }],
  ];
  it.each(rows)('%s', (_name, o, seen, actions, want) => {
    const out = planFor(o, seen);
    expect(kinds(out.actions)).toEqual(actions);
    if (want.planned === 'none') expect(out.dayTwo.planned).toBeUndefined();
    else if (want.planned) expect(out.dayTwo.planned).toMatchObject(want.planned);
    const c = out.dayTwo.condition;
    expect(c ? `${c.status} ${c.reason}` : undefined).toEqual(want.condition);
  });
});

describe('refused requests move nothing and say why', () => {
  const rows: [string, HALoadBalancer, Observed, string[], string, RegExp][] = [
    ['a node that does not exist', object({ 'halb.dev/preferred-node': 'web-7' }), observed([['MASTER'], ['BACKUP']]), [],
      'NodeNotFound', /web-7, which is not a node of this load balancer \(web-0, web-1\)/],
    ['a node in maintenance', object({ ...PREFER_1, 'maintenance.halb.dev/web-1': 'disk check' }), observed([['MASTER'], ['BACKUP']]),
      ['offset web-1 -253'], 'NodeInMaintenance', /web-1, which is in maintenance \(disk check\)/],
    ['a node in FAULT', object(PREFER_1), observed([['MASTER'], ['FAULT']]), [],
      'NotHealthyBackup', /web-1, which is not a healthy BACKUP \(it is FAULT, not BACKUP\)/],
    // (Its config is tried whenever it answers again; the apply finds no session to it now.)
    ['a node that cannot be reached', object(PREFER_1), observed([['MASTER'], ['down']]), ['apply web-1'],
      'NotHealthyBackup', /not reachable \(connect ECONNREFUSED\)/],
    ['a BACKUP with a config not yet current', object(PREFER_1), observed([['MASTER'], ['BACKUP', 0, { configHash: 'old' }]]),
      ['apply web-1'], 'NotHealthyBackup', /config is not current/],
    ['a BACKUP whose HAProxy sees no server UP', object(PREFER_1),
      observed([['MASTER'], ['BACKUP', 0, { servers: { 'web/s1': 'DOWN' } }]]), [], 'NotHealthyBackup', /no backend server is UP/],
    ['the MASTER in maintenance, no healthy BACKUP: it stays MASTER at the lowest priority',
      object({ 'maintenance.halb.dev/web-0': 'x' }), observed([['MASTER'], ['FAULT']]), ['offset web-0 -253'],
      'NoHealthyBackup', /web-0 is in maintenance \(x\) but no other node is a healthy BACKUP/],
  ];
  it.each(rows)('%s', (_name, o, seen, actions, reason, message) => {
    const out = planFor(o, seen);
    expect(kinds(out.actions)).toEqual(actions);
    expect(out.dayTwo.planned).toBeUndefined();
    expect(out.dayTwo.condition).toMatchObject({
      type: 'PlannedFailover', status: 'False', reason, message: expect.stringMatching(message),
    });
  });
});

describe('maintenance', () => {
  it('on the MASTER: it hands over first, to the healthy BACKUP', () => {
    const out = planFor(object({ 'maintenance.halb.dev/web-0': 'kernel' }), observed([['MASTER'], ['BACKUP']]));
    expect(kinds(out.actions)).toEqual(['offset web-1 50', 'offset web-0 -254']);
    expect(out.dayTwo.planned).toMatchObject({ from: 'web-0', to: 'web-1', reason: 'Maintenance' });
    expect([...out.dayTwo.maintenance]).toEqual([['web-0', 'in maintenance (kernel)']]);
  });

  it('announced by DigitalOcean for the MASTER\'s droplet: handed over the same way', () => {
    const out = planFor(object(), observed([['MASTER', 0, { maintenanceEvent: 'live_migrate' }], ['BACKUP']]));
    expect(out.dayTwo.planned).toMatchObject({ from: 'web-0', to: 'web-1', reason: 'MaintenanceEvent' });
    expect(out.dayTwo.maintenance.get('web-0')).toBe('DigitalOcean announced maintenance: live_migrate');
  });

  it('on a BACKUP: only its priority drops, nothing moves', () => {
    const out = planFor(object({ 'maintenance.halb.dev/web-1': 'on' }), observed([['MASTER'], ['BACKUP']]));
    expect(kinds(out.actions)).toEqual(['offset web-1 -253']);
    expect(out.dayTwo.planned).toBeUndefined();
    expect(out.dayTwo.condition).toBeUndefined();
  });

  it('"false" and "off" are no maintenance', () => {
    expect(planFor(object({ 'maintenance.halb.dev/web-1': 'off' }), observed([['MASTER'], ['BACKUP']])).actions).toEqual([]);
    expect(planFor(object({ 'maintenance.halb.dev/web-1': 'false' }), observed([['MASTER'], ['BACKUP']])).actions).toEqual([]);
  });

  it('a node in maintenance powered off is kept, not replaced, and gets no config or repair', () => {
    const off = planFor(object({ 'maintenance.halb.dev/web-1': 'reboot' }), observed([['MASTER'], ['off']]));
    expect(kinds(off.actions)).toEqual([]);
    const stopped = planFor(object({ 'maintenance.halb.dev/web-1': 'patching' }),
      observed([['MASTER'], ['BACKUP', -253, { haproxyRunning: false, configHash: 'old' }]]));
    expect(kinds(stopped.actions)).toEqual([]);
    // Without the mark, the same droplet is dead and replaced.
    expect(kinds(planFor(object(), observed([['MASTER'], ['off']])).actions)).toEqual(['delete web-1 Dead', 'create web-1']);
  });

  it('unmarked while its droplet is off: powered on, not replaced; then it returns as BACKUP with no failover', () => {
    const previous: HALoadBalancerStatus = { nodes: [{ name: 'web-0' }, { name: 'web-1', maintenance: 'in maintenance (reboot)' }] };
    const off = planFor(object({}, {}, previous), observed([['MASTER'], ['off']]));
    expect(kinds(off.actions)).toEqual(['power on web-1']);
    expect(off.dayTwo.returning.get('web-1')).toBe('back from maintenance: powering on');
    expect(off.dayTwo.maintenance.has('web-1')).toBe(false);
    const back = planFor(object({}, {}, previous), observed([['MASTER'], ['BACKUP', -253]]));
    expect(kinds(back.actions)).toEqual(['offset web-1 0']);
    expect(back.dayTwo.planned).toBeUndefined();
  });

  it('a BACKUP in maintenance still counts as one that takes over: HAProxy dead on the MASTER is left to keepalived first', () => {
    const dead = observed([['MASTER', 0, { haproxyRunning: false }], ['BACKUP', -253]]);
    const out = planFor(object({ 'maintenance.halb.dev/web-1': 'x' }), dead);
    expect(kinds(out.actions)).toEqual([]);
    expect(out.masterHAProxyDownSince).toEqual(now);
  });

  it('no disruptive change starts while a node is in maintenance', () => {
    const drifted = observed([['MASTER'], ['BACKUP']]);
    drifted.droplets[1]!.size = 's-2vcpu-2gb';
    expect(kinds(planFor(object({}, { size: 's-1vcpu-1gb' }), drifted).actions)).toEqual(['delete web-1 Replace']);
    const inMaintenance = object({ 'maintenance.halb.dev/web-0': 'x' }, { size: 's-1vcpu-1gb' });
    expect(kinds(planFor(inMaintenance, { ...drifted, hosts: { ...drifted.hosts } }).actions)).not.toContain('delete web-1 Replace');
  });
});

describe('nodes on one physical machine', () => {
  it('are reported; with replaceColocated a BACKUP among them is replaced, one at a time, only when all is well', () => {
    const together = observed([['MASTER'], ['BACKUP']], 0, [[1, 2]]);
    const told = planFor(object(), together);
    expect(told.actions).toEqual([]);
    expect(told.dayTwo.colocated).toEqual([['web-0', 'web-1']]);
    expect(kinds(planFor(object({}, { replaceColocated: true }), together).actions)).toEqual(['delete web-1 Colocated']);
    // Never the MASTER, never while the pair is not settled.
    expect(kinds(planFor(object({}, { replaceColocated: true }), observed([['MASTER'], ['FAULT']], 0, [[1, 2]])).actions)).toEqual([]);
    expect(kinds(planFor(object({}, { replaceColocated: true, count: 3 }), observed([['MASTER'], ['BACKUP'], ['BACKUP']], 0, [[1, 3]]))
      .actions)).toEqual(['delete web-2 Colocated']);
    expect(kinds(planFor(object({ 'maintenance.halb.dev/web-1': 'x' }, { replaceColocated: true, count: 3 }),
      observed([['MASTER'], ['BACKUP', -253], ['BACKUP']], 0, [[1, 3]])).actions)).toEqual([]);
  });
});

describe('status of day two', () => {
  const statusOf = (o: HALoadBalancer, seen: Observed) =>
    computeStatus({ object: o, observed: seen, desiredHashes: hashes, now: now.toISOString(), dayTwo: planFor(o, seen).dayTwo });
  const condition = (s: HALoadBalancerStatus, type: string) => s.conditions?.find((c) => c.type === type);

  it('names a planned failover: Reconciling while it runs, lastFailover with its reason when the IP has moved', () => {
    const running = statusOf(object(PREFER_1, {}, { activeNode: 'web-0' }), observed([['MASTER'], ['BACKUP']]));
    expect(running.plannedFailover).toMatchObject({ from: 'web-0', to: 'web-1', reason: 'PreferredNode' });
    expect(condition(running, 'Reconciling')).toMatchObject({ status: 'True', reason: 'FailoverRequested' });
    expect(condition(running, 'Ready')?.status).toBe('True');
    const moving = statusOf(object(PREFER_1, {}, running), observed([['FAULT', -254], ['MASTER', 50]]));
    expect(condition(moving, 'Degraded')).toMatchObject({ status: 'False' });
    const done = statusOf(object(PREFER_1, {}, moving), observed([['BACKUP', -253], ['MASTER', 50]], 1));
    expect(done.plannedFailover).toBeUndefined();
    expect(done.lastFailover).toMatchObject({ from: 'web-0', to: 'web-1', reason: 'PreferredNode' });
    expect(condition(done, 'Reconciling')?.status).toBe('False');
    expect(condition(done, 'PlannedFailover')).toBeUndefined();
  });

  it('a node in maintenance that cannot be read degrades nothing beyond NodeInMaintenance', () => {
    const s = statusOf(object({ 'maintenance.halb.dev/web-1': 'reboot' }), observed([['MASTER'], ['down']]));
    expect(condition(s, 'Ready')?.status).toBe('True');
    expect(condition(s, 'Degraded')).toMatchObject({ status: 'False', reason: 'NodeInMaintenance' });
    expect(condition(s, 'FailoverReady')).toMatchObject({ status: 'True', reason: 'NodeInMaintenance' });
    expect(condition(s, 'NodeInMaintenance')).toMatchObject({ status: 'True', message: 'web-1: in maintenance (reboot)' });
    expect(s.nodes?.find((n) => n.name === 'web-1')?.maintenance).toBe('in maintenance (reboot)');
    // The same node down without the mark is a degradation.
    expect(condition(statusOf(object(), observed([['MASTER'], ['down']])), 'Degraded')?.status).toBe('True');
  });

  it('nodes sharing a machine show NodesColocated, naming them; the condition goes once they are apart', () => {
    const s = statusOf(object(), observed([['MASTER'], ['BACKUP']], 0, [[1, 2]]));
    expect(condition(s, 'NodesColocated')).toMatchObject({
      status: 'True', reason: 'SharedHost', message: expect.stringContaining('web-0 and web-1 share a physical machine'),
    });
    expect(condition(statusOf(object({}, {}, s), observed([['MASTER'], ['BACKUP']], 0, [])), 'NodesColocated')).toBeUndefined();
  });
});
