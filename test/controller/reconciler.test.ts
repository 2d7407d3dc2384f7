// The reconciler between plan() and the end-to-end suite: one pass at a time, in-process,
// against the Kubernetes emulator, the DigitalOcean simulator and stand-in hosts (no root).
// Each row names what the pass must do (the Events it records, one per action; the
// DigitalOcean requests it sends) and what status it leaves.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HALoadBalancer } from '../../src/api/types.ts';
import { MOVING_REQUEUE_MS } from '../../src/controller/plan.ts';
import { basicObject, startHarness, type Harness, type PassRecord } from './harness.ts';

let h: Harness;
afterEach(async () => { await h?.close(); });

const condition = (object: HALoadBalancer | undefined, type: string) => object?.status?.conditions?.find((c) => c.type === type);
const ready = (object: HALoadBalancer | undefined) => condition(object, 'Ready')?.status === 'True';
const droplets = () => h.sim.state.dropletViews();
const reservedIPs = () => h.sim.state.listReservedIps() as { ip: string; droplet: { id: number } | null; locked: boolean }[];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Passes until one does something (records an Event) or fails. */
async function nextActing(name = 'web', max = 30): Promise<PassRecord> {
  for (let i = 0; i < max; i++) {
    const record = await h.pass(name);
    if (record.events.length || record.error) return record;
    await sleep(Math.min(record.result.requeueAfterMs ?? 50, 200));
  }
  throw new Error(`no pass acted in ${max} passes`);
}

async function createReady(name = 'web', spec: Record<string, unknown> = {}): Promise<HALoadBalancer> {
  await h.create(basicObject(name, spec));
  await h.passUntil(name, ready);
  return (await h.get(name))!;
}

describe('creation, step by step', () => {
  beforeEach(async () => { h = await startHarness(); });

  it('finalizer, droplets, reserved IP, config on the first node, then the others, then Ready: ' +
    'each step its own pass, none waiting', async () => {
    await h.create(basicObject());
    const first = await h.pass('web');
    expect(first).toMatchObject({ events: [], requests: [], result: { requeueAfterMs: 0 } });
    expect((await h.get('web'))!.metadata.finalizers).toEqual(['halb.dev/cleanup']);

    const create = await nextActing();
    expect(create.events).toEqual(['DropletCreated', 'DropletCreated']);
    expect(create.requests.filter((r) => r.startsWith('POST /v2/droplets '))).toHaveLength(2);
    let object = await h.get('web');
    // Status says what this pass found (no droplets yet), and that work is in progress.
    expect(condition(object, 'Ready')).toMatchObject({ status: 'False', reason: 'Creating' });
    expect(condition(object, 'Reconciling')).toMatchObject({ status: 'True' });
    expect(condition(object, 'Stalled')).toMatchObject({ status: 'False' });

    const reserve = await nextActing();
    expect(reserve.events).toEqual(['ReservedIPCreated']);
    // Reserved onto node 0 in one request; the pass does not wait for the action to finish.
    expect(reserve.requests.filter((r) => r.startsWith('POST'))).toEqual(['POST /v2/reserved_ips 202']);
    expect((await h.get('web'))!.status?.floatingIP).toBe(reservedIPs()[0]!.ip);

    const firstNode = await nextActing();
    expect(firstNode.eventDetails.map((e) => e.message)).toEqual([expect.stringMatching(/^applied config sha256:\S+ on web-0$/)]);
    expect(h.hosts.byName('web-0')!.vrrpState).toBe('MASTER');
    const secondNode = await nextActing();
    expect(secondNode.eventDetails.map((e) => e.message)).toEqual([expect.stringMatching(/on web-1$/)]);
    expect(h.hosts.byName('web-1')!.vrrpState).toBe('BACKUP');

    const records = await h.passUntil('web', ready);
    object = await h.get('web');
    expect(records.flatMap((r) => r.events)).toEqual([]);
    expect(object!.status).toMatchObject({ activeNode: 'web-0', nodesReady: '2/2', floatingIP: reservedIPs()[0]!.ip });
    expect(object!.status!.lastFailover).toBeUndefined(); // the first election moved nothing
    expect([condition(object, 'Reconciling')?.status, condition(object, 'Stalled')?.status]).toEqual(['False', 'False']);
    // A converged object: a pass changes nothing and writes no status.
    const rv = object!.metadata.resourceVersion;
    const idle = await h.pass('web');
    expect(idle.events).toEqual([]);
    expect(idle.requests.every((r) => r.startsWith('GET'))).toBe(true);
    expect(idle.result.requeueAfterMs).toBe(30_000);
    expect((await h.get('web'))!.metadata.resourceVersion).toBe(rv);
  });

  it('polls no DigitalOcean action: an assign in progress is a timed requeue across passes', async () => {
    h.sim.delays.reservedIpActionMs = 800;
    await h.create(basicObject());
    const records = await h.passUntil('web', ready);
    const all = records.flatMap((r) => r.requests);
    expect(all.filter((r) => r.includes('/v2/actions'))).toEqual([]);
    // Passes found the IP locked, went on with what else they could (the config), and came back soon after.
    expect(records.filter((r) => !r.error && r.result.requeueAfterMs === MOVING_REQUEUE_MS).length).toBeGreaterThan(0);
    // The assign took 800 ms; the object was Ready within a few passes of it.
    expect(records.length).toBeLessThan(12);
    expect(Math.max(...records.map((r) => r.requests.length))).toBeLessThan(10);
  });
});

