// IPv4 address pools for the simulator. Addresses are data here: the simulator never sends a
// packet; the sandbox decides which of them become real interfaces in its namespaces.

export function ipv4ToInt(ip: string): number {
  const parts = ip.split('.');
  if (parts.length !== 4) throw new Error(`not an IPv4 address: ${ip}`);
  let n = 0;
  for (const part of parts) {
    const octet = Number(part);
    if (!/^\d{1,3}$/.test(part) || octet > 255) throw new Error(`not an IPv4 address: ${ip}`);
    n = n * 256 + octet;
  }
  return n;
}

export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function parseCidr(cidr: string): { base: number; prefix: number } {
  const [ip, prefixText] = cidr.split('/');
  const prefix = Number(prefixText);
  if (ip === undefined || !Number.isInteger(prefix) || prefix < 8 || prefix > 30) {
    throw new Error(`not an IPv4 CIDR between /8 and /30: ${cidr}`);
  }
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return { base: (ipv4ToInt(ip) & mask) >>> 0, prefix };
}

export function netmaskOf(prefix: number): string {
  return intToIpv4((0xffffffff << (32 - prefix)) >>> 0);
}

/** Hands out addresses of one CIDR in order, skipping the network, the gateway (.1), the
 * broadcast address, the first `skip` hosts and any address in use; freed ones come back. */
export class AddressPool {
  readonly cidr: string;
  readonly netmask: string;
  readonly gateway: string;
  private readonly first: number;
  private readonly last: number;
  private readonly used = new Set<number>();

  constructor(cidr: string, skip = 0) {
    const { base, prefix } = parseCidr(cidr);
    this.cidr = cidr;
    this.netmask = netmaskOf(prefix);
    this.gateway = intToIpv4(base + 1);
    this.first = base + 2 + skip;
    this.last = base + 2 ** (32 - prefix) - 2;
  }

  allocate(): string {
    for (let n = this.first; n <= this.last; n++) {
      if (!this.used.has(n)) {
        this.used.add(n);
        return intToIpv4(n);
      }
    }
    throw new Error(`address pool ${this.cidr} is exhausted`);
  }

  /** Marks an address as taken (a droplet given a fixed address by the sandbox). */
  claim(ip: string): void {
    this.used.add(ipv4ToInt(ip));
  }

  release(ip: string): void {
    this.used.delete(ipv4ToInt(ip));
  }
}
