// Day two through the whole reconciler, in-process (the emulator, the simulator and stand-in
// hosts that model keepalived's priority-offset file): a planned failover to the preferred
// node, refusals that move nothing, maintenance on the MASTER and on a BACKUP, a node in
// maintenance powered off and brought back, and colocated nodes replaced when opted in.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HALoadBalancer } from '../../src/api/types.ts';
import { basicObject, startHarness, type Harness, type PassRecord } from './harness.ts';

let h: Harness;
beforeEach(async () => { h = await startHarness(); });
afterEach(async () => { await h?.close(); });

const condition = (object: HALoadBalancer | undefined, type: string) => object?.status?.conditions?.find((c) => c.type === type);
const ready = (object: HALoadBalancer | undefined) => condition(object, 'Ready')?.status === 'True';
const annotate = (annotations: Record<string, string | null>) => h.patch('web', { metadata: { annotations } });
const offsetOf = (node: string) => h.hosts.byName(node)?.priorityOffset ?? 0;
const events = (records: PassRecord[]) => records.flatMap((r) => r.eventDetails);
const operatorAssigns = (records: PassRecord[]) => records.flatMap((r) => r.requests).filter((r) => r.startsWith('POST /v2/reserved_ips/'));

/** A Ready pair whose reserved IP sits on its MASTER. */
async function readyPair(spec: Record<string, unknown> = {}): Promise<{ master: string; backup: string }> {
  await h.create(basicObject('web', spec));
  const settled = await h.passUntil('web', (o) =>
    ready(o) && o?.status?.activeNode === o?.status?.nodes?.find((n) => n.vrrpState === 'MASTER')?.name);
  const object = settled.length && await h.get('web');
  const master = (object as HALoadBalancer).status!.activeNode!;
  return { master, backup: master === 'web-0' ? 'web-1' : 'web-0' };
}

describe('planned failover', () => {
  it('moves MASTER to the preferred node through keepalived: FailoverRequested, then FailoverObserved naming it planned', async () => {
    const { master, backup } = await readyPair();
    await annotate({ 'halb.dev/preferred-node': backup });
    const first = await h.pass('web');
    expect(first.events).toContain('FailoverRequested');
    expect(first.eventDetails.find((e) => e.reason === 'FailoverRequested')?.message)
      .toBe(`moving MASTER from ${master} to ${backup}: halb.dev/preferred-node names it`);
    // keepalived (the stand-in) moved MASTER when the old one's file said -254; the target's says +50.
    expect(h.hosts.byName(backup)!.vrrpState).toBe('MASTER');
    expect(offsetOf(backup)).toBe(50);
    let object = await h.get('web');
    expect(object?.status?.plannedFailover).toMatchObject({ from: master, to: backup, reason: 'PreferredNode' });
    expect(condition(object, 'Reconciling')).toMatchObject({ status: 'True', reason: 'FailoverRequested' });

    const rest = await h.passUntil('web', (o) =>
      o?.status?.activeNode === backup && o.status.plannedFailover === undefined && offsetOf(master) === 0);
    object = await h.get('web');
    expect(object?.status?.lastFailover).toMatchObject({ from: master, to: backup, reason: 'PreferredNode' });
    expect(events(rest).find((e) => e.reason === 'FailoverObserved')?.message)
      .toMatch(new RegExp(`moved from ${master} to ${backup} \\(planned: PreferredNode\\)$`));
    expect(h.hosts.byName(master)!.vrrpState).toBe('BACKUP');
    expect(condition(object, 'Reconciling')?.status).toBe('False');
    // keepalived's failover script moved the IP; the operator sent no assign of its own.
    expect(operatorAssigns([first, ...rest])).toEqual([]);
  });

  it('refuses a node that does not exist, one in maintenance, and one that is not a healthy BACKUP: ' +
    'nothing moves, status says why', async () => {
    const { master, backup } = await readyPair();
    const cases: [Record<string, string | null>, string][] = [
      [{ 'halb.dev/preferred-node': 'web-7' }, 'NodeNotFound'],
      [{ 'halb.dev/preferred-node': backup, [`maintenance.halb.dev/${backup}`]: 'disk check' }, 'NodeInMaintenance'],
    ];
    for (const [annotations, reason] of cases) {
      await annotate(annotations);
      const record = await h.pass('web');
      const object = await h.get('web');
      expect(condition(object, 'PlannedFailover')).toMatchObject({ status: 'False', reason });
      expect(record.eventDetails).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'FailoverRefused' }));
      expect(object?.status?.activeNode).toBe(master);
      expect(h.hosts.byName(master)!.vrrpState).toBe('MASTER');
      expect(offsetOf(master)).toBe(0);
    }
    // Not a healthy BACKUP: its HAProxy stopped.
    await annotate({ [`maintenance.halb.dev/${backup}`]: null });
    await h.pass('web');
    h.hosts.byName(backup)!.haproxyRunning = false;
    h.hosts.byName(backup)!.vrrpState = 'FAULT';
    await h.pass('web');
    expect(condition(await h.get('web'), 'PlannedFailover')).toMatchObject({ status: 'False', reason: 'NotHealthyBackup' });
    expect(h.hosts.byName(master)!.vrrpState).toBe('MASTER');
  });
});