describe('crash and restart in the middle of creation', () => {
  beforeEach(async () => { h = await startHarness(); });

  it('a new operator (no memory) after the droplets were created finds them: nothing twice', async () => {
    await h.create(basicObject());
    await h.pass('web'); // the finalizer
    expect((await nextActing()).events).toEqual(['DropletCreated', 'DropletCreated']);
    h.restart();
    await h.passUntil('web', ready);
    expect(droplets()).toHaveLength(2);
    expect(reservedIPs()).toHaveLength(1);
  });

  it('an answer lost after the reserved IP was made (the pass failed): the next pass waits for it, none is made twice', async () => {
    h.sim.faults.dropConnection = (r) => (r.method === 'POST' && r.route === '/v2/reserved_ips' ? 'after' : undefined);
    await h.create(basicObject());
    const records: PassRecord[] = [];
    for (let i = 0; i < 30 && !records.some((r) => r.error); i++) {
      records.push(await h.pass('web'));
      await sleep(50);
    }
    expect(records.at(-1)!.error).toBeDefined();
    h.sim.faults.dropConnection = undefined;
    h.restart();
    await h.passUntil('web', ready);
    expect(reservedIPs()).toHaveLength(1);
    expect(droplets()).toHaveLength(2);
  });
});

describe('changes', () => {
  beforeEach(async () => { h = await startHarness(); });

  it('an edit of the backends reloads every node and moves nothing else', async () => {
    const before = await createReady();
    await h.patch('web', { spec: { backends: [{ name: 'web', servers: [{ name: 's1', address: '10.10.0.21' }] }] } });
    const edit = await nextActing();
    expect(edit.events).toEqual(['ConfigApplied', 'ConfigApplied']);
    expect(edit.requests.filter((r) => !r.startsWith('GET'))).toEqual([]);
    const after = (await h.passUntil('web', ready)).length && await h.get('web');
    expect(after && after.status?.nodes?.map((n) => n.configHash)).not.toEqual(before.status?.nodes?.map((n) => n.configHash));
    expect(after && after.status?.activeNode).toBe('web-0');
  });

  it('count 2 → 3 adds a BACKUP; 3 → 2 removes it', async () => {
    await createReady();
    await h.patch('web', { spec: { droplets: { count: 3 } } });
    expect((await nextActing()).eventDetails.map((e) => e.message)).toEqual([expect.stringMatching(/^created droplet web-2 /)]);
    await h.passUntil('web', (o) => ready(o) && o?.status?.nodesReady === '3/3');
    expect(h.hosts.byName('web-2')!.vrrpState).toBe('BACKUP');
    await h.patch('web', { spec: { droplets: { count: 2 } } });
    const shrink = await nextActing();
    expect(shrink.eventDetails.map((e) => e.message))
      .toContainEqual(expect.stringMatching(/^deleted droplet web-2 \(id \d+\): ScaleDown$/));
    await h.passUntil('web', (o) => ready(o) && o?.status?.nodesReady === '2/2');
    expect(droplets().map((d) => d.name).sort()).toEqual(['web-0', 'web-1']);
  });

  it('a size change replaces the BACKUP first, then hands the MASTER over and replaces it: the IP follows keepalived', async () => {
    await createReady();
    await h.patch('web', { spec: { droplets: { size: 's-2vcpu-2gb' } } });
    const seen: string[] = [];
    await h.passUntil('web', (o) => {
      return ready(o) && droplets().length === 2 && droplets().every((d) => h.sim.state.getDroplet(d.id).size_slug === 's-2vcpu-2gb');
    }, 120).then((records) =>
      seen.push(...records.flatMap((r) => r.eventDetails.map((e) => `${e.reason} ${e.message.split(' ').slice(0, 3).join(' ')}`))));
    const order = seen.filter((e) => /^(DropletDeleted|MasterHandedOver)/.test(e));
    expect(order).toEqual([
      'DropletDeleted deleted droplet web-1', 'MasterHandedOver stopped keepalived on', 'DropletDeleted deleted droplet web-0',
    ]);
    expect((await h.get('web'))!.status?.activeNode).toBe('web-1');
  });
});

