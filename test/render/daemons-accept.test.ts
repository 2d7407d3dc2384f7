// The daemons on this machine accept every rendered file: `haproxy -c` and `keepalived -t` for
// every example and a matrix of specs, run in one shell inside a network namespace that has the
// interfaces and addresses the configs name, with each node's files bind-mounted where the host
// would have them. One namespace and one shell for the whole matrix keeps this cheap.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAndValidate } from '../../src/api/manifests.ts';
import type { HALoadBalancer, SecretData } from '../../src/api/types.ts';
import { renderCommand } from '../../src/cli/render.ts';
import { writeNodes } from '../../src/render/output.ts';
import { defaultSettings, placeholderFacts, renderNodes } from '../../src/render/render.ts';
import type { ObservedFacts } from '../../src/render/types.ts';
import { baseSecrets, installedVersions, makeLB } from './helpers.ts';

const NS = `hrtv${process.pid}`;
const versions = installedVersions();

interface Case {
  name: string;
  lb: HALoadBalancer;
  secrets: SecretData[];
  observed?: ObservedFacts;
}

const server = (name: string, address: string, port?: number) => ({ name, address, ...(port ? { port } : {}) });

function matrix(): Case[] {
  const tls = { secretRef: { name: 'www-tls' } };
  const cases: Case[] = [];
  const add = (name: string, spec: Record<string, unknown>, observed?: (lb: HALoadBalancer) => ObservedFacts) => {
    const lb = makeLB(name, spec);
    cases.push({ name, lb, secrets: baseSecrets(), ...(observed ? { observed: observed(lb) } : {}) });
  };
  // Every balance algorithm, in the mode it allows.
  const algorithms: [string, string, string][] = [
    ['roundrobin', '', 'tcp'], ['static-rr', '', 'tcp'], ['leastconn', '', 'tcp'], ['first', '', 'tcp'], ['source', '', 'tcp'],
    ['uri', '', 'http'], ['url_param', 'session', 'http'], ['hdr', 'Host', 'http'], ['rdp-cookie', 'mstshash', 'tcp'],
    ['random', '', 'http'],
  ];
  add('balance', {
    frontends: algorithms.map(([, , protocol], i) => ({ name: `f${i}`, port: 8000 + i, protocol, defaultBackend: `b${i}` })),
    backends: algorithms.map(([balance, balanceParam], i) =>
      ({ name: `b${i}`, balance, balanceParam, servers: [server('s1', '10.10.0.21')] })),
  });
  add('tls-routes', {
    frontends: [
      {
        name: 'www', port: 80, protocol: 'http', tls: { ...tls, port: 443, redirectHTTP: true },
        routes: [{ pathPrefix: '/api/', backend: 'api' }, { pathPrefix: '/static/v1.2/~x', backend: 'web' }], defaultBackend: 'web',
      },
      { name: 'alt', port: 8080, protocol: 'http', tls: { ...tls, port: 8443, redirectHTTP: true }, defaultBackend: 'api' },
      { name: 'noredirect', port: 8081, protocol: 'http', tls: { ...tls, port: 8444 }, defaultBackend: 'api' },
    ],
    backends: [
      {
        name: 'web', stickySessions: true, maxconnPerServer: 20,
        healthCheck: { protocol: 'http', path: '/healthz?full=1', intervalSeconds: 5, rise: 3, fall: 4 },
        servers: [server('s1', '10.10.0.21'), server('s2', 'web.example.invalid', 8080)],
      },
      { name: 'api', proxyProtocol: true, healthCheck: { protocol: 'http', path: '/' }, servers: [server('a1', '10.10.0.22')] },
    ],
  });
  // A Service with externalTrafficPolicy Local: traffic to the NodePort, checks to the health-check NodePort.
  add('service-local', {
    frontends: [{ name: 'http', port: 80, protocol: 'tcp', defaultBackend: 'http' }],
    backends: [{
      name: 'http', port: 31080, healthCheck: { protocol: 'http', path: '/healthz', port: 32000 }, servers: [server('n1', '10.10.0.31')],
    }],
  });
  add('host-firewall', {
    access: {
      sshSourceCIDRs: ['203.0.113.0/24', '198.51.100.7/32', '203.0.113.253/32'], metricsSourceCIDRs: ['10.0.0.0/8', '10.10.0.0/16'],
      frontendSourceCIDRs: ['198.51.100.0/24', '203.0.113.9/32'],
    },
    frontends: [
      { name: 'www', port: 80, protocol: 'http', tls: { ...tls, port: 443 }, defaultBackend: 'web' },
      { name: 'pg', port: 5432, protocol: 'tcp', defaultBackend: 'db' },
    ],
    backends: [{ name: 'web', servers: [server('s1', '10.10.0.21')] }, { name: 'db', servers: [server('p1', '10.10.0.31', 5432)] }],
  });
  add('tcp-five-nodes', {
    droplets: { count: 5 },
    frontends: [{ name: 'pg', port: 5432, protocol: 'tcp', defaultBackend: 'db' }],
    backends: [{
      name: 'db', proxyProtocol: true, maxconnPerServer: 0, healthCheck: { protocol: 'tcp', intervalSeconds: 1, rise: 1, fall: 1 },
      servers: [server('p1', '10.10.0.31', 5432)],
    },
      { name: 'unused', dropletTag: 'nothing-tagged' }],
    failover: { preempt: true, virtualRouterID: 255 },
  });
  add('tagged', {
    backends: [{ name: 'web', dropletTag: 'web', servers: [server('static', '10.10.0.40')] }],
    failover: { advertIntervalSeconds: 2.5 },
  }, (lb) => ({
    ...placeholderFacts(lb),
    taggedDroplets: { web: [{ name: 'web-b', privateIPv4: '10.10.0.42' }, { name: 'web-a', privateIPv4: '10.10.0.41' }] },
  }));
  add('vrrp-auth', { failover: { authSecretRef: { name: 'vrrp', key: 'password' }, advertIntervalSeconds: 3 } });
  add('advert-fast', { failover: { advertIntervalSeconds: 0.05, virtualRouterID: 1 } });
  return cases;
}

