// Services and Nodes as the real server keeps them (pkg/registry/core/service, core/node and
// pkg/apis/core/validation, read for their behaviour): ClusterIP, NodePort and LoadBalancer
// Services with the server's defaults, NodePort and healthCheckNodePort allocation from
// 30000-32767 (allocated values kept across updates that leave them out, released when the type
// no longer needs them), the status written through its subresource, and the refusals a
// load-balancer controller meets: a changed loadBalancerClass, a class on a non-LoadBalancer
// Service, source ranges or allocateLoadBalancerNodePorts off a LoadBalancer. Nodes are stored
// as sent (the kubelet writes them) with the server's printer. No proxying: the sandbox's cluster
// nodes answer on the NodePorts themselves.
import { randomInt } from 'node:crypto';
import type { StatusCause } from './errors.ts';
import { causes, invalid } from './errors.ts';
import type { KubeObject } from './store.ts';
import { age, type ColumnDefinition, type TableSpec } from './table.ts';

export const NODE_PORT_RANGE = { min: 30000, max: 32767 } as const;

export interface ServicePort {
  name?: string;
  protocol?: string;
  port?: unknown;
  targetPort?: unknown;
  nodePort?: number;
  appProtocol?: string;
}

interface LoadBalancerIngress { ip?: string; hostname?: string; ipMode?: string }

interface ServiceSpec {
  type?: string;
  ports?: ServicePort[];
  selector?: Record<string, string>;
  clusterIP?: string;
  clusterIPs?: string[];
  externalIPs?: string[];
  externalName?: string;
  sessionAffinity?: string;
  loadBalancerIP?: string;
  loadBalancerSourceRanges?: string[];
  loadBalancerClass?: string;
  allocateLoadBalancerNodePorts?: boolean;
  externalTrafficPolicy?: string;
  internalTrafficPolicy?: string;
  healthCheckNodePort?: number;
  ipFamilies?: string[];
  ipFamilyPolicy?: string;
}

const specOf = (o: KubeObject | undefined): ServiceSpec => (o?.spec ?? {}) as ServiceSpec;
const ingressOf = (o: KubeObject): LoadBalancerIngress[] =>
  ((o.status as { loadBalancer?: { ingress?: LoadBalancerIngress[] } } | undefined)?.loadBalancer?.ingress ?? []);

const isLoadBalancer = (spec: ServiceSpec) => spec.type === 'LoadBalancer';
const needsNodePorts = (spec: ServiceSpec) => spec.type === 'NodePort' || spec.type === 'LoadBalancer';
const externallyAccessible = (spec: ServiceSpec) =>
  needsNodePorts(spec) || (spec.type === 'ClusterIP' && (spec.externalIPs ?? []).length > 0);
/** A LoadBalancer with externalTrafficPolicy Local gets a port for the nodes' health checks. */
export const needsHealthCheckNodePort = (spec: ServiceSpec) => isLoadBalancer(spec) && spec.externalTrafficPolicy === 'Local';
const allocatesNodePorts = (spec: ServiceSpec) =>
  spec.type === 'NodePort' || (isLoadBalancer(spec) && spec.allocateLoadBalancerNodePorts !== false);
const isHeadless = (spec: ServiceSpec) => spec.clusterIP === 'None';

/** The next ClusterIP, from the real server's default service range 10.96.0.0/12 (10.96.0.1 is the API's). */
let nextClusterIP = 10;
function allocateClusterIP(): string {
  const n = nextClusterIP++;
  return `10.96.${Math.floor(n / 256) % 256}.${n % 256}`;
}

function nodePortsOf(spec: ServiceSpec): number[] {
  const ports = (spec.ports ?? []).map((p) => p.nodePort ?? 0).filter((p) => p > 0);
  return needsHealthCheckNodePort(spec) && spec.healthCheckNodePort ? [...ports, spec.healthCheckNodePort] : ports;
}

const SERVICE_REF = { group: '', plural: 'services', kind: 'Service' };

/** The port allocator's view: every node port other Services hold, and what this write takes. */
class NodePortAllocation {
  private readonly taken: Set<number>;
  private readonly name: string;
  private readonly kept: ReadonlySet<number>;

