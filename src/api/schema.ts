// The one source of truth for the HALoadBalancer API (halb.dev/v1alpha1).
// `npm run crds` turns it into crds/haloadbalancer.yaml and src/api/types.generated.ts;
// `npm run crds:check` fails when either is stale. The schema is structural (every node
// has a type, no additionalProperties next to properties), so the API server can prune
// and default with it. Patterns avoid look-arounds: the API server uses RE2. Rules across
// fields are CEL (x-kubernetes-validations), evaluated by the API server, the emulator and
// `halb validate` alike (src/api/cel.ts); the strings and lists they read carry maxLength and
// maxItems, which the API server's CEL cost estimate needs.
import type { ValidationRule } from './cel.ts';

export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  required?: string[];
  items?: JSONSchemaProps;
  enum?: readonly (string | number)[];
  default?: unknown;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: ValidationRule[];
}

export const GROUP = 'halb.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'HALoadBalancer';
export const PLURAL = 'haloadbalancers';
export const SINGULAR = 'haloadbalancer';
export const SHORT_NAMES = ['halb'];

// Names of generated TypeScript interfaces, keyed by the schema node they describe.
// A type used in several places carries its own doc; otherwise the node's description serves.
export const typeNames = new WeakMap<JSONSchemaProps, { name: string; doc?: string }>();

function named(name: string, schema: JSONSchemaProps, doc?: string): JSONSchemaProps {
  typeNames.set(schema, doc === undefined ? { name } : { name, doc });
  return schema;
}

type Extra = Omit<JSONSchemaProps, 'type'>;

function object(
  description: string, properties: Record<string, JSONSchemaProps>, required: string[] = [], extra: Extra = {},
): JSONSchemaProps {
  return { type: 'object', description, properties, ...(required.length ? { required } : {}), ...extra };
}
function string(description: string, extra: Extra = {}): JSONSchemaProps {
  return { type: 'string', description, ...extra };
}
function integer(description: string, minimum: number, maximum: number, extra: Extra = {}): JSONSchemaProps {
  return { type: 'integer', description, minimum, maximum, ...extra };
}
function boolean(description: string, defaultValue: boolean): JSONSchemaProps {
  return { type: 'boolean', description, default: defaultValue };
}
function array(description: string, items: JSONSchemaProps, extra: Extra = {}): JSONSchemaProps {
  return { type: 'array', description, items, ...extra };
}
function stringEnum(description: string, values: readonly string[], defaultValue?: string): JSONSchemaProps {
  return { type: 'string', description, enum: values, ...(defaultValue === undefined ? {} : { default: defaultValue }) };
}
function mapList(description: string, items: JSONSchemaProps, minItems: number, maxItems: number): JSONSchemaProps {
  return array(description, items, { minItems, maxItems, 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] });
}

// Regular expressions, shared with semantic validation and the renderer's own guards.
const octet = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
export const patterns = {
  dns1123Label: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
  dns1123Subdomain: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
  secretKey: '^[-._a-zA-Z0-9]+$',
  ipv4: `^(${octet}\\.){3}${octet}$`,
  ipv4OrEmpty: `^((${octet}\\.){3}${octet})?$`,
  cidr: `^(${octet}\\.){3}${octet}/(3[0-2]|[12]?[0-9])$`,
  // An IPv4 address also matches; semantic validation then checks that it is a valid one.
  hostOrIPv4: '^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$',
  // Visible ASCII only (HTTP paths are ASCII; anything else arrives percent-encoded), without
  // braces, '#', quotes or backslashes, which HAProxy's parser would treat as structure. A
  // denylist would let invisible and format characters (U+0085, U+200B, U+2028) through.
  pathPrefix: '^/[!$%&()*+,./0-9:;<=>?@A-Z\\[\\]^_`a-z|~-]*$',
  region: '^[a-z]{3}[0-9]$',
  slug: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
  sshKey: '^([0-9]{1,12}|[0-9a-f]{2}(:[0-9a-f]{2}){15})$',
  doTag: '^[A-Za-z0-9_:-]+$',
  doTagOrEmpty: '^[A-Za-z0-9_:-]*$',
  uuidOrEmpty: '^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$',
  balanceParam: '^[A-Za-z0-9_.-]*$',
  conditionType: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$',
  conditionReason: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
} as const;

