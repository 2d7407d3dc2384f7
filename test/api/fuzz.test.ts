// Property-based fuzzing of the manifest loader, validation and the renderer's guards
// (fast-check, seeded, bounded in time). For any manifest made by mutating a valid one (values
// of every type at any path, inherited names, control and invisible characters, NaN, the
// nodes' own ports, keepalived's special characters, broken YAML text):
//   1. validation never throws: it accepts, or each problem names a field or a file line;
//   2. whatever validation accepts renders without a guard refusing it, and the files of a
//      bounded sample of those renders pass the real daemons' checks (haproxy -c,
//      keepalived -t, nft -c), run in a private network and mount namespace.
// HALB_FUZZ_SEED and HALB_FUZZ_SECONDS change the seed and the time per property.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { referencedSecrets } from '../../src/api/derived.ts';
import { loadAndValidate, type FileProblem } from '../../src/api/manifests.ts';
import { findSecret } from '../../src/api/secrets.ts';
import type { HALoadBalancer, SecretData } from '../../src/api/types.ts';
import { writeNodes } from '../../src/render/output.ts';
import { defaultSettings, placeholderFacts, renderNodes } from '../../src/render/render.ts';
import type { RenderedNode } from '../../src/render/types.ts';
import { TOKEN, installedVersions, tlsPair } from '../render/helpers.ts';

const SEED = Number(process.env.HALB_FUZZ_SEED ?? 20261313);
const SECONDS = Number(process.env.HALB_FUZZ_SECONDS ?? 15);
/** Accepted renders whose files the real daemons check, at most. */
const DAEMON_SAMPLE = 24;

const dir = mkdtempSync(join(tmpdir(), 'halb-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function baseDocuments(): Record<string, unknown>[] {
  const { cert, key } = tlsPair();
  return [
    {
      apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name: 'web', namespace: 'default' },
      spec: {
        region: 'nyc3',
        credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'ssh-privatekey' } },
        droplets: { count: 2, tags: ['lb'] },
        frontends: [
          { name: 'www', port: 80, protocol: 'http', tls: { secretRef: { name: 'www-tls' }, port: 443, redirectHTTP: true },
            routes: [{ pathPrefix: '/api/', backend: 'api' }], defaultBackend: 'web' },
          { name: 'pg', port: 5432, protocol: 'tcp', defaultBackend: 'db' },
        ],
        backends: [
          { name: 'web', healthCheck: { protocol: 'http', path: '/healthz' }, servers: [{ name: 's1', address: '10.10.0.21' }] },
          { name: 'api', dropletTag: 'api', balance: 'hdr', balanceParam: 'Host' },
          { name: 'db', servers: [{ name: 'p1', address: '10.10.0.31', port: 5432 }] },
        ],
        failover: { authSecretRef: { name: 'vrrp', key: 'password' }, advertIntervalSeconds: 1 },
        access: { sshSourceCIDRs: ['203.0.113.0/24'], metricsSourceCIDRs: ['10.10.0.0/16'] },
      },
    },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'do-api' }, stringData: { token: TOKEN } },
    {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'halb-ssh' },
      stringData: { 'ssh-privatekey': '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n' },
    },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'vrrp' }, stringData: { password: 's3cr3t-x' } },
    {
      apiVersion: 'v1', kind: 'Secret', metadata: { name: 'www-tls' }, type: 'kubernetes.io/tls',
      stringData: { 'tls.crt': cert, 'tls.key': key },
    },
  ];
}

type Path = (string | number)[];

function pathsOf(value: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  out.push(prefix);
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) pathsOf(v, [...prefix, Array.isArray(value) ? Number(k) : k], out);
  }
  return out;
}