  constructor(name: string, others: readonly KubeObject[], kept: ReadonlySet<number>) {
    this.name = name;
    this.kept = kept;
    this.taken = new Set(others.flatMap((o) => nodePortsOf(specOf(o))));
  }

  /** A requested port: in range and not another Service's (the old object's own ports stay its own). */
  claim(port: number, field: string): void {
    if (this.kept.has(port)) return;
    if (port < NODE_PORT_RANGE.min || port > NODE_PORT_RANGE.max) {
      const range = `${NODE_PORT_RANGE.min}-${NODE_PORT_RANGE.max}`;
      this.refuse(field, port, `provided port is not in the valid range. The range of valid ports is ${range}`);
    }
    if (this.taken.has(port)) this.refuse(field, port, 'provided port is already allocated');
    this.taken.add(port);
  }

  next(): number {
    const size = NODE_PORT_RANGE.max - NODE_PORT_RANGE.min + 1;
    const start = randomInt(size);
    for (let i = 0; i < size; i++) {
      const port = NODE_PORT_RANGE.min + ((start + i) % size);
      if (!this.taken.has(port) && !this.kept.has(port)) {
        this.taken.add(port);
        return port;
      }
    }
    throw invalid(SERVICE_REF, this.name, [{ reason: 'InternalError', message: 'failed to allocate a nodePort: range is full' }]);
  }

  private refuse(field: string, port: number, detail: string): never {
    throw invalid(SERVICE_REF, this.name, [causes.invalid(field, port, detail)]);
  }
}

/** SetDefaults_Service: what the server fills in on every write. */
function defaultService(spec: ServiceSpec): void {
  spec.type ??= 'ClusterIP';
  spec.sessionAffinity ??= 'None';
  if (Array.isArray(spec.ports)) {
    spec.ports = spec.ports.map((p) => ({ ...p, protocol: p.protocol ?? 'TCP', targetPort: p.targetPort ?? p.port }));
  }
  if (externallyAccessible(spec)) spec.externalTrafficPolicy ??= 'Cluster';
  if (['NodePort', 'LoadBalancer', 'ClusterIP'].includes(spec.type)) spec.internalTrafficPolicy ??= 'Cluster';
  if (isLoadBalancer(spec)) spec.allocateLoadBalancerNodePorts ??= true;
}

/** dropTypeDependentFields and patchAllocatedValues: an update keeps what was allocated unless the type no longer needs it. */
function carryOver(spec: ServiceSpec, old: ServiceSpec): void {
  if (needsNodePorts(old) && needsNodePorts(spec)) {
    const byName = new Map((old.ports ?? []).map((p) => [p.name ?? '', p.nodePort ?? 0]));
    const used = new Set((spec.ports ?? []).map((p) => p.nodePort ?? 0).filter((p) => p > 0));
    for (const port of spec.ports ?? []) {
      const before = byName.get(port.name ?? '') ?? 0;
      if (!port.nodePort && before && !used.has(before)) port.nodePort = before;
    }
  }
  if (needsNodePorts(old) && !needsNodePorts(spec)) {
    const oldPorts = new Set(nodePortsOf({ ...old, healthCheckNodePort: 0 }));
    if ((spec.ports ?? []).every((p) => !p.nodePort || oldPorts.has(p.nodePort))) for (const port of spec.ports ?? []) delete port.nodePort;
  }
  if (needsHealthCheckNodePort(old) && needsHealthCheckNodePort(spec)) spec.healthCheckNodePort ||= old.healthCheckNodePort;
  if (needsHealthCheckNodePort(old) && !needsHealthCheckNodePort(spec) && spec.healthCheckNodePort === old.healthCheckNodePort) {
    delete spec.healthCheckNodePort;
  }
  if (isLoadBalancer(old) && !isLoadBalancer(spec)) {
    if (spec.allocateLoadBalancerNodePorts === old.allocateLoadBalancerNodePorts) delete spec.allocateLoadBalancerNodePorts;
    if (spec.loadBalancerClass === old.loadBalancerClass) delete spec.loadBalancerClass;
  }
  if (externallyAccessible(old) && !externallyAccessible(spec) && spec.externalTrafficPolicy === old.externalTrafficPolicy) {
    delete spec.externalTrafficPolicy;
  }
}

