// Values derived from a (defaulted) spec, shared by validation, rendering and the controller,
// so that every layer agrees on what an unset field means.
import type { BackendSpec, HALoadBalancerSpec } from './types.ts';

/**
 * Ports the load-balancer nodes use themselves: sshd, HAProxy's metrics (on the VPC address)
 * and its health endpoint (on 127.0.0.1, for keepalived's check). The renderer's defaults;
 * validation refuses frontends on them.
 */
export const NODE_PORTS = { ssh: 22, metrics: 8404, health: 8405 } as const;

/** The advert interval in effect: 0.2 s (VRRPv3) unless PASS auth forces VRRPv2 and whole seconds. */
export function effectiveAdvertInterval(spec: HALoadBalancerSpec): number {
  if (spec.failover.advertIntervalSeconds !== undefined) return spec.failover.advertIntervalSeconds;
  return spec.failover.authSecretRef ? 1 : 0.2;
}

/** VRRPv3 carries sub-second adverts; PASS authentication exists only in VRRPv2. */
export function vrrpVersion(spec: HALoadBalancerSpec): 2 | 3 {
  return spec.failover.authSecretRef ? 2 : 3;
}

export type BackendMode = 'http' | 'tcp';

/**
 * A backend's HAProxy mode follows the frontends that use it. A backend no frontend uses is
 * rendered as http; one used by both kinds is an error, reported by validation.
 */
export function backendModes(spec: HALoadBalancerSpec): Map<string, Set<BackendMode>> {
  const modes = new Map<string, Set<BackendMode>>();
  for (const backend of spec.backends) modes.set(backend.name, new Set());
  for (const frontend of spec.frontends) {
    const used = [frontend.defaultBackend, ...(frontend.routes ?? []).map((r) => r.backend)];
    for (const name of used) modes.get(name)?.add(frontend.protocol);
  }
  return modes;
}

export function backendMode(spec: HALoadBalancerSpec, backend: BackendSpec): BackendMode {
  return modeOfUses(backendModes(spec).get(backend.name));
}

/** The mode of a backend the frontends use this way: tcp only when only tcp frontends use it. */
export function modeOfUses(uses: ReadonlySet<BackendMode> | undefined): BackendMode {
  return uses?.has('tcp') && !uses.has('http') ? 'tcp' : 'http';
}

/** Node names are `<object name>-<index>`: droplet names, tags and status keys use them. */
export function nodeName(objectName: string, index: number): string {
  return `${objectName}-${index}`;
}

/** Names of the Secrets an object refers to (in its own namespace). */
export function referencedSecrets(spec: HALoadBalancerSpec): Set<string> {
  return new Set([
    spec.credentials.tokenSecretRef.name, spec.credentials.sshKeySecretRef.name,
    ...(spec.credentials.failoverTokenSecretRef ? [spec.credentials.failoverTokenSecretRef.name] : []),
    ...(spec.failover.authSecretRef ? [spec.failover.authSecretRef.name] : []),
    ...spec.frontends.flatMap((f) => (f.tls ? [f.tls.secretRef.name] : [])),
  ]);
}

/** A dotted IPv4 address as a number; undefined for anything else. */
export function ipv4Number(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

/** Whether an IPv4 address lies in a CIDR; false for anything that is not both. */
export function ipv4InCIDR(ip: string, cidr: string): boolean {
  const [base = '', bitsText = '32'] = cidr.split('/');
  const addr = ipv4Number(ip);
  const network = ipv4Number(base);
  const bits = Number(bitsText);
  if (addr === undefined || network === undefined || !Number.isInteger(bits) || bits < 0 || bits > 32) return false;
  const size = 2 ** (32 - bits);
  return Math.floor(addr / size) === Math.floor(network / size);
}

/** The network a private address and its netmask name, as a CIDR ("10.10.0.5", "255.255.0.0" → "10.10.0.0/16"). */
export function networkCIDR(ip: string, netmask: string): string | undefined {
  const addr = ipv4Number(ip);
  const mask = ipv4Number(netmask);
  if (addr === undefined || mask === undefined) return undefined;
  const bits = mask.toString(2).replace(/0+$/, '').length;
  if (mask !== (bits === 0 ? 0 : 2 ** 32 - 2 ** (32 - bits))) return undefined; // not contiguous
  const size = 2 ** (32 - bits);
  return `${ipv4String(addr - (addr % size))}/${bits}`;
}

export function ipv4String(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}