// Node names are `<object name>-<index>` and become droplet names, DigitalOcean tags and, in
// the sandbox, network-namespace names; 40 characters keeps all of them within their limits.
export const MAX_OBJECT_NAME_LENGTH = 40;

const dnsLabel = (description: string) => string(description, { pattern: patterns.dns1123Label, minLength: 1, maxLength: 63 });
const port = (description: string, extra: Extra = {}) => integer(description, 1, 65535, extra);

const secretKeySelector = (description: string) =>
  named('SecretKeySelector', object(description, {
    name: string('Name of the Secret, in the HALoadBalancer\'s namespace.', {
      pattern: patterns.dns1123Subdomain, minLength: 1, maxLength: 253,
    }),
    key: string('Key within the Secret\'s data.', { pattern: patterns.secretKey, minLength: 1, maxLength: 253 }),
  }, ['name', 'key']), 'Selects a key of a Secret in the HALoadBalancer\'s namespace.');

const credentials = named('Credentials', object('Secrets the operator reads. Tokens and keys never appear in the spec itself.', {
  tokenSecretRef: secretKeySelector('The operator\'s DigitalOcean API token (droplet, reserved_ip, tag, firewall and ssh_key scopes).'),
  failoverTokenSecretRef: secretKeySelector('The token written to the load-balancer droplets for the failover script. ' +
    'Defaults to tokenSecretRef, with a warning condition: a token scoped to reserved_ip alone is safer on the hosts.'),
  sshKeySecretRef: secretKeySelector('The operator\'s SSH private key (kubernetes.io/ssh-auth key ssh-privatekey). ' +
    'The operator registers its public half with DigitalOcean.'),
}, ['tokenSecretRef', 'sshKeySecretRef']));

const droplets = named('DropletsSpec', object('The load-balancer droplets.', {
  count: integer('Number of load-balancer nodes.', 2, 5, { default: 2 }),
  size: string('DigitalOcean size slug.', { pattern: patterns.slug, maxLength: 64, default: 's-1vcpu-1gb' }),
  image: string('DigitalOcean image slug or id. Ubuntu 24.04 ships keepalived 2.2.8 and HAProxy 2.8.', {
    pattern: patterns.slug, maxLength: 64, default: 'ubuntu-24-04-x64',
  }),
  sshKeys: array('Extra DigitalOcean SSH keys (ids or MD5 fingerprints) for people. The operator adds its own key.',
    string('An SSH key id or fingerprint.', { pattern: patterns.sshKey }), { maxItems: 20, default: [] }),
  tags: array('Extra DigitalOcean tags for the load-balancer droplets.',
    string('A DigitalOcean tag.', { pattern: patterns.doTag, minLength: 1, maxLength: 255 }), { maxItems: 20, default: [] }),
  replaceColocated: boolean('Replace a node that shares a physical machine with another node of this load balancer ' +
    '(DigitalOcean lists them as neighbours), a BACKUP at a time, until they are apart. ' +
    'Off: the condition NodesColocated only says so.', false),
}, [], { default: {} }));

const floatingIP = named('FloatingIPSpec', object('The reserved (floating) IP that clients use.', {
  address: string('Adopt this existing reserved IPv4. Empty: the operator creates one in the region.', {
    pattern: patterns.ipv4OrEmpty, default: '',
  }),
  reclaimPolicy: stringEnum('What happens to the reserved IP when the HALoadBalancer is deleted.', ['Retain', 'Delete'], 'Retain'),
}, [], { default: {} }));

