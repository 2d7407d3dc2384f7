// A pair with one node on each image, as during an image change: this machine's keepalived 2.2.7
// and HAProxy 2.6 (no systemd) next to Debian 13's keepalived 2.3 and HAProxy 3.0 run by their
// systemd units. Each node gets the files rendered for its own versions through the real host
// agent; the pair elects one MASTER and fails over both ways when HAProxy stops on the MASTER.
// Needs root, systemd-container and the debian-13-x64 image.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateHALoadBalancer } from '../../src/api/validate.ts';
import { cloudInit } from '../../src/digitalocean/cloud-init.ts';
import { HostAgent } from '../../src/hosts/agent.ts';
import { startOrReloadScript } from '../../src/hosts/remote.ts';
import { createLogger } from '../../src/log.ts';
import { defaultSettings, renderNodes } from '../../src/render/index.ts';
import { renderSshdDropIn } from '../../src/render/hardening.ts';
import { DEBIAN_13, createFabric, destroyFabric, ensureRootfs, type Fabric } from '../../src/sandbox/fabric/index.ts';
import { makeKeyPair, testPrefix } from '../fabric/helpers.ts';
import { waitFor } from '../wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'halb-mixed-'));
const log = createLogger({ level: 'silent' });
const prefix = testPrefix('m');
let fabric: Fabric;
const key = makeKeyPair(join(dir, 'operator'), 'operator');
const nodes = [
  { name: 'mix-0', id: 7101, publicIPv4: '203.0.113.50', anchorIPv4: '10.17.0.50', privateIPv4: '10.10.3.50', image: 'ubuntu-24-04-x64' },
  { name: 'mix-1', id: 7102, publicIPv4: '203.0.113.51', anchorIPv4: '10.17.0.51', privateIPv4: '10.10.3.51', image: DEBIAN_13.slug },
];

const lb = validateHALoadBalancer({
  apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name: 'mix', uid: 'u-mix' },
  spec: {
    region: 'nyc3',
    credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'k' } },
    frontends: [{ name: 'www', port: 80, defaultBackend: 'web' }],
    backends: [{ name: 'web', servers: [{ name: 's1', address: '10.10.0.21' }] }],
  },
}).object!;