const hostile = [
  'constructor', '__proto__', 'toString', 'hasOwnProperty', '$_RANDOM', '${x}', 'a#b', 'a!b', 'a"b', "a'b", 'a\\b', 'a b', '{', '}',
  'x\n', 'x\r\n', '\u0085', '\u200b', '\u2028', '\u202e', '\u001b[2J', '\t', '', ' ', 'ӏb', 'HALoadBaIancer', 'default', 'prod', 'web',
  'api', 'lb', '0.0.0.0/0', '10.10.0.0/16', '203.0.113.0/33', '/api', '/a b', '/%2e', '/\u00e9', '1_000', '017', 'yes', '.nan', 'dop_v1_ok',
  'ok-pass',
];
const value = fc.oneof(
  fc.constantFrom(...hostile),
  fc.constantFrom(22, 80, 443, 8404, 8405, 0, -1, 65535, 65536, 1.5, 0.05, 2, 5, 255, 256, Number.NaN, Number.POSITIVE_INFINITY, 1e300),
  fc.integer({ min: -10, max: 70000 }),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ maxLength: 12 }),
  fc.array(fc.constantFrom('lb', 'api', 'x', 1), { maxLength: 3 }),
  fc.dictionary(fc.constantFrom('name', 'key', 'port', 'constructor', '__proto__', 'x'), fc.constantFrom('web', 1, 'www-tls', null), {
    maxKeys: 3,
  }),
);

interface Mutation { at: number; op: 'set' | 'delete' | 'add'; value: unknown; key: string }
const mutation = fc.record({
  at: fc.nat(), op: fc.constantFrom('set', 'set', 'set', 'delete', 'add'), value,
  key: fc.constantFrom('extra', 'constructor', '__proto__', 'namespace', 'uid'),
}) as fc.Arbitrary<Mutation>;
const textEdit = fc.option(fc.record({
  at: fc.nat(), insert: fc.string({ unit: 'binary', maxLength: 6 }), cut: fc.nat({ max: 4 }),
}), { freq: 4 });

// Targeted changes keep most of a manifest valid, so that many reach the renderer: each sets one
// field that reaches a host file to a value from a wide but plausible range.
const ascii = (maxLength: number) =>
  fc.string({ unit: fc.constantFrom(...' !"#$%&\'()*+,-./0123456789:;<=>?@AZaz[\\]^_`{|}~\u0085\u200b\u2028\t\n'), maxLength });
const port = fc.oneof(fc.constantFrom(22, 80, 443, 8404, 8405, 5432), fc.integer({ min: 1, max: 65535 }));
const targeted: [Path, fc.Arbitrary<unknown>][] = [
  [[0, 'spec', 'frontends', 1, 'port'], port],
  [[0, 'spec', 'frontends', 0, 'tls', 'port'], port],
  [[0, 'spec', 'frontends', 0, 'routes', 0, 'pathPrefix'], ascii(12).map((t) => `/${t}`)],
  [[0, 'spec', 'backends', 0, 'healthCheck', 'path'], ascii(12).map((t) => `/${t}`)],
  [[0, 'spec', 'backends', 0, 'servers', 0, 'address'], fc.oneof(fc.ipV4(), fc.domain(), ascii(12))],
  [[0, 'spec', 'backends', 1, 'balanceParam'], ascii(10)],
  [[0, 'spec', 'backends', 1, 'dropletTag'], fc.constantFrom('api', 'lb', 'LB', 'web', 'halb-x', 'constructor', '__proto__')],
  [[0, 'spec', 'droplets', 'tags', 0], fc.constantFrom('api', 'lb', 'API', 'web', 'halb', 'toString')],
  [[0, 'spec', 'access', 'sshSourceCIDRs', 0], fc.oneof(fc.constantFrom('0.0.0.0/0', '10.0.0.0/8', '203.0.113.7/32'), ascii(12))],
  [[0, 'spec', 'failover', 'advertIntervalSeconds'], fc.oneof(fc.integer({ min: 1, max: 40 }), fc.double({ min: 0, max: 41 }))],
  [[0, 'spec', 'failover', 'virtualRouterID'], fc.integer({ min: -1, max: 256 })],
  [[0, 'metadata', 'name'], fc.oneof(fc.constantFrom('web', 'constructor', 'a'.repeat(41)), ascii(8))],
  [[0, 'metadata', 'uid'], fc.oneof(fc.uuid(), fc.integer(), ascii(8))],
  [[1, 'stringData', 'token'], fc.oneof(fc.constant(TOKEN), ascii(20), fc.constant(`${TOKEN}\n`))],
  [[3, 'stringData', 'password'], fc.oneof(ascii(9), fc.constantFrom('abcdefgh\n', '$_RANDOM', 'pa$$', 'ok_pass'))],
];
const targetedChange = fc.integer({ min: 0, max: targeted.length - 1 })
  .chain((i) => targeted[i]![1].map((v) => ({ path: targeted[i]![0], value: v })));