const EXAMPLES = readdirSync('examples').filter((f) => f.endsWith('.yaml')).sort().map((f) => join('examples', f));
const cases = matrix();
const root = mkdtempSync(join(tmpdir(), 'hrt-accept-'));
const results = new Map<string, { tool: string; rc: number; output: string }[]>();
/** Node directories written by `halb render` for each example. */
const exampleDirs = new Map<string, string[]>();

/** Every example goes through `halb render` itself, for the versions installed here. */
async function renderExamples(): Promise<void> {
  for (const [i, file] of EXAMPLES.entries()) {
    const { loadBalancers } = loadAndValidate([file]);
    const lb = loadBalancers[0]!.object;
    const facts = join(root, `example${i}.json`);
    writeFileSync(facts, JSON.stringify({
      ...placeholderFacts(lb), taggedDroplets: { web: [{ name: 'tagged-web-1', privateIPv4: '10.10.0.51' }] },
    }));
    const out = join(root, `example${i}`);
    const code = await renderCommand([
      '-f', file, '--out', out, '--observed', facts, '--keepalived-version', versions.keepalived, '--haproxy-version', versions.haproxy,
    ]);
    if (code !== 0) throw new Error(`halb render -f ${file} exited ${code}`);
    exampleDirs.set(file, readdirSync(out).sort().map((node) => join(out, node)));
  }
}


function sh(command: string): void {
  execFileSync('sh', ['-c', command], { stdio: 'pipe' });
}

