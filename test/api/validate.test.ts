import { readdirSync, readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { formatProblem, loadAndValidate } from '../../src/api/manifests.ts';
import { validateHALoadBalancer } from '../../src/api/validate.ts';

const invalidDir = new URL('../fixtures/invalid/', import.meta.url).pathname;
const index = parse(readFileSync(join(invalidDir, 'index.yaml'), 'utf8')) as Record<string, { expect: string; why: string }>;
const fixtures = readdirSync(invalidDir).filter((f) => f !== 'index.yaml').sort();

describe('invalid manifests in test/fixtures/invalid', () => {
  it('are at least 30, each listed in index.yaml with the path its error must name', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(30);
    expect(Object.keys(index).sort()).toEqual(fixtures);
  });

  it.each(fixtures)('%s fails, naming its field path', (name) => {
    const result = loadAndValidate([join(invalidDir, name)]);
    const lines = result.problems.map(formatProblem);
    // A problem anywhere in the files fails the whole run (exit 1), as one bad object fails an apply.
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join('\n')).toContain(index[name]!.expect);
    for (const line of lines) {
      expect(line).not.toMatch(/\n|\r/); // one line per problem, control characters escaped
      expect(line.startsWith(join(invalidDir, name))).toBe(true);
    }
  });
});

describe('examples/', () => {
  const examplesDir = new URL('../../examples/', import.meta.url).pathname;
  const examples = readdirSync(examplesDir).filter((f) => f.endsWith('.yaml'));

  it.each(examples)('%s is valid', (name) => {
    const result = loadAndValidate([join(examplesDir, name)]);
    expect(result.problems.map(formatProblem)).toEqual([]);
    expect(result.loadBalancers).toHaveLength(1);
  });

  it('seed-tutorial carries every feature the tutorial sets up', () => {
    const { loadBalancers } = loadAndValidate([join(examplesDir, 'seed-tutorial.yaml')]);
    const spec = loadBalancers[0]!.object.spec;
    const www = spec.frontends[0]!;
    expect(www.port).toBe(80);
    expect(www.tls).toMatchObject({ port: 443, redirectHTTP: true });
    expect(www.routes).toEqual([{ pathPrefix: '/api/', backend: 'api' }]);
    expect(spec.backends.map((b) => [b.name, b.balance, b.maxconnPerServer, b.healthCheck.protocol])).toEqual([
      ['web', 'roundrobin', 20, 'http'], ['api', 'roundrobin', 20, 'http'],
    ]);
    expect(spec.failover.authSecretRef).toBeDefined();
    expect(spec.droplets.count).toBe(2);
  });
});

describe('file-level limits', () => {
  it('refuses a 20 MB file by its size, before parsing it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'halb-validate-'));
    try {
      const file = join(dir, 'huge.yaml');
      writeFileSync(file, `# ${'x'.repeat(20 * 1024 * 1024)}\n`);
      const started = process.hrtime.bigint();
      const { problems } = loadAndValidate([file]);
      expect(problems.map(formatProblem)).toEqual([`${file}: file is 20.0 MiB; manifests are limited to 4 MiB`]);
      expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(5000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a missing file', () => {
    expect(loadAndValidate(['/nonexistent/halb.yaml']).problems.map(formatProblem)).toEqual(['/nonexistent/halb.yaml: no such file']);
  });
});

// A valid object to bend one field at a time.
const base = () => ({
  apiVersion: 'halb.dev/v1alpha1', kind: 'HALoadBalancer', metadata: { name: 'web' },
  spec: {
    region: 'nyc3',
    credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'ssh-privatekey' } },
    frontends: [{ name: 'www', port: 80, defaultBackend: 'web' }],
    backends: [{ name: 'web', servers: [{ name: 's1', address: '10.0.0.1' }] }],
  },
});