/** initNodePorts / updateNodePorts / the health-check port: allocation before validation, as the registry does it. */
function allocateNodePorts(name: string, spec: ServiceSpec, old: ServiceSpec | undefined, others: readonly KubeObject[]): void {
  const kept = new Set(old && needsNodePorts(old) ? nodePortsOf(old) : []);
  const allocation = new NodePortAllocation(name, others, kept);
  if (needsNodePorts(spec)) {
    // Ports with the same number (TCP and UDP 53) share one node port.
    const byPort = new Map<unknown, number>();
    (spec.ports ?? []).forEach((port, i) => {
      if (!port.nodePort && !allocatesNodePorts(spec)) return;
      const shared = byPort.get(port.port);
      if (port.nodePort) {
        if (port.nodePort !== shared) allocation.claim(port.nodePort, `spec.ports[${i}].nodePort`);
      } else {
        port.nodePort = shared ?? allocation.next();
      }
      byPort.set(port.port, port.nodePort);
    });
  }
  if (needsHealthCheckNodePort(spec)) {
    if (spec.healthCheckNodePort) allocation.claim(spec.healthCheckNodePort, 'spec.healthCheckNodePort');
    else spec.healthCheckNodePort = allocation.next();
  }
}

/** SetDefaults_Service, at decoding: what it fills counts as the writer's in managedFields. */
function defaultServiceObject(o: KubeObject): void {
  const spec: ServiceSpec = structuredClone(specOf(o));
  defaultService(spec);
  o.spec = spec;
}

/**
 * initIPFamilyFields (pkg/registry/core/service/storage/alloc.go) on a cluster with IPv4 only: no
 * policy means the old one, else RequireDualStack for a headless Service without a selector (which
 * then lists both families), else SingleStack; no families means the cluster's (IPv4).
 */
function initIPFamilies(spec: ServiceSpec, before: ServiceSpec | undefined): void {
  const selectorless = Object.keys(spec.selector ?? {}).length === 0;
  spec.ipFamilyPolicy ??= before?.ipFamilyPolicy ?? (isHeadless(spec) && selectorless ? 'RequireDualStack' : 'SingleStack');
  if (!spec.ipFamilies?.length) spec.ipFamilies = ['IPv4'];
  if (isHeadless(spec) && selectorless && spec.ipFamilies.length < 2 && spec.ipFamilyPolicy !== 'SingleStack') {
    spec.ipFamilies = [...spec.ipFamilies, spec.ipFamilies[0] === 'IPv4' ? 'IPv6' : 'IPv4'];
  }
}

/**
 * The registry's part (PrepareForCreate/Update, then allocation): after managedFields are
 * computed, so what it fills (cluster IPs, IP families, node ports) is nobody's.
 */
function allocateService(o: KubeObject, old: KubeObject | undefined, stored: () => KubeObject[]): void {
  const spec: ServiceSpec = structuredClone(specOf(o));
  const before = old ? specOf(old) : undefined;
  if (before) carryOver(spec, before);
  if (spec.type === 'ExternalName') {
    delete spec.clusterIP;
    delete spec.clusterIPs;
  } else {
    spec.clusterIP ??= before?.clusterIP ?? allocateClusterIP();
    spec.clusterIPs ??= [spec.clusterIP];
    initIPFamilies(spec, before);
  }
  const name = o.metadata.name ?? '';
  const others = stored().filter((s) => !(s.metadata.namespace === o.metadata.namespace && s.metadata.name === name));
  allocateNodePorts(name, spec, before, others);
  o.spec = spec;
  // Create clears status; a spec update keeps it, but a Service that is no longer a
  // LoadBalancer loses its load-balancer status at once.
  if (!old) o.status = { loadBalancer: {} };
  o.status ??= { loadBalancer: {} };
  const status = o.status as { loadBalancer?: { ingress?: LoadBalancerIngress[] } };
  if (!isLoadBalancer(spec)) status.loadBalancer = {};
  for (const ingress of status.loadBalancer?.ingress ?? []) if (ingress.ip && !ingress.ipMode) ingress.ipMode = 'VIP';
  omitEmpty(o.spec as Record<string, unknown>);
  omitEmpty(status);
}

