// Issue 13's classes at the render boundary: inherited property names, malformed observed
// facts and metadata, and frontends on the nodes' own ports, each refused naming the field
// (a RenderError), never a TypeError.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { renderCommand } from '../../src/cli/render.ts';
import { RenderError } from '../../src/render/errors.ts';
import { readFacts } from '../../src/render/output.ts';
import { defaultSettings, placeholderFacts, renderNodes } from '../../src/render/render.ts';
import { baseSecrets, makeLB } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'halb-render-bad-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('inherited property names', () => {
  const tags = ['constructor', 'toString', '__proto__'];
  it.each(tags)('a backend dropletTag %s with no tagged droplets renders the static servers only', (tag) => {
    const lb = makeLB('web', {
      backends: [{ name: 'web', servers: [{ name: 's1', address: '10.10.0.21' }], dropletTag: tag.replaceAll('_', '-') }],
    });
    lb.spec.backends[0]!.dropletTag = tag; // past the schema, as a hostile caller could
    const nodes = renderNodes({
      lb, secrets: baseSecrets(), observed: { ...placeholderFacts(lb), taggedDroplets: {} }, settings: defaultSettings(),
    });
    expect(nodes[0]!.files.find((f) => f.path.endsWith('haproxy.cfg'))!.content).toContain('server s1 10.10.0.21:80');
  });

  it('a Secret key named constructor is a missing key', () => {
    const lb = makeLB('web', { failover: { authSecretRef: { name: 'vrrp', key: 'constructor' } } });
    expect(() => renderNodes({ lb, secrets: baseSecrets(), observed: placeholderFacts(lb), settings: defaultSettings() }))
      .toThrow('Secret vrrp has no key constructor');
  });
});

describe('metadata', () => {
  it('a numeric uid is refused naming metadata.uid', () => {
    const lb = makeLB('web');
    (lb.metadata as { uid: unknown }).uid = 12345;
    expect(() => renderNodes({ lb, secrets: baseSecrets(), observed: placeholderFacts(lb), settings: defaultSettings() }))
      .toThrow(expect.objectContaining({ field: 'metadata.uid' }));
  });
});

describe('observed facts files', () => {
  const node = { name: 'web-0', privateIPv4: '10.10.0.11', anchorIPv4: '10.20.0.11' };
  const rows: [string, unknown, string][] = [
    ['not an object', [1], 'must be a JSON object'],
    ['a numeric floatingIP', { floatingIP: 5, nodes: [node] }, 'floatingIP'],
    ['nodes not a list', { floatingIP: '198.51.100.5', nodes: { 0: node } }, 'nodes'],
    ['a node that is null', { floatingIP: '198.51.100.5', nodes: [null] }, 'nodes[0]'],
    ['a numeric node name', { floatingIP: '198.51.100.5', nodes: [{ ...node, name: 7 }] }, 'nodes[0].name'],
    ['authorizedKeys not a list of strings', { floatingIP: '198.51.100.5', nodes: [{ ...node, authorizedKeys: 'ssh-ed25519 AAAA' }] },
      'nodes[0].authorizedKeys'],
    ['a NaN-like droplet id', { floatingIP: '198.51.100.5', nodes: [{ ...node, dropletID: '1' }] }, 'nodes[0].dropletID'],
    ['taggedDroplets entries not lists', { floatingIP: '198.51.100.5', nodes: [node], taggedDroplets: { web: { name: 'a' } } },
      'taggedDroplets["web"]'],
    ['a tagged droplet without an address', { floatingIP: '198.51.100.5', nodes: [node], taggedDroplets: { web: [{ name: 'a' }] } },
      'taggedDroplets["web"][0].privateIPv4'],
    ['a numeric vpcCIDR', { floatingIP: '198.51.100.5', nodes: [node], vpcCIDR: 10 }, 'vpcCIDR'],
  ];
  it.each(rows)('refuses %s, naming the field', (_name, facts, field) => {
    const file = join(dir, 'facts.json');
    writeFileSync(file, JSON.stringify(facts));
    expect(() => readFacts(file)).toThrow(RenderError);
    expect(() => readFacts(file)).toThrow(field);
  });

  it('halb render with a malformed facts file exits 1 with the field, no stack trace', async () => {
    const file = join(dir, 'facts-cli.json');
    writeFileSync(file, JSON.stringify({
      floatingIP: '198.51.100.5', nodes: [{ name: 'basic-0', privateIPv4: '10.0.0.1', anchorIPv4: '10.1.0.1', authorizedKeys: 1 }],
    }));
    const err: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => { err.push(a.join(' ')); });
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      expect(await renderCommand(['-f', 'examples/basic.yaml', '--out', join(dir, 'out'), '--observed', file])).toBe(1);
    } finally {
      spy.mockRestore();
      log.mockRestore();
    }
    expect(err.join('\n')).toContain('nodes[0].authorizedKeys');
  });
});

describe('halb render never writes one object over another', () => {
  it('two HALoadBalancers of one name in two files (or namespaces) are refused, naming both, and nothing is written', async () => {
    const a = join(dir, 'a.yaml');
    const b = join(dir, 'b.yaml');
    const text = readFileSync('examples/basic.yaml', 'utf8');
    writeFileSync(a, text);
    writeFileSync(b, text.replace(/(metadata:\n)/, '$1  namespace: other\n'));
    const err: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...m: unknown[]) => { err.push(m.join(' ')); });
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      expect(await renderCommand(['-f', a, '-f', b, '--out', join(dir, 'clash')])).toBe(1);
    } finally {
      spy.mockRestore();
      log.mockRestore();
    }
    expect(err.join('\n')).toContain(
      `${b}: HALoadBalancer/basic: metadata.name: would write the same node directories as HALoadBalancer/basic in namespace `);
    expect(existsSync(join(dir, 'clash'))).toBe(false);
  });
});