describe('deletion', () => {
  beforeEach(async () => { h = await startHarness(); });

  it.each([
    ['Retain', ['ReservedIPRetained', 'DropletDeleted', 'DropletDeleted'], 1],
    ['Delete', ['ReservedIPDeleted', 'DropletDeleted', 'DropletDeleted'], 0],
  ] as const)('reclaimPolicy %s', async (policy, events, ipsLeft) => {
    await createReady('web', { floatingIP: { reclaimPolicy: policy } });
    await h.delete('web');
    const records = await h.passUntil('web', (o) => o === undefined);
    expect(records.flatMap((r) => r.events)).toEqual(events);
    expect(droplets()).toEqual([]);
    expect(reservedIPs()).toHaveLength(ipsLeft);
    if (ipsLeft) expect(reservedIPs()[0]!.droplet).toBeNull();
  });
});

describe('DigitalOcean errors', () => {
  beforeEach(async () => { h = await startHarness(); });

  it('5xx on creating droplets fails the pass (retried by the queue), not the spec; nothing is made twice', async () => {
    h.sim.faults.errorStatus = 503;
    h.sim.faults.errorRate = { 'POST /v2/droplets': 1 };
    await h.create(basicObject());
    await h.pass('web');
    const failed = await h.pass('web');
    expect(failed.error).toMatchObject({ name: 'DigitalOceanTransientError', message: expect.stringMatching(/\(503\)/) });
    expect(condition(await h.get('web'), 'Stalled')?.status).not.toBe('True');
    h.sim.faults.errorRate = {};
    await h.passUntil('web', ready);
    expect(droplets()).toHaveLength(2);
  });

  it('429 with retry-after is waited out by the client and the pass goes on', async () => {
    h.sim.faults.errorStatus = 429;
    h.sim.faults.errorRate = { 'GET /v2/reserved_ips': 0.5 };
    await createReady();
    expect(h.ctx.cloud('dop_v1_harness').client.stats.rateLimited).toBeGreaterThan(0);
  });

  it('a 422 DigitalOcean will not accept (the droplet limit) is Stalled, CloudRequestRefused, looked at again in a minute', async () => {
    await h.close();
    h = await startHarness({ simulator: { dropletLimit: 1 } });
    await h.create(basicObject());
    await h.pass('web');
    const refused = await h.pass('web');
    expect(refused.result).toEqual({ stalled: true, requeueAfterMs: 60_000 });
    const object = await h.get('web');
    expect(condition(object, 'Stalled')).toMatchObject({
      status: 'True', reason: 'CloudRequestRefused', message: expect.stringMatching(/limit/),
    });
    expect(condition(object, 'Reconciling')?.status).toBe('False');
  });

  it('an SSH key the account lacks is CloudResourceNotFound, looked at again, and passes once it exists', async () => {
    await h.create(basicObject('web', { droplets: { sshKeys: ['3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa'] } }));
    const records = await h.passUntil('web', (o) => condition(o, 'Stalled')?.status === 'True');
    expect(records.at(-1)!.result).toEqual({ stalled: true, requeueAfterMs: 60_000 });
    expect(condition(await h.get('web'), 'Ready')).toMatchObject({
      reason: 'CloudResourceNotFound', message: expect.stringMatching(/^spec\.droplets\.sshKeys: /),
    });
  });
});