const route = named('RouteSpec', object('Send requests whose path begins with pathPrefix to backend. The first match wins.', {
  pathPrefix: string('Path prefix, for example /api/.', { pattern: patterns.pathPrefix, minLength: 1, maxLength: 1024 }),
  backend: dnsLabel('Name of a backend in spec.backends.'),
}, ['pathPrefix', 'backend']));

const tlsPort = port('The TLS port.', { default: 443 });
const tls = named('TLSSpec', object('TLS termination on the load balancers.', {
  secretRef: named('LocalObjectReference', object('A kubernetes.io/tls Secret with tls.crt and tls.key ' +
    '(cert-manager\'s Certificates produce these).', {
    name: string('Name of the Secret.', { pattern: patterns.dns1123Subdomain, minLength: 1, maxLength: 253 }),
  }, ['name'])),
  port: tlsPort,
  redirectHTTP: boolean('Redirect plain-HTTP requests on the frontend port to https.', false),
}, ['secretRef']));

// A field's value in a CEL rule, read as withDefaults() fills it: the CRD does not default
// fields inside list items, so a rule must mean the same with the field unset.
function orDefault(object: string, field: string, schema: JSONSchemaProps): string {
  return `(has(${object}.${field}) ? ${object}.${field} : ${JSON.stringify(schema.default)})`;
}

const frontendProtocol = stringEnum('http: layer-7 proxying with routes; tcp: layer-4 passthrough.', ['http', 'tcp'], 'http');
const isHTTP = `${orDefault('self', 'protocol', frontendProtocol)} == 'http'`;

const frontend = named('FrontendSpec', object('One HAProxy frontend, bound on every node\'s anchor IPv4, ' +
  'where DigitalOcean delivers reserved-IP traffic.', {
  name: dnsLabel('Frontend name.'),
  port: port('The listening port.'),
  protocol: frontendProtocol,
  tls: tls,
  routes: array('Path routes, http only. The first match wins.', route, { maxItems: 100, 'x-kubernetes-list-type': 'atomic' }),
  defaultBackend: dnsLabel('Backend for requests no route matches.'),
}, ['name', 'port', 'defaultBackend'], {
  'x-kubernetes-validations': [
    {
      rule: `!has(self.tls) || ${isHTTP}`, fieldPath: '.tls', reason: 'FieldValueForbidden', message: 'TLS termination needs protocol http',
    },
    {
      rule: `!has(self.routes) || size(self.routes) == 0 || ${isHTTP}`,
      fieldPath: '.routes', reason: 'FieldValueForbidden', message: 'routes need protocol http',
    },
  ],
}));

const healthCheck = named('HealthCheckSpec', object('Active health check of every server.', {
  protocol: stringEnum('http sends GET path and expects 2xx or 3xx; tcp checks that a connection opens.', ['http', 'tcp'], 'tcp'),
  path: string('Path for http checks.', { pattern: patterns.pathPrefix, maxLength: 1024, default: '/' }),
  intervalSeconds: integer('Seconds between checks.', 1, 3600, { default: 2 }),
  rise: integer('Consecutive successes before a server is up.', 1, 100, { default: 2 }),
  fall: integer('Consecutive failures before a server is down.', 1, 100, { default: 3 }),
  port: port('Port the checks go to, without PROXY protocol. Unset: each server\'s own port. '
    + 'A Service with externalTrafficPolicy Local: its healthCheckNodePort.'),
}, [], { default: {} }));

const server = named('ServerSpec', object('A static backend server.', {
  name: dnsLabel('Server name, unique within the backend.'),
  address: string('IPv4 address or DNS name.', { pattern: patterns.hostOrIPv4, minLength: 1, maxLength: 253 }),
  port: port('Port; unset means the backend\'s port.'),
  // No defaults inside list items (GitOps): unset means HAProxy's own.
  weight: integer('Share of new connections relative to the other servers (HAProxy\'s weight, 0-256). Unset: 1. '
    + 'A change goes through HAProxy\'s runtime API, without a reload, where the backend allows it.', 0, 256),
  drain: { type: 'boolean', description: 'Take no new connections while open ones finish (weight 0). Drain a server before removing it '
    + 'to let its long-lived connections end on their own.' },
}, ['name', 'address']));

