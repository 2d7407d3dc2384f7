// Table-driven tests of the emulator's pure parts: selectors, structural schema handling,
// patches, server-side apply, printer columns.
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/sandbox/kube/errors.ts';
import { displayPath, flatten, fromFieldsV1, serverSideApply, toFieldsV1 } from '../../src/sandbox/kube/managedfields.ts';
import { applyJsonPatch, mergePatch, stripStrategicDirectives } from '../../src/sandbox/kube/patch.ts';
import { matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from '../../src/sandbox/kube/selectors.ts';
import type { Schema } from '../../src/sandbox/kube/structural.ts';
import { applyDefaults, compileSchema, prune } from '../../src/sandbox/kube/structural.ts';
import { crdTableSpec, humanDuration } from '../../src/sandbox/kube/table.ts';
import type { KubeObject } from '../../src/sandbox/kube/store.ts';

describe('label selectors', () => {
  const labels = { app: 'web', tier: 'edge' };
  it.each([
    ['app=web', true], ['app==web', true], ['app!=web', false], ['app=api', false], ['missing!=x', true],
    ['app in (web, api)', true], ['app notin (web)', false], ['tier', true], ['!tier', false], ['!gone', true],
    ['app=web,tier in (edge)', true], ['app=web,tier=core', false], ['', true],
  ])('%s → %s', (sel, want) => {
    expect(matchesLabels(parseLabelSelector(sel), labels)).toBe(want);
  });
  it('rejects garbage', () => {
    expect(() => parseLabelSelector('a b c')).toThrow(ApiError);
  });
});

describe('field selectors', () => {
  it.each([
    ['metadata.name=x', true], ['metadata.name==x', true], ['metadata.name!=x', false],
    ['metadata.namespace=default,metadata.name=x', true],
    ['type=', true],
  ])('%s → %s', (sel, want) => {
    expect(matchesFields(parseFieldSelector(sel), { 'metadata.name': 'x', 'metadata.namespace': 'default', type: '' })).toBe(want);
  });
});

const schema: Schema = {
  type: 'object',
  properties: {
    apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' },
    spec: {
      type: 'object', required: ['region'],
      properties: {
        region: { type: 'string', pattern: '^[a-z]{3}[0-9]$' },
        count: { type: 'integer', minimum: 2, maximum: 5, default: 2 },
        mode: { type: 'string', enum: ['a', 'b'] },
        extra: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        labels: { type: 'object', additionalProperties: { type: 'string' } },
        nested: { type: 'object', default: {}, properties: { depth: { type: 'integer', default: 3 } } },
        ip: { type: 'string', format: 'ipv4' },
        size: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] },
        ratio: { type: 'number', minimum: 0, exclusiveMinimum: true },
        items: {
          type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'],
          items: { type: 'object', properties: { name: { type: 'string' }, port: { type: 'integer', default: 80 } } },
        },
      },
    },
  },
};