/** Go's omitempty, as the server's JSON has it: every list of a Service's spec and status, and
 *  its selector, are left out when empty (`ingress: []` written comes back without the key). */
function omitEmpty(value: Record<string, unknown>): void {
  for (const [key, v] of Object.entries(value)) {
    if (Array.isArray(v)) {
      if (v.length === 0) delete value[key];
      else for (const item of v) if (item && typeof item === 'object') omitEmpty(item as Record<string, unknown>);
    } else if (v && typeof v === 'object') {
      if (key === 'selector' && Object.keys(v).length === 0) delete value[key];
      else omitEmpty(v as Record<string, unknown>);
    }
  }
}

const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const QUALIFIED_NAME_HELP = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an " +
  "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is " +
  "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const DNS_SUBDOMAIN_HELP = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', " +
  "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is " +
  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS_LABEL_HELP = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end " +
  "with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/** IsQualifiedName: an optional DNS-subdomain prefix and '/', then a name of at most 63 characters. */
function qualifiedName(field: string, value: string): StatusCause[] {
  const parts = value.split('/');
  if (parts.length > 2) {
    const detail = `a qualified name ${QUALIFIED_NAME_HELP} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')`;
    return [causes.invalid(field, value, detail)];
  }
  const [prefix, name] = parts.length === 2 ? parts : [undefined, parts[0]!];
  const out: StatusCause[] = [];
  if (prefix !== undefined && (prefix === '' || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    out.push(causes.invalid(field, value, prefix === '' ? 'prefix part must be non-empty' : `prefix part ${DNS_SUBDOMAIN_HELP}`));
  }
  if (name === '') out.push(causes.invalid(field, value, 'name part must be non-empty'));
  else if (name!.length > 63) out.push(causes.invalid(field, value, 'name part must be no more than 63 characters'));
  if (!QUALIFIED_NAME.test(name!)) out.push(causes.invalid(field, value, `name part ${QUALIFIED_NAME_HELP}`));
  return out;
}

const validPort = (p: unknown) => typeof p === 'number' && Number.isInteger(p) && p >= 1 && p <= 65535;
const PORT_RANGE_MESSAGE = 'must be between 1 and 65535, inclusive';

function validatePorts(spec: ServiceSpec, out: StatusCause[]): void {
  const ports = spec.ports ?? [];
  const names = new Set<string>();
  const numbers = new Set<string>();
  const nodePorts = new Set<string>();
  ports.forEach((p, i) => {
    const field = `spec.ports[${i}]`;
    if (ports.length > 1 && !p.name) out.push(causes.required(`${field}.name`));
    else if (p.name) {
      if (p.name.length > 63 || !DNS_LABEL.test(p.name)) out.push(causes.invalid(`${field}.name`, p.name, DNS_LABEL_HELP));
      if (names.has(p.name)) out.push(causes.duplicate(`${field}.name`, p.name));
      names.add(p.name);
    }
    if (!validPort(p.port)) out.push(causes.invalid(`${field}.port`, p.port, PORT_RANGE_MESSAGE));
    if (!['TCP', 'UDP', 'SCTP'].includes(p.protocol ?? '')) {
      out.push(causes.notSupported(`${field}.protocol`, p.protocol ?? '', ['SCTP', 'TCP', 'UDP']));
    }
    if (typeof p.targetPort === 'number' && !validPort(p.targetPort)) {
      out.push(causes.invalid(`${field}.targetPort`, p.targetPort, PORT_RANGE_MESSAGE));
    }
    if (p.appProtocol !== undefined) out.push(...qualifiedName(`${field}.appProtocol`, p.appProtocol));
    if (spec.type === 'ClusterIP' && p.nodePort) {
      out.push(causes.forbidden(`${field}.nodePort`, "may not be used when `type` is 'ClusterIP'"));
    }
    if (p.nodePort) {
      const key = `${p.protocol}/${p.nodePort}`;
      if (nodePorts.has(key)) out.push(causes.duplicate(`${field}.nodePort`, p.nodePort));
      nodePorts.add(key);
    }
    const key = `${p.protocol}/${String(p.port)}`;
    if (numbers.has(key)) out.push(causes.duplicate(field, { port: p.port, protocol: p.protocol }));
    numbers.add(key);
  });
}

const ONLY_LOAD_BALANCER = "may only be used when `type` is 'LoadBalancer'";

function validateLoadBalancerFields(spec: ServiceSpec, old: ServiceSpec | undefined, out: StatusCause[]): void {
  if (old && isLoadBalancer(old) && isLoadBalancer(spec) && old.loadBalancerClass !== spec.loadBalancerClass) {
    // Go prints the nil pointer as the string "null", quoted.
    out.push(causes.invalid('spec.loadBalancerClass', spec.loadBalancerClass ?? 'null', 'may not change once set'));
  }
  if (spec.loadBalancerClass !== undefined) {
    if (isLoadBalancer(spec)) out.push(...qualifiedName('spec.loadBalancerClass', spec.loadBalancerClass));
    else out.push(causes.forbidden('spec.loadBalancerClass', ONLY_LOAD_BALANCER));
  }
  // The real server's field path is capitalised here.
  if ((spec.loadBalancerSourceRanges ?? []).length > 0) {
    if (!isLoadBalancer(spec)) out.push(causes.forbidden('spec.LoadBalancerSourceRanges', ONLY_LOAD_BALANCER));
    spec.loadBalancerSourceRanges!.forEach((range, i) => {
      if (!isCIDR(range.trim())) {
        const detail = 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)';
        out.push(causes.invalid(`spec.LoadBalancerSourceRanges[${i}]`, range.trim(), detail));
      }
    });
  }
  if (spec.allocateLoadBalancerNodePorts !== undefined && !isLoadBalancer(spec)) {
    out.push(causes.forbidden('spec.allocateLoadBalancerNodePorts', ONLY_LOAD_BALANCER));
  }
}

