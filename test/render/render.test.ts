// Pure rendering: determinism, per-node values, version awareness and the injection guards.
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { HALoadBalancer, SecretData } from '../../src/api/types.ts';
import { backendMode } from '../../src/api/derived.ts';
import { RenderError } from '../../src/render/errors.ts';
import { guardedBackendModes, TCP_LOG_FORMAT } from '../../src/render/haproxy.ts';
import { checkInterval } from '../../src/render/keepalived.ts';
import { keepalivedFeatures } from '../../src/render/versions.ts';
import { defaultSettings, deriveVirtualRouterID, placeholderFacts, renderNodes, type RenderInput } from '../../src/render/render.ts';
import type { RenderSettings, RenderedNode } from '../../src/render/types.ts';
import { baseSecrets, makeLB, TOKEN } from './helpers.ts';

const tls = { secretRef: { name: 'www-tls' }, port: 443, redirectHTTP: true };

function seedLike(overrides: Record<string, unknown> = {}): HALoadBalancer {
  return makeLB('web', {
    frontends: [{
      name: 'www', port: 80, protocol: 'http', tls, routes: [{ pathPrefix: '/api/', backend: 'api' }, { pathPrefix: '/', backend: 'web' }],
      defaultBackend: 'web',
    }],
    backends: [
      {
        name: 'web', maxconnPerServer: 20, stickySessions: true,
        healthCheck: { protocol: 'http', path: '/health', intervalSeconds: 3, rise: 4, fall: 5 },
        servers: [{ name: 's1', address: '10.10.0.21' }, { name: 's2', address: 'web2.internal', port: 8080 }],
      },
      { name: 'api', balance: 'url_param', balanceParam: 'user', proxyProtocol: true, servers: [{ name: 'a1', address: '10.10.0.31' }] },
    ],
    ...overrides,
  });
}

function input(lb: HALoadBalancer, settings: Partial<RenderSettings> = {}, secrets: SecretData[] = baseSecrets()): RenderInput {
  return { lb, secrets, observed: placeholderFacts(lb), settings: defaultSettings(settings) };
}

function file(node: RenderedNode, path: string): string {
  const found = node.files.find((f) => f.path === path);
  if (!found) throw new Error(`no ${path} in ${node.name}`);
  return found.content;
}

const haproxyCfg = (node: RenderedNode) => file(node, '/etc/haproxy/haproxy.cfg');
const keepalivedConf = (node: RenderedNode) => file(node, '/etc/keepalived/keepalived.conf');

describe('determinism', () => {
  it('gives byte-identical files and hashes for the same input, whatever the order of the facts', () => {
    const lb = seedLike();
    const first = renderNodes(input(lb));
    const facts = placeholderFacts(lb);
    const reversed = renderNodes({ ...input(lb), observed: { ...facts, nodes: [...facts.nodes].reverse() } });
    expect(reversed).toEqual(first);
    expect(first.map((n) => n.configHash)).toEqual(renderNodes(input(structuredClone(lb))).map((n) => n.configHash));
    for (const node of first) {
      expect(node.configHash).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(node.files.map((f) => f.path)).toEqual([...node.files.map((f) => f.path)].sort());
    }
    expect(first[0]!.configHash).not.toBe(first[1]!.configHash);
  });

  it('changes the hash when any input that reaches a file changes', () => {
    const lb = seedLike();
    const base = renderNodes(input(lb))[0]!.configHash;
    const moved = renderNodes({ ...input(lb), observed: { ...placeholderFacts(lb), floatingIP: '198.51.100.99' } })[0]!.configHash;
    const rotatedSecrets = baseSecrets().map((s) => (s.name === 'do-api' ? { ...s, data: { token: `${TOKEN}0` } } : s));
    const rotated = renderNodes(input(lb, {}, rotatedSecrets))[0]!.configHash;
    const upgraded = renderNodes(input(lb, { defaultVersions: { keepalived: '2.2.7', haproxy: '2.6.12' } }))[0]!.configHash;
    expect(new Set([base, moved, rotated, upgraded]).size).toBe(4);
  });

  it('writes files with the modes the host needs: secrets 0600, scripts 0755', () => {
    const [node] = renderNodes(input(seedLike()));
    expect(Object.fromEntries(node!.files.map((f) => [f.path, f.mode.toString(8)]))).toEqual({
      '/etc/halb/firewall.nft': '644',
      '/etc/ssh/sshd_config.d/00-halb.conf': '644',
      '/etc/systemd/system/halb-firewall.service': '644',
      '/etc/haproxy/certs/www.pem': '600',
      '/etc/haproxy/haproxy.cfg': '644',
      '/etc/keepalived/halb-check.sh': '755',
      '/etc/keepalived/halb-failover.sh': '755',
      '/etc/keepalived/halb-failover.token': '600',
      '/etc/keepalived/halb-notify.sh': '755',
      '/etc/keepalived/keepalived.conf': '600',
    });
    expect(file(node!, '/etc/keepalived/halb-failover.token')).toBe(`${TOKEN}\n`);
  });
});