describe('structural schema', () => {
  it('prunes unknown fields but keeps maps, preserved subtrees and ObjectMeta', () => {
    const obj = {
      apiVersion: 'x/v1', kind: 'K', metadata: { name: 'n', bogus: 1 },
      spec: { region: 'nyc3', foo: 1, extra: { any: { thing: 1 } }, labels: { a: 'b' }, items: [{ name: 'a', junk: true }] }, top: 1,
    };
    expect(prune(obj, schema).sort()).toEqual(['metadata.bogus', 'spec.foo', 'spec.items[0].junk', 'top']);
    expect(obj).toEqual({
      apiVersion: 'x/v1', kind: 'K', metadata: { name: 'n' },
      spec: { region: 'nyc3', extra: { any: { thing: 1 } }, labels: { a: 'b' }, items: [{ name: 'a' }] },
    });
  });
  it('defaults only where the parent exists, recursing into fresh defaults and list items', () => {
    const obj = { spec: { region: 'nyc3', items: [{ name: 'a' }, { name: 'b', port: 81 }], count: null } };
    applyDefaults(obj, schema);
    expect(obj).toEqual({
      spec: { region: 'nyc3', count: 2, nested: { depth: 3 }, items: [{ name: 'a', port: 80 }, { name: 'b', port: 81 }] },
    });
    const none = {};
    applyDefaults(none, schema);
    expect(none).toEqual({});
  });
  const { validate } = compileSchema(schema);
  it('accepts what the schema allows', () => {
    expect(validate({ spec: { region: 'nyc3', size: '10Gi', ratio: 0.5, count: 3 } })).toEqual([]);
    expect(validate({ spec: { region: 'nyc3', size: 10 } })).toEqual([]);
  });
  it.each([
    [{ spec: {} }, 'spec.region: Required value'],
    [{ spec: { region: 'NYC' } }, 'spec.region: Invalid value: "NYC": spec.region in body should match \'^[a-z]{3}[0-9]$\''],
    [{ spec: { region: 'nyc3', count: 9 } }, 'spec.count: Invalid value: 9: spec.count in body should be less than or equal to 5'],
    [{ spec: { region: 'nyc3', count: 'two' } },
      'spec.count: Invalid value: "string": spec.count in body must be of type integer: "string"'],
    [{ spec: { region: 'nyc3', mode: 'c' } }, 'spec.mode: Unsupported value: "c": supported values: "a", "b"'],
    [{ spec: { region: 'nyc3', ip: '1.2.3' } }, 'spec.ip: Invalid value: "1.2.3": spec.ip in body must be of type ipv4: "1.2.3"'],
    [{ spec: { region: 'nyc3', items: [{ name: 'a' }, { name: 'a' }] } },
      'spec.items[1]: Duplicate value: map[string]interface {}{"name":"a"}'],
    [{ spec: { region: 'nyc3', size: true } },
      'spec.size: Invalid value: "boolean": spec.size in body must be of type integer,string: "boolean"'],
    [{ spec: { region: 'nyc3', ratio: 0 } }, 'spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0'],
  ])('%j → %s', (obj, want) => {
    expect(validate(obj).map((c) => `${c.field}: ${c.message}`)).toEqual([want]);
  });
});

describe('patches', () => {
  it('merge patch follows RFC 7396', () => {
    expect(mergePatch({ a: 1, b: { c: 2, d: 3 }, l: [1] }, { a: null, b: { c: 5 }, l: [2], n: { x: null } }))
      .toEqual({ b: { c: 5, d: 3 }, l: [2], n: {} });
  });
  it('JSON patch supports test and reports bad paths as 422', () => {
    expect(applyJsonPatch({ a: 1 }, [{ op: 'test', path: '/a', value: 1 }, { op: 'add', path: '/b', value: 2 }])).toEqual({ a: 1, b: 2 });
    expect(() => applyJsonPatch({ a: 1 }, [{ op: 'test', path: '/a', value: 2 }])).toThrow(expect.objectContaining({ code: 422 }));
    expect(() => applyJsonPatch({ a: 1 }, [{ op: 'remove', path: '/x/y' }])).toThrow(expect.objectContaining({ code: 422 }));
  });
  it('strategic merge directives are stripped for built-ins', () => {
    expect(stripStrategicDirectives({
      $setElementOrder: 1, metadata: { $retainKeys: ['a'], labels: { a: 'b' } }, l: [{ $patch: 'delete', name: 'x' }, 1],
    })).toEqual({ metadata: { labels: { a: 'b' } }, l: [1] });
  });
});

