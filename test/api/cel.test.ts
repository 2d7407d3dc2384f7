// The CEL evaluator (src/api/cel.ts) the emulator and `halb validate` share: the API server's
// semantics for self/oldSelf, correlation, ratcheting and messages, table-driven; and the CRD's
// own rules, which must mean the same on a stored object (list items as written) as on one
// withDefaults() filled in.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { CompiledRules, RuleCompileError, type RuleSchema } from '../../src/api/cel.ts';
import { withDefaults } from '../../src/api/defaults.ts';
import { rootSchema } from '../../src/api/schema.ts';
import type { HALoadBalancerSpecInput } from '../../src/api/types.ts';
import { validateSchema } from '../../src/api/validate.ts';

const schema: RuleSchema = {
  type: 'object',
  properties: {
    name: { type: 'string', 'x-kubernetes-validations': [{ rule: 'self == oldSelf', message: 'name is immutable' }] },
    size: { type: 'integer', 'x-kubernetes-validations': [{ rule: 'self <= 10' }] },
    ratio: {
      type: 'number',
      'x-kubernetes-validations': [{ rule: 'self == double(int(self))', messageExpression: "'ratio ' + string(self) + ' is not whole'" }],
    },
    keyed: {
      type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['id'],
      items: {
        type: 'object', properties: { id: { type: 'string' }, v: { type: 'integer' } },
        'x-kubernetes-validations': [{ rule: 'self.v >= oldSelf.v', message: 'v may only grow' }],
      },
    },
    atomic: {
      type: 'array',
      items: {
        type: 'object', properties: { v: { type: 'integer' } },
        'x-kubernetes-validations': [{ rule: 'self.v >= oldSelf.v', message: 'never runs' }],
      },
    },
    nested: {
      type: 'object', properties: { a: { type: 'string' }, b: { type: 'string' } },
      'x-kubernetes-validations': [
        { rule: 'self.a != self.b', fieldPath: '.b', reason: 'FieldValueForbidden', message: 'b must differ from a' },
        { rule: 'self.missing == 1' },
      ],
    },
  },
};
const rules = new CompiledRules(schema);
const fields = (value: unknown, old?: unknown) =>
  rules.evaluate(value, old).map((v) => `${v.field}|${v.reason}|${v.detail}|${v.ratcheted}`);

describe('the CEL evaluator', () => {
  it('binds self at each node and types integers and numbers as the API server does', () => {
    expect(fields({ name: 'a', size: 10, ratio: 2 })).toEqual([]);
    expect(fields({ size: 11, ratio: 1.5 })).toEqual([
      'size|FieldValueInvalid|failed rule: self <= 10|false',
      'ratio|FieldValueInvalid|ratio 1.5 is not whole|false',
    ]);
  });

  it('runs a transition rule only on an update with an old value at the same place', () => {
    expect(fields({ name: 'b' })).toEqual([]);
    expect(fields({ name: 'b' }, { name: 'a' })).toEqual(['name|FieldValueInvalid|name is immutable|false']);
    expect(fields({ name: 'b' }, { size: 1 })).toEqual([]); // no old name: nothing to compare
  });

  it('correlates list-type=map items by key, and no other list items', () => {
    const old = { keyed: [{ id: 'x', v: 5 }], atomic: [{ v: 5 }] };
    expect(fields({ keyed: [{ id: 'y', v: 1 }, { id: 'x', v: 4 }], atomic: [{ v: 1 }] }, old))
      .toEqual(['keyed[1]|FieldValueInvalid|v may only grow|false']);
  });

  it('appends fieldPath, honours reason, and reports a runtime error on the node', () => {
    expect(fields({ nested: { a: 'same', b: 'same' } })).toEqual([
      'nested.b|FieldValueForbidden|b must differ from a|false',
      'nested|FieldValueInvalid|field not found: missing evaluating rule: self.missing == 1|false',
    ]);
  });

  it('ratchets: a rule without oldSelf failing on a value the update left unchanged only warns', () => {
    expect(fields({ size: 11, name: 'a' }, { size: 11, name: 'a' })).toEqual(['size|FieldValueInvalid|failed rule: self <= 10|true']);
    expect(fields({ size: 12 }, { size: 11 })).toEqual(['size|FieldValueInvalid|failed rule: self <= 10|false']);
  });

  it('refuses a rule that does not compile, naming it', () => {
    const broken: RuleSchema = { type: 'object', properties: { a: { type: 'string', 'x-kubernetes-validations': [{ rule: 'self ==' }] } } };
    expect(() => new CompiledRules(broken)).toThrow(RuleCompileError);
    expect(() => new CompiledRules(broken))
      .toThrow(/openAPIV3Schema\.properties\[a\]\.x-kubernetes-validations\[0\]\.rule: compilation failed/);
  });
});

// Every manifest the project carries that passes the schema: examples and invalid fixtures.
function manifests(): { name: string; value: { spec: HALoadBalancerSpecInput } }[] {
  const dirs = [join(import.meta.dirname, '../../examples'), join(import.meta.dirname, '../fixtures/invalid')];
  return dirs.flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'index.yaml').flatMap((f) => {
    let docs: unknown[];
    try {
      docs = parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as unknown);
    } catch {
      return [];
    }
    return docs.filter((d) => (d as { kind?: string } | null)?.kind === 'HALoadBalancer' && !validateSchema(d).problems.length)
      .map((d) => ({ name: f, value: d as { spec: HALoadBalancerSpecInput } }));
  }));
}

describe("the CRD's rules", () => {
  const crdRules = new CompiledRules(rootSchema);
  const cases = manifests();

  it('are checked on at least the examples and the CEL fixtures', () => {
    expect(cases.map((c) => c.name)).toEqual(expect.arrayContaining([
      'basic.yaml', 'seed-tutorial.yaml', 'duplicate-ports.yaml', 'tls-port-clash.yaml', 'default-backend-missing.yaml',
      'route-missing-backend.yaml', 'tls-on-tcp.yaml', 'routes-on-tcp.yaml', 'balance-param-missing.yaml',
      'balance-param-unexpected.yaml', 'auth-with-subsecond-advert.yaml',
    ]));
  });

  it.each(cases.map((c) => [c.name, c.value] as const))('%s: the same verdict as written and with defaults filled in', (_name, value) => {
    const defaulted = { ...value, spec: withDefaults(value.spec) };
    expect(crdRules.evaluate(defaulted)).toEqual(crdRules.evaluate(value));
  });
});