function setAt(docs: Record<string, unknown>[], path: Path, value: unknown): Record<string, unknown>[] {
  const copy = structuredClone(docs);
  const parent = path.slice(0, -1)
    .reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], copy) as Record<string | number, unknown>;
  parent[path[path.length - 1]!] = value;
  return copy;
}

function mutate(docs: Record<string, unknown>[], mutations: Mutation[]): Record<string, unknown>[] {
  const root: Record<string, unknown> = { docs: structuredClone(docs) };
  for (const m of mutations) {
    const paths = pathsOf(root.docs, ['docs']).slice(1);
    const path = paths[m.at % paths.length]!;
    const parent = path.slice(0, -1)
      .reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], root) as Record<string | number, unknown>;
    const last = path[path.length - 1]!;
    if (m.op === 'delete') {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last];
    } else if (m.op === 'add') {
      const target = parent[last];
      if (target !== null && typeof target === 'object' && !Array.isArray(target)) {
        Object.defineProperty(target, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
      }
      else parent[last] = m.value;
    } else {
      parent[last] = m.value;
    }
  }
  return root.docs as Record<string, unknown>[];
}

function text(docs: unknown[], edit: { at: number; insert: string; cut: number } | null): string {
  const yaml = docs.map((d) => stringify(d)).join('---\n');
  if (!edit) return yaml;
  const at = edit.at % (yaml.length + 1);
  return yaml.slice(0, at) + edit.insert + yaml.slice(at + edit.cut);
}

let fileCount = 0;
function write(content: string): string {
  const file = join(dir, `f${fileCount++ % 50}.yaml`);
  writeFileSync(file, content);
  return file;
}

/** A problem names a field (its path), or a place in a file (file:line), or sums up others. */
function namesAPlace(p: FileProblem): boolean {
  return p.path !== '' || /:\d+(:\d+)?$/.test(p.file) || p.message.startsWith('and ') || p.object === '';
}

/** Renders as `halb render` does: the object's namespace, a placeholder when the token is absent. */
function render(lb: HALoadBalancer, secrets: SecretData[]): RenderedNode[] {
  return renderNodes({
    lb, secrets, observed: { ...placeholderFacts(lb), taggedDroplets: { api: [{ name: 'api-1', privateIPv4: '10.10.0.41' }] } },
    settings: defaultSettings({ defaultVersions: installedVersions() }) });
}

const accepted: RenderedNode[][] = [];
const seenHashes = new Set<string>();
let runs = 0;
let acceptedCount = 0;