describe('maintenance', () => {
  it('on the MASTER hands over first; on the BACKUP moves nothing', async () => {
    const { master, backup } = await readyPair();
    await annotate({ [`maintenance.halb.dev/${master}`]: 'kernel update' });
    const records = await h.passUntil('web', (o) => o?.status?.activeNode === backup && !o.status.plannedFailover);
    expect(events(records).map((e) => e.reason))
      .toEqual(expect.arrayContaining(['FailoverRequested', 'NodeInMaintenance', 'FailoverObserved']));
    const object = await h.get('web');
    expect(object?.status?.lastFailover).toMatchObject({ from: master, to: backup, reason: 'Maintenance' });
    expect(object?.status?.nodes?.find((n) => n.name === master)?.maintenance).toBe('in maintenance (kernel update)');
    expect(offsetOf(master)).toBe(-253);
    expect(h.hosts.byName(master)!.vrrpState).toBe('BACKUP');

    // Unmarked: it stays BACKUP (no failover back) at priority offset 0.
    await annotate({ [`maintenance.halb.dev/${master}`]: null });
    const unmarked = await h.passUntil('web', (o) => offsetOf(master) === 0 && condition(o, 'NodeInMaintenance') === undefined);
    expect(events(unmarked).map((e) => e.reason)).not.toContain('FailoverRequested');
    expect((await h.get('web'))?.status?.activeNode).toBe(backup);

    // On the BACKUP (the old MASTER now): its priority drops, nothing moves.
    await annotate({ [`maintenance.halb.dev/${master}`]: 'disk check' });
    const marked = await h.passUntil('web', () => offsetOf(master) === -253);
    await h.pass('web');
    expect(events(marked).map((e) => e.reason)).not.toContain('FailoverRequested');
    expect(condition(await h.get('web'), 'PlannedFailover')).toBeUndefined();
    expect((await h.get('web'))?.status?.activeNode).toBe(backup);
    expect(h.hosts.byName(backup)!.vrrpState).toBe('MASTER');
  });

  it('a node in maintenance powered off leaves the pair serving and Ready; ' +
    'unmarked, it is powered on and returns as BACKUP with no failover', async () => {
    const { master, backup } = await readyPair();
    await annotate({ [`maintenance.halb.dev/${backup}`]: 'reboot' });
    await h.passUntil('web', () => offsetOf(backup) === -253);
    const id = h.sim.state.dropletViews().find((d) => d.name === backup)!.id;
    h.sim.state.dropletAction(id, { type: 'power_off' });
    const away = await h.passUntil('web', (o) =>
      o?.status?.nodes?.find((n) => n.name === backup)?.vrrpState === 'UNKNOWN' && h.sim.state.dropletView(id)?.status === 'off');
    let object = await h.get('web');
    expect(ready(object)).toBe(true);
    expect(condition(object, 'Degraded')).toMatchObject({ status: 'False', reason: 'NodeInMaintenance' });
    expect(condition(object, 'NodeInMaintenance')).toMatchObject({ status: 'True', message: `${backup}: in maintenance (reboot)` });
    expect(events(away).map((e) => e.reason)).not.toContain('DropletDeleted');

    await annotate({ [`maintenance.halb.dev/${backup}`]: null });
    const back = await h.passUntil('web', (o) =>
      o?.status?.nodes?.find((n) => n.name === backup)?.vrrpState === 'BACKUP' &&
      condition(o, 'NodeInMaintenance') === undefined && offsetOf(backup) === 0);
    expect(events(back).map((e) => e.reason)).toContain('DropletPoweredOn');
    expect(events(back).map((e) => e.reason)).not.toContain('DropletDeleted');
    object = await h.get('web');
    expect(object?.status?.activeNode).toBe(master);
    expect(events(back).map((e) => e.reason)).not.toContain('FailoverObserved');
    expect(h.sim.state.dropletView(id)?.status).toBe('active');
  });

  it('never makes the load balancer unavailable: when the other node fails, the node in maintenance takes over', async () => {
    const { master, backup } = await readyPair();
    await annotate({ [`maintenance.halb.dev/${backup}`]: 'on' });
    await h.passUntil('web', () => offsetOf(backup) === -253);
    h.hosts.crash(master);
    const records = await h.passUntil('web', (o) => o?.status?.activeNode === backup);
    expect(h.hosts.byName(backup)!.vrrpState).toBe('MASTER');
    expect(condition(await h.get('web'), 'PlannedFailover')).toMatchObject({ status: 'False', reason: 'NoHealthyBackup' });
    // The operator did not ask it to leave: there is nowhere to go.
    expect(offsetOf(backup)).toBe(-253);
    expect(events(records).find((e) => e.reason === 'FailoverObserved')?.message).toMatch(/\(unplanned: keepalived moved MASTER\)$/);
  });
});