describe('haproxy.cfg', () => {
  const nodes = renderNodes(input(seedLike()));
  const cfg = haproxyCfg(nodes[1]!);

  it('binds frontends on the node\'s anchor IPv4, TLS with the PEM, and redirects HTTP to HTTPS', () => {
    expect(cfg).toContain(
      'frontend www\n    mode http\n    bind 10.20.0.12:80\n    bind 10.20.0.12:443 ssl crt /etc/haproxy/certs/www.pem\n');
    expect(cfg).toContain('http-request redirect scheme https code 301 unless { ssl_fc }');
  });

  it('routes by path prefix in order, then the default backend', () => {
    const api = cfg.indexOf('use_backend api if { path_beg /api/ }');
    const root = cfg.indexOf('use_backend web if { path_beg / }');
    expect(api).toBeGreaterThan(0);
    expect(root).toBeGreaterThan(api);
    expect(cfg.indexOf('default_backend web')).toBeGreaterThan(root);
  });

  it('renders balance, health checks, default-server, cookies, PROXY protocol and servers', () => {
    expect(cfg).toContain([
      'backend web', '    mode http', '    balance roundrobin', '    option httpchk', '    http-check send meth GET uri /health',
      '    cookie HALB_WEB insert indirect nocache httponly', '    default-server check inter 3s rise 4 fall 5 maxconn 20',
      '    server s1 10.10.0.21:80 cookie s1', '    server s2 web2.internal:8080 cookie s2 init-addr last,libc,none'].join('\n'));
    expect(cfg).toContain([
      'backend api', '    mode http', '    balance url_param user',
      '    default-server check inter 2s rise 2 fall 3 send-proxy-v2 check-send-proxy',
      '    server a1 10.10.0.31:80'].join('\n'));
  });

  it('has master-worker, an admin socket, a loopback health endpoint and metrics on the VPC address', () => {
    expect(cfg).toMatch(/^global\n {4}master-worker\n/m);
    expect(cfg).toContain('stats socket /run/haproxy/admin.sock mode 600 level admin');
    expect(cfg).toContain('bind 127.0.0.1:8405\n    no log\n    monitor-uri /healthz');
    expect(cfg).toContain('bind 10.10.0.12:8404');
    expect(cfg).toContain('http-request use-service prometheus-exporter if { path /metrics }');
  });

  it.each([
    [443, 'http-request redirect scheme https code 301 unless { ssl_fc }'],
    [8443, 'http-request redirect location https://%[req.hdr(host),field(1,:)]:8443%[pathq] code 301 unless { ssl_fc }'],
  ])('redirects to TLS port %i', (port, line) => {
    const lb = seedLike({ frontends: [{ name: 'www', port: 80, protocol: 'http', tls: { ...tls, port }, defaultBackend: 'web' }] });
    expect(haproxyCfg(renderNodes(input(lb))[0]!)).toContain(line);
  });

  it('balances over tagged droplets, sorted by name, and gives tcp backends tcp mode', () => {
    const lb = makeLB('db', {
      frontends: [{ name: 'pg', port: 5432, protocol: 'tcp', defaultBackend: 'db' }],
      backends: [{ name: 'db', balance: 'source', port: 5432, dropletTag: 'pg', healthCheck: { protocol: 'tcp' } }],
    });
    const observed = {
      ...placeholderFacts(lb),
      taggedDroplets: { pg: [{ name: 'pg-b', privateIPv4: '10.10.0.42' }, { name: 'pg-a', privateIPv4: '10.10.0.41' }] },
    };
    const cfg = haproxyCfg(renderNodes({ ...input(lb), observed })[0]!);
    expect(cfg).toContain(
      `frontend pg\n    mode tcp\n    bind 10.20.0.11:5432\n    log-format "${TCP_LOG_FORMAT}"\n    default_backend db`);
    expect(cfg).toContain('backend db\n    mode tcp\n    balance source\n    default-server check inter 2s rise 2 fall 3\n' +
      '    server pg-a 10.10.0.41:5432\n    server pg-b 10.10.0.42:5432\n');
  });

  it('sends health checks to healthCheck.port when set (a Service\'s healthCheckNodePort), traffic to each server\'s port', () => {
    const lb = makeLB('svc', {
      frontends: [{ name: 'http', port: 80, protocol: 'tcp', defaultBackend: 'http' }],
      backends: [{ name: 'http', port: 31080, healthCheck: { protocol: 'http', path: '/healthz', port: 32000 },
        servers: [{ name: 'node-a', address: '10.10.0.31' }, { name: 'node-b', address: '10.10.0.32' }] }],
    });
    const cfg = haproxyCfg(renderNodes(input(lb))[0]!);
    expect(cfg).toContain('    option httpchk\n    http-check send meth GET uri /healthz\n'
      + '    default-server check inter 2s rise 2 fall 3 port 32000\n'
      + '    server node-a 10.10.0.31:31080\n    server node-b 10.10.0.32:31080\n');
    // PROXY protocol to the servers, but not to a check of another port.
    const proxied = makeLB('svc', { ...lb.spec, backends: [{ ...lb.spec.backends[0]!, proxyProtocol: true }] });
    expect(haproxyCfg(renderNodes(input(proxied))[0]!)).toContain('default-server check inter 2s rise 2 fall 3 port 32000 send-proxy-v2\n');
    const unsetPort = { ...lb.spec.backends[0]!, healthCheck: { protocol: 'http' as const, path: '/healthz' } };
    const unset = makeLB('svc', { ...lb.spec, backends: [unsetPort] });
    expect(haproxyCfg(renderNodes(input(unset))[0]!)).toContain('default-server check inter 2s rise 2 fall 3\n');
  });

  it('gives each backend the mode src/api/derived.ts gives it', () => {
    const lb = makeLB('mix', {
      frontends: [
        { name: 'h', port: 80, protocol: 'http', defaultBackend: 'a' }, { name: 't', port: 81, protocol: 'tcp', defaultBackend: 'b' },
      ],
      backends: ['a', 'b', 'c'].map((name) => ({ name, servers: [{ name: 's1', address: '10.10.0.21' }] })),
    });
    const modes = guardedBackendModes(lb.spec);
    for (const backend of lb.spec.backends) expect(modes.get(backend.name)).toBe(backendMode(lb.spec, backend));
    expect([...modes.values()]).toEqual(['http', 'tcp', 'http']);
  });

  it.each([
    ['hdr', 'Host', 'balance hdr(Host)'],
    ['rdp-cookie', 'mstshash', 'balance rdp-cookie(mstshash)'],
    ['leastconn', '', 'balance leastconn'],
    ['random', '', 'balance random'],
  ])('renders balance %s', (balance, balanceParam, line) => {
    const lb = makeLB('web', { backends: [{ name: 'web', balance, balanceParam, servers: [{ name: 's1', address: '10.10.0.21' }] }] });
    expect(haproxyCfg(renderNodes(input(lb))[0]!)).toContain(`    ${line}\n`);
  });
});

