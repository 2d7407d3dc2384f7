// haproxy.cfg for one node. Frontends bind on the node's anchor IPv4, where DigitalOcean
// delivers reserved-IP traffic; the health endpoint for keepalived is on loopback and the
// Prometheus metrics on the VPC address.
import type { BackendSpec, FrontendSpec, HALoadBalancerSpec } from '../api/types.ts';
import { backendModes as usedModes, modeOfUses, type BackendMode } from '../api/derived.ts';
import * as guard from './guard.ts';
import type { HAProxyFeatures } from './versions.ts';
import type { TaggedDroplet } from './types.ts';


export interface HAProxyNodeInput {
  spec: HALoadBalancerSpec;
  nodeName: string;
  anchorIPv4: string;
  privateIPv4: string;
  taggedDroplets: Record<string, TaggedDroplet[]>;
  /** PEM path per frontend name, for frontends with TLS. */
  pemPaths: Record<string, string>;
  healthPort: number;
  metricsPort: number;
  adminSocket: string;
  features: HAProxyFeatures;
}

const BALANCE = ['roundrobin', 'static-rr', 'leastconn', 'first', 'source', 'uri', 'url_param', 'hdr', 'rdp-cookie', 'random'] as const;
const HTTP_ONLY_BALANCE = new Set(['uri', 'url_param', 'hdr']);
export const HEALTH_URI = '/healthz';

// Access-log lines: key=value pairs a person reads and a log pipeline splits on spaces. `status`
// is the HTTP status, or for TCP the termination state; timers are in milliseconds (HAProxy's
// %TR/%Tw/%Tc/%Tr/%Ta for HTTP, %Tw/%Tc/%Tt for TCP). The README's "HAProxy's log" explains them.
export const HTTP_LOG_FORMAT =
  'client=%ci:%cp frontend=%ft backend=%b server=%s status=%ST bytes=%B timers_ms=%TR/%Tw/%Tc/%Tr/%Ta termination=%tsc request=%{+Q}r';
export const TCP_LOG_FORMAT = 'client=%ci:%cp frontend=%ft backend=%b server=%s status=%ts bytes=%B timers_ms=%Tw/%Tc/%Tt';

/** Each backend's mode, by src/api/derived.ts's rule, after the renderer's own guards: every
 *  backend a frontend names exists, and none is used by http and tcp frontends at once. */
export function guardedBackendModes(spec: HALoadBalancerSpec): Map<string, BackendMode> {
  const names = new Set(spec.backends.map((b) => b.name));
  spec.frontends.forEach((frontend, i) => {
    guard.oneOf(`spec.frontends[${i}].protocol`, frontend.protocol, ['http', 'tcp'] as const);
    const targets = [
      { name: frontend.defaultBackend, field: `spec.frontends[${i}].defaultBackend` },
      ...(frontend.routes ?? []).map((route, r) => ({ name: route.backend, field: `spec.frontends[${i}].routes[${r}].backend` })),
    ];
    for (const target of targets) {
      if (!names.has(target.name)) guard.refuse(target.field, `names no backend in spec.backends: ${JSON.stringify(target.name)}`);
    }
  });
  const used = usedModes(spec);
  const modes = new Map<string, BackendMode>();
  spec.backends.forEach((backend, i) => {
    const uses = used.get(backend.name);
    if (uses?.size === 2) {
      guard.refuse(`spec.backends[${i}]`, `backend ${backend.name} is used by both http and tcp frontends; a backend serves one protocol`);
    }
    // The map is computed once: derived.backendMode per backend would recompute it each time,
    // which dominates rendering a large spec.
    modes.set(backend.name, modeOfUses(uses));
  });
  return modes;
}

function seconds(n: number): string {
  return `${n}s`;
}

