// The provider, through the unmodified dots-wrapper, against the simulator over real HTTP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalOceanError } from '../../src/digitalocean/errors.ts';
import { COMMON_TAG, nodeTag, uidTag } from '../../src/digitalocean/naming.ts';
import type { DigitalOceanSimulator } from '../../src/sandbox/digitalocean/simulator.ts';
import { RollingRateLimiter } from '../../src/sandbox/digitalocean/ratelimit.ts';
import { providerFor, sshPublicKey, startSimulator } from './helpers.ts';

const spec = (uid: string, objectName = 'web') => ({
  uid,
  objectName,
  count: 2,
  region: 'nyc3',
  size: 's-1vcpu-1gb',
  image: 'ubuntu-24-04-x64',
  sshKeys: [],
});

describe('pagination', () => {
  let sim: DigitalOceanSimulator;
  beforeAll(async () => {
    // Data only: the simulator never sends packets, and 450 droplets need more than a /24.
    sim = await startSimulator({ addressing: { publicCidr: '10.200.0.0/16' } });
    for (let i = 0; i < 225; i++) {
      for (let n = 0; n < 2; n++) sim.state.seedDroplet({ name: `lb${i}-${n}`, tags: [COMMON_TAG, uidTag(`uid-${i}`), nodeTag(n)] });
    }
    for (let i = 0; i < 30; i++) sim.state.seedDroplet({ name: `other-${i}`, tags: ['web'] });
  });
  afterAll(() => sim.close());

  it('lists 450 droplets by tag over three pages of 200, following links.pages.next', async () => {
    const provider = providerFor(sim);
    const before = sim.responses.length;
    const inventory = await provider.observe();
    const lists = sim.responses.slice(before).filter((r) => r.route === '/v2/droplets');
    expect(lists.map((r) => new URL(r.path, 'http://x').searchParams.get('page'))).toEqual(['1', '2', '3']);
    expect(lists.every((r) => r.path.includes('per_page=200') && r.path.includes('tag_name=halb'))).toBe(true);
    const nodes = [...inventory.nodesByUid.values()].flat();
    expect(nodes).toHaveLength(450);
    expect(new Set(nodes.map((n) => n.id)).size).toBe(450);
    expect(inventory.nodesByUid.size).toBe(225);
    expect(inventory.nodesByUid.get('uid-7')!.map((n) => n.name)).toEqual(['lb7-0', 'lb7-1']);
    expect(provider.client.stats.requests).toBe(4); // 3 droplet pages + 1 reserved-IP page
  });
});

describe('rate limits', () => {
  let sim: DigitalOceanSimulator;
  const windows = [
    { limit: 40, windowMs: 2000 },
    { limit: 12, windowMs: 500 },
  ];
  beforeAll(async () => {
    sim = await startSimulator({ rateLimits: windows });
  });
  afterAll(() => sim.close());

  const burn = async () => {
    // Someone else on the same token has used up the burst window: the storm starts at once.
    for (let i = 0; i < 12; i++) await fetch(`${sim.endpoint}/account`, { headers: { authorization: 'Bearer dop_v1_test' } });
  };
  const check = (since: number) => {
    const accepted = sim.responses.filter((r) => r.status !== 429).map((r) => r.at);
    for (const w of windows) expect(RollingRateLimiter.maxInAnyWindow(accepted, w.windowMs)).toBeLessThanOrEqual(w.limit);
    return sim.responses.slice(since).filter((r) => r.status === 429).length;
  };

  it('rides out a 429 storm: converges, and never exceeds the window', async () => {
    await burn();
    const since = sim.responses.length;
    const provider = providerFor(sim, { burstLimit: windows[1]! });
    const results = await Promise.all(Array.from({ length: 36 }, () => provider.client.dots.account.getAccount().then((r) => r.status)));
    expect(results).toEqual(Array(36).fill(200));
    const rejected = check(since);
    expect(provider.client.stats.rateLimited).toBe(rejected);
    // Until it has seen the budget the pacer sends one probe at a time; after the 429 it waits
    // out retry-after, keeps under the burst window itself and paces the hourly one from the
    // headers: the storm is one refusal long.
    expect(rejected).toBeGreaterThan(0);
    expect(rejected).toBeLessThanOrEqual(6); // the probe, plus slack for a loaded machine
  });

  it('converges even without knowing the burst limit, on retry-after alone', async () => {
    await new Promise((r) => setTimeout(r, 2100)); // let the windows empty
    await burn();
    const since = sim.responses.length;
    const provider = providerFor(sim, { burstLimit: null, maxAttempts: 12 });
    const results = await Promise.all(Array.from({ length: 24 }, () => provider.client.dots.account.getAccount().then((r) => r.status)));
    expect(results).toEqual(Array(24).fill(200));
    const rejected = check(since);
    expect(rejected).toBe(provider.client.stats.rateLimited);
    expect(rejected).toBeGreaterThan(0);
  });
});