describe('keepalived.conf', () => {
  it('runs one unicast instance over the VPC with distinct, stable priorities per node', () => {
    const lb = makeLB('web', { droplets: { count: 3 } });
    const confs = renderNodes(input(lb)).map(keepalivedConf);
    expect(confs.map((c) => /priority (\d+)/.exec(c)?.[1])).toEqual(['200', '190', '180']);
    expect(confs[1]).toContain('    interface eth1\n');
    expect(confs[1]).toContain('    unicast_src_ip 10.10.0.12\n    unicast_peer {\n        10.10.0.11\n        10.10.0.13\n    }\n');
    for (const conf of confs) {
      expect(conf.match(/^vrrp_instance /gm)).toHaveLength(1);
      expect(conf).toContain('    state BACKUP\n');
      expect(conf).toContain('    nopreempt\n');
      expect(conf).toContain('enable_script_security');
      expect(conf).toContain('script_user root');
      expect(conf).not.toMatch(/pidof|killall/);
      expect(conf).toContain('vrrp_script halb_haproxy_serving {\n    script "/etc/keepalived/halb-check.sh"\n');
      for (const state of ['MASTER', 'BACKUP', 'FAULT', 'STOP']) {
        expect(conf).toContain(`notify_${state.toLowerCase()} "/etc/keepalived/halb-notify.sh ${state}"`);
      }
      expect(conf).toContain('notify_master_rx_lower_pri "/etc/keepalived/halb-failover.sh"');
      expect(conf).toContain('    higher_prio_send_advert\n');
      expect(conf).toContain('    check_unicast_src\n');
    }
  });

  it('preempts only when asked', () => {
    expect(keepalivedConf(renderNodes(input(makeLB('web', { failover: { preempt: true } })))[0]!)).not.toContain('nopreempt');
  });

  it('derives virtual_router_id from the UID, 1..255, unless one is set', () => {
    const ids = Array.from({ length: 300 }, (_, i) => deriveVirtualRouterID(makeLB('web', {}, { uid: `0000-${i}` })));
    expect(Math.min(...ids)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...ids)).toBeLessThanOrEqual(255);
    expect(new Set(ids).size).toBeGreaterThan(150);
    const lb = makeLB('web', {}, { uid: 'f3b1c2d4-0000-4000-8000-000000000001' });
    expect(deriveVirtualRouterID(lb)).toBe(deriveVirtualRouterID(structuredClone(lb)));
    expect(keepalivedConf(renderNodes(input(lb))[0]!)).toContain(`virtual_router_id ${deriveVirtualRouterID(lb)}\n`);
    expect(keepalivedConf(renderNodes(input(makeLB('web', { failover: { virtualRouterID: 42 } })))[0]!))
      .toContain('virtual_router_id 42\n');
  });

  it.each([
    ['unset: VRRPv3 at 0.2 s', {}, ['version 3', 'advert_int 0.2'], ['authentication']],
    ['2.5 s: VRRPv3', { advertIntervalSeconds: 2.5 }, ['version 3', 'advert_int 2.5'], ['authentication']],
    ['0.05 s', { advertIntervalSeconds: 0.05 }, ['version 3', 'advert_int 0.05'], []],
    ['PASS auth: VRRPv2 at 1 s', { authSecretRef: { name: 'vrrp', key: 'password' } },
      ['version 2', 'advert_int 1', 'auth_type PASS', 'auth_pass s3cr3t-x'], ['version 3']],
    ['PASS auth at 3 s', { authSecretRef: { name: 'vrrp', key: 'password' }, advertIntervalSeconds: 3 }, ['version 2', 'advert_int 3'], []],
  ])('advert interval %s', (_name, failover, present, absent) => {
    const conf = keepalivedConf(renderNodes(input(makeLB('web', { failover })))[0]!);
    for (const text of present) expect(conf).toContain(`    ${text}\n`);
    for (const text of absent) expect(conf).not.toContain(text);
  });
});