function renderFrontend(frontend: FrontendSpec, i: number, input: HAProxyNodeInput): string[] {
  const field = `spec.frontends[${i}]`;
  const name = guard.dnsLabel(`${field}.name`, frontend.name);
  const mode = guard.oneOf(`${field}.protocol`, frontend.protocol, ['http', 'tcp'] as const);
  const portNumber = guard.port(`${field}.port`, frontend.port);
  const lines = [`frontend ${name}`, `    mode ${mode}`, `    bind ${input.anchorIPv4}:${portNumber}`];
  if (frontend.tls) {
    if (mode !== 'http') guard.refuse(`${field}.tls`, 'TLS termination needs protocol http');
    const tlsPort = guard.port(`${field}.tls.port`, frontend.tls.port);
    if (tlsPort === portNumber) guard.refuse(`${field}.tls.port`, `must differ from ${field}.port (${portNumber})`);
    const pem = Object.hasOwn(input.pemPaths, name) ? input.pemPaths[name] : undefined;
    if (!pem) guard.refuse(`${field}.tls.secretRef`, 'has no PEM file');
    lines.push(`    bind ${input.anchorIPv4}:${tlsPort} ssl crt ${pem}`);
  }
  if (mode === 'http') {
    lines.push(`    log-format "${HTTP_LOG_FORMAT}"`, '    option forwardfor');
    if (frontend.tls) {
      lines.push('    http-request set-header X-Forwarded-Proto https if { ssl_fc }');
      lines.push('    http-request set-header X-Forwarded-Proto http unless { ssl_fc }');
      if (frontend.tls.redirectHTTP) {
        // `redirect scheme` keeps the client's Host, port included; a non-default TLS port has
        // to be spelled out, so the location is built from the host name alone.
        if (frontend.tls.port === 443) {
          lines.push('    http-request redirect scheme https code 301 unless { ssl_fc }');
        } else {
          lines.push('    http-request redirect location https://%[req.hdr(host),field(1,:)]:' +
            `${frontend.tls.port}%[pathq] code 301 unless { ssl_fc }`);
        }
      }
    }
    (frontend.routes ?? []).forEach((route, r) => {
      const prefix = guard.pathPrefix(`${field}.routes[${r}].pathPrefix`, route.pathPrefix);
      const backend = guard.dnsLabel(`${field}.routes[${r}].backend`, route.backend);
      lines.push(`    use_backend ${backend} if { path_beg ${prefix} }`);
    });
  } else {
    if ((frontend.routes ?? []).length > 0) guard.refuse(`${field}.routes`, 'path routes need protocol http');
    lines.push(`    log-format "${TCP_LOG_FORMAT}"`);
  }
  lines.push(`    default_backend ${guard.dnsLabel(`${field}.defaultBackend`, frontend.defaultBackend)}`);
  return lines;
}

function balanceLine(backend: BackendSpec, field: string, mode: BackendMode): string {
  const algorithm = guard.oneOf(`${field}.balance`, backend.balance, BALANCE);
  if (HTTP_ONLY_BALANCE.has(algorithm) && mode !== 'http') {
    guard.refuse(`${field}.balance`, `${algorithm} needs an http backend, but this one serves tcp frontends`);
  }
  switch (algorithm) {
    case 'url_param':
      return `    balance url_param ${guard.balanceParam(`${field}.balanceParam`, backend.balanceParam)}`;
    case 'hdr':
      return `    balance hdr(${guard.balanceParam(`${field}.balanceParam`, backend.balanceParam)})`;
    case 'rdp-cookie':
      // The parameter is optional for rdp-cookie: HAProxy then uses mstshash.
      return backend.balanceParam
        ? `    balance rdp-cookie(${guard.balanceParam(`${field}.balanceParam`, backend.balanceParam)})`
        : '    balance rdp-cookie';
    default:
      return `    balance ${algorithm}`;
  }
}

