import { describe, expect, it } from 'vitest';
import { renderMetadataTree } from '../../src/sandbox/fabric/metadata.ts';
import {
  renderFloatingMapBatch, renderDropletInit, renderSshdConfig, shellQuote, validateFloatingAssignment,
} from '../../src/sandbox/fabric/render.ts';
import { ensureSystemPackages, installLine, missingPackages } from '../../src/sandbox/fabric/system.ts';

const droplet = { id: 4242, name: 'lb-1', publicIPv4: '203.0.113.10', anchorIPv4: '10.17.0.10', privateIPv4: '10.10.1.10' };

describe('metadata tree', () => {
  it.each<[string, string]>([
    ['metadata/v1/id', '4242'],
    ['metadata/v1/hostname', 'lb-1'],
    ['metadata/v1/interfaces/public/0/ipv4/address', '203.0.113.10'],
    ['metadata/v1/interfaces/public/0/ipv4/netmask', '255.255.255.0'],
    ['metadata/v1/interfaces/public/0/ipv4/gateway', '203.0.113.1'],
    ['metadata/v1/interfaces/public/0/anchor_ipv4/address', '10.17.0.10'],
    ['metadata/v1/interfaces/public/0/anchor_ipv4/netmask', '255.255.0.0'],
    ['metadata/v1/interfaces/public/0/anchor_ipv4/gateway', '10.17.0.1'],
    ['metadata/v1/interfaces/private/0/ipv4/address', '10.10.1.10'],
    ['metadata/v1/reserved_ip/ipv4/active', 'false'],
    ['metadata/v1/floating_ip/ipv4/active', 'false'],
    ['metadata/v1/region', 'nyc1'],
  ])('%s is %j', (path, value) => expect(renderMetadataTree(droplet).get(path)).toBe(value));

  it('has no reserved IP address while none is held', () => {
    expect(renderMetadataTree(droplet).has('metadata/v1/reserved_ip/ipv4/ip_address')).toBe(false);
  });

  it('reports a held floating IP under both names and in v1.json', () => {
    const tree = renderMetadataTree({ ...droplet, floatingIPv4: '198.51.100.5' });
    expect(tree.get('metadata/v1/reserved_ip/ipv4/active')).toBe('true');
    expect(tree.get('metadata/v1/reserved_ip/ipv4/ip_address')).toBe('198.51.100.5');
    expect(tree.get('metadata/v1/floating_ip/ipv4/ip_address')).toBe('198.51.100.5');
    const json = JSON.parse(tree.get('metadata/v1.json')!);
    expect(json.reserved_ip.ipv4).toEqual({ active: true, ip_address: '198.51.100.5' });
    expect(json.droplet_id).toBe(4242);
    expect(json.interfaces.public[0].anchor_ipv4.ip_address).toBe('10.17.0.10');
  });

  it('indexes each directory with its children, directories with a slash', () => {
    const tree = renderMetadataTree({
      ...droplet, metadata: { tags: ['web', 'lb:x'], publicKeys: ['ssh-ed25519 AAAA a', 'ssh-ed25519 BBBB b'] },
    });
    expect(tree.get('metadata/v1/')!.split('\n'))
      .toEqual(expect.arrayContaining(['id', 'hostname', 'interfaces/', 'reserved_ip/', 'tags/']));
    expect(tree.get('metadata/v1/interfaces/')).toBe('public/\nprivate/');
    expect(tree.get('metadata/v1/interfaces/public/0/anchor_ipv4/')).toBe('address\nnetmask\ngateway');
    expect(tree.get('metadata/v1/tags/')).toBe('web\nlb:x');
    expect(tree.get('metadata/v1/public-keys')).toBe('ssh-ed25519 AAAA a\nssh-ed25519 BBBB b');
  });

  it('announces a maintenance event where DigitalOcean documents it and beside the other keys, empty when none', () => {
    expect(renderMetadataTree(droplet).get('v1/maintenance_event')).toBe('');
    const tree = renderMetadataTree({ ...droplet, metadata: { maintenanceEvent: 'live_migrate' } });
    expect(tree.get('v1/maintenance_event')).toBe('live_migrate');
    expect(tree.get('metadata/v1/maintenance_event')).toBe('live_migrate');
    expect(tree.get('metadata/v1/')!.split('\n')).toContain('maintenance_event');
  });

  it('is deterministic', () => {
    expect([...renderMetadataTree(droplet)]).toEqual([...renderMetadataTree(droplet)]);
  });
});

