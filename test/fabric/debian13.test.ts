// A droplet on the debian-13-x64 image: the image's own systemd boots as PID 1 in the droplet's
// network namespace, the real cloud-init applies the droplet's user_data (the NoCloud seed),
// ssh.service takes the key from DigitalOcean's SSH keys and presents the host key user_data
// gave it; power off, on, a crash and delete work, and leave nothing behind. Needs root,
// systemd-container and the image (`halb sandbox image`, built ahead: it downloads).
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloudInit, newHostKey, publicKeyFingerprint } from '../../src/digitalocean/cloud-init.ts';
import { hostKeyFingerprint } from '../../src/hosts/agent.ts';
import { renderSshdDropIn } from '../../src/render/hardening.ts';
import { DEBIAN_13, createFabric, destroyFabric, ensureRootfs, listNamespaces, type Fabric } from '../../src/sandbox/fabric/index.ts';
import { makeKeyPair, relaySshThrough, sshConnect, testPrefix } from './helpers.ts';
import { waitFor } from '../wait.ts';

const logger = pino({ level: 'warn' });
const prefix = testPrefix('d');
const work = mkdtempSync(join(tmpdir(), 'hft-debian13-'));
const stateDir = join(work, 'state');
const droplet = { name: 'deb-1', id: 301, publicIPv4: '203.0.113.30', anchorIPv4: '10.17.0.30', privateIPv4: '10.10.1.30' };
const hostKey = newHostKey(droplet.name);
let fabric: Fabric;
let key: { privateKey: string; publicKey: string };

beforeAll(async () => {
  await ensureRootfs({ log: logger });
  key = makeKeyPair(join(work, 'id'), 'operator');
  try {
    fabric = await createFabric({ stateDir, prefix, logger });
  } catch (e) {
    if (!/cannot route .* already routes it/.test((e as Error).message)) throw e;
    fabric = await createFabric({ stateDir, prefix, logger, hostLink: false });
    relaySshThrough(fabric.clientNamespace);
  }
  const userData = cloudInit({
    objectName: 'deb', nodeName: droplet.name, hostKey,
    sshdDropIn: { path: '/etc/ssh/sshd_config.d/00-halb.conf', content: renderSshdDropIn() },
  });
  await fabric.addDroplet({ ...droplet, image: DEBIAN_13.slug, sshPublicKeys: [key.publicKey], metadata: { userData } });
}, 300_000);

afterAll(async () => {
  try {
    await destroyFabric({ stateDir, prefix, logger });
  } finally {
    relaySshThrough(null);
    rmSync(work, { recursive: true, force: true });
  }
}, 120_000);

const exec = async (command: string) =>
  (await fabric.execInDroplet(droplet.name, ['sh', '-c', command], { timeoutMs: 30_000 })).stdout.trim();

describe(`a ${DEBIAN_13.slug} droplet`, () => {
  it('boots its own systemd, runs cloud-init on its user_data, and takes SSH with the pinned host key', async () => {
    await fabric.waitForDroplet(droplet.name, 180_000);
    expect(await exec('cat /proc/1/comm')).toBe('systemd');
    expect(await exec('. /etc/os-release; echo $VERSION_ID')).toBe('13');
    await waitFor('cloud-init to finish', async () =>
      (await exec('test -f /var/lib/cloud/instance/boot-finished && echo yes || echo no')) === 'yes', 180_000, 1000);
    expect(await exec('cloud-init status --format=json | grep -o \'"status": "[a-z]*"\' | head -1')).toBe('"status": "done"');
    // write_files and runcmd from user_data, the packages from the image.
    expect(await exec('cat /etc/halb/node')).toBe(`object=deb\nnode=${droplet.name}`);
    expect(await exec('sysctl -n net.ipv4.ip_nonlocal_bind')).toBe('1');
    expect(await exec('systemctl is-active ssh.service')).toBe('active');
    // Its root administers its network, as on a VM: a firewall table, a link.
    expect(await exec('nft add table inet probe && nft delete table inet probe && ' +
      'ip link set eth1 mtu 1400 && ip link set eth1 mtu 1500 && echo ok')).toBe('ok');
    expect(await exec('/usr/sbin/sshd -T | grep -i "^passwordauthentication"')).toBe('passwordauthentication no');
    expect(await exec('ls /etc/ssh/ | grep "^ssh_host_"')).toBe('ssh_host_ed25519_key\nssh_host_ed25519_key.pub');
    const { ssh, hostKey: presented } = await sshConnect(droplet.publicIPv4, key.privateKey);
    ssh.connection?.on('error', () => undefined);
    try {
      expect(hostKeyFingerprint(presented)).toBe(hostKey.fingerprint);
      expect((await ssh.execCommand('haproxy -v | head -1; keepalived --version 2>&1 | grep "^Keepalived v"')).stdout)
        .toMatch(/HAProxy version 3\.0\.\d+.*\nKeepalived v2\.3\.\d+/s);
    } finally {
      ssh.dispose();
    }
    expect(fabric.status().hosts.find((h) => h.name === droplet.name))
      .toMatchObject({ image: DEBIAN_13.slug, booted: true, hostKey: hostKey.publicKey });
    expect(publicKeyFingerprint(hostKey.publicKey)).toBe(hostKey.fingerprint);
  }, 400_000);

  it('powers off and on with its files and host key kept, and cloud-init does not run again', async () => {
    await exec('echo kept > /root/marker');
    await fabric.stopDroplet(droplet.name);
    expect(fabric.status().hosts.find((h) => h.name === droplet.name)).toMatchObject({ running: false });
    expect(await fabric.dropletPids(droplet.name)).toEqual([]);
    await fabric.startDroplet(droplet.name);
    await fabric.waitForDroplet(droplet.name, 180_000);
    expect(await exec('cat /root/marker')).toBe('kept');
    // cloud-init runs at every boot, but its per-instance part (user_data) only once.
    await waitFor('cloud-init to finish again', async () =>
      (await exec('test -f /var/lib/cloud/instance/boot-finished && echo yes || echo no')) === 'yes', 180_000, 1000);
    expect(await exec('ls /var/lib/cloud/instances')).toBe(String(droplet.id));
    expect(await exec('grep -c "running \'modules:final\'" /var/log/cloud-init-output.log')).toBe('2');
    expect(await exec('grep -c "Removed \'/etc/systemd/system/multi-user.target.wants/keepalived.service\'" ' +
      '/var/log/cloud-init-output.log')).toBe('1');
    const { ssh, hostKey: presented } = await sshConnect(droplet.publicIPv4, key.privateKey);
    ssh.connection?.on('error', () => undefined);
    ssh.dispose();
    expect(hostKeyFingerprint(presented)).toBe(hostKey.fingerprint);
  }, 400_000);

  it('is deleted with every process, mount and file', async () => {
    await fabric.removeDroplet(droplet.name);
    expect(await listNamespaces()).not.toContain(`${prefix}-${droplet.name}`);
    expect(fabric.status().hosts.map((h) => h.name)).not.toContain(droplet.name);
    // Its overlay lived in the mount namespace of its boot: no process is left to hold it.
    expect(readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        return readFileSync(`/proc/${p}/mounts`, 'utf8').includes(work);
      } catch {
        return false;
      }
    })).toEqual([]);
  }, 120_000);
});