describe('idempotent creation', () => {
  let sim: DigitalOceanSimulator;
  let crashToken = '';
  let crashAt = 0;
  let crashMode: 'before' | 'after' = 'before';
  let seen = 0;
  beforeAll(async () => {
    sim = await startSimulator({
      reservedIpLimit: 1000,
      faults: {
        // The "operator" using crashToken dies at its crashAt-th request: that request is lost
        // before or after it takes effect, and nothing it sends afterwards arrives.
        dropConnection: ({ token }) => {
          if (token !== crashToken) return undefined;
          seen += 1;
          if (seen === crashAt) return crashMode;
          return seen > crashAt ? 'before' : undefined;
        },
      },
    });
  });
  afterAll(() => sim.close());

  it('creation interrupted at every step and re-run: zero duplicates', async () => {
    // A clean run, to count its steps.
    const clean = providerFor(sim, { token: 'dop_v1_clean' });
    const first = await clean.ensureInfrastructure(spec('clean'));
    expect(first.nodes.map((n) => n.name)).toEqual(['web-0', 'web-1']);
    const steps = clean.client.stats.requests;
    expect(steps).toBeGreaterThanOrEqual(6);

    let run = 0;
    for (let step = 1; step <= steps; step++) {
      for (const mode of ['before', 'after'] as const) {
        run += 1;
        const uid = `crash-${step}-${mode}`;
        crashToken = `dop_v1_crash_${run}`;
        crashAt = step;
        crashMode = mode;
        seen = 0;
        const crashing = providerFor(sim, { token: crashToken, maxAttempts: 2 });
        const outcome = await crashing.ensureInfrastructure(spec(uid)).then(
          () => 'finished',
          (err: unknown) => err,
        );
        // Polling counts vary with timing: a run that needed fewer requests than `step` finished.
        if (seen >= crashAt) expect(outcome, `step ${step} ${mode}`).toBeInstanceOf(DigitalOceanError);
        else expect(outcome).toBe('finished');
        // The operator restarts and resyncs.
        const restarted = providerFor(sim, { token: `dop_v1_restart_${run}` });
        const result = await restarted.ensureInfrastructure(spec(uid));
        const droplets = sim.state.dropletViews().filter((d) => d.tags.includes(uidTag(uid)));
        expect(droplets.map((d) => d.name).sort(), `step ${step} ${mode}`).toEqual(['web-0', 'web-1']);
        const ids = new Set(droplets.map((d) => d.id));
        const held = sim.state.listReservedIps().filter((r) => ids.has((r.droplet as { id: number } | null)?.id ?? -1));
        expect(held, `step ${step} ${mode}`).toHaveLength(1);
        expect(result.reservedIp.ip).toBe((held[0] as { ip: string }).ip);
      }
    }
    // No reserved IP was left behind unassigned: one per object, each on its droplets.
    const unassigned = sim.state.listReservedIps().filter((r) => r.droplet === null);
    expect(unassigned).toEqual([]);
    expect(sim.state.listReservedIps()).toHaveLength(run + 1);
  }, 120_000);
});

