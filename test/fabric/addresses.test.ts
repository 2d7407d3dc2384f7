import { describe, expect, it } from 'vitest';
import {
  HOST_LINK_CANDIDATES, allocateDropletAddresses, chooseFreeSubnet, hostLinkAddresses, netmaskOf, parseCidr, parseIPv4, prefixForStateDir,
  routesOverlapping, validateHostName, validatePrefix, type RouteEntry,
} from '../../src/sandbox/fabric/addresses.ts';
import { planHostLink } from '../../src/sandbox/fabric/fabric.ts';

// The routing table of these machines, as `ip -4 -j route show table all` reports it.
const machine: RouteEntry[] = [
  { dst: 'default', dev: 'eth0', table: 'main' },
  { dst: '192.0.2.0/24', dev: 'eth0', table: 'main' },
  { dst: '127.0.0.0/8', dev: 'lo', table: 'local' },
  { dst: '127.0.0.1', dev: 'lo', table: 'local' },
  { dst: '192.0.2.2', dev: 'eth0', table: 'local' },
  { dst: '192.0.2.255', dev: 'eth0', table: 'local' },
];

describe('parseIPv4 / parseCidr', () => {
  it.each([
    ['10.0.0.1', 0x0a000001],
    ['255.255.255.255', 0xffffffff],
    ['0.0.0.0', 0],
  ])('parses %s', (text, n) => expect(parseIPv4(text)).toBe(n));

  it.each(['10.0.0', '256.1.1.1', '01.2.3.4', 'a.b.c.d', '1.2.3.4.5', ''])('rejects %j naming the field', (text) => {
    expect(() => parseIPv4(text, 'publicIPv4')).toThrow(/^publicIPv4: /);
  });

  it.each([
    ['10.17.3.4/16', { network: parseIPv4('10.17.0.0'), bits: 16 }],
    ['203.0.113.7', { network: parseIPv4('203.0.113.7'), bits: 32 }],
    ['default', { network: 0, bits: 0 }],
  ])('parses %s', (text, cidr) => expect(parseCidr(text)).toEqual(cidr));

  it.each(['10.0.0.0/33', '10.0.0.0/x', '10.0.0.0/8/1'])('rejects %s', (text) => expect(() => parseCidr(text)).toThrow());

  it.each([
    ['10.17.0.0/16', '255.255.0.0'],
    ['203.0.113.0/24', '255.255.255.0'],
    ['10.254.0.0/30', '255.255.255.252'],
  ])('netmask of %s is %s', (range, mask) => expect(netmaskOf(range)).toBe(mask));
});

describe('routesOverlapping', () => {
  it.each<[string, RouteEntry[], string[]]>([
    ['nothing routed', machine, []],
    ['an exact route', [...machine, { dst: '203.0.113.0/24', dev: 'x' }], ['203.0.113.0/24']],
    ['a wider route', [...machine, { dst: '203.0.0.0/16', dev: 'x' }], ['203.0.0.0/16']],
    ['a narrower route', [...machine, { dst: '203.0.113.128/25', dev: 'x' }], ['203.0.113.128/25']],
    ['a host route', [...machine, { dst: '203.0.113.9', dev: 'x' }], ['203.0.113.9']],
    ['a default route only', [{ dst: 'default', dev: 'eth0' }, { dst: '0.0.0.0/0', dev: 'eth1' }], []],
    ['a neighbour range', [...machine, { dst: '203.0.114.0/24', dev: 'x' }], []],
  ])('203.0.113.0/24 with %s', (_label, routes, expected) => {
    expect(routesOverlapping(routes, '203.0.113.0/24').map((r) => r.dst)).toEqual(expected);
  });
});

