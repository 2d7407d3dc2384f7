// What a Service of type LoadBalancer can say about its load balancer, and the operator-wide
// defaults behind it: the `halb.dev/...` annotations, their parsing (pure, each problem naming
// the annotation), and the settings the operator's flags give. The README's "Services of type
// LoadBalancer" section lists the same names and defaults.
import type * as k8s from '@kubernetes/client-node';
import { ipv4Number, ipv4String } from '../../api/derived.ts';
import { patterns } from '../../api/schema.ts';
import type { Problem } from '../../api/validate.ts';

/** The class a Service names to be served by halb (--load-balancer-class). */
export const DEFAULT_SERVICE_CLASS = 'halb.dev/haproxy';

/** The finalizer every cloud load-balancer controller puts on the Services it serves. */
export const SERVICE_FINALIZER = 'service.kubernetes.io/load-balancer-cleanup';

/** Kubernetes' own label: nodes that must not receive load-balancer traffic. */
export const EXCLUDE_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';

/** The well-known region label; DOKS sets it on every node. */
export const REGION_LABEL = 'topology.kubernetes.io/region';

export const annotations = {
  region: 'halb.dev/region',
  vpcUUID: 'halb.dev/vpc-uuid',
  dropletSize: 'halb.dev/droplet-size',
  dropletCount: 'halb.dev/droplet-count',
  tokenSecret: 'halb.dev/token-secret',
  sshKeySecret: 'halb.dev/ssh-key-secret',
  sshSourceCIDRs: 'halb.dev/ssh-source-cidrs',
  reservedIP: 'halb.dev/reserved-ip',
  reservedIPPolicy: 'halb.dev/reserved-ip-policy',
  nodeTag: 'halb.dev/node-droplet-tag',
  proxyProtocol: 'halb.dev/proxy-protocol',
  tlsSecret: 'halb.dev/tls-secret',
  tlsPorts: 'halb.dev/tls-ports',
  tlsRedirect: 'halb.dev/tls-redirect-http',
} as const;

/** A Secret key in the Service's namespace: `name` or `name/key`. */
export interface SecretRef { name: string; key: string }

/** Operator-wide defaults for the load balancers of Services (flags of `halb operator`). */
export interface ServiceDefaults {
  /** The class served; Services without it are never touched. */
  serviceClass: string;
  /** Unset: the nodes' topology.kubernetes.io/region label, when they agree on one. */
  region?: string;
  vpcUUID: string;
  dropletSize: string;
  dropletCount: number;
  tokenSecret: SecretRef;
  sshKeySecret: SecretRef;
  /** Empty: SSH to the load balancers open to all (the HALoadBalancer says so: SSHExposed). */
  sshSourceCIDRs: string[];
  /** Set: backends are the droplets with this tag (DOKS tags its nodes k8s:<cluster-id>), not Node objects. */
  nodeTag: string;
}

export const defaultServiceDefaults: ServiceDefaults = {
  serviceClass: DEFAULT_SERVICE_CLASS,
  vpcUUID: '',
  dropletSize: 's-1vcpu-1gb',
  dropletCount: 2,
  tokenSecret: { name: 'do-api', key: 'token' },
  sshKeySecret: { name: 'halb-ssh', key: 'ssh-privatekey' },
  sshSourceCIDRs: [],
  nodeTag: '',
};

/** What the annotations and the defaults settle for one Service. */
export interface ServiceOptions extends Omit<ServiceDefaults, 'serviceClass'> {
  reservedIP: string;
  reservedIPPolicy: 'Retain' | 'Delete';
  proxyProtocol: boolean;
  tls?: { secret: string; ports: number[]; redirectHTTP: boolean };
}

const field = (name: string) => `metadata.annotations[${name}]`;

/** `name` or `name/key` (key defaulting), as `--service-token-secret` and the annotations take it. */
export function parseSecretRef(value: string, defaultKey: string): SecretRef | undefined {
  const [name = '', key = defaultKey, extra] = value.trim().split('/');
  if (extra !== undefined || !new RegExp(patterns.dns1123Subdomain).test(name) || name.length > 253
    || !new RegExp(patterns.secretKey).test(key)) return undefined;
  return { name, key };
}

/** An IPv4 CIDR with its host bits cleared (Kubernetes accepts 10.1.2.3/8 in source ranges), or undefined. */
export function canonicalCIDR(value: string): string | undefined {
  const [address = '', bitsText, extra] = value.trim().split('/');
  const n = ipv4Number(address);
  const bits = Number(bitsText);
  if (n === undefined || extra !== undefined || !/^\d{1,2}$/.test(bitsText ?? '') || bits > 32) return undefined;
  const size = 2 ** (32 - bits);
  return `${ipv4String(n - (n % size))}/${bits}`;
}

function cidrList(value: string, name: string, problems: Problem[]): string[] {
  const out: string[] = [];
  for (const item of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const cidr = canonicalCIDR(item);
    if (cidr) out.push(cidr);
    else problems.push({ path: field(name), message: `${JSON.stringify(item)} is not an IPv4 CIDR` });
  }
  return out;
}

function boolean(value: string | undefined, name: string, problems: Problem[]): boolean {
  if (value === undefined) return false;
  if (['true', 'false'].includes(value.trim().toLowerCase())) return value.trim().toLowerCase() === 'true';
  problems.push({ path: field(name), message: `must be true or false, not ${JSON.stringify(value)}` });
  return false;
}