function renderBackend(backend: BackendSpec, i: number, mode: BackendMode, input: HAProxyNodeInput): string[] {
  const field = `spec.backends[${i}]`;
  const name = guard.dnsLabel(`${field}.name`, backend.name);
  const check = backend.healthCheck;
  const lines = [`backend ${name}`, `    mode ${mode}`, balanceLine(backend, field, mode)];
  if (guard.oneOf(`${field}.healthCheck.protocol`, check.protocol, ['http', 'tcp'] as const) === 'http') {
    lines.push('    option httpchk');
    // 2xx and 3xx count as up, HAProxy's default when no `http-check expect` is given.
    lines.push(`    http-check send meth GET uri ${guard.pathPrefix(`${field}.healthCheck.path`, check.path)}`);
  }
  if (backend.stickySessions) {
    if (mode !== 'http') {
      guard.refuse(`${field}.stickySessions`, 'cookie affinity needs an http backend, but this one serves tcp frontends');
    }
    lines.push(`    cookie HALB_${name.replaceAll('-', '_').toUpperCase()} insert indirect nocache httponly`);
  }
  const defaults = [
    'check',
    `inter ${seconds(guard.integer(`${field}.healthCheck.intervalSeconds`, check.intervalSeconds, 1, 3600))}`,
    `rise ${guard.integer(`${field}.healthCheck.rise`, check.rise, 1, 100)}`,
    `fall ${guard.integer(`${field}.healthCheck.fall`, check.fall, 1, 100)}`,
  ];
  // Checks elsewhere than the traffic: a Service's healthCheckNodePort answers for every port.
  if (check.port !== undefined) defaults.push(`port ${guard.port(`${field}.healthCheck.port`, check.port)}`);
  const maxconn = guard.integer(`${field}.maxconnPerServer`, backend.maxconnPerServer, 0, 1_000_000);
  if (maxconn > 0) defaults.push(`maxconn ${maxconn}`);
  // Servers that expect PROXY protocol expect it on health checks too, unless the checks go to
  // another port (a healthCheckNodePort, where kube-proxy answers plain HTTP).
  if (backend.proxyProtocol) defaults.push('send-proxy-v2', ...(check.port === undefined ? ['check-send-proxy'] : []));
  lines.push(`    default-server ${defaults.join(' ')}`);

  const backendPort = guard.port(`${field}.port`, backend.port);
  const seen = new Set<string>();
  const servers: { name: string; address: string; port: number; field: string; weight?: number }[] = [];
  (backend.servers ?? []).forEach((server, s) => {
    const serverField = `${field}.servers[${s}]`;
    const weight = server.drain ? 0
      : server.weight === undefined ? undefined : guard.integer(`${serverField}.weight`, server.weight, 0, 256);
    servers.push({
      name: guard.serverName(`${serverField}.name`, server.name),
      address: guard.host(`${serverField}.address`, server.address),
      port: server.port === undefined ? backendPort : guard.port(`${serverField}.port`, server.port),
      field: serverField,
      ...(weight === undefined ? {} : { weight }),
    });
  });
  if (backend.dropletTag) {
    // Own properties only: a tag named "constructor" is not Object.prototype's.
    const found: unknown = Object.hasOwn(input.taggedDroplets, backend.dropletTag) ? input.taggedDroplets[backend.dropletTag] : [];
    if (!Array.isArray(found)) guard.refuse(`observed.taggedDroplets[${JSON.stringify(backend.dropletTag)}]`, 'must be a list of droplets');
    const tagged = [...(found as TaggedDroplet[])].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    tagged.forEach((droplet, d) => {
      const dropletField = `observed.taggedDroplets[${JSON.stringify(backend.dropletTag)}][${d}]`;
      servers.push({
        name: guard.serverName(`${dropletField}.name`, droplet.name),
        address: guard.ipv4(`${dropletField}.privateIPv4`, droplet.privateIPv4),
        port: backendPort,
        field: dropletField,
      });
    });
  }
  for (const server of servers) {
    if (seen.has(server.name)) guard.refuse(`${server.field}.name`, `duplicate server name ${server.name} in backend ${name}`);
    seen.add(server.name);
    const options = [];
    if (backend.stickySessions) options.push(`cookie ${server.name}`);
    // Draining is weight 0 (no new connections, open ones finish), in the file as at runtime.
    if (server.weight !== undefined) options.push(`weight ${server.weight}`);
    // A DNS name that does not resolve at start-up leaves the server down instead of stopping HAProxy.
    if (!guard.isIPv4(server.address)) options.push('init-addr last,libc,none');
    lines.push(`    server ${server.name} ${server.address}:${server.port}${options.length ? ` ${options.join(' ')}` : ''}`);
  }
  return lines;
}

