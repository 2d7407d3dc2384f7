import { readFileSync } from 'node:fs';
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1/CustomResourceDefinition';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildCRD, renderCRDYAML } from '../../src/api/crd.ts';
import { renderTypes } from '../../src/api/typegen.ts';
import { renderAPIReference } from '../../src/api/reference.ts';
import type { JSONSchemaProps } from '../../src/api/schema.ts';

const committed = readFileSync(new URL('../../crds/haloadbalancer.yaml', import.meta.url), 'utf8');
const crd = parse(committed) as ReturnType<typeof buildCRD> & {
  spec: {
    versions: {
      schema: { openAPIV3Schema: JSONSchemaProps };
      additionalPrinterColumns: { name: string; jsonPath: string; priority?: number }[];
      subresources: unknown;
    }[];
  };
};

describe('the generated CRD', () => {
  it('is what the schema generates (crds:check)', () => {
    expect(committed).toBe(renderCRDYAML());
    expect(readFileSync(new URL('../../src/api/types.generated.ts', import.meta.url), 'utf8')).toBe(renderTypes());
    expect(readFileSync(new URL('../../docs/api-reference.md', import.meta.url), 'utf8')).toBe(renderAPIReference());
  });

  it('is a valid apiextensions.k8s.io/v1 CustomResourceDefinition', () => {
    expect(() => new CustomResourceDefinition(crd as never).validate()).not.toThrow();
  });

  it('the validator rejects a broken CRD, so the test above means something', () => {
    const broken = structuredClone(crd) as { spec: Record<string, unknown> };
    broken.spec.scope = 42;
    expect(() => new CustomResourceDefinition(broken as never).validate()).toThrow();
  });

  it('serves the status subresource and the printer columns of the API contract', () => {
    const version = crd.spec.versions[0]!;
    expect(version.subresources).toEqual({ status: {} });
    const columns = version.additionalPrinterColumns;
    expect(columns.filter((c) => !c.priority).map((c) => c.name.toUpperCase())).toEqual(['READY', 'FLOATING-IP', 'ACTIVE', 'AGE']);
    expect(columns.filter((c) => c.priority).map((c) => c.name.toUpperCase())).toEqual(['NODES', 'MESSAGE']);
    expect(columns.find((c) => c.name === 'Active')?.jsonPath).toBe('.status.activeNode');
  });

  it('is structural: every node has a type and none mixes properties with additionalProperties', () => {
    const untyped: string[] = [];
    const walk = (s: JSONSchemaProps & { additionalProperties?: unknown }, path: string) => {
      if (!s.type) untyped.push(path);
      if (s.properties && s.additionalProperties !== undefined) untyped.push(`${path} (additionalProperties)`);
      for (const [k, v] of Object.entries(s.properties ?? {})) walk(v, `${path}.${k}`);
      if (s.items) walk(s.items, `${path}[]`);
    };
    walk(crd.spec.versions[0]!.schema.openAPIV3Schema, '');
    expect(untyped).toEqual([]);
  });

  it('constrains metadata by name only, with nothing else on the node (kube-apiserver refuses the CRD otherwise)', () => {
    const metadata = crd.spec.versions[0]!.schema.openAPIV3Schema.properties!.metadata!;
    expect(Object.keys(metadata).sort()).toEqual(['properties', 'type']);
    expect(Object.keys(metadata.properties!).filter((k) => k !== 'name' && k !== 'generateName')).toEqual([]);
  });

  it('keys the lists that users merge by name, as a list-map', () => {
    const spec = crd.spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!;
    for (const list of ['frontends', 'backends']) {
      expect(spec.properties![list]!['x-kubernetes-list-type']).toBe('map');
      expect(spec.properties![list]!['x-kubernetes-list-map-keys']).toEqual(['name']);
    }
  });
});