function matching(value: string | undefined, name: string, pattern: string, what: string, problems: Problem[]): string | undefined {
  if (value === undefined) return undefined;
  if (new RegExp(pattern).test(value.trim())) return value.trim();
  problems.push({ path: field(name), message: `${JSON.stringify(value)} is not ${what}` });
  return undefined;
}

function tlsOptions(given: Record<string, string>, problems: Problem[]): ServiceOptions['tls'] {
  const secret = matching(given[annotations.tlsSecret], annotations.tlsSecret, patterns.dns1123Subdomain, 'a Secret name', problems);
  const portsText = given[annotations.tlsPorts];
  if (!secret) {
    if (portsText !== undefined) problems.push({ path: field(annotations.tlsPorts),
      message: `needs ${annotations.tlsSecret}, the certificate to serve` });
    return undefined;
  }
  const ports = (portsText ?? '443').split(',').map((p) => p.trim()).filter(Boolean).map(Number);
  if (!ports.length || ports.some((p) => !Number.isInteger(p) || p < 1 || p > 65535)) {
    problems.push({ path: field(annotations.tlsPorts), message: `must list ports, comma-separated, not ${JSON.stringify(portsText)}` });
    return undefined;
  }
  return { secret, ports, redirectHTTP: boolean(given[annotations.tlsRedirect], annotations.tlsRedirect, problems) };
}

/** The Service's own choices over the operator's defaults; problems name the annotation or field. */
export function serviceOptions(service: k8s.V1Service, defaults: ServiceDefaults, problems: Problem[]): ServiceOptions {
  const given = service.metadata?.annotations ?? {};
  const secretRef = (name: string, fallback: SecretRef): SecretRef => {
    if (given[name] === undefined) return fallback;
    const ref = parseSecretRef(given[name], fallback.key);
    if (!ref) problems.push({ path: field(name), message: `${JSON.stringify(given[name])} is not a Secret name, or name/key` });
    return ref ?? fallback;
  };
  const countText = given[annotations.dropletCount];
  const count = countText === undefined ? defaults.dropletCount : Number(countText);
  if (!Number.isInteger(count) || count < 2 || count > 5) problems.push({ path: field(annotations.dropletCount),
    message: `must be 2 to 5, not ${JSON.stringify(countText)}` });
  const policy = given[annotations.reservedIPPolicy] ?? 'Retain';
  if (policy !== 'Retain' && policy !== 'Delete') problems.push({ path: field(annotations.reservedIPPolicy),
    message: `must be Retain or Delete, not ${JSON.stringify(policy)}` });
  const region = matching(given[annotations.region], annotations.region, patterns.region, 'a DigitalOcean region slug',
    problems) ?? defaults.region;
  const tls = tlsOptions(given, problems);
  const sshCIDRs = given[annotations.sshSourceCIDRs];
  return {
    ...(region ? { region } : {}),
    vpcUUID: matching(given[annotations.vpcUUID], annotations.vpcUUID, patterns.uuidOrEmpty, 'a VPC UUID', problems) ?? defaults.vpcUUID,
    dropletSize: matching(given[annotations.dropletSize], annotations.dropletSize, patterns.slug, 'a size slug',
      problems) ?? defaults.dropletSize,
    dropletCount: Number.isInteger(count) ? Math.min(Math.max(count, 2), 5) : defaults.dropletCount,
    tokenSecret: secretRef(annotations.tokenSecret, defaults.tokenSecret),
    sshKeySecret: secretRef(annotations.sshKeySecret, defaults.sshKeySecret),
    sshSourceCIDRs: sshCIDRs === undefined ? defaults.sshSourceCIDRs : cidrList(sshCIDRs, annotations.sshSourceCIDRs, problems),
    reservedIP: reservedIP(service, problems),
    reservedIPPolicy: policy === 'Delete' ? 'Delete' : 'Retain',
    nodeTag: matching(given[annotations.nodeTag], annotations.nodeTag, patterns.doTag, 'a DigitalOcean tag', problems) ?? defaults.nodeTag,
    proxyProtocol: boolean(given[annotations.proxyProtocol], annotations.proxyProtocol, problems),
    ...(tls ? { tls } : {}),
  };
}

/** spec.loadBalancerIP (deprecated in Kubernetes, still what people write) or the annotation. */
function reservedIP(service: k8s.V1Service, problems: Problem[]): string {
  const fromSpec = service.spec?.loadBalancerIP?.trim() ?? '';
  const fromAnnotation = service.metadata?.annotations?.[annotations.reservedIP]?.trim() ?? '';
  if (fromSpec && ipv4Number(fromSpec) === undefined) problems.push({ path: 'spec.loadBalancerIP',
    message: `${JSON.stringify(fromSpec)} is not an IPv4 address` });
  if (fromAnnotation && ipv4Number(fromAnnotation) === undefined) {
    problems.push({ path: field(annotations.reservedIP), message: `${JSON.stringify(fromAnnotation)} is not an IPv4 address` });
  }
  if (fromSpec && fromAnnotation && fromSpec !== fromAnnotation) {
    problems.push({ path: 'spec.loadBalancerIP',
      message: `${fromSpec} differs from ${field(annotations.reservedIP)} (${fromAnnotation}): give one` });
  }
  return fromSpec || fromAnnotation;
}
