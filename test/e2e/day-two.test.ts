// Day two in the sandbox, on the real daemons, through the kubectl plugin as people run it:
// a planned failover with a client loop and no failed request; maintenance on the MASTER (it
// hands over first) and on the BACKUP (nothing moves); the node in maintenance powered off
// while the load balancer serves, then brought back as a BACKUP with no failover; a failure of
// the other node while one is in maintenance; DigitalOcean's maintenance notice; refused
// requests; the nodes' logs; two nodes on one physical machine, replaced when opted in.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KUBECTL, ROOT, startE2E, waitFor, type E2E } from './helpers.ts';

interface Condition { type: string; status: string; reason: string; message: string }
interface Status {
  floatingIP?: string;
  activeNode?: string;
  lastFailover?: { from: string; to: string; reason?: string };
  plannedFailover?: { from: string; to: string; reason: string };
  nodes?: { name: string; vrrpState: string; maintenance?: string; serversUp?: string }[];
  conditions?: Condition[];
}

let e2e: E2E;
let pathDir: string;
beforeAll(async () => {
  e2e = await startE2E();
  pathDir = mkdtempSync(join(tmpdir(), 'halb-plugin-path-'));
  symlinkSync(join(ROOT, 'bin/kubectl-halb.mjs'), join(pathDir, 'kubectl-halb'));
}, 120_000);
afterAll(async () => {
  await e2e?.close();
  rmSync(pathDir, { recursive: true, force: true });
}, 120_000);
afterEach((ctx) => e2e?.printLogIfFailed(ctx));