describe('version awareness', () => {
  const lb = makeLB('web');
  it.each([
    ['2.2.7', false],
    ['Keepalived v2.2.7 (01/16,2022)', false],
    ['2.2.8', true],
    ['v2.3.1', true],
    ['2.4.0', true],
  ])('keepalived %s: no_virtual_ipaddress %s, otherwise a loopback placeholder address', (keepalived, native) => {
    const conf = keepalivedConf(renderNodes(input(lb, { defaultVersions: { keepalived, haproxy: '2.8.16' } }))[0]!);
    if (native) {
      expect(conf).toContain('    no_virtual_ipaddress\n');
      expect(conf).not.toContain('virtual_ipaddress {');
    } else {
      expect(conf).not.toContain('no_virtual_ipaddress');
      expect(conf).toContain('    virtual_ipaddress {\n        192.0.0.8/32 dev lo\n    }\n');
    }
  });

  // keepalived 2.3.2 is the first to take a fractional vrrp_script interval.
  it.each([
    ['2.2.7', undefined, 'interval 1'],
    ['2.2.8', undefined, 'interval 1'],
    ['2.3.1', undefined, 'interval 1'],
    ['2.3.2', undefined, 'interval 0.2'],
    ['Keepalived v2.3.3 (03/30,2025)', undefined, 'interval 0.2'],
    ['2.3.3', 0.5, 'interval 0.5'],
    ['2.3.3', 3, 'interval 3'],
    ['2.2.8', 0.5, 'interval 1'],
    ['2.2.8', 2.5, 'interval 3'],
  ])('keepalived %s with checkIntervalSeconds %s: HAProxy checked at %s', (keepalived, checkIntervalSeconds, line) => {
    const failover = checkIntervalSeconds === undefined ? {} : { checkIntervalSeconds };
    const conf = keepalivedConf(renderNodes(input(makeLB('web', { failover }), {
      defaultVersions: { keepalived, haproxy: '3.0.11' },
    }))[0]!);
    expect(conf).toMatch(new RegExp(`vrrp_script halb_haproxy_serving \\{[^}]*\n    ${line}\n    timeout 1\n`));
  });

  it.each([0.05, 11])('refuses checkIntervalSeconds %s, naming the field', (checkIntervalSeconds) => {
    expect(() => makeLB('web', { failover: { checkIntervalSeconds } })).toThrow(/spec\.failover\.checkIntervalSeconds.*must be [<>]=/);
    // The renderer's own guard, for input that did not pass the schema.
    expect(() => checkInterval(checkIntervalSeconds, keepalivedFeatures('v', '2.3.3')))
      .toThrowError(expect.objectContaining({ field: 'spec.failover.checkIntervalSeconds' }));
  });

  const haproxyVersions = ['2.4.22', '2.6.12', 'HAProxy version 2.6.12-1+deb12u4 2026/10/17', '2.8.16', '3.0.5', '3.2.0'];
  it.each(haproxyVersions)('accepts HAProxy %s', (haproxy) => {
    expect(() => renderNodes(input(lb, { defaultVersions: { keepalived: '2.2.8', haproxy } }))).not.toThrow();
  });

  it.each([
    ['keepalived', '2.2.6', 'settings.defaultVersions.keepalived'],
    ['keepalived', '1.3.5', 'settings.defaultVersions.keepalived'],
    ['keepalived', 'unknown', 'settings.defaultVersions.keepalived'],
    ['haproxy', '2.2.0', 'settings.defaultVersions.haproxy'],
    ['haproxy', '1.8.19', 'settings.defaultVersions.haproxy'],
  ])('refuses %s %s', (daemon, version, field) => {
    const versions = { keepalived: '2.2.8', haproxy: '2.8.16', [daemon]: version };
    expect(() => renderNodes(input(lb, { defaultVersions: versions }))).toThrowError(expect.objectContaining({ field }));
  });

  it('renders each node for the versions on its own host', () => {
    const nodes = renderNodes(input(lb, { versions: { 'web-1': { keepalived: '2.2.7', haproxy: '2.6.12' } } }));
    expect(keepalivedConf(nodes[0]!)).toContain('no_virtual_ipaddress');
    expect(keepalivedConf(nodes[1]!)).toContain('192.0.0.8/32 dev lo');
  });
});

