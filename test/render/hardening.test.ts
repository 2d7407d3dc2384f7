import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderAuthorizedKeys, renderFirewall, renderSshdDropIn, type FirewallInput } from '../../src/render/hardening.ts';
import { RenderError } from '../../src/render/errors.ts';
import { defaultSettings, renderNodes, placeholderFacts } from '../../src/render/render.ts';
import { baseSecrets, makeLB } from './helpers.ts';

const base: FirewallInput = {
  nodeName: 'web-0', peerIPv4s: ['10.10.0.12'], frontendAddress: '10.20.0.11', frontendPorts: [80], frontendSourceCIDRs: [], sshPort: 22,
  sshSourceCIDRs: [], metricsPort: 8404, metricsSourceCIDRs: ['10.10.0.0/16'],
};
const rules = (input: Partial<FirewallInput>) => renderFirewall({ ...base, ...input }).split('\n').map((l) => l.trim());

describe('host firewall', () => {
  const rows: [string, Partial<FirewallInput>, string[], string[]][] = [
    ['drops by default and keeps loopback and replies', {},
      ['type filter hook input priority filter; policy drop;', 'iif "lo" accept', 'ct state established,related accept'], []],
    ['takes VRRP only from the peers', { peerIPv4s: ['10.10.0.12', '10.10.0.13'] },
      ['ip protocol 112 ip saddr { 10.10.0.12, 10.10.0.13 } accept'], ['ip protocol 112 accept']],
    ['opens every frontend port once, to everyone, on the address the frontends bind', { frontendPorts: [443, 80, 443] },
      ['ip daddr 10.20.0.11 tcp dport { 80, 443 } accept'], ['tcp dport { 80, 443 } accept']],
    ['opens the frontends to the listed sources only (a Service\'s loadBalancerSourceRanges)',
      { frontendPorts: [80, 443], frontendSourceCIDRs: ['203.0.113.0/24', '198.51.100.7/32'] },
      ['ip daddr 10.20.0.11 ip saddr { 203.0.113.0/24, 198.51.100.7/32 } tcp dport { 80, 443 } accept'],
      ['ip daddr 10.20.0.11 tcp dport { 80, 443 } accept']],
    ['opens SSH to all when no source is listed', {}, ['tcp dport 22 accept'], []],
    ['opens SSH to the listed sources only', { sshSourceCIDRs: ['203.0.113.0/24', '198.51.100.7/32'] },
      ['tcp dport 22 ip saddr { 203.0.113.0/24, 198.51.100.7/32 } accept'], ['tcp dport 22 accept']],
    ['opens metrics to the listed sources only', { metricsSourceCIDRs: ['10.0.0.0/8'] },
      ['tcp dport 8404 ip saddr 10.0.0.0/8 accept', 'tcp dport 8404 drop'], []],
    ['lets path MTU discovery through', {}, ['icmp type { destination-unreachable, time-exceeded, parameter-problem } accept'], []],
  ];
  it.each(rows)('%s', (_name, input, present, absent) => {
    const out = rules(input);
    for (const line of present) expect(out).toContain(line);
    for (const line of absent) expect(out).not.toContain(line);
  });

  // Even a frontend port the renderer would refuse cannot widen SSH or metrics: their rules come
  // first and end in a drop, and frontend rules match the anchor address only.
  it('decides SSH and metrics before any frontend rule, whatever ports the frontends name', () => {
    const out = rules({ frontendPorts: [22, 80, 8404], sshSourceCIDRs: ['203.0.113.0/24'] });
    const at = (line: string) => out.indexOf(line);
    const frontend = at('ip daddr 10.20.0.11 tcp dport { 22, 80, 8404 } accept');
    expect(frontend).toBeGreaterThan(0);
    for (const line of [
      'tcp dport 22 ip saddr 203.0.113.0/24 accept', 'tcp dport 22 drop',
      'tcp dport 8404 ip saddr 10.10.0.0/16 accept', 'tcp dport 8404 drop',
    ]) {
      expect(at(line)).toBeGreaterThan(0);
      expect(at(line)).toBeLessThan(frontend);
    }
    expect(out.filter((l) => /^tcp dport [^ ]+ accept$/.test(l))).toEqual([]); // nothing open on every address
  });

  const ports = [['port', 22], ['port', 8404], ['port', 8405], ['tls.port', 22]];
  it.each(ports)('render refuses a frontend %s %i, which the node itself uses', (field, port) => {
    const frontend = field === 'port'
      ? { name: 'www', port, defaultBackend: 'web' }
      : { name: 'www', port: 80, defaultBackend: 'web', tls: { secretRef: { name: 'www-tls' }, port } };
    // makeLB validates; build the object past validation, as a hostile caller could.
    const lb = makeLB('web');
    lb.spec.frontends = [{ ...lb.spec.frontends[0]!, ...frontend } as typeof lb.spec.frontends[0]];
    expect(() => renderNodes({ lb, secrets: baseSecrets(), observed: placeholderFacts(lb), settings: defaultSettings() }))
      .toThrow(`spec.frontends[0].${field}`);
  });

  // A minimal image without netbase has no /etc/protocols: nft must still take the file (D2).
  it('loads with nft on a host without /etc/protocols', () => {
    const dir = mkdtempSync(join(tmpdir(), 'halb-fw-'));
    try {
      writeFileSync(join(dir, 'firewall.nft'), renderFirewall({ ...base, peerIPv4s: ['10.10.0.12', '10.10.0.13'] }));
      // A private mount namespace hides the machine's /etc/protocols; a private network
      // namespace keeps the check away from the machine's own rules.
      const r = spawnSync('unshare', ['--net', '--mount', '--propagation', 'private', 'sh', '-c',
        'mount --bind /dev/null /etc/protocols && nft -c -f "$0"', join(dir, 'firewall.nft')], { encoding: 'utf8' });
      expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: '' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('replaces the whole table in one file, loadable whether or not the table exists', () => {
    expect(renderFirewall(base)).toMatch(/^table inet halb\ndelete table inet halb\ntable inet halb \{$/m);
  });

  it.each([
    ['sshSourceCIDRs', { sshSourceCIDRs: ['203.0.113.0/33'] }, 'spec.access.sshSourceCIDRs[0]'],
    ['metricsSourceCIDRs', { metricsSourceCIDRs: ['10.0.0.0/8', 'x; flush ruleset'] }, 'spec.access.metricsSourceCIDRs[1]'],
    ['frontendSourceCIDRs', { frontendSourceCIDRs: ['10.0.0.0/8 accept'] }, 'spec.access.frontendSourceCIDRs[0]'],
    ['a peer address', { peerIPv4s: ['10.10.0.300'] }, 'observed.nodes[].privateIPv4'],
  ])('refuses a bad %s, naming the field', (_name, input, field) => {
    expect(() => renderFirewall({ ...base, ...input })).toThrow(RenderError);
    expect(() => renderFirewall({ ...base, ...input })).toThrow(field);
  });

  it('defaults metrics to the VPC, else to the nodes themselves', () => {
    const lb = makeLB('web', {});
    const settings = defaultSettings();
    const facts = placeholderFacts(lb);
    const withVpc = renderNodes({ lb, secrets: baseSecrets(), observed: { ...facts, vpcCIDR: '10.10.0.0/16' }, settings });
    expect(withVpc[0]!.files.find((f) => f.path === '/etc/halb/firewall.nft')!.content)
      .toContain('tcp dport 8404 ip saddr 10.10.0.0/16 accept');
    const without = renderNodes({ lb, secrets: baseSecrets(), observed: facts, settings });
    expect(without[0]!.files.find((f) => f.path === '/etc/halb/firewall.nft')!.content)
      .toContain('tcp dport 8404 ip saddr { 10.10.0.11/32, 10.10.0.12/32 } accept');
  });
});

describe('sshd and authorized_keys', () => {
  it('turns passwords off and allows root by key only', () => {
    const text = renderSshdDropIn();
    for (const line of [
      'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'PermitRootLogin prohibit-password', 'PubkeyAuthentication yes',
    ]) {
      expect(text).toContain(`${line}\n`);
    }
  });

  const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBSJtqGrC4oHiwE3y6CO8Nc8X2tpL2mbGS2Pcm5KElIb halb-operator';
  it('holds exactly the keys given, once each', () => {
    const other = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 person@laptop';
    expect(renderAuthorizedKeys([key, other, key]).split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([key, other]);
  });

  it.each([
    ['no key at all', []],
    ['a line that is not a public key', ['-----BEGIN OPENSSH PRIVATE KEY-----']],
    ['a key with options smuggled in front', [`command="sh" ${key}`]],
    ['a key with a second line', [`${key}\nssh-ed25519 AAAA evil`]],
  ])('refuses %s', (_name, keys) => {
    expect(() => renderAuthorizedKeys(keys)).toThrow(RenderError);
  });

  it('is managed only when the keys are known', () => {
    const lb = makeLB('web', {});
    const facts = placeholderFacts(lb);
    const managed = renderNodes({
      lb, secrets: baseSecrets(), observed: { ...facts, nodes: facts.nodes.map((n) => ({ ...n, authorizedKeys: [key] })) },
      settings: defaultSettings(),
    });
    expect(managed[0]!.files.find((f) => f.path === '/root/.ssh/authorized_keys')).toMatchObject({ mode: 0o600 });
    const unmanaged = renderNodes({ lb, secrets: baseSecrets(), observed: facts, settings: defaultSettings() });
    expect(unmanaged[0]!.files.some((f) => f.path === '/root/.ssh/authorized_keys')).toBe(false);
  });
});