/** `kubectl halb ARGS`, the plugin found on PATH as an installed package puts it there. */
function plugin(args: string[], timeoutMs = 150_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, HOME: e2e.stateDir, KUBECONFIG: e2e.sandbox.status.kubeconfig, PATH: `${pathDir}:${process.env.PATH}` };
  return new Promise((resolve) => {
    execFile(KUBECTL, ['halb', ...args], { env, timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

async function status(): Promise<Status> {
  const r = await e2e.kubectl(['get', 'halb', 'basic', '-o', 'jsonpath={.status}']);
  return r.code === 0 && r.stdout ? JSON.parse(r.stdout) as Status : {};
}
const condition = (s: Status, type: string) => s.conditions?.find((c) => c.type === type);
const nodeOf = (s: Status, name: string) => s.nodes?.find((n) => n.name === name);
const other = (node: string) => (node === 'basic-0' ? 'basic-1' : 'basic-0');
const dropletId = (name: string) => e2e.sandbox.digitalocean.state.dropletViews().find((d) => d.name === name)!.id;
async function events(): Promise<string> {
  return (await e2e.kubectl([
    'get', 'events', '--field-selector', 'involvedObject.name=basic', '-o', 'custom-columns=REASON:.reason,MESSAGE:.message',
    '--no-headers',
  ])).stdout;
}
/** The Events recorded since `before` (an earlier events() answer): each is one line. */
async function eventsSince(before: string): Promise<string> {
  const seen = new Set(before.split('\n'));
  return (await events()).split('\n').filter((l) => l && !seen.has(l)).join('\n');
}
/** A settled pair: the IP on the MASTER, both nodes serving, no planned failover under way. */
const settled = () => waitFor('a settled pair', async () => {
  const s = await status();
  const master = s.nodes?.find((n) => n.vrrpState === 'MASTER')?.name;
  return master && s.activeNode === master && !s.plannedFailover &&
    s.nodes?.every((n) => n.vrrpState === 'MASTER' || n.vrrpState === 'BACKUP') ? s : undefined;
}, 90_000);

describe('day two in the sandbox', () => {
  let ip = '';

  it('examples/basic.yaml becomes Ready', async () => {
    expect((await e2e.kubectl(['apply', '-f', `${ROOT}examples/basic.yaml`])).code).toBe(0);
    const wait = await e2e.kubectl(['wait', '--for=condition=Ready', 'halb/basic', '--timeout=120s']);
    expect(wait.stdout + wait.stderr).toContain('condition met');
    ip = (await settled()).floatingIP!;
  }, 180_000);

  it('kubectl halb failover: MASTER moves with 0 failed requests from a client loop, ' +
    'status names the new holder and the reason', async () => {
    const from = (await settled()).activeNode!;
    const client = e2e.clientLoop(ip);
    await new Promise((r) => setTimeout(r, 1000));
    const r = await plugin(['failover', 'basic']);
    await new Promise((r2) => setTimeout(r2, 1500)); // requests after the move, through the new holder
    const { sent, failed } = await client.stop();
    console.log(`planned failover: ${sent} requests, ${failed} failed; plugin said: ${r.stdout.trim().split('\n').at(-1)}`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`failover to ${other(from)} requested`));
    expect(r.stdout).toMatch(new RegExp(`${other(from)} holds ${ip.replaceAll('.', '\\.')} \\(PreferredNode\\)`));
    expect(sent).toBeGreaterThan(10);
    expect(failed).toBe(0);
    const s = await status();
    expect(s.activeNode).toBe(other(from));
    expect(s.lastFailover).toMatchObject({ from, to: other(from), reason: 'PreferredNode' });
    expect(await events()).toMatch(/FailoverRequested\s+moving MASTER from basic-\d to basic-\d: halb.dev\/preferred-node names it/);
    expect(await events()).toMatch(/FailoverObserved\s+reserved IP \S+ moved from basic-\d to basic-\d \(planned: PreferredNode\)/);
    const table = await plugin(['status', 'basic']);
    expect(table.stdout).toMatch(
      new RegExp(`${other(from)}\\s+active\\s+MASTER\\s+yes\\s+[0-9a-f]{12}\\s+2/2\\s+became active \\d+s ago \\(PreferredNode\\)`));
    expect((await plugin(['failover', 'basic', '--clear'])).code).toBe(0);
  }, 180_000);

  it('refuses a node that does not exist, in the plugin and in status, and nothing moves', async () => {
    const holder = (await settled()).activeNode!;
    expect(await plugin(['failover', 'basic', '--to', 'basic-9'])).toMatchObject({
      code: 1, stderr: expect.stringContaining('refused (NodeNotFound): basic-9 is not a node of basic'),
    });
    expect((await e2e.kubectl(['annotate', 'halb', 'basic', 'halb.dev/preferred-node=basic-9'])).code).toBe(0);
    const s = await waitFor('the refusal in status', async () => {
      const x = await status();
      return condition(x, 'PlannedFailover')?.reason === 'NodeNotFound' ? x : undefined;
    }, 30_000);
    expect(condition(s, 'PlannedFailover')?.message).toContain('basic-9, which is not a node of this load balancer');
    expect(s.activeNode).toBe(holder);
    expect((await e2e.kubectl(['annotate', 'halb', 'basic', 'halb.dev/preferred-node-'])).code).toBe(0);
  }, 60_000);

  it('maintenance on the MASTER hands over first (0 failed requests); unmarked, it returns as BACKUP with no failover', async () => {
    const master = (await settled()).activeNode!;
    const client = e2e.clientLoop(ip);
    const on = await plugin(['maintenance', 'basic', master, 'on', '--note', 'kernel update']);
    const { sent, failed } = await client.stop();
    console.log(`maintenance on the MASTER: ${sent} requests, ${failed} failed`);
    expect(on.code).toBe(0);
    expect(on.stdout).toMatch(new RegExp(`${master} is in maintenance; ${other(master)} holds`));
    expect(failed).toBe(0);
    const s = await status();
    expect(s.lastFailover).toMatchObject({ from: master, to: other(master), reason: 'Maintenance' });
    expect(nodeOf(s, master)?.maintenance).toBe('in maintenance (kernel update)');
    expect(condition(s, 'NodeInMaintenance')?.status).toBe('True');

    const off = await plugin(['maintenance', 'basic', master, 'off']);
    expect(off.code).toBe(0);
    expect(off.stdout).toMatch(new RegExp(`${master} is back as BACKUP; ${other(master)} holds`));
    expect((await status()).activeNode).toBe(other(master));
  }, 180_000);

  it('maintenance on the BACKUP moves nothing; powered off, the load balancer keeps serving and says NodeInMaintenance; ' +
    'unmarked, it is powered on and returns as BACKUP', async () => {
    const master = (await settled()).activeNode!;
    const backup = other(master);
    const before = await events();
    expect((await plugin(['maintenance', 'basic', backup, 'on', '--note', 'reboot'])).code).toBe(0);
    expect((await status()).activeNode).toBe(master);
    expect(await eventsSince(before)).not.toMatch(/FailoverRequested|FailoverObserved/);

    const { endpoint, token } = e2e.sandbox.status.digitalocean;
    const action = await fetch(`${endpoint}/droplets/${dropletId(backup)}/actions`, {
      method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"type":"power_off"}',
    });
    expect(action.status).toBe(201);
    await waitFor('the droplet off', () =>
      e2e.sandbox.digitalocean.state.dropletView(dropletId(backup))?.status === 'off' || undefined, 30_000);
    const client = e2e.clientLoop(ip);
    const away = await waitFor('status to show the node away', async () => {
      const x = await status();
      return nodeOf(x, backup)?.vrrpState === 'UNKNOWN' ? x : undefined;
    }, 30_000);
    await new Promise((r) => setTimeout(r, 3000));
    const { sent, failed } = await client.stop();
    expect(failed).toBe(0);
    expect(sent).toBeGreaterThan(5);
    expect(condition(away, 'Ready')?.status).toBe('True');
    expect(condition(away, 'Degraded')).toMatchObject({ status: 'False', reason: 'NodeInMaintenance' });
    expect(condition(away, 'NodeInMaintenance')?.message).toBe(`${backup}: in maintenance (reboot)`);
    expect(await eventsSince(before)).not.toMatch(/DropletDeleted/);

    const off = await plugin(['maintenance', 'basic', backup, 'off']);
    expect(off.stdout + off.stderr).toMatch(new RegExp(`${backup} is back as BACKUP; ${master} holds`));
    expect(await eventsSince(before)).toMatch(new RegExp(`DropletPoweredOn\\s+powered on ${backup}`));
    expect((await status()).activeNode).toBe(master);
    expect(await eventsSince(before)).not.toMatch(/DropletDeleted|FailoverObserved/);
  }, 240_000);

  it('when the MASTER fails while the other node is in maintenance, the node in maintenance takes over', async () => {
    const master = (await settled()).activeNode!;
    const backup = other(master);
    expect((await plugin(['maintenance', 'basic', backup, 'on', '--note', 'patching'])).code).toBe(0);
    try {
      expect((await e2e.inHost(master, ['sh', '-c', 'kill $(cat /run/haproxy.pid)'])).code).toBe(0);
      // keepalived makes the node in maintenance MASTER and its failover script moves the IP.
      await waitFor('traffic through the node in maintenance', async () =>
        e2e.sandbox.digitalocean.state.reservedIpHolder(ip) === dropletId(backup) && (await e2e.curlFloatingIP(ip, 1)) !== undefined,
        30_000, 100);
      // The operator repairs the failed node; then the node in maintenance hands MASTER back to it, planned.
      await waitFor('MASTER handed back from the node in maintenance', async () => {
        const x = await status();
        return x.activeNode === master && !x.plannedFailover &&
          nodeOf(x, master)?.vrrpState === 'MASTER' && nodeOf(x, backup)?.vrrpState === 'BACKUP' ? x : undefined;
      }, 90_000);
      expect(await events()).toContain(`moving MASTER from ${backup} to ${master}: the MASTER is in maintenance`);
    } finally {
      expect((await plugin(['maintenance', 'basic', backup, 'off'])).code).toBe(0);
    }
  }, 240_000);

  it('hands MASTER away ahead of a maintenance event DigitalOcean announces in the droplet\'s metadata', async () => {
    const master = (await settled()).activeNode!;
    const client = e2e.clientLoop(ip);
    const put = await fetch(`${e2e.sandbox.digitalocean.url}/_sandbox/droplets/${dropletId(master)}/maintenance_event`, {
      method: 'PUT', body: 'live_migrate',
    });
    expect(put.status).toBe(204);
    expect((await e2e.inHost(master, ['curl', '-s', 'http://169.254.169.254/v1/maintenance_event'])).stdout).toBe('live_migrate');
    const s = await waitFor('MASTER handed away', async () => {
      const x = await status();
      return x.activeNode === other(master) && !x.plannedFailover ? x : undefined;
    }, 60_000);
    const { failed } = await client.stop();
    expect(failed).toBe(0);
    expect(s.lastFailover).toMatchObject({ from: master, reason: 'MaintenanceEvent' });
    expect(nodeOf(s, master)?.maintenance).toBe('DigitalOcean announced maintenance: live_migrate');
    await fetch(`${e2e.sandbox.digitalocean.url}/_sandbox/droplets/${dropletId(master)}/maintenance_event`, { method: 'PUT', body: '' });
    await waitFor('the notice gone from status', async () =>
      (nodeOf(await status(), master)?.maintenance === undefined) || undefined, 30_000);
  }, 180_000);

  it('kubectl halb logs prints the failover script\'s and HAProxy\'s log lines, ' +
    'with the operator\'s access or the user\'s own ssh', async () => {
    const holder = (await settled()).activeNode!;
    const r = await plugin(['logs', 'basic', holder, '--tail', '20']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`==> ${holder}: failover (/var/log/halb-failover.log) <==`);
    expect(r.stdout).toMatch(/halb-failover\[\d+\]: action \d+ completed: \S+ is on droplet \d+/);
    expect(r.stdout).toContain(`==> ${holder}: haproxy (/var/log/haproxy.log) <==`);
    const own = await plugin(['logs', 'basic', holder, '--ssh', '--ssh-option', `IdentityFile=${join(e2e.stateDir, 'operator_ed25519')}`,
      '--ssh-option', 'StrictHostKeyChecking=no', '--ssh-option', 'UserKnownHostsFile=/dev/null', '-o', 'json']);
    expect(own.code).toBe(0);
    const parsed = JSON.parse(own.stdout) as { node: string; logs: { name: string; lines: string[] }[] }[];
    expect(parsed[0]!.logs.map((l) => l.name)).toEqual(['failover', 'haproxy']);
  }, 60_000);

  it('two nodes on one physical machine show NodesColocated; ' +
    'opted in, the BACKUP is replaced until they are apart, with no failover', async () => {
    const holder = (await settled()).activeNode!;
    e2e.sandbox.digitalocean.state.placeOnOneHost([dropletId('basic-0'), dropletId('basic-1')]);
    const told = await waitFor('NodesColocated', async () => {
      const x = await status();
      return condition(x, 'NodesColocated') ? x : undefined;
    }, 60_000);
    expect(condition(told, 'NodesColocated')?.message).toMatch(/^basic-0 and basic-1 share a physical machine/);
    const client = e2e.clientLoop(ip);
    expect((await e2e.kubectl(['patch', 'halb', 'basic', '--type=merge', '-p', '{"spec":{"droplets":{"replaceColocated":true}}}'])).code)
      .toBe(0);
    const apart = await waitFor('the nodes apart, the pair Ready again', async () => {
      const x = await status();
      return !condition(x, 'NodesColocated') && condition(x, 'Ready')?.status === 'True' &&
        x.nodes?.every((n) => n.vrrpState === 'MASTER' || n.vrrpState === 'BACKUP') ? x : undefined;
    }, 180_000);
    const { failed } = await client.stop();
    expect(failed).toBe(0);
    expect(apart.activeNode).toBe(holder);
    expect(await events()).toMatch(new RegExp(`DropletDeleted\\s+deleted droplet ${other(holder)} \\(id \\d+\\): Colocated`));
    expect(e2e.sandbox.digitalocean.state.neighborIds()).toEqual([]);
  }, 300_000);
});