beforeAll(async () => {
  await ensureRootfs({ log });
  fabric = await createFabric({ stateDir: join(dir, 'state'), prefix, logger: log });
  for (const n of nodes) {
    const userData = cloudInit({
      objectName: 'mix', nodeName: n.name, sshdDropIn: { path: '/etc/ssh/sshd_config.d/00-halb.conf', content: renderSshdDropIn() },
    });
    await fabric.addDroplet({ ...n, sshPublicKeys: [key.publicKey], metadata: { region: 'nyc3', userData } });
  }
  for (const n of nodes) await fabric.waitForDroplet(n.name, 180_000);
}, 300_000);
afterAll(async () => {
  await destroyFabric({ stateDir: join(dir, 'state'), prefix, logger: log });
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

const exec = async (node: string, command: string) =>
  (await fabric.execInDroplet(node, ['sh', '-c', command], { timeoutMs: 30_000 })).stdout.trim();
const vrrpState = (node: string) => exec(node, 'cat /run/halb/vrrp-state 2>/dev/null || true');
/** HAProxy stops on a node and stays stopped (systemd would otherwise restart it at once). */
const stopHAProxy = (node: string) => exec(node, '[ -d /run/systemd/system ] && systemctl stop haproxy || kill "$(cat /run/haproxy.pid)"');

describe('a mixed pair, one node on each image', () => {
  it('applies the files rendered for each node\'s own versions, through the host agent', async () => {
    const versions: Record<string, { keepalived: string; haproxy: string }> = {};
    for (const n of nodes) {
      // The agent reads a Debian 13 node once its cloud-init finished, as the operator does.
      const state = await waitFor(`${n.name} booted`, async () => {
        const agent = await HostAgent.connect({ host: n.publicIPv4, privateKey: key.privateKey }).catch(() => undefined);
        if (!agent) return undefined;
        try {
          const s = await agent.readState();
          return s.booted ? s : undefined;
        } finally {
          agent.close();
        }
      }, 180_000, 1000);
      versions[n.name] = { keepalived: state.keepalivedVersion!, haproxy: state.haproxyVersion! };
    }
    expect(versions['mix-0']!.keepalived).toMatch(/^2\.2\./);
    expect(versions['mix-1']!.keepalived).toMatch(/^2\.3\./);
    const rendered = renderNodes({
      lb, secrets: [{ name: 'do-api', data: { token: 'dop_v1_test' } }],
      observed: {
        floatingIP: '198.51.100.50',
        nodes: nodes.map((n) => ({ name: n.name, privateIPv4: n.privateIPv4, anchorIPv4: n.anchorIPv4 })),
      },
      settings: defaultSettings({ defaultVersions: versions['mix-0']!, versions }),
    });
    const keepalivedConf = (i: number) => rendered[i]!.files.find((f) => f.path.endsWith('keepalived.conf'))!.content;
    expect(keepalivedConf(0)).toContain('    interval 1\n');
    expect(keepalivedConf(1)).toContain('    interval 0.2\n');
    for (const [i, n] of nodes.entries()) {
      const agent = await HostAgent.connect({ host: n.publicIPv4, privateKey: key.privateKey });
      try {
        expect(await agent.apply(rendered[i]!.files, rendered[i]!.configHash, await agent.readState()))
          .toMatchObject({ outcome: 'applied' });
      } finally {
        agent.close();
      }
    }
    // On Debian the daemons run as their units, and the firewall's unit is enabled for boot.
    expect(await exec('mix-1', 'systemctl is-active haproxy keepalived')).toBe('active\nactive');
    expect(await exec('mix-1', 'systemctl is-enabled haproxy keepalived halb-firewall')).toBe('enabled\nenabled\nenabled');
  }, 400_000);

  it('elects one MASTER, then fails over both ways', async () => {
    const states = () => Promise.all(nodes.map((n) => vrrpState(n.name)));
    const elected = await waitFor('one MASTER and one BACKUP', async () => {
      const s = await states();
      return [...s].sort().join() === 'BACKUP,MASTER' ? s : undefined;
    }, 60_000, 250);
    let master = nodes[elected.indexOf('MASTER')]!.name;
    for (let round = 0; round < 2; round++) {
      const other = nodes.find((n) => n.name !== master)!.name;
      await stopHAProxy(master);
      await waitFor(`${other} MASTER after HAProxy stopped on ${master}`, async () => (await vrrpState(other)) === 'MASTER', 30_000, 100);
      await exec(master, startOrReloadScript());
      await waitFor(`${master} BACKUP again`, async () => (await vrrpState(master)) === 'BACKUP', 30_000, 250);
      master = other;
    }
    // Both ways: the MASTER of the first round is MASTER again after the second.
    expect(master).toBe(nodes[elected.indexOf('MASTER')]!.name);
  }, 120_000);

  it('hands daemons started outside systemd over to their units on the Debian node', async () => {
    // As after a start by hand (or one run before systemd was up): the units are inactive while
    // keepalived and HAProxy hold their pid files, so the units' own start would fail.
    await exec('mix-1', 'systemctl stop keepalived haproxy && haproxy -D -p /run/haproxy.pid -f /etc/haproxy/haproxy.cfg && ' +
      'keepalived -p /run/keepalived.pid -f /etc/keepalived/keepalived.conf');
    await waitFor('keepalived by hand', async () => (await exec('mix-1', 'systemctl is-active keepalived || true')) === 'inactive' &&
      (await exec('mix-1', 'kill -0 "$(cat /run/keepalived.pid)" && echo alive')) === 'alive', 10_000, 100);
    await exec('mix-1', startOrReloadScript());
    expect(await exec('mix-1', 'systemctl is-active haproxy keepalived')).toBe('active\nactive');
    // The pid files name the units' processes: no copy is left beside them.
    expect(await exec('mix-1', 'systemctl show -p MainPID --value keepalived')).toBe(await exec('mix-1', 'cat /run/keepalived.pid'));
    expect(await exec('mix-1', 'pgrep -c -x keepalived')).toBe('2'); // the parent and its VRRP child
    // Run again, the script leaves the units' own processes alone (reloads, no restart).
    const mainPids = 'systemctl show -p MainPID --value haproxy keepalived';
    const before = await exec('mix-1', mainPids);
    await exec('mix-1', startOrReloadScript());
    expect(await exec('mix-1', mainPids)).toBe(before);
    await waitFor('mix-1 BACKUP again', async () => (await vrrpState('mix-1')) === 'BACKUP', 60_000, 250);
  }, 120_000);

  it('reboots the Debian node into the same state: firewall, HAProxy and keepalived started by systemd at boot', async () => {
    await fabric.rebootDroplet('mix-1');
    await fabric.waitForDroplet('mix-1', 180_000);
    await waitFor('the units up after boot', async () =>
      (await exec('mix-1', 'systemctl is-active halb-firewall haproxy keepalived ssh || true')) === 'active\nactive\nactive\nactive',
    120_000, 500);
    // nft prints protocol 112 by its name where /etc/protocols has it.
    expect(await exec('mix-1', 'nft list table inet halb | grep -cE "ip protocol (112|vrrp) ip saddr 10.10.3.50 accept"')).toBe('1');
    await waitFor('mix-1 BACKUP again', async () => (await vrrpState('mix-1')) === 'BACKUP', 60_000, 250);
    expect(await vrrpState('mix-0')).toBe('MASTER');
  }, 300_000);
});
