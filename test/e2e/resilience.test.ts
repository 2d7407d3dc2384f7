// The operator as its own process, killed with SIGKILL: creation survives crashes at random
// points without duplicates, and the data plane fails over while the operator and the
// Kubernetes API are both down, with status catching up once they return.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, startE2E, waitFor, withImage, type E2E } from './helpers.ts';

let e2e: E2E;
const operators = new Set<ChildProcess>();
beforeAll(async () => { e2e = await startE2E({ operator: false }); }, 120_000);
afterEach((ctx) => e2e?.printLogIfFailed(ctx));
afterAll(async () => {
  for (const p of operators) p.kill('SIGKILL');
  await e2e?.close();
}, 120_000);

function startOperator(): ChildProcess {
  const { status } = e2e.sandbox;
  const child = spawn(process.execPath, [join(ROOT, 'bin/halb.mjs'), 'operator',
    '--kubeconfig', status.operatorKubeconfig, '--do-endpoint', status.digitalocean.endpoint,
    '--failover-api-url', status.digitalocean.endpoint.replace(/\/v2$/, ''),
    '--resync', '2', '--backstop-grace', '10', '--metrics-port=-1', '--no-leader-elect',
    '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'inherit'] });
  operators.add(child);
  child.on('exit', () => operators.delete(child));
  return child;
}

function kill(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

const manifest = (name: string) => `apiVersion: halb.dev/v1alpha1
kind: HALoadBalancer
metadata: {name: ${name}}
spec:
  region: nyc3
  credentials:
    tokenSecretRef: {name: do-api, key: token}
    sshKeySecretRef: {name: halb-ssh, key: ssh-privatekey}
  frontends: [{name: www, port: 80, defaultBackend: web}]
  backends: [{name: web, servers: [{name: web-1, address: 10.10.0.21}, {name: web-2, address: 10.10.0.22}]}]
`;

async function ready(name: string, timeoutMs = 120_000): Promise<Record<string, unknown>> {
  return waitFor(`${name} Ready`, async () => {
    const r = await e2e.kubectl(['get', 'halb', name, '-o', 'jsonpath={.status}']);
    if (r.code !== 0 || !r.stdout) return undefined;
    const s = JSON.parse(r.stdout) as { conditions?: { type: string; status: string }[] };
    return s.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? s as Record<string, unknown> : undefined;
  }, timeoutMs, 500);
}

describe('the operator as a process', () => {
  it('killed with SIGKILL at random points during creation, creates nothing twice and converges', async () => {
    expect((await e2e.kubectl(['apply', '-f', '-'], withImage(manifest('crash')))).code).toBe(0);
    const killedAfter: number[] = [];
    for (let run = 0; run < 5; run++) {
      const op = startOperator();
      const ms = 300 + Math.floor(Math.random() * 2500);
      killedAfter.push(ms);
      await new Promise((r) => setTimeout(r, ms));
      await kill(op);
    }
    console.log(`operator killed after ${killedAfter.join(', ')} ms`);
    const op = startOperator();
    const s = await ready('crash');
    const state = e2e.sandbox.digitalocean.state;
    const droplets = state.dropletViews().filter((d) => d.name.startsWith('crash-'));
    expect(droplets.map((d) => d.name).sort()).toEqual(['crash-0', 'crash-1']);
    const held = droplets.map((d) => state.reservedIpOnDroplet(d.id)).filter((ip) => ip !== undefined);
    expect(held).toEqual([s.floatingIP]);
    // No reserved IP was created and left behind by a crash.
    const all = (state.listReservedIps() as { ip: string; droplet: unknown }[]);
    expect(all.filter((r) => r.droplet === null || r.droplet === undefined)).toEqual([]);
    await kill(op);
  }, 240_000);

  it('fails over with the operator and the Kubernetes API down; status catches up when they return', async () => {
    let op = startOperator();
    const before = await ready('crash') as { floatingIP: string; activeNode: string };
    const master = before.activeNode;
    const other = master === 'crash-0' ? 'crash-1' : 'crash-0';
    const state = e2e.sandbox.digitalocean.state;
    const otherId = state.dropletViews().find((d) => d.name === other)!.id;

    await kill(op);
    await e2e.sandbox.kube.stop();
    // The MASTER host crashes: every process in it dies.
    await e2e.sandbox.fabric.stopDroplet(master);
    await waitFor('the reserved IP on the other node', () => state.reservedIpHolder(before.floatingIP) === otherId || undefined, 30_000);
    expect(await waitFor('traffic through the other node', async () =>
      (await e2e.curlFloatingIP(before.floatingIP, 1)) ?? undefined, 15_000))
      .toMatch(/^web-[12]$/);

    await e2e.sandbox.kube.start();
    op = startOperator();
    const after = await waitFor('status to catch up', async () => {
      const r = await e2e.kubectl(['get', 'halb', 'crash', '-o', 'jsonpath={.status}']);
      const s = r.code === 0 && r.stdout
        ? JSON.parse(r.stdout) as { activeNode?: string; lastFailover?: { from: string; to: string } }
        : {};
      return s.activeNode === other ? s : undefined;
    }, 60_000);
    expect(after.lastFailover).toMatchObject({ from: master, to: other });
    await e2e.sandbox.fabric.startDroplet(master);
    await kill(op);
  }, 240_000);
});