function isCIDR(value: string): boolean {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(value);
  if (match) return match.slice(1, 5).every((o) => Number(o) <= 255 && !/^0\d/.test(o)) && Number(match[5]) <= 32;
  return /^[0-9a-fA-F:]+\/\d{1,3}$/.test(value) && value.includes('::');
}

function validateTrafficPolicies(spec: ServiceSpec, old: ServiceSpec | undefined, out: StatusCause[]): void {
  if (!externallyAccessible(spec)) {
    if (spec.externalTrafficPolicy) {
      const detail = 'may only be set for externally-accessible services';
      out.push(causes.invalid('spec.externalTrafficPolicy', spec.externalTrafficPolicy, detail));
    }
  } else if (!spec.externalTrafficPolicy) {
    out.push(causes.required('spec.externalTrafficPolicy'));
  } else if (!['Cluster', 'Local'].includes(spec.externalTrafficPolicy)) {
    out.push(causes.notSupported('spec.externalTrafficPolicy', spec.externalTrafficPolicy, ['Cluster', 'Local']));
  }
  if (!needsHealthCheckNodePort(spec)) {
    if (spec.healthCheckNodePort) {
      const detail = "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'";
      out.push(causes.invalid('spec.healthCheckNodePort', spec.healthCheckNodePort, detail));
    }
  } else if (!spec.healthCheckNodePort) {
    out.push(causes.required('spec.healthCheckNodePort'));
  } else if (!validPort(spec.healthCheckNodePort)) {
    out.push(causes.invalid('spec.healthCheckNodePort', spec.healthCheckNodePort, PORT_RANGE_MESSAGE));
  }
  if (old && needsHealthCheckNodePort(old) && needsHealthCheckNodePort(spec) && old.healthCheckNodePort !== spec.healthCheckNodePort) {
    out.push(causes.forbidden('spec.healthCheckNodePort', 'field is immutable'));
  }
  if (spec.internalTrafficPolicy !== undefined && !['Cluster', 'Local'].includes(spec.internalTrafficPolicy)) {
    out.push(causes.notSupported('spec.internalTrafficPolicy', spec.internalTrafficPolicy, ['Cluster', 'Local']));
  }
}