export const balanceAlgorithms = [
  'roundrobin', 'static-rr', 'leastconn', 'first', 'source', 'uri', 'url_param', 'hdr', 'rdp-cookie', 'random',
] as const;
export const balanceAlgorithmsWithParam = ['url_param', 'hdr', 'rdp-cookie'] as const;
export const httpOnlyBalanceAlgorithms = ['uri', 'url_param', 'hdr'] as const;

const balance = stringEnum('HAProxy balance algorithm.', balanceAlgorithms, 'roundrobin');
const balanceParam = string('The parameter of url_param (a query parameter), hdr (a header name) or rdp-cookie (a cookie name).',
  { pattern: patterns.balanceParam, maxLength: 64, default: '' });
const balanceOf = orDefault('self', 'balance', balance);
const takesParam = `${balanceOf} in ${JSON.stringify(balanceAlgorithmsWithParam)}`;
const needsParam = 'balance %s needs balanceParam: the query parameter (url_param), header (hdr) or cookie (rdp-cookie)';
const hasParam = `${orDefault('self', 'balanceParam', balanceParam)} != ''`;

const backend = named('BackendSpec', object('One HAProxy backend: static servers and/or the droplets carrying a DigitalOcean tag.', {
  name: dnsLabel('Backend name.'),
  balance,
  balanceParam,
  port: port('Default port of the servers.', { default: 80 }),
  maxconnPerServer: integer('Concurrent connections each server accepts; excess requests queue in HAProxy. 0 means no limit.', 0, 1000000, {
    default: 0,
  }),
  healthCheck: healthCheck,
  stickySessions: boolean('Cookie-based session affinity (http only).', false),
  proxyProtocol: boolean('Send PROXY protocol v2 to the servers.', false),
  servers: mapList('Static servers.', server, 0, 100),
  dropletTag: string('Also balance over every droplet with this DigitalOcean tag, by its private IPv4.', {
    pattern: patterns.doTagOrEmpty, maxLength: 255, default: '',
  }),
  restrictToLoadBalancers: boolean('Keep a DigitalOcean Cloud Firewall on the tagged droplets ' +
    'that admits port only from the load-balancer droplets.', false),
}, ['name'], {
  'x-kubernetes-validations': [
    {
      rule: `!(${takesParam}) || ${hasParam}`, fieldPath: '.balanceParam', reason: 'FieldValueRequired',
      messageExpression: `'${needsParam}'.format([${balanceOf}])`,
    },
    {
      rule: `${takesParam} || !(${hasParam})`, fieldPath: '.balanceParam', reason: 'FieldValueForbidden',
      messageExpression: `'balance %s takes no balanceParam; only ${balanceAlgorithmsWithParam.join(', ')} do'.format([${balanceOf}])`,
    },
  ],
}));

const failover = named('FailoverSpec', object('VRRP (keepalived) settings. ' +
  'keepalived on the nodes decides who is MASTER; the operator only observes.', {
  advertIntervalSeconds: {
    type: 'number',
    description: 'VRRP advert interval. Unset: 0.2 (VRRPv3), or 1 when authSecretRef is set, ' +
      'because PASS authentication exists only in VRRPv2, which takes whole seconds.',
    minimum: 0.01,
    maximum: 40.95,
  },
  checkIntervalSeconds: {
    type: 'number',
    description: 'How often keepalived checks that HAProxy serves. Unset: 0.2 on keepalived 2.3.2 and later, ' +
      '1 on older keepalived, which takes whole seconds only (a fraction is rounded up there).',
    minimum: 0.1,
    maximum: 10,
  },
  preempt: boolean('A recovered higher-priority node takes MASTER back. ' +
    'Off by default: every failover moves the reserved IP, which costs a short outage.', false),
  virtualRouterID: integer('VRRP virtual_router_id. 0: derived from the object\'s UID.', 0, 255, { default: 0 }),
  authSecretRef: secretKeySelector('VRRP PASS authentication (VRRPv2 only; at most 8 characters).'),
}, [], {
  default: {},
  'x-kubernetes-validations': [{
    rule: '!has(self.authSecretRef) || !has(self.advertIntervalSeconds)'
      + ' || self.advertIntervalSeconds == double(int(self.advertIntervalSeconds))',
    fieldPath: '.advertIntervalSeconds',
    messageExpression: "'PASS authentication (authSecretRef) needs VRRPv2, which advertises in whole seconds; got %s'"
      + '.format([self.advertIntervalSeconds])',
  }],
}));