describe('schema defaults', () => {
  it('fills the defaults the API server would, without touching the input', () => {
    const input = base();
    const { problems, object } = validateHALoadBalancer(input);
    expect(problems).toEqual([]);
    expect(input.spec).not.toHaveProperty('droplets');
    expect(object!.spec.droplets).toEqual({
      count: 2, size: 's-1vcpu-1gb', image: 'ubuntu-24-04-x64', sshKeys: [], tags: [], replaceColocated: false,
    });
    expect(object!.spec.frontends[0]!.protocol).toBe('http');
    expect(object!.spec.backends[0]!.healthCheck).toEqual({ protocol: 'tcp', path: '/', intervalSeconds: 2, rise: 2, fall: 3 });
    expect(object!.spec.failover).toEqual({ preempt: false, virtualRouterID: 0 });
    expect(object!.spec.floatingIP.reclaimPolicy).toBe('Retain');
  });
});

describe('semantic rules', () => {
  type Case = { name: string; mutate: (s: ReturnType<typeof base>['spec'] & Record<string, unknown>) => void; path: string };
  const cases: Case[] = [
    {
      name: 'a hostname server address is fine', mutate: (s) => { s.backends[0]!.servers[0]!.address = 'web-1.internal.example'; },
      path: '',
    },
    {
      name: 'an advert interval of whole seconds with PASS auth is fine',
      mutate: (s) => { s.failover = { advertIntervalSeconds: 2, authSecretRef: { name: 'v', key: 'p' } }; }, path: '',
    },
    {
      name: 'PASS auth without an interval defaults to 1 s and is fine',
      mutate: (s) => { s.failover = { authSecretRef: { name: 'v', key: 'p' } }; }, path: '',
    },
    {
      name: 'url_param with its parameter is fine',
      mutate: (s) => { Object.assign(s.backends[0]!, { balance: 'url_param', balanceParam: 'user' }); }, path: '',
    },
    {
      name: 'rdp-cookie on a tcp backend is fine',
      mutate: (s) => {
        Object.assign(s.frontends[0]!, { protocol: 'tcp' });
        Object.assign(s.backends[0]!, { balance: 'rdp-cookie', balanceParam: 'mstshash' });
      },
      path: '',
    },
    {
      name: 'a tls port equal to another frontend port',
      mutate: (s) => {
        s.frontends.push({ name: 'b', port: 443, defaultBackend: 'web' });
        Object.assign(s.frontends[0]!, { tls: { secretRef: { name: 't' }, port: 443 } });
      },
      path: 'spec.frontends',
    },
    {
      name: 'duplicate server names', mutate: (s) => { s.backends[0]!.servers.push({ name: 's1', address: '10.0.0.2' }); },
      path: 'spec.backends[0].servers[1].name',
    },
    {
      name: 'a dropletTag in the operator namespace', mutate: (s) => { Object.assign(s.backends[0]!, { dropletTag: 'halb:uid' }); },
      path: 'spec.backends[0].dropletTag',
    },
  ];
  it.each(cases)('$name', ({ mutate, path }) => {
    const obj = base();
    mutate(obj.spec as never);
    const { problems } = validateHALoadBalancer(obj);
    if (path === '') expect(problems).toEqual([]);
    else expect(problems.map((p) => p.path)).toContain(path);
  });

  it('checks the VRRP password only when the Secret is known', () => {
    const obj = base() as ReturnType<typeof base> & { spec: { failover?: unknown } };
    obj.spec.failover = { authSecretRef: { name: 'vrrp', key: 'password' } };
    expect(validateHALoadBalancer(obj).problems).toEqual([]);
    const vrrp = (password: string) => (name: string) => (name === 'vrrp' ? { name, data: { password } } : undefined);
    const long = validateHALoadBalancer(obj, vrrp('123456789'));
    expect(long.problems).toEqual([expect.objectContaining({ path: 'spec.failover.authSecretRef' })]);
    const quoted = validateHALoadBalancer(obj, vrrp('a"b'));
    expect(quoted.problems[0]?.message).toMatch(/quotes/);
    expect(validateHALoadBalancer(obj, vrrp('12345678')).problems).toEqual([]);
  });
});