describe('server-side apply', () => {
  const ctx = (manager: string) => ({ manager, apiVersion: 'x/v1', now: '2026-01-01T00:00:00Z', statusSubresource: true });
  const applied = (items: Array<{ name: string; port?: number }>, region = 'nyc3') =>
    ({ apiVersion: 'x/v1', kind: 'K', metadata: { name: 'n' }, spec: { region, items } });

  it('round-trips FieldsV1 and names list-map elements', () => {
    const paths = flatten(applied([{ name: 'a', port: 1 }]), schema, 'nostatus');
    const f = toFieldsV1(paths.keys());
    expect(f).toEqual({ 'f:spec': { 'f:region': {}, 'f:items': { 'k:{"name":"a"}': { '.': {}, 'f:name': {}, 'f:port': {} } } } });
    expect(fromFieldsV1(f)).toEqual(new Set(paths.keys()));
    expect([...paths.keys()].map(displayPath)).toContain('.spec.items[name="a"].port');
  });
  it('merges map lists, removes what the applier dropped, and detects conflicts', () => {
    const first = serverSideApply(undefined, applied([{ name: 'a', port: 1 }, { name: 'b' }]), schema, ctx('alice'), false, 'x/v1');
    const live = { ...first.object, metadata: { name: 'n', managedFields: first.managedFields } };
    // bob adds an item: merged by key, alice's items stay.
    const bob = serverSideApply(live, { apiVersion: 'x/v1', kind: 'K', metadata: { name: 'n' }, spec: { items: [{ name: 'c' }] } },
      schema, ctx('bob'), false, 'x/v1');
    expect((bob.object.spec as { items: unknown[] }).items).toEqual([{ name: 'a', port: 1 }, { name: 'b' }, { name: 'c' }]);
    const live2 = { ...bob.object, metadata: { name: 'n', managedFields: bob.managedFields } };
    // alice drops b: removed; c belongs to bob and stays.
    const again = serverSideApply(live2, applied([{ name: 'a', port: 1 }]), schema, ctx('alice'), false, 'x/v1');
    expect((again.object.spec as { items: unknown[] }).items).toEqual([{ name: 'a', port: 1 }, { name: 'c' }]);
    // bob changing alice's region conflicts, unless forced.
    const steal = { apiVersion: 'x/v1', kind: 'K', metadata: { name: 'n' }, spec: { region: 'ams3' } };
    expect(() => serverSideApply(live2, steal, schema, ctx('bob'), false, 'x/v1'))
      .toThrow('Apply failed with 1 conflict: conflict with "alice": .spec.region');
    const forced = serverSideApply(live2, steal, schema, ctx('bob'), true, 'x/v1');
    expect((forced.object.spec as { region: string }).region).toBe('ams3');
    expect(forced.managedFields.find((m) => m.manager === 'alice')!.fieldsV1).not.toHaveProperty(['f:spec', 'f:region']);
  });
});

describe('tables', () => {
  it.each([
    [0, '0s'], [119_000, '119s'], [150_000, '2m30s'], [600_000, '10m'], [3 * 3600_000 + 5 * 60_000, '3h5m'], [30 * 3600_000, '30h'],
    [50 * 3600_000, '2d2h'], [40 * 86400_000, '40d'], [800 * 86400_000, '2y70d'],
  ])('%d ms → %s', (ms, want) => {
    expect(humanDuration(ms)).toBe(want);
  });
  it('resolves printer columns by JSONPath with typed cells', () => {
    const spec = crdTableSpec([
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: 'Count', type: 'integer', jsonPath: '.spec.count' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
      { name: 'Missing', type: 'string', jsonPath: '.status.nope' },
    ]);
    const obj = {
      metadata: { name: 'x', creationTimestamp: '2026-01-01T00:00:00Z' }, spec: { count: 3 },
      status: { conditions: [{ type: 'Other', status: 'False' }, { type: 'Ready', status: 'True' }] },
    } as unknown as KubeObject;
    expect(spec.cells(obj, Date.parse('2026-01-01T00:05:00Z'))).toEqual(['x', 'True', 3, '5m', null]);
    expect(spec.columns.map((c) => c.name)).toEqual(['Name', 'Ready', 'Count', 'Age', 'Missing']);
  });
});
