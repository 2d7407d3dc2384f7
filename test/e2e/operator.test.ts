// End to end, in the sandbox, with the real kubectl: apply → Ready → traffic through the
// floating IP → failover on the real daemons → a config change without failed requests →
// bad input → deletion leaves nothing behind.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { ROOT, startE2E, waitFor, withImage, type E2E } from './helpers.ts';
import { runtimeServers, workerPid } from '../../bench/lib/haproxy-cli.ts';
import { haproxyAdminCommand } from '../../src/hosts/remote.ts';

interface Status {
  floatingIP?: string;
  activeNode?: string;
  lastFailover?: { from: string; to: string; time: string };
  nodes?: { name: string; vrrpState: string; configHash?: string; serversUp?: string }[];
  conditions?: { type: string; status: string; reason: string; message: string }[];
}

let e2e: E2E;
beforeAll(async () => { e2e = await startE2E(); }, 120_000);
afterAll(async () => { await e2e?.close(); }, 120_000);
afterEach((ctx) => e2e?.printLogIfFailed(ctx));

async function status(name: string): Promise<Status> {
  const r = await e2e.kubectl(['get', 'halb', name, '-o', 'jsonpath={.status}']);
  return r.code === 0 && r.stdout ? JSON.parse(r.stdout) as Status : {};
}
const condition = (s: Status, type: string) => s.conditions?.find((c) => c.type === type);
const dropletsOf = (prefix: string) => e2e.sandbox.digitalocean.state.dropletViews().filter((d) => d.name.startsWith(`${prefix}-`));

