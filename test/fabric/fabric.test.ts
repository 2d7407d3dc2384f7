// The fabric on real namespaces, sshd, nginx and nftables. Needs root, iproute2, nftables,
// openssh-server, nginx-light and curl. Runs as one sequence on one fabric to stay lean.
import { execFileSync, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFabric, destroyFabric, fabricHooks, listNamespaces, type Fabric } from '../../src/sandbox/fabric/index.ts';
import { curlIn, leftovers, makeKeyPair, pidAlive, relaySshThrough, sshConnect, sshRun, tcpProbe, testPrefix } from './helpers.ts';

const logger = pino({ level: 'warn' });
const prefix = testPrefix('f');
const otherPrefix = testPrefix('g');
const work = mkdtempSync(join(tmpdir(), 'hft-fabric-'));
const stateDir = join(work, 'state');
const otherStateDir = join(work, 'other');
const crashPrefix = testPrefix('c');
const crashStateDir = join(work, 'crash');
const FIP = '198.51.100.5';
const lb1 = { name: 'lb-1', id: 101, publicIPv4: '203.0.113.10', anchorIPv4: '10.17.0.10', privateIPv4: '10.10.1.10' };
const lb2 = { name: 'lb-2', id: 102, publicIPv4: '203.0.113.11', anchorIPv4: '10.17.0.11', privateIPv4: '10.10.1.11' };
const lb3 = { name: 'lb-3', id: 103, publicIPv4: '203.0.113.12', anchorIPv4: '10.17.0.12', privateIPv4: '10.10.1.12' };

let fabric: Fabric;
let linked = true;
let key: { privateKey: string; publicKey: string };
let wrongKey: { privateKey: string; publicKey: string };
const forwardingBefore = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');

// Each droplet answers HTTP on port 80 with its hostname and the address the request came to.
const nginxSite = 'server { listen 80 default_server; location / { return 200 "$hostname $server_addr\\n"; } }\n';

beforeAll(async () => {
  key = makeKeyPair(join(work, 'id_good'), 'good');
  wrongKey = makeKeyPair(join(work, 'id_wrong'), 'wrong');
  try {
    fabric = await createFabric({ stateDir, prefix, logger });
  } catch (e) {
    // Another sandbox on this machine holds the public ranges (CI never has one): test all
    // but the machine link, reaching droplets from the client namespace instead.
    if (!/cannot route .* already routes it/.test((e as Error).message)) throw e;
    console.log(`no machine link for these tests: ${(e as Error).message}`);
    linked = false;
    fabric = await createFabric({ stateDir, prefix, logger, hostLink: false });
    relaySshThrough(fabric.clientNamespace);
  }
  for (const d of [lb1, lb2]) {
    await fabric.addDroplet({ ...d, sshPublicKeys: [key.publicKey], metadata: { region: 'ams3', tags: ['lb', 'halb:test'] } });
  }
  await fabric.addBackend({ name: 'web-1', privateIPv4: '10.10.0.21' });
  for (const d of [lb1, lb2]) await fabric.waitForDroplet(d.name);
});