describe('droplet creation', () => {
  let sim: DigitalOceanSimulator;
  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(() => sim.close());

  it('creates each node with owner and index tags, cloud-init user_data, the VPC and the SSH keys', async () => {
    const provider = providerFor(sim);
    const key = await provider.ensureSshKey(sshPublicKey(3), 'halb-operator');
    const vpc = '0d3f8a2e-8c1b-4b7e-9a51-3e2f6c7d8e9f';
    const result = await provider.ensureInfrastructure({
      ...spec('6a1f0c3e-0d6b-4b8e-9d2c-1f2e3d4c5b6a', 'edge'), vpcUUID: vpc, sshKeys: [key], extraTags: ['env:prod'],
    });
    expect(result.created).toHaveLength(2);
    const views = result.nodes.map((n) => sim.state.dropletView(n.id)!);
    expect(views.map((v) => v.name)).toEqual(['edge-0', 'edge-1']);
    expect(views[1]!.tags).toEqual(['halb', 'halb-uid-6a1f0c3e-0d6b-4b8e-9d2c-1f2e3d4c5b6a', 'halb-node-1', 'env:prod']);
    for (const v of views) {
      expect(v.vpcUuid).toBe(vpc);
      expect(v.sshPublicKeys).toEqual([sshPublicKey(3)]);
      expect(v.userData).toMatch(/^#cloud-config\n/);
      expect(v.userData).toContain('haproxy');
    }
    expect(result.nodes.every((n) => n.status === 'active' && n.privateIPv4 && n.publicIPv4)).toBe(true);
    expect(sim.state.reservedIpHolder(result.reservedIp.ip)).toBe(result.nodes[0]!.id);
    // A second run changes nothing.
    const again = await provider.ensureInfrastructure({
      ...spec('6a1f0c3e-0d6b-4b8e-9d2c-1f2e3d4c5b6a', 'edge'), vpcUUID: vpc, sshKeys: [key],
    });
    expect(again.created).toEqual([]);
    expect(again.reservedIp.ip).toBe(result.reservedIp.ip);
    // Bad input is named.
    await expect(provider.ensureDroplets({ ...spec('u2'), vpcUUID: 'not-a-uuid', userData: () => '' }))
      .rejects.toThrow(/vpc_uuid "not-a-uuid" is not a valid VPC UUID/);
  });
});

describe('reserved IPs', () => {
  let sim: DigitalOceanSimulator;
  beforeAll(async () => {
    // The first assign must still be running when the second is asked for, even on a busy machine.
    sim = await startSimulator({ delays: { dropletActiveMs: 10, reservedIpActionMs: 800, dropletActionMs: 10 } });
  });
  afterAll(() => sim.close());

  it('retries an assign while the IP is locked, and counts "already there" as success', async () => {
    const a = sim.state.seedDroplet({ name: 'a', tags: ['x'] });
    const b = sim.state.seedDroplet({ name: 'b', tags: ['x'] });
    const provider = providerFor(sim);
    const created = await provider.client.http.post('/reserved_ips', { region: 'nyc3' });
    const ip = (created.data as { reserved_ip: { ip: string } }).reserved_ip.ip;
    // Start an assign to a and, while it runs (the IP is locked), ask for b.
    await provider.client.http.post(`/reserved_ips/${ip}/actions`, { type: 'assign', droplet_id: a.id });
    expect((await provider.getReservedIp(ip))!.locked).toBe(true);
    const before = sim.responses.length;
    await expect(provider.assignReservedIp(ip, b.id)).resolves.toEqual({ changed: true });
    const pending = sim.responses.slice(before).filter((r) => r.status === 422 && JSON.stringify(r.body).includes('pending event'));
    expect(pending.length).toBeGreaterThan(0);
    expect(sim.state.reservedIpHolder(ip)).toBe(b.id);
    expect(await provider.getReservedIp(ip)).toMatchObject({ ip, dropletId: b.id, locked: false });
    // DigitalOcean rejects an assign to the droplet that already holds the IP: that is success.
    await expect(provider.assignReservedIp(ip, b.id)).resolves.toEqual({ changed: false });
    // The reserved IP shows up as a second public address of its droplet, not as its own.
    const inventory = await provider.observe();
    expect(inventory.reservedIpByDroplet.get(b.id)?.ip).toBe(ip);
    await provider.unassignReservedIp(ip);
    expect(sim.state.reservedIpHolder(ip)).toBeNull();
    await provider.deleteReservedIp(ip);
    await provider.deleteReservedIp(ip); // already gone: fine
    expect(await provider.getReservedIp(ip)).toBeUndefined();
  });

  it('adopts a named address only if it exists in the same region', async () => {
    const provider = providerFor(sim);
    await expect(provider.ensureReservedIp({ address: '198.51.100.250', region: 'nyc3', nodes: [] }))
      .rejects.toThrow(/spec\.floatingIP\.address: reserved IP 198\.51\.100\.250 does not exist/);
    const created = await provider.client.http.post('/reserved_ips', { region: 'fra1' });
    const ip = (created.data as { reserved_ip: { ip: string } }).reserved_ip.ip;
    await expect(provider.ensureReservedIp({ address: ip, region: 'nyc3', nodes: [] }))
      .rejects.toThrow(/is in region fra1, but spec.region is nyc3/);
    await expect(provider.ensureReservedIp({ address: ip, region: 'fra1', nodes: [] })).resolves.toMatchObject({ ip, dropletId: null });
  });
});

describe('errors', () => {
  let sim: DigitalOceanSimulator;
  beforeAll(async () => {
    sim = await startSimulator({ tokens: { full: '*', readonly: ['droplet:read'] } });
  });
  afterAll(() => sim.close());

  it('names the missing token scope on a 403, and calls a 401 terminal', async () => {
    const limited = providerFor(sim, { token: 'readonly' });
    const err = await limited.observe().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigitalOceanError);
    expect((err as DigitalOceanError).kind).toBe('terminal');
    expect((err as DigitalOceanError).details.scope).toBe('reserved_ip:read');
    expect((err as DigitalOceanError).message).toMatch(/lacks the "reserved_ip:read" scope/);
    const unknown = providerFor(sim, { token: 'nope' });
    const err401 = await unknown.observe().catch((e: unknown) => e);
    expect((err401 as DigitalOceanError).status).toBe(401);
    expect((err401 as DigitalOceanError).transient).toBe(false);
    expect(unknown.client.stats.retries).toBe(0);
  });

  it('retries 5xx on reads and gives up after a bounded number of attempts', async () => {
    const provider = providerFor(sim, { token: 'full', maxAttempts: 4 });
    sim.faults.errorRate = { 'GET /v2/account': 1 };
    const err = await provider.client.dots.account.getAccount().catch((e: unknown) => e);
    sim.faults.errorRate = {};
    expect((err as DigitalOceanError).transient).toBe(true);
    expect((err as DigitalOceanError).message).toMatch(/gave up after 4 attempts/);
    expect(provider.client.stats.requests).toBe(4);
  });
});