describe('floating-IP map batch', () => {
  it.each<[string, Record<string, string>, string]>([
    ['empty', {}, 'flush map ip t fip\n'],
    ['one', { '198.51.100.5': '10.17.0.10' }, 'flush map ip t fip\nadd element ip t fip { 198.51.100.5 : 10.17.0.10 }\n'],
    ['sorted by address', { '198.51.100.20': '10.17.0.11', '198.51.100.3': '10.17.0.10' },
      'flush map ip t fip\nadd element ip t fip { 198.51.100.3 : 10.17.0.10, 198.51.100.20 : 10.17.0.11 }\n'],
  ])('%s', (_label, map, batch) => expect(renderFloatingMapBatch('t', map)).toBe(batch));

  it.each<[string, string | null, RegExp]>([
    ['203.0.113.5', '10.17.0.10', /^floating IP: 203\.0\.113\.5 is outside 198\.51\.100\.0\/24/],
    ['198.51.100.5', '10.10.0.21', /^anchorIPv4: 10\.10\.0\.21 is outside 10\.17\.0\.0\/16/],
    ['198.51.100', null, /^floating IP: /],
  ])('rejects %s -> %s', (ip, anchor, error) => expect(() => validateFloatingAssignment(ip, anchor)).toThrow(error));
});

describe('droplet files', () => {
  it('sshd is laid out as on Ubuntu: drop-ins first, stock defaults (hardening is the operator\'s job)', () => {
    const config = renderSshdConfig('lb-1');
    expect(config.split('\n').filter((l) => l && !l.startsWith('#'))[0]).toBe('Include /etc/ssh/sshd_config.d/*.conf');
    expect(config).not.toMatch(/^PasswordAuthentication/m);
  });

  it('init quotes the folder and waits the boot delay before sshd', () => {
    const init = renderDropletInit({ name: 'lb-1', dir: "/tmp/it's here", bootDelayMs: 1500 });
    expect(init).toContain(`D='/tmp/it'\\''s here'`);
    expect(init.indexOf('sleep 1.500')).toBeLessThan(init.indexOf('/usr/sbin/sshd'));
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
  });
});

describe('system packages', () => {
  it('lists each missing package once, in order, and the install line', () => {
    const present = new Set(['ip', 'nft', 'ssh-keygen', 'curl', 'fuser', 'haproxy', 'keepalived', 'perl']);
    const missing = missingPackages((b) => (present.has(b) ? `/usr/bin/${b}` : undefined));
    expect(missing).toEqual(['openssh-server', 'nginx-light', 'util-linux']);
    expect(installLine(missing)).toBe('apt-get update && apt-get install -y --no-install-recommends openssh-server nginx-light util-linux');
  });

  it('finds nothing missing on this machine', () => expect(missingPackages()).toEqual([]));

  it('without root, installs nothing and returns the exact install line', async () => {
    const said: string[] = [];
    const check = await ensureSystemPackages({
      isRoot: false, find: (b) => (b === 'nginx' ? undefined : `/usr/bin/${b}`), say: (l) => said.push(l),
    });
    expect(check).toEqual({
      ok: false, missing: ['nginx-light'],
      installLine: 'apt-get update && apt-get install -y --no-install-recommends nginx-light',
      reason: 'missing packages: nginx-light; run as root: apt-get update && apt-get install -y --no-install-recommends nginx-light',
    });
    expect(said).toEqual([]);
  });

  it('with everything present, does nothing', async () => {
    expect(await ensureSystemPackages({ isRoot: true, find: (b) => `/usr/bin/${b}` })).toEqual({ ok: true, installed: [] });
  });
});