afterAll(async () => {
  try {
    await destroyFabric({ stateDir, prefix, logger });
    await destroyFabric({ stateDir: otherStateDir, prefix: otherPrefix, logger });
    await destroyFabric({ stateDir: crashStateDir, prefix: crashPrefix, logger });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

describe('a droplet', () => {
  it('accepts SSH as root with the right key', async () => {
    expect((await sshRun(lb1.publicIPv4, key.privateKey, 'id -un; hostname')).split('\n')).toEqual(['root', 'lb-1']);
  });

  it('refuses a wrong key', async () => {
    await expect(sshConnect(lb1.publicIPv4, wrongKey.privateKey)).rejects.toThrow(/authentication methods failed/);
  });

  it('keeps its host key across reconnects, and it is its own', async () => {
    const keys: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { ssh, hostKey } = await sshConnect(lb1.publicIPv4, key.privateKey);
      ssh.dispose();
      keys.push(hostKey.toString('base64'));
    }
    const other = await sshConnect(lb2.publicIPv4, key.privateKey);
    other.ssh.dispose();
    const recorded = fabric.status().hosts.find((h) => h.name === 'lb-1')?.hostKey?.split(' ')[1];
    expect(keys[0]).toBe(recorded);
    expect(keys[1]).toBe(keys[0]);
    expect(other.hostKey.toString('base64')).not.toBe(keys[0]);
    const machineKeys = execFileSync('sh', ['-c', 'cat /etc/ssh/ssh_host_*_key.pub']).toString();
    expect(machineKeys).not.toContain(keys[0]);
  });

  it('keeps its host key and files across a power cycle', async () => {
    await sshRun(lb2.publicIPv4, key.privateKey, 'echo kept > /etc/halb-kept');
    const before = (await sshConnect(lb2.publicIPv4, key.privateKey));
    before.ssh.dispose();
    const oldPids = await fabric.dropletPids('lb-2');
    await fabric.stopDroplet('lb-2');
    expect(oldPids.filter(pidAlive)).toEqual([]);
    expect(fabric.status().hosts.find((h) => h.name === 'lb-2')?.running).toBe(false);
    await fabric.startDroplet('lb-2');
    await fabric.waitForDroplet('lb-2');
    const after = await sshConnect(lb2.publicIPv4, key.privateKey);
    const kept = await after.ssh.execCommand('cat /etc/halb-kept');
    after.ssh.dispose();
    expect(after.hostKey.equals(before.hostKey)).toBe(true);
    expect(kept.stdout).toBe('kept');
  });

  it('answers its metadata with DigitalOcean paths in plain text', async () => {
    const md = 'http://169.254.169.254/metadata/v1';
    const out = await sshRun(lb1.publicIPv4, key.privateKey, [
      `curl -sf ${md}/id`, `curl -sf ${md}/hostname`, `curl -sf ${md}/region`,
      `curl -sf ${md}/interfaces/public/0/anchor_ipv4/address`, `curl -sf ${md}/interfaces/private/0/ipv4/address`,
      `curl -sf ${md}/tags/`, `curl -s -o /dev/null -w '%{http_code} %{redirect_url}' ${md}`,
      `curl -s -o /dev/null -w '%{http_code}' ${md}/no-such-key`, `curl -sf -D - -o /dev/null ${md}/id | grep -i '^content-type'`,
    ].map((c) => `${c}; echo`).join('; '));
    expect(out.split(/\r?\n/)).toEqual([
      '101', 'lb-1', 'ams3', '10.17.0.10', '10.10.1.10', 'lb', 'halb:test',
      '301 http://169.254.169.254/metadata/v1/', '404', 'Content-Type: text/plain; charset=utf-8',
    ]);
    const other = await fabric.execInDroplet('lb-2', ['curl', '-sf', `${md}/id`]);
    expect(other.stdout).toBe('102');
  });
});

describe('isolation', () => {
  it('two droplets each run sshd and nginx on port 80 without seeing each other', async () => {
    for (const d of [lb1, lb2]) {
      await sshRun(d.publicIPv4, key.privateKey,
        `cat > /etc/nginx/sites-enabled/default && nginx && echo secret-${d.name} > /var/lib/secret && echo tmp-${d.name} > /tmp/secret`,
        nginxSite);
    }
    expect(await curlIn(fabric.clientNamespace, `http://${lb1.publicIPv4}/`)).toBe('lb-1 203.0.113.10\n');
    expect(await curlIn(fabric.clientNamespace, `http://${lb2.publicIPv4}/`)).toBe('lb-2 203.0.113.11\n');
    // The machine's own files are the droplets' image, untouched.
    expect(readFileSync('/etc/nginx/sites-enabled/default', 'utf8')).not.toContain('$hostname');
    expect(existsSync('/var/lib/secret')).toBe(false);

    for (const [me, other] of [[lb1, lb2], [lb2, lb1]] as const) {
      const view = await sshRun(me.publicIPv4, key.privateKey,
        'cat /var/lib/secret /tmp/secret; ps -e -o args=; cat /run/nginx.pid /run/sshd.pid');
      expect(view).toContain(`secret-${me.name}\ntmp-${me.name}\n`);
      expect(view).not.toContain(`secret-${other.name}`);
      expect(view).toContain(`/droplets/${me.name}/init.sh`);
      expect(view).not.toContain(`/droplets/${other.name}/init.sh`);
      expect(view).not.toContain('vitest');
      expect(view).toMatch(/nginx: master process/);
      expect(view).toMatch(/sshd: \/usr\/sbin\/sshd/);
    }
    const pids1 = await fabric.dropletPids('lb-1');
    const pids2 = await fabric.dropletPids('lb-2');
    expect(pids1.filter((p) => pids2.includes(p))).toEqual([]);
  });

  it('reaches backends over the VPC, which the client cannot reach', async () => {
    expect(await sshRun(lb1.publicIPv4, key.privateKey, 'curl -sf http://10.10.0.21/')).toBe('web-1');
    await expect(curlIn(fabric.clientNamespace, 'http://10.10.0.21/', 1)).rejects.toThrow();
  });

  it('has no way out of the sandbox', () => {
    const coreRoutes = execFileSync('ip', ['-n', fabric.coreNamespace, 'route']).toString();
    expect(coreRoutes).not.toMatch(/^default/m);
    // A route lookup only: the core has no way out, so no packet is ever sent.
    expect(() => execFileSync('ip', ['-n', fabric.coreNamespace, 'route', 'get', '192.0.2.1'], { stdio: 'pipe' })).toThrow(/unreachable/i);
    expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')).toBe(forwardingBefore);
  });

  it('reaches the machine only at the host link address, through routes for the two public ranges', async (ctx) => {
    if (!linked) ctx.skip();
    const hostIPv4 = fabric.hostIPv4!;
    const server: Server = createServer((_req, res) => res.end('api\n'));
    await new Promise<void>((r) => server.listen(0, hostIPv4, r));
    try {
      const port = (server.address() as { port: number }).port;
      expect(await sshRun(lb1.publicIPv4, key.privateKey, `curl -sf http://${hostIPv4}:${port}/`)).toBe('api');
    } finally {
      server.close();
    }
    const hostRoutes = JSON.parse(execFileSync('ip', ['-4', '-j', 'route', 'show', 'dev', `${prefix}-up`]).toString()) as
      Array<{ dst: string }>;
    expect(hostRoutes.map((r) => r.dst).sort()).toEqual([fabric.status().hostLink!.subnet, '198.51.100.0/24', '203.0.113.0/24'].sort());
  });
});

describe('floating IP', () => {
  it('DNATs to the anchor of the droplet that holds it, and moves at once', async () => {
    await expect(curlIn(fabric.clientNamespace, `http://${FIP}/`, 1)).rejects.toThrow();
    await fabric.setFloatingIP(FIP, lb1.anchorIPv4);
    expect(await curlIn(fabric.clientNamespace, `http://${FIP}/`)).toBe('lb-1 10.17.0.10\n');
    expect(await fabric.floatingMapInKernel()).toEqual({ [FIP]: lb1.anchorIPv4 });

    const t0 = performance.now();
    const { dnatChangedAt } = await fabric.setFloatingIP(FIP, lb2.anchorIPv4);
    const applied = performance.now() - t0;
    const committed = dnatChangedAt - (performance.timeOrigin + t0);
    let answer = '';
    const answers: string[] = [];
    while (answer !== 'lb-2 10.17.0.11\n' && performance.now() - t0 < 5_000) {
      answer = await curlIn(fabric.clientNamespace, `http://${FIP}/`).catch((e: Error) => `failed: ${e.message}`);
      answers.push(answer);
    }
    const tries = answers.length;
    const moved = performance.now() - t0;
    console.log(`floating IP re-point: DNAT committed ${committed.toFixed(1)} ms after the call; ` +
      `setFloatingIP resolved in ${applied.toFixed(1)} ms; ` +
      `first answer from the new holder ${moved.toFixed(1)} ms after the call (${tries} curl, each a new process)`);
    expect(answer).toBe('lb-2 10.17.0.11\n');
    // No request after the call reached the old holder (a failure on a busy machine may precede the answer).
    expect(answers.filter((a) => a.startsWith('lb-1'))).toEqual([]);
    expect(applied).toBeLessThan(1_000);

    // From the machine too (through the host link), and from another droplet (hairpin).
    if (linked) expect(execFileSync('curl', ['-sf', '-m', '2', `http://${FIP}/`]).toString()).toBe('lb-2 10.17.0.11\n');
    expect(await sshRun(lb1.publicIPv4, key.privateKey, `curl -sf -m 2 http://${FIP}/`)).toBe('lb-2 10.17.0.11');
    // The metadata follows.
    const md = 'http://169.254.169.254/metadata/v1/reserved_ip/ipv4';
    expect(await sshRun(lb2.publicIPv4, key.privateKey, `curl -sf ${md}/active; echo; curl -sf ${md}/ip_address`)).toBe(`true\n${FIP}`);
    const unassigned = await sshRun(lb1.publicIPv4, key.privateKey,
      `curl -sf ${md}/active; echo; curl -s -o /dev/null -w '%{http_code}' ${md}/ip_address`);
    expect(unassigned).toBe('false\n404');

    await fabric.setFloatingIP(FIP, null);
    await expect(curlIn(fabric.clientNamespace, `http://${FIP}/`, 1)).rejects.toThrow();
    expect(await fabric.floatingMapInKernel()).toEqual({});
  });

  it('shares the fabric with another process (the CLI next to the simulator)', async () => {
    const node = join(process.cwd(), 'node_modules', '.bin', 'node');
    execFileSync(node, [join('test', 'fabric', 'cli-run.ts'), 'fip', '198.51.100.6', 'lb-1', '--state-dir', stateDir]);
    expect(fabric.floatingIPs()).toEqual({ '198.51.100.6': lb1.anchorIPv4 });
    await fabric.setFloatingIP(FIP, lb2.anchorIPv4);
    expect(await fabric.floatingMapInKernel()).toEqual({ '198.51.100.6': lb1.anchorIPv4, [FIP]: lb2.anchorIPv4 });
    expect(await curlIn(fabric.clientNamespace, 'http://198.51.100.6/')).toBe('lb-1 10.17.0.10\n');
    await fabric.setFloatingIP('198.51.100.6', null);
    await fabric.setFloatingIP(FIP, null);
  });

  it('refuses bad input naming the field', async () => {
    await expect(fabric.setFloatingIP('203.0.113.9', lb1.anchorIPv4)).rejects.toThrow(/^floating IP: /);
    await expect(fabric.setFloatingIP(FIP, '10.10.1.10')).rejects.toThrow(/^anchorIPv4: /);
    await expect(fabric.addDroplet({ ...lb3, publicIPv4: lb1.publicIPv4, sshPublicKeys: [key.publicKey] }))
      .rejects.toThrow(/^publicIPv4: 203\.0\.113\.10 is already used by droplet lb-1/);
    await expect(fabric.addDroplet({ ...lb3, name: 'lb-1', sshPublicKeys: [key.publicKey] }))
      .rejects.toThrow(/^name: a host named "lb-1" exists already/);
    await expect(fabric.addDroplet({ ...lb3, sshPublicKeys: ['not a key'] })).rejects.toThrow(/^sshPublicKeys: /);
    expect((await listNamespaces()).filter((n) => n === `${prefix}-lb-3`)).toEqual([]);
  });

  it('leaves alone a namespace it did not make, and removes backends', async () => {
    execFileSync('ip', ['netns', 'add', `${prefix}-lb-x`]);
    try {
      await expect(fabric.addDroplet({ ...lb3, name: 'lb-x', sshPublicKeys: [key.publicKey] }))
        .rejects.toThrow(/exists already and this fabric did not make it/);
      expect(await listNamespaces()).toContain(`${prefix}-lb-x`);
      expect(fabric.status().hosts.map((h) => h.name)).not.toContain('lb-x');
    } finally {
      execFileSync('ip', ['netns', 'del', `${prefix}-lb-x`]);
    }
    await fabric.addBackend({ name: 'web-2', privateIPv4: '10.10.0.22' });
    expect(await sshRun(lb1.publicIPv4, key.privateKey, 'curl -sf http://10.10.0.22/')).toBe('web-2');
    await fabric.removeBackend('web-2');
    expect(await listNamespaces()).not.toContain(`${prefix}-web-2`);
    expect(fabric.status().hosts.map((h) => h.name)).not.toContain('web-2');
  });
});

describe('boot and deletion, driven through the simulator hooks', () => {
  it('answers SSH only after the boot delay', async () => {
    const hooks = fabricHooks(fabric);
    expect(hooks.allocateAddresses()).toEqual({ publicIPv4: lb3.publicIPv4, anchorIPv4: lb3.anchorIPv4, privateIPv4: lb3.privateIPv4 });
    const t0 = performance.now();
    await hooks.dropletCreated({ ...lb3, ...hooks.allocateAddresses(), sshPublicKeys: [key.publicKey], bootDelayMs: 1_500, tags: ['lb'] });
    expect(await tcpProbe(fabric.clientNamespace, lb3.publicIPv4, 22)).toBe('refused');
    expect(fabric.status().hosts.find((h) => h.name === 'lb-3')?.booted).toBe(false);
    await fabric.waitForDroplet('lb-3');
    expect(performance.now() - t0).toBeGreaterThanOrEqual(1_500);
    expect(await sshRun(lb3.publicIPv4, key.privateKey, 'hostname')).toBe('lb-3');
  });

  it('removing a droplet removes its namespace, processes and files', async () => {
    const bridgeMac = () =>
      (JSON.parse(execFileSync('ip', ['-n', fabric.coreNamespace, '-j', 'link', 'show', 'brpub']).toString()) as
        Array<{ address: string }>)[0]!.address;
    const macBefore = bridgeMac();
    const hooks = fabricHooks(fabric);
    // The interface's MAC is the one the metadata reports.
    expect(await sshRun(lb3.publicIPv4, key.privateKey,
      'cat /sys/class/net/eth0/address; curl -sf http://169.254.169.254/metadata/v1/interfaces/public/0/mac'))
      .toMatch(/^([0-9a-f:]{17})\n\1$/);
    await hooks.reservedIPAssigned(FIP, lb3.id);
    expect(await curlIn(fabric.clientNamespace, `http://${FIP}/`, 1).catch((e: Error) => e.message))
      .toMatch(/Connection refused|Failed to connect/); // lb-3 runs no web server
    expect(fabric.floatingIPs()).toEqual({ [FIP]: lb3.anchorIPv4 });
    const pids = await fabric.dropletPids('lb-3');
    expect(pids.length).toBeGreaterThanOrEqual(3); // unshare, init, sshd at least
    await hooks.dropletDeleted(lb3.id);
    expect(pids.filter(pidAlive)).toEqual([]);
    expect(await listNamespaces()).not.toContain(`${prefix}-lb-3`);
    expect(existsSync(join(stateDir, 'fabric', 'droplets', 'lb-3'))).toBe(false);
    expect(existsSync(join(stateDir, 'fabric', 'metadata', 'by-address', lb3.publicIPv4))).toBe(false);
    expect(fabric.floatingIPs()).toEqual({});
    expect(fabric.status().hosts.map((h) => h.name)).toEqual(['lb-1', 'lb-2', 'web-1', 'client']);
    // The gateway keeps its MAC as ports come and go, so the other droplets stay reachable.
    expect(bridgeMac()).toBe(macBefore);
    expect(await curlIn(fabric.clientNamespace, `http://${lb1.publicIPv4}/`)).toBe('lb-1 203.0.113.10\n');
  });
});

describe('web backends as droplets', () => {
  it('a droplet tagged web answers its name on the VPC, and its role is backend', async () => {
    const hooks = fabricHooks(fabric);
    await hooks.dropletCreated({
      name: 'web-9', id: 109, publicIPv4: '203.0.113.40', anchorIPv4: '10.17.0.40', privateIPv4: '10.10.0.29',
      sshPublicKeys: [key.publicKey], tags: ['web'],
    });
    try {
      await fabric.waitForDroplet('web-9');
      expect(await sshRun(lb1.publicIPv4, key.privateKey, 'curl -sf http://10.10.0.29/')).toBe('web-9');
      expect(fabric.status().hosts.find((h) => h.name === 'web-9')?.role).toBe('backend');
      expect(readFileSync('/etc/nginx/sites-enabled/default', 'utf8')).not.toContain('web-9');
    } finally {
      await hooks.dropletDeleted(109);
    }
  });
});

describe('the machine link', () => {
  it('refuses a second fabric while the public ranges are routed, leaving nothing behind', async (ctx) => {
    // Without our link, the routes belong to another sandbox that may go away meanwhile.
    if (!linked) ctx.skip();
    await expect(createFabric({ stateDir: otherStateDir, prefix: otherPrefix, logger })).rejects.toThrow(
      /cannot route 203\.0\.113\.0\/24 into the sandbox: the machine's namespace already routes it \(203\.0\.113\.0\/24 dev hft[a-z0-9]+-up\)/);
    expect((await listNamespaces()).filter((n) => n.startsWith(`${otherPrefix}-`))).toEqual([]);
    expect(existsSync(join(otherStateDir, 'fabric'))).toBe(false);
  });

  it('refuses a fabric whose prefix another state folder is using, touching nothing of it', async () => {
    await expect(createFabric({ stateDir: otherStateDir, prefix, logger, hostLink: false }))
      .rejects.toThrow(/^prefix: namespaces .* exist but .* does not record them; another sandbox uses the prefix/);
    expect(await listNamespaces()).toEqual(expect.arrayContaining([`${prefix}-core`, `${prefix}-client`, `${prefix}-lb-1`]));
    expect(existsSync(join(otherStateDir, 'fabric'))).toBe(false);
    expect(await curlIn(fabric.clientNamespace, `http://${lb1.publicIPv4}/`)).toBe('lb-1 203.0.113.10\n');
  });

  it('status lists every host with namespace, addresses and role', () => {
    const s = fabric.status();
    expect(s.hosts.map(({ name, namespace, role, publicIPv4, privateIPv4, anchorIPv4 }) =>
      ({ name, namespace, role, publicIPv4, privateIPv4, anchorIPv4 }))).toEqual([
      {
        name: 'lb-1', namespace: `${prefix}-lb-1`, role: 'loadbalancer',
        publicIPv4: lb1.publicIPv4, privateIPv4: lb1.privateIPv4, anchorIPv4: lb1.anchorIPv4,
      },
      {
        name: 'lb-2', namespace: `${prefix}-lb-2`, role: 'loadbalancer',
        publicIPv4: lb2.publicIPv4, privateIPv4: lb2.privateIPv4, anchorIPv4: lb2.anchorIPv4,
      },
      { name: 'web-1', namespace: `${prefix}-web-1`, role: 'backend', publicIPv4: null, privateIPv4: '10.10.0.21', anchorIPv4: null },
      { name: 'client', namespace: `${prefix}-client`, role: 'client', publicIPv4: '203.0.113.254', privateIPv4: null, anchorIPv4: null },
    ]);
    expect(s.hosts.every((h) => h.running)).toBe(true);
  });
});

describe('the real daemons', () => {
  it('keepalived (unicast VRRP on the VPC) and HAProxy (on the anchor IP) run in droplets and fail over', async () => {
    const poll = async (name: string, want: string) => {
      const deadline = Date.now() + 15_000;
      let got = '';
      while (Date.now() < deadline) {
        got = (await fabric.execInDroplet(name, ['sh', '-c', 'cat /run/keepalived.state 2>/dev/null || true'])).stdout.trim();
        if (got === want) return got;
        await new Promise((r) => setTimeout(r, 200));
      }
      return got;
    };
    for (const [me, peer, priority] of [[lb1, lb2, 150], [lb2, lb1, 100]] as const) {
      const keepalived = `vrrp_instance VI_1 {
  state BACKUP
  interface eth1
  virtual_router_id 51
  priority ${priority}
  advert_int 1
  unicast_src_ip ${me.privateIPv4}
  unicast_peer { ${peer.privateIPv4} }
  virtual_ipaddress { 10.10.255.1/32 dev eth1 }
  notify /etc/keepalived/notify.sh
}
`;
      const haproxy = 'global\n  daemon\n  pidfile /run/haproxy.pid\ndefaults\n  mode http\n' +
        '  timeout connect 1s\n  timeout client 5s\n  timeout server 5s\n' +
        `frontend fe\n  bind ${me.anchorIPv4}:8080\n  http-request return status 200 content-type text/plain string "${me.name} haproxy"\n`;
      await sshRun(me.publicIPv4, key.privateKey, 'mkdir -p /etc/keepalived && cat > /etc/keepalived/keepalived.conf', keepalived);
      await sshRun(me.publicIPv4, key.privateKey, 'cat > /etc/keepalived/notify.sh && chmod +x /etc/keepalived/notify.sh',
        '#!/bin/sh\necho "$3" > /run/keepalived.state\n');
      await sshRun(me.publicIPv4, key.privateKey,
        'cat > /etc/haproxy/haproxy.cfg && haproxy -c -q -f /etc/haproxy/haproxy.cfg && haproxy -f /etc/haproxy/haproxy.cfg', haproxy);
      await sshRun(me.publicIPv4, key.privateKey, 'keepalived -D -f /etc/keepalived/keepalived.conf -p /run/keepalived.pid');
    }
    expect(await poll('lb-1', 'MASTER')).toBe('MASTER');
    expect(await poll('lb-2', 'BACKUP')).toBe('BACKUP');
    await fabric.setFloatingIP(FIP, lb1.anchorIPv4);
    expect(await curlIn(fabric.clientNamespace, `http://${FIP}:8080/`)).toBe('lb-1 haproxy');
    // The machine's own keepalived and HAProxy files and pid files are untouched.
    expect(existsSync('/etc/keepalived/notify.sh')).toBe(false);
    expect(existsSync('/run/keepalived.state')).toBe(false);

    await fabric.execInDroplet('lb-1', ['sh', '-c', 'kill $(cat /run/keepalived.pid)']);
    expect(await poll('lb-2', 'MASTER')).toBe('MASTER');
    await fabric.setFloatingIP(FIP, lb2.anchorIPv4);
    expect(await curlIn(fabric.clientNamespace, `http://${FIP}:8080/`)).toBe('lb-2 haproxy');
    await fabric.setFloatingIP(FIP, null);
  });
});

describe('destroy', () => {
  it('leaves no namespace, process, link, route, nft table or state file, and is safe twice', async () => {
    const pids = [...(await fabric.dropletPids('lb-1')), ...(await fabric.dropletPids('lb-2'))];
    expect(leftovers(prefix, stateDir).length).toBeGreaterThan(0);
    await fabric.destroy();
    expect(leftovers(prefix, stateDir)).toEqual([]);
    expect(pids.filter(pidAlive)).toEqual([]);
    await destroyFabric({ stateDir, prefix, logger });
    expect(leftovers(prefix, stateDir)).toEqual([]);
  });
});

describe('a crash half-way', () => {
  it('leaves nothing that destroyFabric cannot remove', async () => {
    const node = join(process.cwd(), 'node_modules', '.bin', 'node');
    const made: string[] = [];
    // Kill the builder a little after a step it announced, so the kill lands inside the next step.
    for (const [step, delayMs] of [['core', 0], ['web-1', 40], ['lb-1', 120], ['lb-2', 15]] as const) {
      const child = spawn(node, [join('test', 'fabric', 'crash-child.ts'), crashStateDir, crashPrefix, key.publicKey, linked ? '1' : '0'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const exited = new Promise((r) => child.once('exit', r));
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.split('\n').includes(step)) resolve();
        });
        child.once('exit', () => reject(new Error(`builder exited before step ${step}: ${out}`)));
      });
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill('SIGKILL');
      await exited;
      // The builder's last command (an orphaned `ip` or `ssh-keygen`) finishes on its own; a real
      // `down` comes later than that.
      await new Promise((r) => setTimeout(r, 300));
      const left = leftovers(crashPrefix, crashStateDir);
      made.push(`${step}+${delayMs}ms: ${left.length}`);
      expect(left.length).toBeGreaterThan(0);
      await destroyFabric({ stateDir: crashStateDir, logger, prefix: crashPrefix });
      expect(leftovers(crashPrefix, crashStateDir)).toEqual([]);
    }
    console.log(`crash test: things left by the killed builder (step+delay: count): ${made.join(', ')}`);
  });
});