export function renderHAProxyConfig(input: HAProxyNodeInput): string {
  const { spec } = input;
  const modes = guardedBackendModes(spec);
  const listeners = new Map<number, string>();
  spec.frontends.forEach((frontend, i) => {
    const ports: [number, string][] = [[frontend.port, `spec.frontends[${i}].port`]];
    if (frontend.tls) ports.push([frontend.tls.port, `spec.frontends[${i}].tls.port`]);
    for (const [p, field] of ports) {
      const other = listeners.get(p);
      if (other) guard.refuse(field, `port ${p} is already used by ${other}`);
      listeners.set(p, field);
    }
  });
  const names = new Set<string>();
  spec.backends.forEach((backend, i) => {
    if (names.has(backend.name)) guard.refuse(`spec.backends[${i}].name`, `duplicate backend name ${backend.name}`);
    names.add(backend.name);
  });

  const sections: string[][] = [
    [
      `# Rendered by halb for node ${input.nodeName}. The operator replaces this file; edit the HALoadBalancer instead.`,
      'global',
      '    master-worker',
      // To stdout, which is the journal under systemd (haproxy.service) and /var/log/haproxy.log
      // where the operator starts HAProxy itself. /dev/log is out of reach inside the chroot
      // unless rsyslog makes a socket there, and Debian 12+ images have no rsyslog.
      '    log stdout format iso local0 info',
      '    maxconn 8192',
      '    user haproxy',
      '    group haproxy',
      '    chroot /var/lib/haproxy',
      // The operator reads server state from this socket over SSH.
      `    stats socket ${input.adminSocket} mode 600 level admin`,
      '    stats timeout 30s',
      // A reload's old workers finish their connections, but not for ever: a long-lived one is
      // cut 30 minutes after the reload. Server and certificate changes need no reload (runtime.ts).
      '    hard-stop-after 30m',
      '    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets',
    ],
    [
      'defaults',
      '    log global',
      '    option dontlognull',
      '    timeout connect 5s',
      '    timeout client 60s',
      '    timeout server 60s',
      '    timeout http-request 10s',
      '    timeout http-keep-alive 10s',
      '    timeout queue 30s',
      '    timeout check 5s',
      '    timeout tunnel 1h',
    ],
    [
      '# keepalived checks that HAProxy answers here, not merely that a process exists.',
      'frontend halb_health',
      '    mode http',
      `    bind 127.0.0.1:${input.healthPort}`,
      // Asked every advert interval: its lines would drown the access log.
      '    no log',
      `    monitor-uri ${HEALTH_URI}`,
      '    http-request deny deny_status 404',
    ],
    [
      'frontend halb_metrics',
      '    mode http',
      `    bind ${input.privateIPv4}:${input.metricsPort}`,
      '    no log',
      '    http-request use-service prometheus-exporter if { path /metrics }',
      '    stats enable',
      '    stats uri /stats',
      '    stats refresh 10s',
    ],
    ...spec.frontends.map((frontend, i) => renderFrontend(frontend, i, input)),
    ...spec.backends.map((backend, i) => renderBackend(backend, i, modes.get(backend.name) ?? 'tcp', input)),
  ];
  return `${sections.map((lines) => lines.join('\n')).join('\n\n')}\n`;
}