const cidrList = (description: string) =>
  array(description, string('An IPv4 CIDR.', { pattern: patterns.cidr }), { maxItems: 50, default: [] });

const access = named('AccessSpec', object('Host firewall (nftables) on the load-balancer nodes. ' +
  'DigitalOcean Cloud Firewalls cannot pass VRRP, so the hosts filter themselves.', {
  sshSourceCIDRs: cidrList('Who may SSH to the nodes; must include the operator\'s source address. ' +
    'Empty: open to all, flagged by the condition SSHExposed=True.'),
  metricsSourceCIDRs: cidrList('Who may scrape HAProxy metrics. Empty: the VPC only.'),
  frontendSourceCIDRs: cidrList('Who may reach the frontends (a Service\'s loadBalancerSourceRanges). Empty: everyone.'),
}, [], { default: {} }));

// Every port the frontends listen on, a frontend's TLS port included; in CEL, on the list.
const tlsPortOf = (f: string) => `(has(${f}.tls.port) ? ${f}.tls.port : ${JSON.stringify(tlsPort.default)})`;
const listenPorts = `(self.map(f, f.port) + self.filter(f, has(f.tls)).map(f, ${tlsPortOf('f')}))`;
const uniquePorts: ValidationRule = {
  rule: `${listenPorts}.all(p, ${listenPorts}.exists_one(q, q == p))`,
  messageExpression: `'port %d is used more than once: every frontend port and TLS port must differ'`
    + `.format([${listenPorts}.filter(p, ${listenPorts}.filter(q, q == p).size() > 1)[0]])`,
};

// References from frontends to backends, checked where both lists are in view: on the spec.
const isBackend = (name: string) => `self.backends.exists(b, b.name == ${name})`;
const backendReferences: ValidationRule[] = [{
  rule: `self.frontends.all(f, ${isBackend('f.defaultBackend')})`,
  fieldPath: '.frontends',
  messageExpression: `'frontend %s: defaultBackend %s is not a backend in spec.backends'.format(`
    + `self.frontends.filter(f, !${isBackend('f.defaultBackend')}).map(f, [f.name, f.defaultBackend])[0])`,
}, {
  rule: `self.frontends.all(f, !has(f.routes) || f.routes.all(r, ${isBackend('r.backend')}))`,
  fieldPath: '.frontends',
  // Naming the route's backend too makes the API server's cost estimate of the message 100 times
  // over its budget (tried on kube-apiserver 1.33): the frontend it is.
  messageExpression: `'frontend %s: a route names a backend that is not in spec.backends'.format(`
    + `[self.frontends.filter(f, has(f.routes) && f.routes.exists(r, !${isBackend('r.backend')}))[0].name])`,
}];

const immutable = (field: string, why: string): ValidationRule => ({ rule: 'self == oldSelf', message: `${field} is immutable: ${why}` });

