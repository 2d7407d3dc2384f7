// The HALoadBalancer a Service of type LoadBalancer asks for, as a pure function of the Service,
// the cluster's Nodes and the operator's defaults: a frontend per port (tcp, http when
// appProtocol says so, TLS paired with a plain port of the same targetPort), a backend per port
// at its NodePort on every eligible node (or on the droplets of a tag), HTTP checks of the
// healthCheckNodePort under externalTrafficPolicy Local, the reserved IP to adopt and what
// happens to it, and the source ranges. Anything halb cannot serve is a problem naming the
// Service's field or annotation, and then nothing is desired.
import { createHash } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import { withDefaults } from '../../api/defaults.ts';
import { MAX_OBJECT_NAME_LENGTH, patterns } from '../../api/schema.ts';
import type { BackendSpecInput, FrontendSpecInput, HALoadBalancerSpecInput } from '../../api/types.ts';
import { validateSemantics, type Problem } from '../../api/validate.ts';
import { EXCLUDE_LABEL, REGION_LABEL, annotations, canonicalCIDR, serviceOptions, type ServiceDefaults,
  type ServiceOptions } from './settings.ts';

/** The legacy annotation Kubernetes still honours when spec.loadBalancerSourceRanges is empty. */
const SOURCE_RANGES_ANNOTATION = 'service.beta.kubernetes.io/load-balancer-source-ranges';

export type Desired =
  | { kind: 'desired'; name: string; spec: HALoadBalancerSpecInput; ipMode: 'Proxy' | 'VIP'; nodes: string[] }
  /** The Service asks for something halb cannot serve: a condition and a Warning, nothing else. */
  | { kind: 'invalid'; problems: Problem[] }
  /** Nothing to send traffic to yet: no eligible node. */
  | { kind: 'waiting'; reason: string; message: string };

const hash = (text: string, length: number) => createHash('sha256').update(text).digest('hex').slice(0, length);

/** A DNS label of at most `max` characters: the name itself when it is one, else a readable prefix and a hash. */
function label(name: string, max: number): string {
  if (name.length <= max && new RegExp(patterns.dns1123Label).test(name)) return name;
  const cleaned = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-');
  return `${cleaned.slice(0, max - 7).replace(/^-+|-+$/g, '') || 'x'}-${hash(name, 6)}`;
}

/** The HALoadBalancer's name: the Service's when it fits (it names droplets: 40 characters). */
export function loadBalancerName(serviceName: string): string {
  return label(serviceName, MAX_OBJECT_NAME_LENGTH);
}

const ready = (node: k8s.V1Node) => node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const internalIP = (node: k8s.V1Node) => node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address;

