// Address plan and naming rules of the sandbox fabric (docs/design/sandbox.md).
// Everything here is pure so it can be tested table-driven.
import { createHash } from 'node:crypto';
import { basename, resolve } from 'node:path';

/** Droplet public IPv4s live here; the core's public bridge holds the gateway. */
export const PUBLIC_RANGE = '203.0.113.0/24';
export const PUBLIC_GATEWAY = '203.0.113.1';
/** The client namespace's address: the one public address the simulator must not hand out. */
export const CLIENT_IPV4 = '203.0.113.254';
/** Where the machine's namespace (the operator, kubectl, tests) appears from to droplets: the
 *  core source-NATs the host link to it, as a cluster's NAT gateway or node address would on
 *  DigitalOcean. Host firewalls (spec.access.sshSourceCIDRs) see this address, not 10.254.x.1. */
export const OPERATOR_EGRESS_IPV4 = '203.0.113.253';
/** Addresses the simulator may give droplets as public IPv4s. */
export const PUBLIC_POOL = { first: '203.0.113.10', last: '203.0.113.249' } as const;
/** Floating (reserved) IPs. */
export const FLOATING_RANGE = '198.51.100.0/24';
/** Anchor IPv4s, as on DigitalOcean (10.17.0.0/16, gateway .0.1); only inside the sandbox. */
export const ANCHOR_RANGE = '10.17.0.0/16';
export const ANCHOR_GATEWAY = '10.17.0.1';
/** The VPC; backends sit at 10.10.0.21, .22, ... */
export const VPC_RANGE = '10.10.0.0/16';
/** Where the machine's-namespace veth subnet (/30) is chosen from, first free wins. */
export const HOST_LINK_CANDIDATES: readonly string[] = Array.from({ length: 16 }, (_, i) => `10.254.${i}.0/30`);
/** The metadata service's address, served from the core namespace. */
export const METADATA_IPV4 = '169.254.169.254';
/** The only ranges the machine's namespace routes into the sandbox. */
export const HOST_ROUTED_RANGES: readonly string[] = [PUBLIC_RANGE, FLOATING_RANGE];

export const DEFAULT_PREFIX = 'halb';
export const DEFAULT_STATE_DIR_NAME = '.halb-sandbox';

export interface Cidr {
  network: number;
  bits: number;
}

export function parseIPv4(text: string, field = 'address'): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) throw new Error(`${field}: "${text}" is not an IPv4 address`);
  let n = 0;
  for (const part of m.slice(1)) {
    const octet = Number(part);
    if (octet > 255 || (part.length > 1 && part.startsWith('0'))) throw new Error(`${field}: "${text}" is not an IPv4 address`);
    n = n * 256 + octet;
  }
  return n;
}

export function formatIPv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

export function parseCidr(text: string, field = 'range'): Cidr {
  if (text === 'default') return { network: 0, bits: 0 };
  const [addr, bitsText, extra] = text.split('/');
  if (addr === undefined || extra !== undefined) throw new Error(`${field}: "${text}" is not an IPv4 CIDR`);
  const bits = bitsText === undefined ? 32 : Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > 32 || (bitsText !== undefined && !/^\d+$/.test(bitsText))) {
    throw new Error(`${field}: "${text}" has a bad prefix length`);
  }
  const ip = parseIPv4(addr, field);
  const size = 2 ** (32 - bits);
  return { network: ip - (ip % size), bits };
}

export function cidrContains(cidr: Cidr, ip: number): boolean {
  const size = 2 ** (32 - cidr.bits);
  return ip >= cidr.network && ip < cidr.network + size;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b.network) || cidrContains(b, a.network);
}

export function inRange(ip: string, range: string): boolean {
  return cidrContains(parseCidr(range), parseIPv4(ip));
}

export function netmaskOf(range: string): string {
  const { bits } = parseCidr(range);
  return formatIPv4(bits === 0 ? 0 : (2 ** 32 - 2 ** (32 - bits)));
}

/** A route or address of the machine's namespace, as `ip -j` reports it. */
export interface RouteEntry {
  dst: string;
  dev?: string;
  table?: string;
}

/**
 * The entries that already route into `range`. A default route does not count: it routes
 * everything, and the sandbox's more specific routes are what must not be shadowed or duplicated.
 */