describe('nodes on one physical machine', () => {
  it('are reported as NodesColocated; with replaceColocated the BACKUP is replaced until they are apart, with no failover', async () => {
    const { master, backup } = await readyPair();
    const ids = h.sim.state.dropletViews().filter((d) => d.name.startsWith('web-')).map((d) => d.id);
    h.sim.state.placeOnOneHost(ids);
    h.clock.advance(10_000); // past the shared neighbours report's age
    const told = await h.passUntil('web', (o) => condition(o, 'NodesColocated') !== undefined);
    expect(condition(await h.get('web'), 'NodesColocated')).toMatchObject({
      status: 'True', reason: 'SharedHost', message: expect.stringMatching(/^web-0 and web-1 share a physical machine/),
    });
    expect(events(told)).toContainEqual(expect.objectContaining({ type: 'Warning', reason: 'NodesColocated' }));
    expect(events(told).map((e) => e.reason)).not.toContain('DropletDeleted');

    const object = (await h.get('web'))!;
    await h.patch('web', { spec: { droplets: { ...object.spec.droplets, replaceColocated: true } } });
    const replaced = await h.passUntil('web', (o) => ready(o) && condition(o, 'NodesColocated') === undefined);
    const deleted = events(replaced).filter((e) => e.reason === 'DropletDeleted');
    expect(deleted).toHaveLength(1);
    expect(deleted[0]!.message).toMatch(new RegExp(`^deleted droplet ${backup} \\(id \\d+\\): Colocated$`));
    expect((await h.get('web'))?.status?.activeNode).toBe(master);
    expect(h.sim.state.neighborIds()).toEqual([]);
  });
});
