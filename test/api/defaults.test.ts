// Defaults live in code for list items, and in one function (withDefaults) that validation,
// rendering and the operator share. These tests pin where every default ends up: the CRD keeps
// none inside a list item, withDefaults applies all of them, and the docs still list each one.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { withDefaults } from '../../src/api/defaults.ts';
import { specSchema, type JSONSchemaProps } from '../../src/api/schema.ts';
import type { HALoadBalancerSpecInput } from '../../src/api/types.ts';

const root = new URL('../../', import.meta.url);
const crd = parse(readFileSync(new URL('crds/haloadbalancer.yaml', root), 'utf8')) as {
  spec: { versions: { schema: { openAPIV3Schema: JSONSchemaProps } }[] };
};
const reference = readFileSync(new URL('docs/api-reference.md', root), 'utf8');

interface Found { path: string; inList: boolean; value: unknown }

/** Every `default` under a schema node, with its path (spec.frontends[].protocol). */
function defaultsOf(schema: JSONSchemaProps, path: string, inList = false): Found[] {
  const here = schema.default === undefined ? [] : [{ path, inList, value: schema.default }];
  const children = Object.entries(schema.properties ?? {}).flatMap(([k, v]) => defaultsOf(v, `${path}.${k}`, inList));
  const items = schema.items ? defaultsOf(schema.items, `${path}[]`, true) : [];
  return [...here, ...children, ...items];
}

/** The value at a path such as spec.frontends[].tls.port, taking the first item of each list. */
function at(value: unknown, path: string): unknown {
  let current = value;
  for (const part of path.split('.').slice(1)) {
    const list = part.endsWith('[]');
    current = (current as Record<string, unknown> | undefined)?.[list ? part.slice(0, -2) : part];
    if (list) current = (current as unknown[] | undefined)?.[0];
  }
  return current;
}

// The smallest spec in which every defaulted field's parent exists (a TLS frontend, a route, a server).
const minimal: HALoadBalancerSpecInput = {
  region: 'nyc3',
  credentials: { tokenSecretRef: { name: 'do-api', key: 'token' }, sshKeySecretRef: { name: 'halb-ssh', key: 'ssh-privatekey' } },
  frontends: [{
    name: 'www', port: 80, tls: { secretRef: { name: 'www-tls' } }, routes: [{ pathPrefix: '/api/', backend: 'web' }],
    defaultBackend: 'web',
  }],
  backends: [{ name: 'web', servers: [{ name: 'web-1', address: '10.10.0.21' }] }],
};

const all = defaultsOf(specSchema, 'spec');

describe('defaults', () => {
  it('the schema has defaults inside list items, and the CRD carries none of them', () => {
    const inLists = all.filter((d) => d.inList);
    expect(inLists.map((d) => d.path)).toEqual(expect.arrayContaining([
      'spec.frontends[].protocol', 'spec.frontends[].tls.port', 'spec.backends[].balance', 'spec.backends[].healthCheck.intervalSeconds',
    ]));
    const crdSpec = crd.spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!;
    // The same count as the project's before-stop check: any `default` reached through `items`.
    expect(defaultsOf(crdSpec, 'spec').filter((d) => d.inList)).toEqual([]);
    // Defaults outside lists stay in the CRD (the kubectl tests prove they cause no drift).
    expect(defaultsOf(crdSpec, 'spec')).toEqual(all.filter((d) => !d.inList));
  });

  it.each(all.map((d) => [d.path, d] as const))('withDefaults fills %s', (_path, d) => {
    const got = at(withDefaults(minimal), d.path);
    // An object default ({}) is then filled in with its own fields' defaults.
    if (typeof d.value === 'object' && !Array.isArray(d.value)) expect(got).toMatchObject(d.value as object);
    else expect(got).toEqual(d.value);
  });

  it('docs/api-reference.md lists every default, marking those halb applies', () => {
    for (const d of all) {
      const row = reference.split('\n').find((line) => line.startsWith(`| \`${d.path}\` |`));
      expect(row, d.path).toContain(`\`${JSON.stringify(d.value)}\`${d.inList ? ' (halb)' : ''} |`);
    }
  });

  it('keeps what is set, does not change its input, and is idempotent', () => {
    const input: HALoadBalancerSpecInput = structuredClone(minimal);
    input.frontends[0]!.protocol = 'http';
    input.frontends[0]!.tls!.port = 8443;
    input.backends[0]!.healthCheck = { protocol: 'http', rise: 5 };
    const before = structuredClone(input);
    const once = withDefaults(input);
    expect(input).toEqual(before);
    expect(once.frontends[0]!.tls!.port).toBe(8443);
    expect(once.backends[0]!.healthCheck).toEqual({ protocol: 'http', rise: 5, path: '/', intervalSeconds: 2, fall: 3 });
    expect(withDefaults(once)).toEqual(once);
  });

  it('leaves optional fields without a default unset', () => {
    const spec = withDefaults(minimal);
    expect(spec.failover.advertIntervalSeconds).toBeUndefined();
    expect(spec.backends[0]!.servers![0]!.port).toBeUndefined();
    expect(spec.credentials.failoverTokenSecretRef).toBeUndefined();
  });
});
