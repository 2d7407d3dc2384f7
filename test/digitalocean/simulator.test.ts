// The simulator's sandbox hooks, metadata service, fault injection and firewalls, driven by the
// provider (dots-wrapper) and plain HTTP.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DigitalOceanError } from '../../src/digitalocean/errors.ts';
import { uidTag } from '../../src/digitalocean/naming.ts';
import type { DigitalOceanSimulator, DropletView, ReservedIpChange } from '../../src/sandbox/digitalocean/simulator.ts';
import { sandboxDoCommand } from '../../src/sandbox/cli/do.ts';
import { providerFor, sshPublicKey, startSimulator } from './helpers.ts';

const nodeSpec = (uid: string) =>
  ({ uid, objectName: 'web', count: 2, region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', sshKeys: [] as string[] });

describe('day-two events: power, physical hosts, maintenance notices', () => {
  let sim: DigitalOceanSimulator;
  const power: string[] = [];
  const notices: string[] = [];
  beforeAll(async () => {
    sim = await startSimulator({
      hooks: {
        onDropletPowerChanged: (d, change) => void power.push(`${d.name} ${change}`),
        onMaintenanceEventChanged: (d, event) => void notices.push(`${d.name} ${event || '(none)'}`),
      },
    });
  });
  afterAll(() => sim.close());

  const action = async (id: number, type: string) => {
    const r = await fetch(`${sim.endpoint}/droplets/${id}/actions`, {
      method: 'POST', headers: { authorization: 'Bearer t', 'content-type': 'application/json' }, body: JSON.stringify({ type }),
    });
    expect(r.status).toBe(201);
    const actionId = ((await r.json()) as { action: { id: number } }).action.id;
    for (let i = 0; i < 200 && sim.state.getAction(actionId).status !== 'completed'; i++) await new Promise((res) => setTimeout(res, 10));
  };

  it('runs the power hook before a power action completes: off, on, reboot', async () => {
    const d = sim.state.seedDroplet({ name: 'lb-0' });
    await action(d.id, 'power_off');
    expect(sim.state.dropletView(d.id)?.status).toBe('off');
    expect(power).toEqual(['lb-0 off']);
    await providerFor(sim).powerOnDroplet(d.id);
    for (let i = 0; i < 200 && sim.state.dropletView(d.id)?.status !== 'active'; i++) await new Promise((res) => setTimeout(res, 10));
    expect(power).toEqual(['lb-0 off', 'lb-0 on']);
    await action(d.id, 'reboot');
    expect(sim.state.dropletView(d.id)?.status).toBe('active');
    expect(power).toEqual(['lb-0 off', 'lb-0 on', 'lb-0 reboot']);
  });

  it('places droplets on physical hosts through its control route, and reports neighbours as the API does', async () => {
    const [a, b, c] = ['n-0', 'n-1', 'n-2'].map((name) => sim.state.seedDroplet({ name }));
    const put = (id: number, what: string, body: string) => fetch(`${sim.url}/_sandbox/droplets/${id}/${what}`, { method: 'PUT', body });
    expect(sim.state.neighborIds()).toEqual([]);
    expect((await put(a!.id, 'physical_host', 'rack-7')).status).toBe(204);
    expect((await put(c!.id, 'physical_host', 'rack-7')).status).toBe(204);
    expect(sim.state.neighborIds()).toEqual([[a!.id, c!.id]]);
    expect(await providerFor(sim).neighborGroups()).toEqual([[a!.id, c!.id]]);
    expect(sim.state.neighbors(a!.id).map((n) => n.name)).toEqual(['n-2']);
    expect(sim.state.neighbors(b!.id)).toEqual([]);
    expect((await put(b!.id, 'physical_host', 'no spaces')).status).toBe(400);
    expect((await put(999, 'physical_host', 'x')).status).toBe(404);
  });

  it('announces a maintenance event in the droplet\'s metadata, at the documented path and beside the other keys', async () => {
    const d = sim.state.seedDroplet({ name: 'lb-9' });
    const read = async (path: string) => (await fetch(`${sim.url}/_sandbox/droplets/${d.id}${path}`)).text();
    expect(await read('/v1/maintenance_event')).toBe('');
    const put = await fetch(`${sim.url}/_sandbox/droplets/${d.id}/maintenance_event`, { method: 'PUT', body: 'live_migrate' });
    expect(put.status).toBe(204);
    expect(await read('/v1/maintenance_event')).toBe('live_migrate');
    expect(await read('/metadata/v1/maintenance_event')).toBe('live_migrate');
    sim.state.announceMaintenance(d.id, '');
    expect(await read('/v1/maintenance_event')).toBe('');
    expect(notices).toEqual(['lb-9 live_migrate', 'lb-9 (none)']);
  });
});

describe('sandbox hooks and metadata', () => {
  let sim: DigitalOceanSimulator;
  const created: DropletView[] = [];
  const deleted: DropletView[] = [];
  const changes: ReservedIpChange[] = [];
  let releaseHost: () => void = () => {};
  beforeAll(async () => {
    sim = await startSimulator({
      hooks: {
        // The sandbox builds the host meanwhile: the droplet must stay "new" until this resolves.
        onDropletCreated: async (d) => {
          created.push(d);
          await new Promise<void>((resolve) => (releaseHost = resolve));
        },
        onDropletDeleted: (d) => void deleted.push(d),
        onReservedIpAssignmentChanged: (c) => void changes.push(c),
      },
    });
  });
  afterAll(() => sim.close());

  it('calls back on create (before active), assign and delete, and serves per-droplet metadata', async () => {
    const provider = providerFor(sim);
    const fingerprint = await provider.ensureSshKey(sshPublicKey(9), 'halb-operator');
    expect(await provider.ensureSshKey(sshPublicKey(9), 'halb-operator')).toBe(fingerprint); // idempotent
    const res = await provider.client.dots.droplet.createDroplet({
      name: 'web-0', region: 'nyc3', size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', ssh_keys: [fingerprint], tags: ['halb'],
      user_data: '#cloud-config\n',
    });
    const id = (res.data.droplet as { id: number }).id;
    await new Promise((r) => setTimeout(r, 150)); // longer than the boot delay
    expect(created.map((d) => d.id)).toEqual([id]);
    expect(created[0]).toMatchObject({ name: 'web-0', userData: '#cloud-config\n', sshPublicKeys: [sshPublicKey(9)] });
    expect((await provider.client.dots.droplet.getDroplet({ droplet_id: id })).data.droplet.status).toBe('new');
    releaseHost();
    for (let i = 0; i < 100 && sim.state.dropletView(id)?.status !== 'active'; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await provider.client.dots.droplet.getDroplet({ droplet_id: id })).data.droplet.status).toBe('active');

    const ip = sim.state.seedReservedIp({ region: 'nyc3' });
    await provider.assignReservedIp(ip, id);
    expect(changes).toEqual([{ ip, dropletId: id, previousDropletId: null }]);

    const meta = async (path: string) => {
      const r = await fetch(`${sim.url}/_sandbox/droplets/${id}${path}`, { redirect: 'manual' });
      return { status: r.status, body: await r.text(), location: r.headers.get('location') };
    };
    expect(await meta('/metadata/v1/id')).toMatchObject({ status: 200, body: String(id) });
    expect(await meta('/metadata/v1/reserved_ip/ipv4/ip_address')).toMatchObject({ status: 200, body: ip });
    expect((await meta('/metadata/v1/interfaces/public/0/anchor_ipv4/address')).body).toBe(created[0]!.anchorIPv4);
    expect(await meta('/metadata/v1/interfaces')).toMatchObject({
      status: 301, location: `/_sandbox/droplets/${id}/metadata/v1/interfaces/`,
    });
    expect(sim.metadata(id, '/metadata/v1/public-keys').body).toBe(sshPublicKey(9));
    // The anchor address is only in the metadata service, never in /v2.
    const droplet = (await provider.client.dots.droplet.getDroplet({ droplet_id: id })).data.droplet;
    expect(JSON.stringify(droplet)).not.toContain(created[0]!.anchorIPv4);

    await provider.deleteDroplet(id);
    await provider.deleteDroplet(id); // already gone: fine
    expect(deleted.map((d) => d.id)).toEqual([id]);
    expect(changes.at(-1)).toEqual({ ip, dropletId: null, previousDropletId: id });
    expect((await meta('/metadata/v1/id')).status).toBe(404);
  });
});

describe('fault injection', () => {
  let sim: DigitalOceanSimulator;
  beforeAll(async () => {
    sim = await startSimulator({ seed: 7 });
  });
  afterAll(() => sim.close());

  it('converges through a 30% error rate on reads', async () => {
    const provider = providerFor(sim, { maxAttempts: 8 });
    sim.faults.errorRate = { 'GET /v2/droplets': 0.3, 'GET /v2/reserved_ips': 0.3 };
    try {
      for (let i = 0; i < 10; i++) await provider.observe();
    } finally {
      sim.faults.errorRate = {};
    }
    const injected = sim.responses.filter((r) => r.status === 500).length;
    expect(injected).toBeGreaterThan(0);
    expect(provider.client.stats.retries).toBe(injected);
  });

  it('creates nothing twice when half the droplet creates fail with 503', async () => {
    const provider = providerFor(sim);
    sim.faults.errorStatus = 503;
    sim.faults.errorRate = { 'POST /v2/droplets': 0.5 };
    try {
      const result = await provider.ensureDroplets({ ...nodeSpec('faulty'), count: 5, userData: () => '' });
      expect(result.nodes.map((n) => n.name)).toEqual(['web-0', 'web-1', 'web-2', 'web-3', 'web-4']);
    } finally {
      sim.faults.errorRate = {};
      sim.faults.errorStatus = 500;
    }
    expect(sim.responses.filter((r) => r.status === 503 && r.route === '/v2/droplets').length).toBeGreaterThan(0);
    expect(sim.state.dropletViews().filter((d) => d.tags.includes(uidTag('faulty')))).toHaveLength(5);
  });

  it('adds latency, and a request slower than the timeout is a transient error', async () => {
    const provider = providerFor(sim, { requestTimeoutMs: 100, maxAttempts: 2 });
    sim.faults.latencyMs = { 'GET /v2/account': 300 };
    try {
      const err = await provider.client.dots.account.getAccount().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DigitalOceanError);
      expect((err as DigitalOceanError).transient).toBe(true);
      expect((err as DigitalOceanError).message).toMatch(/timed out/);
    } finally {
      sim.faults.latencyMs = {};
    }
  });

  it('kills a droplet: it turns off and the inventory shows it', async () => {
    const provider = providerFor(sim);
    const result = await provider.ensureInfrastructure(nodeSpec('dies'));
    const victim = result.nodes[1]!;
    sim.state.killDroplet(victim.id);
    const inventory = await provider.observe();
    expect(inventory.nodesByUid.get('dies')!.map((n) => n.status)).toEqual(['active', 'off']);
    await provider.deleteNodesOf('dies');
    await provider.deleteNodesOf('dies'); // nothing left: fine
    expect((await provider.observe()).nodesByUid.has('dies')).toBe(false);
  });

  it('lets droplets die as a setting, and tells the sandbox', async () => {
    const died: number[] = [];
    const dying = await startSimulator({
      faults: { dropletDeath: { afterMs: 50, tag: 'fragile' } }, hooks: { onDropletDied: (d) => void died.push(d.id) },
    });
    try {
      const provider = providerFor(dying);
      const fragile = await provider.ensureDroplets({ ...nodeSpec('fragile'), count: 1, extraTags: ['fragile'], userData: () => '' });
      const sturdy = await provider.ensureDroplets({ ...nodeSpec('sturdy'), count: 1, userData: () => '' });
      for (let i = 0; i < 100 && died.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(died).toEqual([fragile.nodes[0]!.id]);
      expect(dying.state.dropletView(fragile.nodes[0]!.id)!.status).toBe('off');
      expect(dying.state.dropletView(sturdy.nodes[0]!.id)!.status).toBe('active');
    } finally {
      await dying.close();
    }
  });
});

describe('firewalls for restrictToLoadBalancers', () => {
  let sim: DigitalOceanSimulator;
  beforeAll(async () => {
    sim = await startSimulator();
  });
  afterAll(() => sim.close());

  it('creates, leaves alone, corrects drift, and prunes the backend firewall', async () => {
    const provider = providerFor(sim);
    await provider.ensureInfrastructure(nodeSpec('fw'));
    const spec = { uid: 'fw', backend: 'web', backendTag: 'web', port: 80 };
    // No droplet carries the backend tag yet: the tag is created so the firewall can name it.
    const first = await provider.ensureBackendFirewall(spec);
    expect(first.changed).toBe(true);
    expect(await provider.ensureBackendFirewall(spec)).toEqual({ id: first.id, changed: false });
    const fw = sim.state.getFirewall(first.id) as { name: string; tags: string[]; inbound_rules: unknown[] };
    expect(fw).toMatchObject({
      name: 'halb-fw-web', tags: ['web'], inbound_rules: [{ protocol: 'tcp', ports: '80', sources: { tags: ['halb-uid-fw'] } }],
    });
    // Someone edits it by hand: the next ensure puts it back with a full PUT.
    await fetch(`${sim.endpoint}/firewalls/${first.id}/rules`, {
      method: 'POST',
      headers: { authorization: 'Bearer x', 'content-type': 'application/json' },
      body: JSON.stringify({ inbound_rules: [{ protocol: 'tcp', ports: '22', sources: { addresses: ['0.0.0.0/0'] } }] }),
    });
    expect(await provider.ensureBackendFirewall(spec)).toEqual({ id: first.id, changed: true });
    expect((sim.state.getFirewall(first.id) as { inbound_rules: unknown[] }).inbound_rules).toHaveLength(1);
    await expect(provider.ensureBackendFirewall({ ...spec, backendTag: 'no spaces allowed' }))
      .rejects.toThrow(/spec\.backends\[\]\.dropletTag: .*invalid characters/);
    expect(await provider.pruneBackendFirewalls('fw', ['web'])).toEqual([]);
    expect(await provider.pruneBackendFirewalls('fw', [])).toEqual(['halb-fw-web']);
    expect(sim.state.listFirewalls()).toEqual([]);
  });
});

describe('per-operation limits', () => {
  it('allows 10 SSH-key listings a minute, then answers 429 with retry-after', async () => {
    const sim = await startSimulator();
    try {
      const headers = { authorization: 'Bearer t' };
      const statuses: number[] = [];
      for (let i = 0; i < 11; i++) statuses.push((await fetch(`${sim.endpoint}/account/keys`, { headers })).status);
      expect(statuses).toEqual([...Array(10).fill(200), 429]);
      expect(Number(sim.responses.at(-1)!.headers['retry-after'])).toBeGreaterThan(50);
      expect((await fetch(`${sim.endpoint}/account`, { headers })).status).toBe(200); // other calls unaffected
    } finally {
      await sim.close();
    }
  });
});

describe('listening on more addresses', () => {
  it('serves the same state on a second address and port', async () => {
    const sim = await startSimulator();
    try {
      await sim.addListener('127.0.0.2');
      const headers = { authorization: 'Bearer t', 'content-type': 'application/json' };
      await fetch(`${sim.endpoint}/tags`, { method: 'POST', headers, body: JSON.stringify({ name: 'seen-twice' }) });
      const res = await fetch(`http://127.0.0.2:${sim.port}/v2/tags/seen-twice`, { headers });
      expect(res.status).toBe(200);
    } finally {
      await sim.close();
    }
  });
});

describe('halb sandbox do', () => {
  it('runs the simulator alone until SIGTERM, answering curl-style requests', async () => {
    const script = `import { sandboxDoCommand } from ${JSON.stringify(new URL('../../src/sandbox/cli/do.ts', import.meta.url).pathname)};
process.exitCode = await sandboxDoCommand(['--port', '0', '--droplet-boot-ms', '10']);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const endpoint = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const m = /listening on (\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.once('exit', (code) => reject(new Error(`exited ${code}`)));
      });
      const unauth = await fetch(`${endpoint}/droplets`);
      expect(unauth.status).toBe(401);
      const res = await fetch(`${endpoint}/droplets`, { headers: { authorization: 'Bearer dop_v1_sandbox' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('ratelimit-limit')).toBe('5000');
      expect(await res.json()).toEqual({ droplets: [], links: { pages: {} }, meta: { total: 0 } });
    } finally {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });

  it('prints help, and names a bad flag value', async () => {
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const writeErr = process.stderr.write.bind(process.stderr);
    process.stdout.write = ((s: string) => (out.push(s), true)) as typeof process.stdout.write;
    process.stderr.write = ((s: string) => (out.push(s), true)) as typeof process.stderr.write;
    try {
      expect(await sandboxDoCommand(['--help'])).toBe(0);
      expect(out.join('')).toContain('halb sandbox do [--port P]');
      out.length = 0;
      expect(await sandboxDoCommand(['--port', 'abc'])).toBe(1);
      expect(out.join('')).toContain('--port must be');
      out.length = 0;
      expect(await sandboxDoCommand(['--rate-limit', 'lots'])).toBe(1);
      expect(out.join('')).toContain('--rate-limit must look like 250/60');
      expect(await sandboxDoCommand(['--bogus'])).toBe(2);
    } finally {
      process.stdout.write = write;
      process.stderr.write = writeErr;
    }
  });
});
