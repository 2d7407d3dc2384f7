// Issue 13's classes on the loading and validation side: YAML read as kubectl reads it, Secret
// values read one way, namespaces, non-finite numbers, inherited names, large inputs, and
// messages that cannot forge output.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { escapeForTerminal, formatProblem, loadAndValidate, loadManifestFile } from '../../src/api/manifests.ts';
import { validateHALoadBalancer } from '../../src/api/validate.ts';
import { defaultSettings, placeholderFacts, renderNodes } from '../../src/render/render.ts';

const dir = mkdtempSync(join(tmpdir(), 'halb-bad-input-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let count = 0;
function file(text: string): string {
  const path = join(dir, `m${count++}.yaml`);
  writeFileSync(path, text);
  return path;
}

function manifest({ frontend = 'port: 80', spec = '', meta = '' } = {}): string {
  return `apiVersion: halb.dev/v1alpha1
kind: HALoadBalancer
metadata:
  name: web
${meta}spec:
  region: nyc3
  credentials:
    tokenSecretRef: {name: do-api, key: token}
    sshKeySecretRef: {name: halb-ssh, key: ssh-privatekey}
  frontends:
    - name: www
      ${frontend}
      defaultBackend: web
  backends:
    - name: web
      servers: [{name: s1, address: 10.10.0.21}]
${spec}`;
}

const secret = (name: string, data: string, namespace?: string) =>
  `---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\n${namespace ? `  namespace: ${namespace}\n` : ''}${data}\n`;

function only(text: string) {
  const result = loadAndValidate([file(text)]);
  return { ...result, lines: result.problems.map(formatProblem) };
}

describe('YAML as kubectl reads it (sigs.k8s.io/yaml: YAML 1.1 scalars, merge keys)', () => {
  it.each([['017', 15], ['0x50', 80], ['8_080', 8080], ['0o17', 15], ['+443', 443]])('port: %s is %i', (text, port) => {
    const { loadBalancers, lines } = only(manifest({ frontend: `port: ${text}` }));
    expect(lines).toEqual([]);
    expect(loadBalancers[0]!.object.spec.frontends[0]!.port).toBe(port);
  });

  it('a quoted "017" stays a string, as kubectl keeps it', () => {
    expect(only(manifest({ frontend: 'port: "017"' })).lines.join('\n')).toContain('spec.frontends[0].port: must be an integer, got "017"');
  });

  it.each([['yes', true], ['on', true], ['Off', false], ['n', false]])('failover.preempt: %s is %s', (text, value) => {
    const { loadBalancers, lines } = only(manifest({ spec: `  failover: {preempt: ${text}}\n` }));
    expect(lines).toEqual([]);
    expect(loadBalancers[0]!.object.spec.failover.preempt).toBe(value);
  });

  it('takes << merge keys, explicit keys winning', () => {
    const text = `defaults: &server {name: s1, address: 10.10.0.21, port: 8080}
server:
  <<: *server
  port: 9090
`;
    const { objects, problems } = loadManifestFile(file(text));
    expect(problems).toEqual([]);
    expect((objects[0]!.value as { server: unknown }).server).toEqual({ name: 's1', address: '10.10.0.21', port: 9090 });
  });

  const nonFinite = [['.inf', 'Infinity'], ['-.Inf', '-Infinity'], ['.NaN', 'NaN']];
  it.each(nonFinite)('port: %s is refused as %s, naming the line and field', (text, word) => {
    const line = only(manifest({ frontend: `port: ${text}` })).lines.join('\n');
    expect(line).toMatch(/m\d+\.yaml:\d+:\d+: spec\.frontends\[0\]\.port: /);
    expect(line).toContain(`is ${word}, which JSON cannot carry`);
  });

  it('a __proto__ key is an unknown field, not a prototype', () => {
    const { lines } = only(manifest({ spec: '  __proto__: {polluted: true}\n' }));
    expect(lines.join('\n')).toContain('spec.__proto__: unknown field');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('non-finite numbers in messages', () => {
  it.each([[Number.NaN, 'NaN'], [Number.POSITIVE_INFINITY, 'Infinity']])('%s is reported as such, not as null', (value, word) => {
    const loaded = loadManifestFile(file(manifest())).objects[0]!.value;
    const { problems } = validateHALoadBalancer(JSON.parse(JSON.stringify(loaded), (k, v: unknown) => (k === 'port' ? value : v)));
    expect(problems.map((p) => `${p.path}: ${p.message}`)).toContain(`spec.frontends[0].port: must be an integer, got ${word}`);
  });
});

describe('Secret values are read one way everywhere', () => {
  const auth = '  failover:\n    authSecretRef: {name: vrrp, key: password}\n';
  it('a VRRP password with the trailing newline of --from-file is 8 characters, in validation and in the file', () => {
    const text = manifest({ spec: auth }) + secret('vrrp', 'data:\n  password: YWJjZGVmZ2gK'); // "abcdefgh\n"
    const { lines, loadBalancers, secrets } = only(text);
    expect(lines).toEqual([]);
    const [node] = renderNodes({ lb: loadBalancers[0]!.object, secrets: [...secrets, { name: 'do-api', data: { token: 'dop_v1_x' } }],
      observed: placeholderFacts(loadBalancers[0]!.object), settings: defaultSettings() });
    expect(node!.files.find((f) => f.path.endsWith('keepalived.conf'))!.content).toMatch(/auth_pass abcdefgh\n/);
  });

  it('an inherited name as a key is a missing key, not a crash', () => {
    const text = manifest({ spec: auth.replace('key: password', 'key: constructor') }) + secret('vrrp', 'stringData:\n  password: abc');
    expect(only(text).lines.join('\n')).toContain('spec.failover.authSecretRef.key: Secret "vrrp" has no key "constructor"');
  });
});

describe('namespaces: validation and rendering see the object\'s own namespace only', () => {
  const auth = '  failover:\n    authSecretRef: {name: vrrp, key: password}\n';
  const text = manifest({ meta: '  namespace: prod\n', spec: auth })
    + secret('vrrp', 'stringData:\n  password: "$_RANDOM"', 'default')
    + secret('vrrp', 'stringData:\n  password: prod-pw1', 'prod')
    + secret('do-api', 'stringData:\n  token: dop_v1_prod', 'prod');

  it('validation checks the Secret in the object\'s namespace, and render writes that one', () => {
    const { lines, loadBalancers, secrets } = only(text);
    expect(lines).toEqual([]);
    const lb = loadBalancers[0]!.object;
    const [node] = renderNodes({ lb, secrets, observed: placeholderFacts(lb), settings: defaultSettings() });
    expect(node!.files.find((f) => f.path.endsWith('keepalived.conf'))!.content).toContain('auth_pass prod-pw1');
  });

  it('render does not use a Secret of another namespace', () => {
    const { loadBalancers, secrets } =
      only(manifest({ meta: '  namespace: prod\n', spec: auth }) + secret('vrrp', 'stringData:\n  password: dflt-pw1'));
    const lb = loadBalancers[0]!.object;
    const token = { name: 'do-api', namespace: 'prod', data: { token: 'dop_v1_x' } };
    expect(() => renderNodes({ lb, secrets: [...secrets, token], observed: placeholderFacts(lb), settings: defaultSettings() }))
      .toThrow('spec.failover.authSecretRef: Secret vrrp was not found in namespace prod');
  });
});

describe('forged output', () => {
  it('escapes control characters, ANSI escapes and line separators in every printed part', () => {
    const forged = 'x\n/tmp/a.yaml: HALoadBalancer/web: valid\u001b[2J\u2028\u202e';
    const line = formatProblem({ file: forged, object: `HALoadBalancer/${forged}`, path: 'metadata.name', message: forged });
    expect(line).not.toMatch(/[\n\r\u001b\u2028\u202e]/);
    expect(line.split('\n')).toHaveLength(1);
    expect(escapeForTerminal('\u001b[31m')).toBe('\\u001b[31m');
  });

  it('an object name with newlines and escapes gives one escaped line per problem', () => {
    const text = manifest().replace('name: web', 'name: "web\\n/x.yaml: HALoadBalancer/web: valid\\e[2J"');
    const { lines } = only(text);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(line).not.toMatch(/[\n\u001b]/);
  });
});

describe('large input', () => {
  // Bounded by size, not by time (the timing is in bench/validate.ts): 100,000 keys in 1.4 MB
  // took 110 s when duplicate keys were found by rescanning each mapping; the reader is linear now.
  it('a 1.4 MB manifest with 100,000 keys is read and refused with a bounded list of problems', () => {
    const keys = Array.from({ length: 100_000 }, (_, i) => `    k${i}: on`).join('\n');
    const text = manifest({ spec: `  extra:\n${keys}\n` });
    expect(text.length).toBeGreaterThan(1_400_000);
    const { lines } = only(text);
    expect(lines.length).toBeLessThanOrEqual(101);
    expect(lines[0]).toContain('spec.extra: unknown field');
  });
});