type Mutation = (lb: HALoadBalancer, i: RenderInput) => void;

describe('injection guards refuse what would change a file\'s structure, naming the field', () => {
  const cases: [string, Mutation, string][] = [
    ['newline in a frontend name', (lb) => { lb.spec.frontends[0]!.name = 'www\n    bind *:22'; }, 'spec.frontends[0].name'],
    ['brace in a path prefix', (lb) => { lb.spec.frontends[0]!.routes![0]!.pathPrefix = '/api/ } || { always_true'; },
      'spec.frontends[0].routes[0].pathPrefix'],
    ['# in a path prefix', (lb) => { lb.spec.frontends[0]!.routes![0]!.pathPrefix = '/api#x'; }, 'spec.frontends[0].routes[0].pathPrefix'],
    ['quote in a path prefix', (lb) => { lb.spec.frontends[0]!.routes![0]!.pathPrefix = '/a"b'; },
      'spec.frontends[0].routes[0].pathPrefix'],
    ['newline in a path prefix', (lb) => { lb.spec.frontends[0]!.routes![0]!.pathPrefix = '/a\nb'; },
      'spec.frontends[0].routes[0].pathPrefix'],
    ['space in a health-check path', (lb) => { lb.spec.backends[0]!.healthCheck.path = '/ HTTP/1.1'; },
      'spec.backends[0].healthCheck.path'],
    ['options after a server address', (lb) => { lb.spec.backends[0]!.servers![0]!.address = '10.0.0.1:80 backup'; },
      'spec.backends[0].servers[0].address'],
    ['shell in a server address', (lb) => { lb.spec.backends[0]!.servers![0]!.address = '$(reboot)'; },
      'spec.backends[0].servers[0].address'],
    ['semicolon in a server name', (lb) => { lb.spec.backends[0]!.servers![0]!.name = 's1;x'; }, 'spec.backends[0].servers[0].name'],
    ['parenthesis in balanceParam', (lb) => { lb.spec.backends[1]!.balanceParam = 'x) if TRUE'; }, 'spec.backends[1].balanceParam'],
    ['a bad balance algorithm', (lb) => { (lb.spec.backends[0] as { balance: string }).balance = 'roundrobin\nbackend x'; },
      'spec.backends[0].balance'],
    ['newline in the object name', (lb) => { lb.metadata.name = 'web\n}'; }, 'metadata.name'],
    ['shell in the floating IP', (_lb, i) => { i.observed.floatingIP = "1.2.3.4'; reboot; '"; }, 'observed.floatingIP'],
    ['newline in a private IPv4', (_lb, i) => { i.observed.nodes[0]!.privateIPv4 = '10.10.0.11\n}'; }, 'observed.nodes[web-0].privateIPv4'],
    ['a missing node', (_lb, i) => { i.observed.nodes.pop(); }, 'observed.nodes[web-1]'],
    ['shell in a tagged droplet name', (_lb, i) => {
      i.observed.taggedDroplets = { t: [{ name: 'a`id`', privateIPv4: '10.0.0.9' }] };
      i.lb.spec.backends[0]!.dropletTag = 't';
    }, 'observed.taggedDroplets["t"][0].name'],
    ['quote in the API URL', (_lb, i) => { i.settings.apiBaseURL = "http://api/'$(id)'"; }, 'settings.apiBaseURL'],
    ['space in a path', (_lb, i) => { i.settings.paths.failoverToken = '/etc/my token'; }, 'settings.paths.failoverToken'],
    ['brace in the interface', (_lb, i) => { i.settings.vpcInterface = 'eth1 }'; }, 'settings.vpcInterface'],
  ];
  it.each(cases)('%s', (_name, mutate, field) => {
    const lb = seedLike();
    const i = input(lb);
    mutate(lb, i);
    expect(() => renderNodes(i)).toThrowError(expect.objectContaining({ name: 'RenderError', field }));
  });

  const secretCases: [string, Record<string, string>, string][] = [
    ['space in the token', { token: 'dop_v1_abc def' }, 'spec.credentials.tokenSecretRef'],
    ['quote in the token', { token: "dop_v1_abc'$(id)'" }, 'spec.credentials.tokenSecretRef'],
    ['newline inside the token', { token: 'dop_v1_abc\nheader = "X: y"' }, 'spec.credentials.tokenSecretRef'],
  ];
  it.each(secretCases)('%s, without echoing it', (_name, data, field) => {
    const secrets = baseSecrets().map((s) => (s.name === 'do-api' ? { ...s, data } : s));
    let error: unknown;
    try {
      renderNodes(input(seedLike(), {}, secrets));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RenderError);
    expect(error).toMatchObject({ field });
    expect((error as Error).message).not.toContain(data.token);
  });

  it.each(['has space', 'a"b', 'a#b', '{x}', 'ninechars', ''])('refuses VRRP password %j', (password) => {
    const lb = makeLB('web', { failover: { authSecretRef: { name: 'vrrp', key: 'password' } } });
    const secrets = baseSecrets().map((s) => (s.name === 'vrrp' ? { ...s, data: { password } } : s));
    expect(() => renderNodes(input(lb, {}, secrets))).toThrowError(expect.objectContaining({ field: 'spec.failover.authSecretRef' }));
  });

  it('refuses a sub-second advert with PASS auth, and a non-centisecond one', () => {
    const auth = makeLB('web', { failover: { authSecretRef: { name: 'vrrp', key: 'password' } } });
    auth.spec.failover.advertIntervalSeconds = 0.5;
    expect(() => renderNodes(input(auth))).toThrowError(expect.objectContaining({ field: 'spec.failover.advertIntervalSeconds' }));
    const odd = makeLB('web');
    odd.spec.failover.advertIntervalSeconds = 0.125;
    expect(() => renderNodes(input(odd))).toThrowError(expect.objectContaining({ field: 'spec.failover.advertIntervalSeconds' }));
  });
});