describe('cancellation', () => {
  beforeEach(async () => { h = await startHarness(); });

  it('losing the Lease mid-action aborts the pass within a second; the next leader finishes the job once', async () => {
    await h.create(basicObject());
    await h.pass('web'); // the finalizer
    h.sim.faults.latencyMs = { 'POST /v2/droplets': 3000 };
    const lease = new AbortController();
    const started = performance.now();
    const running = h.pass('web', lease.signal);
    await sleep(200);
    lease.abort(new Error('lost the lease'));
    const record = await running;
    expect(performance.now() - started).toBeLessThan(1200);
    expect(record.error).toMatchObject({ message: 'lost the lease' });
    h.sim.faults.latencyMs = {};
    h.restart();
    await sleep(3000); // the request the old leader sent may still land
    await h.passUntil('web', ready);
    expect(droplets()).toHaveLength(2);
  });

  it('an aborted pass stops talking to the hosts', async () => {
    await createReady();
    const before = [...h.hosts.hosts.values()].map((x) => x.configHash);
    h.hosts.latencyMs = 2000;
    await h.patch('web', { spec: { backends: [{ name: 'web', servers: [{ name: 's1', address: '10.10.0.21' }] }] } });
    const lease = new AbortController();
    const running = h.pass('web', lease.signal);
    await sleep(100);
    lease.abort(new Error('lost the lease'));
    const started = performance.now();
    expect((await running).error).toMatchObject({ message: 'lost the lease' });
    expect(performance.now() - started).toBeLessThan(500);
    expect([...h.hosts.hosts.values()].map((x) => x.configHash)).toEqual(before); // no node got the new files
  });
});

describe('grace periods carried in status, so a new leader continues them', () => {
  beforeEach(async () => { h = await startHarness({ settings: { backstopGraceMs: 10_000 } }); });

  it('the backstop moves the IP to the MASTER only after the grace, counted from status across a restart', async () => {
    await createReady();
    const ip = reservedIPs()[0]!.ip;
    // The failover script on the new MASTER "failed": keepalived moved, the IP did not.
    const master = h.hosts.byName('web-0')!;
    const backup = h.hosts.byName('web-1')!;
    master.vrrpState = 'BACKUP';
    backup.vrrpState = 'MASTER';
    const noticed = await h.pass('web');
    expect(noticed.events).toEqual([]);
    const since = (await h.get('web'))!.status?.graceStarted?.backstop;
    expect(since).toBeDefined();
    h.restart();
    h.clock.advance(5_000);
    expect((await h.pass('web')).events).toEqual([]);
    expect((await h.get('web'))!.status?.graceStarted?.backstop).toBe(since);
    h.clock.advance(5_100);
    const moved = await h.pass('web');
    expect(moved.eventDetails).toEqual([expect.objectContaining({ type: 'Warning', reason: 'ReservedIPReassigned' })]);
    await h.passUntil('web', (o) => o?.status?.activeNode === 'web-1' && !o.status.graceStarted);
    expect(h.sim.state.reservedIpHolder(ip)).toBe(backup.droplet.id);
  });
});