describe('an HALoadBalancer in the sandbox', () => {
  let ip = '';

  it('kubectl apply of examples/basic.yaml becomes Ready', async () => {
    const applied = await e2e.kubectl(['apply', '-f', '-'], withImage(`${ROOT}examples/basic.yaml`));
    expect(applied.stderr).toBe('');
    expect(applied.stdout).toContain('haloadbalancer.halb.dev/basic created');
    const wait = await e2e.kubectl(['wait', '--for=condition=Ready', 'halb/basic', '--timeout=120s']);
    expect(wait.stdout + wait.stderr).toContain('condition met');
    // Ready says traffic is served; the IP may still be on its way from node 0 (its first
    // assignment) to the node keepalived elected, whose failover script moves it.
    const s = await waitFor('the IP on the MASTER', async () => {
      const x = await status('basic');
      return x.activeNode && x.activeNode === x.nodes?.find((n) => n.vrrpState === 'MASTER')?.name &&
        x.nodes?.every((n) => n.serversUp === '2/2') ? x : undefined;
    }, 30_000, 250);
    ip = s.floatingIP!;
    expect(ip).toMatch(/^198\.51\.100\.\d+$/);
    expect(s.nodes?.map((n) => n.vrrpState).sort()).toEqual(['BACKUP', 'MASTER']);
    const table = await e2e.kubectl(['get', 'halb']);
    expect(table.stdout).toMatch(/NAME\s+READY\s+FLOATING-IP\s+ACTIVE\s+AGE/);
    expect(table.stdout).toMatch(new RegExp(`basic\\s+True\\s+${ip.replaceAll('.', '\\.')}\\s+basic-[01]`));
  }, 180_000);

  it('serves the backends through the floating IP, from the client namespace', async () => {
    const answers = new Set<string>();
    for (let i = 0; i < 6; i++) answers.add((await e2e.curlFloatingIP(ip)) ?? 'FAILED');
    expect([...answers].sort()).toEqual(['web-1', 'web-2']);
  });

  it('fails over when HAProxy dies on the MASTER, and status follows', async () => {
    const before = await status('basic');
    const master = before.activeNode!;
    const other = master === 'basic-0' ? 'basic-1' : 'basic-0';
    const killed = await e2e.inHost(master, ['sh', '-c', 'kill $(cat /run/haproxy.pid)']);
    expect(killed.code).toBe(0);
    const started = Date.now();
    await waitFor('traffic through the other node', async () =>
      (await e2e.curlFloatingIP(ip, 1)) !== undefined &&
      (await e2e.inHost(other, ['cat', '/run/halb/vrrp-state'])).stdout.trim() === 'MASTER');
    const outageMs = Date.now() - started;
    console.log(`failover: traffic resumed ${outageMs} ms after HAProxy was killed on ${master}`);
    const after = await waitFor('status to show the new holder', async () => {
      const s = await status('basic');
      return s.activeNode === other ? s : undefined;
    }, 30_000);
    expect(after.lastFailover).toMatchObject({ from: master, to: other });
    const events = await e2e.kubectl(['describe', 'halb', 'basic']);
    expect(events.stdout).toContain('FailoverObserved');
  }, 90_000);

  it('rolls a backend change out to every node with no failed request and no failover', async () => {
    const before = await status('basic');
    const holder = before.activeNode;
    const client = e2e.clientLoop(ip);
    const patch = await e2e.kubectl(['patch', 'halb', 'basic', '--type=merge', '-p',
      '{"spec":{"backends":[{"name":"web","balance":"leastconn","port":80,"healthCheck":{"protocol":"http","path":"/"},' +
      '"servers":[{"name":"web-1","address":"10.10.0.21"},{"name":"web-2","address":"10.10.0.22"}]}]}}']);
    expect(patch.code).toBe(0);
    await waitFor('leastconn live on every node', async () => {
      const cfgs = await Promise.all(['basic-0', 'basic-1'].map((n) => e2e.inHost(n, ['cat', '/etc/haproxy/haproxy.cfg'])));
      return cfgs.every((c) => c.stdout.includes('balance leastconn')) || undefined;
    }, 60_000);
    await new Promise((r) => setTimeout(r, 1500)); // requests across the reload
    const { sent, failed } = await client.stop();
    console.log(`config rollout: ${sent} requests during the change, ${failed} failed`);
    expect(sent).toBeGreaterThan(5);
    expect(failed).toBe(0);
    const s = await waitFor('Ready with the new generation', async () => {
      const x = await status('basic');
      return condition(x, 'Ready')?.status === 'True' && condition(x, 'ConfigApplied')?.status === 'True' ? x : undefined;
    }, 30_000);
    expect(s.activeNode).toBe(holder);
  }, 120_000);

  it('takes server-only edits through HAProxy\'s runtime API: no reload, and keep-alive connections stay open', async () => {
    const nodes = ['basic-0', 'basic-1'];
    const cli = async (node: string, command: string) => (await e2e.inHost(node, haproxyAdminCommand(command))).stdout;
    const worker = async (node: string) => workerPid(await cli(node, 'show info'));
    const servers = async (node: string) => runtimeServers(await cli(node, 'show servers state web'), 'web')
      .map((s) => `${s.name} ${s.address} weight ${s.weight}`).sort();
    const workers = await Promise.all(nodes.map(worker));
    expect(workers.every((w) => /^\d+$/.test(w ?? ''))).toBe(true);
    const client = e2e.inHost('client', [`${ROOT}node_modules/.bin/node`, `${ROOT}bench/lib/keepalive-client.ts`, `http://${ip}/`, '10', '12']);
    const web1 = { name: 'web-1', address: '10.10.0.21' };
    const edits: [string, Record<string, unknown>[], string[]][] = [
      ['re-weighted', [web1, { name: 'web-2', address: '10.10.0.22', weight: 5 }],
        ['web-1 10.10.0.21 weight 1', 'web-2 10.10.0.22 weight 5']],
      ['drained', [web1, { name: 'web-2', address: '10.10.0.22', drain: true }],
        ['web-1 10.10.0.21 weight 1', 'web-2 10.10.0.22 weight 0']],
      ['added', [web1, { name: 'web-2', address: '10.10.0.22', drain: true }, { name: 'web-3', address: '10.10.0.21' }],
        ['web-1 10.10.0.21 weight 1', 'web-2 10.10.0.22 weight 0', 'web-3 10.10.0.21 weight 1']],
      ['removed', [web1, { name: 'web-2', address: '10.10.0.22' }], ['web-1 10.10.0.21 weight 1', 'web-2 10.10.0.22 weight 1']],
    ];
    for (const [what, list, expected] of edits) {
      const backend = { name: 'web', balance: 'leastconn', port: 80, healthCheck: { protocol: 'http', path: '/' }, servers: list };
      const started = Date.now();
      expect((await e2e.kubectl(['patch', 'halb', 'basic', '--type=merge', '-p', JSON.stringify({ spec: { backends: [backend] } })])).code)
        .toBe(0);
      await waitFor(`${what} live on every node`, async () => {
        const seen = await Promise.all(nodes.map(servers));
        return seen.every((s) => JSON.stringify(s) === JSON.stringify(expected)) || undefined;
      }, 30_000, 50);
      console.log(`server-only edit (${what}): live on both nodes ${Date.now() - started} ms after the patch`);
    }
    const tally = JSON.parse((await client).stdout) as { requests: number; failed: number; cut: number };
    console.log(`keep-alive connections through the edits: ${JSON.stringify(tally)}`);
    expect(tally).toMatchObject({ failed: 0, cut: 0 });
    expect(tally.requests).toBeGreaterThan(100);
    expect(await Promise.all(nodes.map(worker))).toEqual(workers);
  }, 120_000);

  it('balances over droplets found by tag, behind a Cloud Firewall that admits only the load balancers', async () => {
    expect((await e2e.kubectl(['apply', '-f', '-'], withImage(`${ROOT}examples/tagged-backends.yaml`))).code).toBe(0);
    const wait = await e2e.kubectl(['wait', '--for=condition=Ready', 'halb/tagged', '--timeout=120s']);
    expect(wait.stdout + wait.stderr).toContain('condition met');
    const s = await status('tagged');
    const answers = new Set<string>();
    for (let i = 0; i < 6; i++) answers.add((await e2e.curlFloatingIP(s.floatingIP!)) ?? 'FAILED');
    expect([...answers].sort()).toEqual(['web-1', 'web-2']);
    const uid = (await e2e.kubectl(['get', 'halb', 'tagged', '-o', 'jsonpath={.metadata.uid}'])).stdout;
    const { endpoint, token } = e2e.sandbox.status.digitalocean;
    const firewalls = async () => ((await (await fetch(`${endpoint}/firewalls`, {
      headers: { authorization: `Bearer ${token}` },
    })).json()) as
      { firewalls: { name: string; tags: string[]; inbound_rules: { ports: string; sources: { tags?: string[] } }[] }[] }).firewalls;
    const mine = (await firewalls()).filter((f) => f.name === `halb-${uid}-web`);
    expect(mine).toHaveLength(1);
    expect(mine[0]!.tags).toEqual(['web']);
    expect(mine[0]!.inbound_rules).toEqual([expect.objectContaining({ ports: '80', sources: { tags: [`halb-uid-${uid}`] } })]);
    expect((await e2e.kubectl(['delete', 'halb', 'tagged', '--timeout=90s'])).code).toBe(0);
    expect((await firewalls()).filter((f) => f.name.includes(uid))).toEqual([]);
    expect(dropletsOf('tagged')).toEqual([]);
  }, 180_000);

  it('refuses a schema-invalid object at the API, and marks a semantically invalid one InvalidSpec without creating anything', async () => {
    const bad = readFileSync(`${ROOT}test/fixtures/invalid/wrong-type-port.yaml`, 'utf8').replace('name: web', 'name: badport');
    const refused = await e2e.kubectl(['apply', '-f', '-'], bad);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/spec\.frontends\[0\]\.port/);
    // A rule the CRD's CEL rules express is refused at the API too (a route to a missing backend)...
    const routed = readFileSync(`${ROOT}test/fixtures/invalid/route-missing-backend.yaml`, 'utf8').replace('name: web', 'name: noroute');
    const admission = await e2e.kubectl(['apply', '-f', '-'], routed);
    expect(admission.code).not.toBe(0);
    expect(admission.stderr).toMatch(/spec\.frontends/);
    // ...one only the semantic layer checks (a backend with nothing to balance over) reaches the operator.
    const semantic = readFileSync(`${ROOT}test/fixtures/invalid/backend-without-servers.yaml`, 'utf8')
      .replace('name: web', 'name: noroute');
    expect((await e2e.kubectl(['apply', '-f', '-'], semantic)).code).toBe(0);
    const s = await waitFor('InvalidSpec', async () => {
      const x = await status('noroute');
      return condition(x, 'Ready')?.reason === 'InvalidSpec' ? x : undefined;
    }, 30_000);
    expect(condition(s, 'Ready')?.message).toContain('spec.backends[0].servers');
    expect(condition(s, 'Stalled')).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
    await new Promise((r) => setTimeout(r, 2000));
    expect(dropletsOf('noroute')).toEqual([]);
    expect((await e2e.kubectl(['delete', 'halb', 'noroute', '--timeout=30s'])).code).toBe(0);
  }, 60_000);

  it('deletes everything on delete, then drops the finalizer', async () => {
    const deleted = await e2e.kubectl(['delete', 'halb', 'basic', '--timeout=90s']);
    expect(deleted.code).toBe(0);
    expect((await e2e.kubectl(['get', 'halb', 'basic'])).code).not.toBe(0);
    expect(dropletsOf('basic')).toEqual([]);
    // reclaimPolicy Retain keeps the address, unassigned.
    expect(e2e.sandbox.digitalocean.state.reservedIpHolder(ip)).toBeNull();
    // The simulator's delete hook removes the hosts right after answering.
    await waitFor('the droplet hosts to go', () =>
      e2e.sandbox.fabric.status().hosts.every((h) => h.role !== 'loadbalancer') || undefined, 15_000);
  }, 120_000);
});