describe('secrets', () => {
  it('names the field when a Secret or key is missing', () => {
    expect(() => renderNodes(input(seedLike(), {}, baseSecrets().filter((s) => s.name !== 'do-api'))))
      .toThrowError(expect.objectContaining({ field: 'spec.credentials.tokenSecretRef' }));
    const lb = makeLB('web', {
      credentials: {
        tokenSecretRef: { name: 'do-api', key: 'token' }, failoverTokenSecretRef: { name: 'do-api', key: 'failover' },
        sshKeySecretRef: { name: 'halb-ssh', key: 'k' },
      },
    });
    expect(() => renderNodes(input(lb))).toThrowError(/spec.credentials.failoverTokenSecretRef: Secret do-api has no key failover/);
    expect(() => renderNodes(input(seedLike(), {}, baseSecrets().filter((s) => s.name !== 'www-tls'))))
      .toThrowError(expect.objectContaining({ field: 'spec.frontends[0].tls.secretRef' }));
  });

  it('refuses a TLS Secret whose key does not match its certificate, or is not PEM', () => {
    const [good] = baseSecrets().filter((s) => s.name === 'www-tls');
    const cert = good!.data['tls.crt']!;
    const bad = (data: Record<string, string>) => baseSecrets().map((s) => (s.name === 'www-tls' ? { ...s, data } : s));
    const otherKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expect(() => renderNodes(input(seedLike(), {}, bad({ 'tls.crt': cert, 'tls.key': otherKey }))))
      .toThrowError(/tls.key does not match the first certificate/);
    expect(() => renderNodes(input(seedLike(), {}, bad({ 'tls.crt': cert, 'tls.key': 'not a key' }))))
      .toThrowError(/tls.key must hold exactly one PEM private key/);
    expect(() => renderNodes(input(seedLike(), {}, bad({ 'tls.crt': 'junk', 'tls.key': good!.data['tls.key']! }))))
      .toThrowError(/tls.crt holds no PEM certificate/);
    expect(() => renderNodes(input(seedLike(), {}, bad({ 'tls.crt': cert })))).toThrowError(/has no tls.key/);
  });

  it('builds the PEM from the certificate followed by the key', () => {
    const [node] = renderNodes(input(seedLike()));
    const pem = file(node!, '/etc/haproxy/certs/www.pem');
    expect(pem.indexOf('BEGIN CERTIFICATE')).toBeLessThan(pem.indexOf('PRIVATE KEY'));
    expect(pem.endsWith('\n')).toBe(true);
  });
});