export const specSchema = named('HALoadBalancerSpec', object(
  'Desired state of a highly available HAProxy + keepalived load balancer on DigitalOcean.', {
  region: string('DigitalOcean region slug, for example nyc3. Immutable.', {
    pattern: patterns.region, maxLength: 16,
    'x-kubernetes-validations': [immutable('region', 'the droplets and the reserved IP live there; create a new HALoadBalancer to move')],
  }),
  vpcUUID: string('VPC to place the droplets in. Empty: the region\'s default VPC. Immutable.',
    { pattern: patterns.uuidOrEmpty, maxLength: 36, default: '' }),
  credentials,
  droplets,
  floatingIP,
  frontends: { ...mapList('HAProxy frontends.', frontend, 1, 32), 'x-kubernetes-validations': [uniquePorts] },
  backends: mapList('HAProxy backends.', backend, 1, 64),
  failover,
  access,
}, ['region', 'credentials', 'frontends', 'backends'], {
  'x-kubernetes-validations': [
    ...backendReferences,
    {
      // vpcUUID is optional: the rule sits on the spec, so setting or clearing it counts as a change.
      rule: "(has(self.vpcUUID) ? self.vpcUUID : '') == (has(oldSelf.vpcUUID) ? oldSelf.vpcUUID : '')",
      fieldPath: '.vpcUUID',
      message: 'vpcUUID is immutable: the droplets stay in the VPC they were created in; create a new HALoadBalancer to move',
    },
  ],
}));

const timestamp = (description: string) => string(description, { format: 'date-time' });

const condition = named('Condition', object('A metav1.Condition.', {
  type: string('Condition type, CamelCase.', { pattern: patterns.conditionType, maxLength: 316 }),
  status: stringEnum('True, False or Unknown.', ['True', 'False', 'Unknown']),
  observedGeneration: integer('metadata.generation this condition was set from.', 0, Number.MAX_SAFE_INTEGER, { format: 'int64' }),
  lastTransitionTime: timestamp('When status last changed.'),
  reason: string('CamelCase reason.', { pattern: patterns.conditionReason, minLength: 1, maxLength: 1024 }),
  message: string('Human-readable detail.', { maxLength: 32768 }),
}, ['type', 'status', 'lastTransitionTime', 'reason', 'message']));

export const vrrpStates = ['MASTER', 'BACKUP', 'FAULT', 'UNKNOWN'] as const;
export const plannedFailoverReasons = ['PreferredNode', 'Maintenance', 'MaintenanceEvent'] as const;

const nodeStatus = named('NodeStatus', object('What the operator last observed of one load-balancer node.', {
  name: string('Node name: <object name>-<index>.'),
  dropletID: integer('DigitalOcean droplet id.', 0, Number.MAX_SAFE_INTEGER, { format: 'int64' }),
  publicIPv4: string('Public IPv4.'),
  privateIPv4: string('VPC IPv4, used for VRRP.'),
  anchorIPv4: string('Anchor IPv4, where DigitalOcean delivers reserved-IP traffic.'),
  vrrpState: stringEnum('keepalived state, read from the host.', vrrpStates),
  configHash: string('sha256 of the files the operator last applied.'),
  serversUp: string('Backend servers HAProxy on this node sees UP, out of all, for example 2/2. ' +
    'Added so a failing backend shows without a shell on the node.'),
  hostKey: string('SHA256 fingerprint of the node\'s SSH host key: a host presenting another key is refused. ' +
    'Added because the pin must survive operator restarts.'),
  hostKeyPinned: stringEnum('How hostKey was pinned: AtCreation (the operator made the key, delivered it in user_data ' +
    'and tagged the droplet with its fingerprint in the create request, so the first connection was verified) ' +
    'or OnFirstContact (droplets created before that: the key seen first).', ['AtCreation', 'OnFirstContact']),
  lastSyncTime: timestamp('When the operator last read this node.'),
  maintenance: string('Why the node may not become MASTER: its maintenance annotation (maintenance.halb.dev/<node>) ' +
    'or a maintenance event DigitalOcean announced. Unset: in service.'),
}, ['name']));