describe('host link planning', () => {
  it('picks the first free /30 and names the interface after the prefix', () => {
    expect(planHostLink(machine, 'hft1'))
      .toEqual({ ifname: 'hft1-up', subnet: '10.254.0.0/30', hostIPv4: '10.254.0.1', coreIPv4: '10.254.0.2' });
  });

  it('skips candidates that are routed already', () => {
    const routes = [...machine, { dst: '10.254.0.0/23', dev: 'x' }];
    expect(chooseFreeSubnet(routes, HOST_LINK_CANDIDATES)).toBe('10.254.2.0/30');
  });

  it('fails clearly when every candidate is taken', () => {
    expect(() => planHostLink([...machine, { dst: '10.254.0.0/16', dev: 'x' }], 'hft1')).toThrow(/no free \/30/);
  });

  it.each(['203.0.113.0/24', '198.51.100.0/24', '198.51.100.77'])('refuses when %s is routed, naming the route', (dst) => {
    expect(() => planHostLink([...machine, { dst, dev: 'halb-up', table: 'main' }], 'hft1'))
      .toThrow(new RegExp(`already routes it \\(${dst.replace(/\./g, '\\.')} dev halb-up\\)`));
  });

  it.each([
    ['10.254.3.0/30', { host: '10.254.3.1', core: '10.254.3.2', bits: 30 }],
  ])('addresses of %s', (subnet, expected) => expect(hostLinkAddresses(subnet)).toEqual(expected));

  it('rejects a host link subnet that is not a /30', () => expect(() => hostLinkAddresses('10.254.0.0/29')).toThrow(/must be a \/30/));
});

describe('names', () => {
  it.each(['halb', 'hft1', 'hb0123abcd'])('accepts prefix %s', (p) => expect(validatePrefix(p)).toBe(p));
  it.each(['', 'Halb', 'h-1', '1abc', 'abcdefghijk'])('rejects prefix %j', (p) => expect(() => validatePrefix(p)).toThrow(/^prefix: /));

  it.each(['lb-1', 'web-1', 'a', 'lb.example'])('accepts host name %s', (n) => expect(validateHostName(n)).toBe(n));
  it.each(['', '-lb', 'lb_1', 'lb 1', 'x'.repeat(64), 'core'])('rejects host name %j naming the field', (n) => {
    expect(() => validateHostName(n, 'name')).toThrow(/^name: /);
  });

  it('derives halb for the default state folder and a stable distinct prefix otherwise', () => {
    expect(prefixForStateDir('.halb-sandbox')).toBe('halb');
    const other = prefixForStateDir('/tmp/elsewhere/.halb-sandbox');
    expect(other).toMatch(/^hb[0-9a-f]{8}$/);
    expect(prefixForStateDir('/tmp/elsewhere/.halb-sandbox')).toBe(other);
    expect(prefixForStateDir('/tmp/another')).not.toBe(other);
    expect(() => validatePrefix(other)).not.toThrow();
  });
});

describe('allocateDropletAddresses', () => {
  it.each<[string, string[], { publicIPv4: string; anchorIPv4: string; privateIPv4: string }]>([
    ['nothing used', [], { publicIPv4: '203.0.113.10', anchorIPv4: '10.17.0.10', privateIPv4: '10.10.1.10' }],
    ['the first public used', ['203.0.113.10'], { publicIPv4: '203.0.113.11', anchorIPv4: '10.17.0.11', privateIPv4: '10.10.1.11' }],
    ['a later anchor used', ['203.0.113.10', '10.17.0.11'],
      { publicIPv4: '203.0.113.12', anchorIPv4: '10.17.0.12', privateIPv4: '10.10.1.12' }],
    ['backends and gateways only', ['10.10.0.21', '10.10.0.22', '203.0.113.1', '203.0.113.254'],
      { publicIPv4: '203.0.113.10', anchorIPv4: '10.17.0.10', privateIPv4: '10.10.1.10' }],
  ])('with %s', (_label, taken, expected) => expect(allocateDropletAddresses(taken)).toEqual(expected));

  it('fails clearly when the pool is exhausted', () => {
    const all = Array.from({ length: 240 }, (_, i) => `203.0.113.${10 + i}`);
    expect(() => allocateDropletAddresses(all)).toThrow(/no free droplet addresses left/);
  });
});