function validateLoadBalancerStatus(o: KubeObject, spec: ServiceSpec, out: StatusCause[]): void {
  const ingress = ingressOf(o);
  if (!isLoadBalancer(spec) && ingress.length > 0) {
    out.push(causes.forbidden('status.loadBalancer.ingress', "may only be used when `spec.type` is 'LoadBalancer'"));
    return;
  }
  ingress.forEach((entry, i) => {
    const field = `status.loadBalancer.ingress[${i}]`;
    if (entry.ip && !isIP(entry.ip)) {
      out.push(causes.invalid(`${field}.ip`, entry.ip, 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'));
    }
    if (entry.ipMode !== undefined && !entry.ip) {
      out.push(causes.forbidden(`${field}.ipMode`, 'may not be specified when `ip` is not set'));
    } else if (entry.ipMode !== undefined && !['Proxy', 'VIP'].includes(entry.ipMode)) {
      out.push(causes.notSupported(`${field}.ipMode`, entry.ipMode, ['Proxy', 'VIP']));
    }
  });
}

function isIP(value: string): boolean {
  const parts = value.split('.');
  if (parts.length === 4) return parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255 && !/^0\d/.test(p));
  return /^[0-9a-fA-F:]+$/.test(value) && value.includes(':');
}

function validateService(o: KubeObject, old: KubeObject | undefined): StatusCause[] {
  const spec = specOf(o);
  const before = old ? specOf(old) : undefined;
  const out: StatusCause[] = [];
  if (!['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'].includes(spec.type ?? '')) {
    out.push(causes.notSupported('spec.type', spec.type ?? '', ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort']));
  }
  if (spec.ports !== undefined && !Array.isArray(spec.ports)) out.push(causes.typeInvalid('spec.ports', spec.ports, 'must be a list'));
  else {
    if ((spec.ports ?? []).length === 0 && !isHeadless(spec) && spec.type !== 'ExternalName') out.push(causes.required('spec.ports'));
    validatePorts(spec, out);
  }
  if (needsNodePorts(spec) && isHeadless(spec)) {
    out.push(causes.invalid('spec.clusterIPs[0]', 'None', `may not be set to 'None' for ${spec.type} services`));
  }
  if (spec.type === 'ExternalName' && !spec.externalName) out.push(causes.required('spec.externalName'));
  if (!['None', 'ClientIP'].includes(spec.sessionAffinity ?? '')) {
    out.push(causes.notSupported('spec.sessionAffinity', spec.sessionAffinity ?? '', ['ClientIP', 'None']));
  }
  if (before?.clusterIP !== undefined && spec.clusterIP !== undefined && spec.clusterIP !== before.clusterIP) {
    out.push(causes.invalid('spec.clusterIPs[0]', spec.clusterIP, 'may not change once set'));
  }
  validateLoadBalancerFields(spec, before, out);
  validateTrafficPolicies(spec, before, out);
  validateLoadBalancerStatus(o, spec, out);
  return out;
}

function col(name: string, description: string, priority = 0, format = ''): ColumnDefinition {
  return { name, type: 'string', format, description, priority };
}

const NAME = col('Name', 'Name must be unique within a namespace.', 0, 'name');
const AGE = col('Age', 'CreationTimestamp is a timestamp representing the server time when this object was created.');

/** printService: EXTERNAL-IP is the ingress addresses for a LoadBalancer, `<pending>` until there are some. */
function externalIP(spec: ServiceSpec, o: KubeObject): string {
  const external = spec.externalIPs ?? [];
  switch (spec.type) {
    case 'ClusterIP':
    case 'NodePort':
      return external.length ? external.join(',') : '<none>';
    case 'LoadBalancer': {
      const ingress = [...new Set(ingressOf(o).map((i) => i.ip || i.hostname || '').filter(Boolean))].sort();
      const all = [...ingress, ...external];
      return all.length ? all.join(',') : '<pending>';
    }
    case 'ExternalName':
      return spec.externalName ?? '';
    default:
      return '<unknown>';
  }
}

const portsCell = (ports: ServicePort[]) =>
  ports.map((p) => `${String(p.port)}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol}`).join(',') || '<none>';

export const serviceTable: TableSpec = {
  columns: [
    NAME, col('Type', 'type determines how the Service is exposed.'), col('Cluster-IP', 'clusterIP is the IP address of the service.'),
    col('External-IP', 'externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.'),
    col('Port(s)', 'The list of ports that are exposed by this service.'), AGE,
    col('Selector', 'Route service traffic to pods with label keys and values matching this selector.', 1),
  ],
  cells(o, now) {
    const spec = specOf(o);
    const selector = Object.entries(spec.selector ?? {}).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${v}`).join(',');
    return [o.metadata.name, spec.type ?? '', spec.clusterIPs?.[0] ?? '<none>', externalIP(spec, o), portsCell(spec.ports ?? []),
      age(o.metadata.creationTimestamp, now), selector || '<none>'];
  },
};

export const serviceHooks = {
  normalize: defaultServiceObject,
  allocate: allocateService,
  validate: validateService,
  fields: (o: KubeObject) => ({ 'spec.clusterIP': specOf(o).clusterIP ?? '', 'spec.type': specOf(o).type ?? '' }),
};

interface NodeStatus {
  conditions?: { type?: string; status?: string }[];
  addresses?: { type?: string; address?: string }[];
  nodeInfo?: { kubeletVersion?: string; osImage?: string; kernelVersion?: string; containerRuntimeVersion?: string };
}

/** printNode: Ready or NotReady (Unknown without the condition), SchedulingDisabled when cordoned. */
function nodeStatusCell(o: KubeObject): string {
  const ready = ((o.status as NodeStatus | undefined)?.conditions ?? []).find((c) => c.type === 'Ready');
  const states = ready ? [ready.status === 'True' ? 'Ready' : 'NotReady'] : ['Unknown'];
  if ((o.spec as { unschedulable?: boolean } | undefined)?.unschedulable) states.push('SchedulingDisabled');
  return states.join(',');
}

const ROLE_PREFIX = 'node-role.kubernetes.io/';

function nodeRoles(o: KubeObject): string {
  const roles = new Set<string>();
  for (const [k, v] of Object.entries(o.metadata.labels ?? {})) {
    if (k.startsWith(ROLE_PREFIX) && k.length > ROLE_PREFIX.length) roles.add(k.slice(ROLE_PREFIX.length));
    else if (k === 'kubernetes.io/role' && v) roles.add(v);
  }
  return [...roles].sort().join(',') || '<none>';
}

const nodeAddress = (o: KubeObject, type: string) =>
  ((o.status as NodeStatus | undefined)?.addresses ?? []).find((a) => a.type === type)?.address ?? '<none>';

export const nodeTable: TableSpec = {
  columns: [
    NAME, col('Status', 'The status of the node'), col('Roles', 'The roles of the node'), AGE,
    col('Version', 'Kubelet Version reported by the node.'),
    col('Internal-IP', 'List of addresses reachable to the node.', 1), col('External-IP', 'List of addresses reachable to the node.', 1),
    col('OS-Image', 'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).', 1),
    col('Kernel-Version', "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", 1),
    col('Container-Runtime', 'ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).', 1),
  ],
  cells(o, now) {
    const info = (o.status as NodeStatus | undefined)?.nodeInfo ?? {};
    return [o.metadata.name, nodeStatusCell(o), nodeRoles(o), age(o.metadata.creationTimestamp, now), info.kubeletVersion ?? '',
      nodeAddress(o, 'InternalIP'), nodeAddress(o, 'ExternalIP'), info.osImage || '<unknown>', info.kernelVersion || '<unknown>',
      info.containerRuntimeVersion || '<unknown>'];
  },
};

export const nodeHooks = {
  fields: (o: KubeObject) => ({
    'spec.unschedulable': String((o.spec as { unschedulable?: boolean } | undefined)?.unschedulable === true),
  }),
};