describe('fuzzing the loader, validation and the render guards', () => {
  it('starts from a valid manifest, whose render is the first of the daemons\' sample', () => {
    const result = loadAndValidate([write(text(baseDocuments(), null))]);
    expect(result.problems).toEqual([]);
    expect(result.loadBalancers).toHaveLength(1);
    const nodes = render(result.loadBalancers[0]!.object, result.secrets);
    seenHashes.add(nodes[0]!.configHash);
    accepted.push(nodes);
  });

  it('validation never throws, names a field for each problem, and what it accepts renders', () => {
    const base = baseDocuments();
    // Each change prints as what it does when fast-check reports a counterexample.
    const described = <T>(what: T, apply: (docs: Record<string, unknown>[]) => Record<string, unknown>[]) =>
      Object.assign(apply, { [fc.toStringMethod]: () => fc.stringify(what) });
    const change = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.array(targetedChange, { minLength: 1, maxLength: 2 })
          .map((cs) => described(cs, (docs) => cs.reduce((d, c) => setAt(d, c.path, c.value), docs))),
      },
      { weight: 2, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }).map((ms) => described(ms, (docs) => mutate(docs, ms))) },
    );
    fc.assert(fc.property(change, textEdit, (apply, edit) => {
      runs++;
      const file = write(text(apply(base), edit));
      const result = loadAndValidate([file]);
      for (const p of result.problems) expect(namesAPlace(p), JSON.stringify(p)).toBe(true);
      if (result.problems.length) return;
      for (const { object: lb } of result.loadBalancers) {
        const namespace = lb.metadata.namespace;
        const complete = [...referencedSecrets(lb.spec)].every((name) => findSecret(result.secrets, namespace, name));
        if (!complete) continue; // a Secret the cluster may hold later: the renderer needs it, validation cannot
        acceptedCount++;
        const nodes = render(lb, result.secrets); // throws a RenderError if a guard refuses what validation accepted
        if (accepted.length < DAEMON_SAMPLE && !seenHashes.has(nodes[0]!.configHash)) {
          seenHashes.add(nodes[0]!.configHash);
          accepted.push(nodes);
        }
      }
    }), { seed: SEED, numRuns: 1_000_000, interruptAfterTimeLimit: SECONDS * 1000, markInterruptAsFailure: false, endOnFailure: true });
    console.log(`fuzz: seed ${SEED}, ${runs} manifests in ${SECONDS} s, ${acceptedCount} accepted and rendered, ` +
      `${accepted.length} distinct renders for the daemons`);
    expect(runs).toBeGreaterThan(50);
  }, SECONDS * 1000 + 30_000);

  it('the daemons accept the files of a sample of accepted renders', () => {
    expect(accepted.length).toBeGreaterThan(0);
    const dirs: string[] = [];
    accepted.forEach((nodes, i) => {
      writeNodes(join(dir, `render${i}`), nodes);
      dirs.push(...nodes.map((n) => join(dir, `render${i}`, n.name)));
    });
    // A private network namespace with the interfaces and addresses the configs name; each
    // node's /etc/haproxy and /etc/keepalived bind-mounted where the host has them.
    const script = `set -u
ip link set lo up
for n in eth0 eth1; do ip link add $n type veth peer name "$n"p && ip link set $n up && ip link set "$n"p up; done
for i in 11 12 13 14 15; do ip addr add 10.10.0.$i/24 dev eth1; ip addr add 10.20.0.$i/24 dev eth0; done
failed=0
for dir in "$@"; do
  mount --bind "$dir/etc/haproxy" /etc/haproxy && mount --bind "$dir/etc/keepalived" /etc/keepalived || exit 2
  haproxy -c -q -f /etc/haproxy/haproxy.cfg >/dev/null 2>&1 || \
{ echo "haproxy refused $dir"; haproxy -c -f /etc/haproxy/haproxy.cfg 2>&1 | grep -E 'ALERT' | head -5; failed=1; }
  keepalived -t -l -f /etc/keepalived/keepalived.conf >/dev/null 2>&1 || { echo "keepalived refused $dir"; failed=1; }
  nft -c -f "$dir/etc/halb/firewall.nft" >/dev/null 2>&1 || { echo "nft refused $dir"; failed=1; }
  umount /etc/keepalived; umount /etc/haproxy
done
exit $failed
`;
    writeFileSync(join(dir, 'check.sh'), script);
    const r = spawnSync('unshare', ['--net', '--mount', '--propagation', 'private', 'sh', join(dir, 'check.sh'), ...dirs], {
      encoding: 'utf8', timeout: 120_000,
    });
    expect({ status: r.status, out: r.stdout, err: r.stderr }).toEqual({ status: 0, out: '', err: '' });
  }, 150_000);
});