export function routesOverlapping(routes: readonly RouteEntry[], range: string): RouteEntry[] {
  const want = parseCidr(range);
  return routes.filter((r) => {
    if (r.dst === 'default' || r.dst === '0.0.0.0/0') return false;
    let have: Cidr;
    try {
      have = parseCidr(r.dst);
    } catch {
      return false; // not IPv4 (for example a multicast or IPv6 entry)
    }
    return cidrsOverlap(have, want);
  });
}

/** The first candidate subnet that nothing in `routes` overlaps, or undefined. */
export function chooseFreeSubnet(routes: readonly RouteEntry[], candidates: readonly string[]): string | undefined {
  return candidates.find((c) => routesOverlapping(routes, c).length === 0);
}

/** The two usable addresses of a /30: the machine's side first, the core's second. */
export function hostLinkAddresses(subnet: string): { host: string; core: string; bits: number } {
  const c = parseCidr(subnet, 'host link subnet');
  if (c.bits !== 30) throw new Error(`host link subnet: "${subnet}" must be a /30`);
  return { host: formatIPv4(c.network + 1), core: formatIPv4(c.network + 2), bits: 30 };
}

const PREFIX_RE = /^[a-z][a-z0-9]{0,9}$/;

/** Prefixes become interface names (`<prefix>-up`, at most 15 bytes) and nft table names. */
export function validatePrefix(prefix: string): string {
  if (!PREFIX_RE.test(prefix)) {
    throw new Error(`prefix: "${prefix}" must be 1-10 lowercase letters or digits, starting with a letter`);
  }
  return prefix;
}

/**
 * The namespace prefix for a state folder: `halb` for the default folder (`.halb-sandbox`),
 * otherwise `hb` plus a hash of the folder's absolute path, so two sandboxes never collide and
 * neither prefix is a `<other prefix>-` extension of the other.
 */
export function prefixForStateDir(stateDir: string): string {
  const abs = resolve(stateDir);
  if (basename(abs) === DEFAULT_STATE_DIR_NAME && resolve(process.cwd(), DEFAULT_STATE_DIR_NAME) === abs) return DEFAULT_PREFIX;
  return `hb${createHash('sha256').update(abs).digest('hex').slice(0, 8)}`;
}

const HOST_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9.-]{0,62}$/;

/** Droplet and backend names become namespace names and hostnames. */
export function validateHostName(name: string, field = 'name'): string {
  if (!HOST_NAME_RE.test(name)) {
    throw new Error(`${field}: "${name}" must be 1-63 letters, digits, dots or hyphens, starting with a letter or digit`);
  }
  if (name === 'core') throw new Error(`${field}: "core" is reserved for the core namespace`);
  return name;
}

export function namespaceName(prefix: string, name: string): string {
  return `${prefix}-${name}`;
}

/** nft identifiers may not contain hyphens. */
export function nftTableName(prefix: string): string {
  return `${prefix}_fabric`;
}

export interface DropletAddresses {
  publicIPv4: string;
  anchorIPv4: string;
  privateIPv4: string;
}

/**
 * Addresses for a new droplet: the lowest index whose public (203.0.113.10+i), anchor
 * (10.17.0.10+i) and VPC (10.10.1.10+i) addresses are all free. The VPC's 10.10.0.x is left to
 * the backends (10.10.0.21, .22, ...). For the DigitalOcean simulator.
 */
export function allocateDropletAddresses(taken: Iterable<string>): DropletAddresses {
  const used = new Set(taken);
  const first = parseIPv4(PUBLIC_POOL.first);
  const count = parseIPv4(PUBLIC_POOL.last) - first + 1;
  for (let i = 0; i < count; i++) {
    const candidate = {
      publicIPv4: formatIPv4(first + i),
      anchorIPv4: formatIPv4(parseIPv4('10.17.0.10') + i),
      privateIPv4: formatIPv4(parseIPv4('10.10.1.10') + i),
    };
    if (!used.has(candidate.publicIPv4) && !used.has(candidate.anchorIPv4) && !used.has(candidate.privateIPv4)) return candidate;
  }
  throw new Error(`no free droplet addresses left in ${PUBLIC_POOL.first}-${PUBLIC_POOL.last}`);
}