beforeAll(async () => {
  await renderExamples();
  sh(`ip netns del ${NS} 2>/dev/null || true`);
  sh(`ip netns add ${NS}`);
  sh(`ip -n ${NS} link set lo up`);
  sh(`ip -n ${NS} link add eth0 type veth peer name eth0p && ip -n ${NS} link set eth0 up && ip -n ${NS} link set eth0p up`);
  sh(`ip -n ${NS} link add eth1 type veth peer name eth1p && ip -n ${NS} link set eth1 up && ip -n ${NS} link set eth1p up`);
  for (let i = 0; i < 5; i++) {
    sh(`ip -n ${NS} addr add 10.10.0.${11 + i}/24 dev eth1 && ip -n ${NS} addr add 10.20.0.${11 + i}/24 dev eth0`);
  }

  const nodeDirs: string[] = [...exampleDirs.values()].flat();
  const settings = defaultSettings({ defaultVersions: versions });
  cases.forEach((c, i) => {
    const nodes = renderNodes({ lb: c.lb, secrets: c.secrets, observed: c.observed ?? placeholderFacts(c.lb), settings });
    const dir = join(root, `case${i}`);
    writeNodes(dir, nodes);
    for (const node of nodes) nodeDirs.push(join(dir, node.name));
  });
  sh(`ssh-keygen -q -t ed25519 -N '' -f ${join(root, 'hostkey')}`);
  // One shell: bind each node's /etc/haproxy and /etc/keepalived into place, run the daemons'
  // checks, and nft's and sshd's on the firewall and the sshd drop-in.
  const script = join(root, 'check.sh');
  writeFileSync(script, `set -u
mkdir -p /run/sshd
for dir in "$@"; do
  mount --bind "$dir/etc/haproxy" /etc/haproxy
  mount --bind "$dir/etc/keepalived" /etc/keepalived
  out=$(haproxy -c -f /etc/haproxy/haproxy.cfg 2>&1); rc=$?
  printf '@@ %s haproxy %s\\n%s\\n' "$dir" "$rc" "$out"
  out=$(keepalived -t -l -f /etc/keepalived/keepalived.conf 2>&1); rc=$?
  printf '@@ %s keepalived %s\\n%s\\n' "$dir" "$rc" "$out"
  out=$(nft -c -f "$dir/etc/halb/firewall.nft" 2>&1); rc=$?
  printf '@@ %s nft %s\\n%s\\n' "$dir" "$rc" "$out"
  printf 'Include %s\\nHostKey %s\\n' "$dir/etc/ssh/sshd_config.d/00-halb.conf" ${join(root, 'hostkey')} > ${join(root, 'sshd_config')}
  out=$(/usr/sbin/sshd -t -f ${join(root, 'sshd_config')} 2>&1); rc=$?
  printf '@@ %s sshd %s\\n%s\\n' "$dir" "$rc" "$out"
  umount /etc/keepalived
  umount /etc/haproxy
done
`);
  const run = spawnSync('ip', ['netns', 'exec', NS, 'unshare', '--mount', '--propagation', 'private', 'sh', script, ...nodeDirs], {
    encoding: 'utf8', timeout: 120_000,
  });
  if (run.status !== 0) throw new Error(`check shell failed (${run.status}): ${run.stderr}`);
  for (const block of run.stdout.split(/^@@ /m).slice(1)) {
    const [header = '', ...rest] = block.split('\n');
    const [dir = '', tool = '', rc = ''] = header.split(' ');
    const caseDir = dir.slice(0, dir.lastIndexOf('/'));
    const list = results.get(caseDir) ?? [];
    list.push({ tool: `${tool} ${dir.slice(dir.lastIndexOf('/') + 1)}`, rc: Number(rc), output: rest.join('\n').trim() });
    results.set(caseDir, list);
  }
}, 120_000);

afterAll(() => {
  sh(`ip netns del ${NS} 2>/dev/null || true`);
  rmSync(root, { recursive: true, force: true });
});

describe(`daemons on this machine (keepalived ${versions.keepalived}, HAProxy ${versions.haproxy}) ` +
  'accept what halb render writes for', () => {
  it.each(EXAMPLES)('%s', (file) => {
    const dirs = exampleDirs.get(file) ?? [];
    expect(dirs.length).toBeGreaterThanOrEqual(2);
    const checks = results.get(dirname(dirs[0]!)) ?? [];
    expect(checks.length).toBe(dirs.length * 4);
    for (const check of checks) expect({ check: check.tool, rc: check.rc, output: check.output }).toMatchObject({ rc: 0 });
  });
});

describe(`daemons on this machine (keepalived ${versions.keepalived}, HAProxy ${versions.haproxy}) accept the rendered files`, () => {
  it.each(cases.map((c, i) => [c.name, i] as const))('%s', (_name, i) => {
    const checks = results.get(join(root, `case${i}`)) ?? [];
    // Four checks per node: haproxy, keepalived, nft, sshd.
    expect(checks.length).toBe(cases[i]!.lb.spec.droplets.count * 4);
    for (const check of checks) expect({ check: check.tool, rc: check.rc, output: check.output }).toMatchObject({ rc: 0 });
  });
});