export const statusSchema = named('HALoadBalancerStatus', object('Observed state, written by the operator.', {
  observedGeneration: integer('metadata.generation the status reflects.', 0, Number.MAX_SAFE_INTEGER, { format: 'int64' }),
  floatingIP: string('The reserved IPv4.'),
  activeNode: string('The node holding the reserved IP, as DigitalOcean reports it.'),
  nodesReady: string('Ready nodes out of desired, for example 2/2. Added so kubectl get -o wide can show it in one column.'),
  nodes: array('Per-node observations.', nodeStatus, { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] }),
  lastFailover: named('FailoverRecord', object('The last change of activeNode.', {
    time: timestamp('When the change was observed.'),
    from: string('Previous holder.'),
    to: string('New holder.'),
    reason: stringEnum('Why: a planned failover\'s reason, or Unplanned when keepalived moved MASTER by itself ' +
      '(a node or its HAProxy failed).', [...plannedFailoverReasons, 'Unplanned']),
  })),
  plannedFailover: named('PlannedFailover', object('A failover the operator asked keepalived for and has not yet seen complete: ' +
    'the MASTER\'s priority-offset file made it leave, the target\'s lifted it. Kept in status so a new leader carries it on.', {
    from: string('The MASTER handing over.'),
    to: string('The node taking over.'),
    reason: stringEnum('PreferredNode: the halb.dev/preferred-node annotation names the target; ' +
      'Maintenance: the MASTER is in maintenance; ' +
      'MaintenanceEvent: DigitalOcean announced maintenance of the MASTER\'s droplet.', plannedFailoverReasons),
    requested: timestamp('When the operator asked for it.'),
    timedOut: timestamp('The target did not become MASTER in time: ' +
      'the operator put the priorities back and tries again a minute after this.'),
  }, ['from', 'to', 'reason', 'requested'])),
  graceStarted: named('GraceTimers', object(
    'When the operator began waiting before it steps in: kept in status so that a new leader goes on waiting instead of starting over.', {
      backstop: timestamp('The reserved IP was first seen on a node that is not MASTER while another node is; ' +
        'after --backstop-grace the operator moves it.'),
      masterRepair: timestamp('HAProxy was first seen stopped on the MASTER; ' +
        'the operator restarts it only if keepalived has not failed over within 5 s.'),
    })),
  conditions: array('Ready, Reconciling, Stalled, DropletsReady, FloatingIPAssigned, ConfigApplied, FailoverReady, Degraded, ' +
    'warnings such as SSHExposed, and the day-two conditions PlannedFailover, NodeInMaintenance and NodesColocated.',
    condition, { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
}));

// metadata may only constrain name and generateName in a CRD, and carry nothing else, not even
// a description: kube-apiserver refuses the CRD otherwise ("metadata is implicitly specified").
export const metadataSchema: JSONSchemaProps = {
  type: 'object',
  properties: {
    name: string(`DNS-1123 label of at most ${MAX_OBJECT_NAME_LENGTH} characters: it names the droplets.`,
      { pattern: patterns.dns1123Label, maxLength: MAX_OBJECT_NAME_LENGTH }),
  },
};

export const rootSchema = named('HALoadBalancerFields', object('A highly available HAProxy + keepalived load balancer on DigitalOcean, ' +
  'with a reserved IP that follows the VRRP MASTER.', {
  apiVersion: string('API version: halb.dev/v1alpha1.'),
  kind: string('HALoadBalancer.'),
  metadata: metadataSchema,
  spec: specSchema,
  status: statusSchema,
}, ['spec']));

export const printerColumns = [
  { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status', description: 'Ready condition' },
  { name: 'Floating-IP', type: 'string', jsonPath: '.status.floatingIP', description: 'The reserved IP' },
  { name: 'Active', type: 'string', jsonPath: '.status.activeNode', description: 'Node holding the reserved IP' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
  { name: 'Nodes', type: 'string', jsonPath: '.status.nodesReady', description: 'Ready nodes / desired', priority: 1 },
  {
    name: 'Message', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].message',
    description: 'Ready condition message', priority: 1,
  },
] as const;