/** Nodes that take load-balancer traffic: Ready, with an InternalIP, not excluded by label; by name. */
export function eligibleNodes(nodes: readonly k8s.V1Node[]): { name: string; address: string }[] {
  return nodes
    .filter((n) => ready(n) && internalIP(n) && n.metadata?.labels?.[EXCLUDE_LABEL] === undefined && !n.metadata?.deletionTimestamp)
    .map((n) => ({ name: n.metadata?.name ?? '', address: internalIP(n)! }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The region every node reports, when they agree (DOKS labels its nodes topology.kubernetes.io/region). */
function nodesRegion(nodes: readonly k8s.V1Node[]): string | undefined {
  const regions = new Set(nodes.map((n) => n.metadata?.labels?.[REGION_LABEL]).filter((r): r is string => !!r));
  return regions.size === 1 ? [...regions][0] : undefined;
}

type ServicePort = k8s.V1ServicePort;

const isHTTP = (port: ServicePort) => ['http', 'HTTP'].includes(port.appProtocol ?? '');
const frontendName = (port: ServicePort) => port.name || `port-${port.port}`;

/** Problems with the Service's own fields that halb cannot serve. */
function portProblems(service: k8s.V1Service): Problem[] {
  const spec = service.spec ?? {};
  const problems: Problem[] = [];
  (spec.ports ?? []).forEach((port, i) => {
    if ((port.protocol ?? 'TCP') !== 'TCP') {
      problems.push({ path: `spec.ports[${i}].protocol`,
        message: `${port.protocol} is not served: halb's load balancers proxy TCP (HAProxy)` });
    }
  });
  if (spec.allocateLoadBalancerNodePorts === false) {
    problems.push({ path: 'spec.allocateLoadBalancerNodePorts',
      message: 'false is not served: halb sends traffic to the nodes\' NodePorts; leave it unset or true' });
  } else {
    (spec.ports ?? []).forEach((port, i) => {
      if (!port.nodePort) problems.push({ path: `spec.ports[${i}].nodePort`, message: 'has no NodePort yet' });
    });
  }
  return problems;
}

/** spec.loadBalancerSourceRanges (or the legacy annotation), canonical IPv4 CIDRs. */
function sourceRanges(service: k8s.V1Service, problems: Problem[]): string[] {
  const fromSpec = service.spec?.loadBalancerSourceRanges ?? [];
  const given = fromSpec.length ? fromSpec
    : (service.metadata?.annotations?.[SOURCE_RANGES_ANNOTATION] ?? '').split(',').filter((s) => s.trim());
  const path = fromSpec.length ? 'spec.loadBalancerSourceRanges' : `metadata.annotations[${SOURCE_RANGES_ANNOTATION}]`;
  return [...new Set(given.flatMap((range, i) => {
    const cidr = canonicalCIDR(range);
    if (!cidr) problems.push({ path: fromSpec.length ? `${path}[${i}]` : path,
      message: `${JSON.stringify(range.trim())} is not served: halb's load balancers are IPv4` });
    return cidr ? [cidr] : [];
  }))];
}

const TLS_PAIRING = 'halb serves TLS on a frontend that also serves plain HTTP';

interface Listener { port: ServicePort; index: number; tlsPort?: number }

/** Plain ports, each with the TLS port it also serves (same targetPort), or problems. */
function listeners(ports: readonly ServicePort[], tls: ServiceOptions['tls'], problems: Problem[]): Listener[] {
  const tlsPorts = new Set(tls?.ports ?? []);
  const plain: Listener[] = ports.map((port, index) => ({ port, index })).filter((l) => !tlsPorts.has(l.port.port));
  for (const tlsPort of tls?.ports ?? []) {
    const port = ports.find((p) => p.port === tlsPort);
    const path = `metadata.annotations[${annotations.tlsPorts}]`;
    if (!port) {
      problems.push({ path, message: `${tlsPort} is not a port of this Service` });
      continue;
    }
    const partner = plain.find((l) => l.tlsPort === undefined
      && String(l.port.targetPort ?? l.port.port) === String(port.targetPort ?? port.port));
    if (partner) partner.tlsPort = tlsPort;
    else problems.push({ path, message: `${tlsPort} has no plain port with the same targetPort beside it: ${TLS_PAIRING}` });
  }
  return plain;
}

export function desiredLoadBalancer(service: k8s.V1Service, nodes: readonly k8s.V1Node[], defaults: ServiceDefaults): Desired {
  const problems = portProblems(service);
  const options = serviceOptions(service, defaults, problems);
  const region = options.region ?? nodesRegion(nodes);
  if (!region) {
    problems.push({ path: `metadata.annotations[${annotations.region}]`,
      message: 'no region: set it, or the operator\'s --service-region, or label the nodes topology.kubernetes.io/region' });
  }
  const frontendSourceCIDRs = sourceRanges(service, problems);
  const plain = listeners(service.spec?.ports ?? [], options.tls, problems);
  if (problems.length) return { kind: 'invalid', problems };
  const servers = eligibleNodes(nodes);
  if (!options.nodeTag && servers.length === 0) {
    return { kind: 'waiting', reason: 'NoNodes', message: `no node is Ready with an InternalIP and without the label ${EXCLUDE_LABEL}` };
  }
  const spec: HALoadBalancerSpecInput = {
    region: region!,
    vpcUUID: options.vpcUUID,
    credentials: {
      tokenSecretRef: { ...options.tokenSecret },
      sshKeySecretRef: { ...options.sshKeySecret },
    },
    droplets: { count: options.dropletCount, size: options.dropletSize },
    floatingIP: { address: options.reservedIP, reclaimPolicy: options.reservedIPPolicy },
    frontends: plain.map((l) => frontend(l, options)),
    backends: plain.map((l) => backend(l.port, service, servers, options)),
    access: { sshSourceCIDRs: options.sshSourceCIDRs, frontendSourceCIDRs },
  };
  const refused = semanticProblems(spec, plain);
  if (refused.length) return { kind: 'invalid', problems: refused };
  return {
    kind: 'desired', name: loadBalancerName(service.metadata?.name ?? ''), spec,
    ipMode: options.proxyProtocol || options.tls ? 'Proxy' : 'VIP',
    nodes: options.nodeTag ? [] : servers.map((s) => s.name),
  };
}

function frontend(listener: Listener, options: ServiceOptions): FrontendSpecInput {
  const name = frontendName(listener.port);
  const tls = listener.tlsPort === undefined ? undefined : { secretRef: { name: options.tls!.secret }, port: listener.tlsPort,
    redirectHTTP: options.tls!.redirectHTTP };
  return { name, port: listener.port.port, protocol: tls || isHTTP(listener.port) ? 'http' : 'tcp', ...(tls ? { tls } : {}),
    defaultBackend: name };
}

function backend(port: ServicePort, service: k8s.V1Service, servers: { name: string; address: string }[],
  options: ServiceOptions): BackendSpecInput {
  const local = service.spec?.externalTrafficPolicy === 'Local' && service.spec.healthCheckNodePort;
  return {
    name: frontendName(port),
    port: port.nodePort!,
    // Local: only nodes with a ready endpoint answer kube-proxy's /healthz with 200.
    ...(local ? { healthCheck: { protocol: 'http', path: '/healthz', port: service.spec!.healthCheckNodePort! } } : {}),
    ...(options.proxyProtocol ? { proxyProtocol: true } : {}),
    ...(options.nodeTag ? { dropletTag: options.nodeTag } : { servers: servers.map((s) => ({ name: label(s.name, 63),
      address: s.address })) }),
  };
}

/** What halb's own rules refuse in the result (a Service port on a port the load balancers use
 *  themselves, say), named by the Service's field where one is to blame. */
function semanticProblems(spec: HALoadBalancerSpecInput, plain: Listener[]): Problem[] {
  const problems = validateSemantics({ apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name: 'service' },
    spec: withDefaults(spec) });
  return problems.map((p) => {
    const frontendIndex = /^spec\.frontends\[(\d+)\]/.exec(p.path)?.[1];
    const listener = frontendIndex === undefined ? undefined : plain[Number(frontendIndex)];
    return listener ? { path: `spec.ports[${listener.index}]`, message: p.message } : { path: p.path,
      message: `the HALoadBalancer would be refused: ${p.message}` };
  });
}
