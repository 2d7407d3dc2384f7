// CEL validation rules (x-kubernetes-validations), evaluated as kube-apiserver's apiextensions
// does (k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel): each rule runs with `self`
// bound to the value at its schema node, wherever that value exists; a transition rule (one that
// names `oldSelf`) runs only on an update whose old object has a value at the same place
// (properties correlate by name, items of a list-type=map list by their keys, nothing else);
// a failing rule's error names the node's path plus the rule's fieldPath, and its message comes
// from messageExpression, message, or "failed rule: <rule>". On an update, a rule without
// oldSelf whose value did not change is only a warning (CRD validation ratcheting, on by default
// since Kubernetes 1.30).
//
// One evaluator for the Kubernetes emulator (src/sandbox/kube) and `halb validate`, on the real
// CEL implementation @bufbuild/cel, with the strings extension (join, split, ...) that the API
// server's environment has too. Not modelled: the API server's cost estimate and budget, and its
// static type check of rules; the real kube-apiserver enforces both (test/upstream).
import { isDeepStrictEqual } from 'node:util';
import { celEnv, isCelError, parse, plan, type CelResult } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';

export type RuleReason = 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';

/** One entry of x-kubernetes-validations, as apiextensions.k8s.io/v1 spells it. */
export interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
  reason?: RuleReason;
  optionalOldSelf?: boolean;
}

/** The parts of a structural schema the evaluator reads. */
export interface RuleSchema {
  type?: string;
  properties?: Record<string, RuleSchema>;
  items?: RuleSchema;
  additionalProperties?: RuleSchema | boolean;
  'x-kubernetes-validations'?: ValidationRule[];
  'x-kubernetes-list-type'?: string;
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: string;
}

export interface RuleViolation {
  /** The field the error names, as the API server writes it: spec.frontends[0].tls. */
  field: string;
  reason: RuleReason;
  /** The schema type of the rule's node, which the API server prints as the value: "object". */
  type: string;
  detail: string;
  /** An update left this value as it was: the API server only warns (ratcheting). */
  ratcheted: boolean;
}

type Program = (bindings: Record<string, unknown>) => CelResult;

interface CompiledRule {
  source: ValidationRule;
  program: Program;
  message?: Program;
  usesOldSelf: boolean;
}

const env = celEnv({ funcs: strings });

export class RuleCompileError extends Error {
  /** Schema path of the expression: openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule. */
  readonly path: string;
  readonly rule: ValidationRule;
  /** What is wrong, without the path: "compilation failed: ...". */
  readonly detail: string;
  constructor(path: string, rule: ValidationRule, detail: string) {
    super(`${path}: ${detail}`);
    this.path = path;
    this.rule = rule;
    this.detail = detail;
  }
}

/** Whether a parsed expression names the identifier `oldSelf` anywhere. */
function namesOldSelf(node: unknown): boolean {
  if (node === null || typeof node !== 'object') return false;
  const n = node as { case?: unknown; value?: { name?: unknown } };
  if (n.case === 'identExpr' && n.value?.name === 'oldSelf') return true;
  return Object.values(node).some(namesOldSelf);
}

function compileExpression(rule: ValidationRule, expression: string, path: string): { program: Program; usesOldSelf: boolean } {
  try {
    const parsed = parse(expression);
    return { program: plan(env, parsed) as Program, usesOldSelf: namesOldSelf(parsed.expr) };
  } catch (err) {
    throw new RuleCompileError(path, rule, `compilation failed: ${(err as Error).message}`);
  }
}

function compileRule(rule: ValidationRule, path: string): CompiledRule {
  const { program, usesOldSelf } = compileExpression(rule, rule.rule, `${path}.rule`);
  const compiled: CompiledRule = { source: rule, program, usesOldSelf };
  if (rule.messageExpression) compiled.message = compileExpression(rule, rule.messageExpression, `${path}.messageExpression`).program;
  return compiled;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** JSON → CEL value, by the schema as UnstructuredToVal does: integer → int, number → double. */
export function toCelValue(value: unknown, schema: RuleSchema | undefined): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') {
    const asInt = schema?.type === 'integer' || (schema?.type !== 'number' && Number.isInteger(value));
    return asInt && Number.isInteger(value) ? BigInt(value) : value;
  }
  if (Array.isArray(value)) return value.map((item) => toCelValue(item, schema?.items));
  if (isMapping(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toCelValue(v, schema?.properties?.[k] ?? (schema && additional(schema)));
    return out;
  }
  return value;
}

/** Appends a rule's fieldPath (".tls", "['a.b']") to a field path. */
function withFieldPath(path: string, fieldPath: string | undefined): string {
  if (!fieldPath) return path;
  const parts = [...fieldPath.matchAll(/\.([^.[\]]+)|\['((?:[^'\\]|\\.)*)'\]/g)].map((m) => m[1] ?? m[2]!);
  return parts.reduce((p, part) => (p ? `${p}.${part}` : part), path);
}

function childPath(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** The schema of a map's values, when the schema is a map (additionalProperties). */
function additional(schema: RuleSchema): RuleSchema | undefined {
  return isMapping(schema.additionalProperties) ? schema.additionalProperties as RuleSchema : undefined;
}

interface Correlation {
  /** The old value at this place, when it correlates; undefined when there is none. */
  old: unknown;
  /** Whether errors here are ratcheted: this value, or its nearest correlatable ancestor, did not change. */
  unchanged: boolean;
}

/** An uncorrelatable child: no old value, and the ratcheting verdict of its nearest correlatable ancestor. */
function inherit(parent: Correlation): Correlation {
  return { old: undefined, unchanged: parent.unchanged };
}

/** Compiled rules of a whole schema, evaluated over objects (and their old versions on update). */
export class CompiledRules {
  private readonly rules = new Map<RuleSchema, CompiledRule[]>();
  /** Schema nodes with a rule at or below them: the walk skips the rest of an object. */
  private readonly withRules = new Set<RuleSchema>();
  private readonly root: RuleSchema;

  /** Compiles every rule under `schema`; throws RuleCompileError naming the first rule that does not compile. */
  constructor(schema: RuleSchema, schemaPath = 'openAPIV3Schema') {
    this.root = schema;
    this.compile(schema, schemaPath);
  }

  get empty(): boolean {
    return this.rules.size === 0;
  }

  /** Compiles the rules at and below `schema`; says whether there were any. */
  private compile(schema: RuleSchema, path: string): boolean {
    const rules = schema['x-kubernetes-validations'] ?? [];
    if (rules.length) this.rules.set(schema, rules.map((r, i) => compileRule(r, `${path}.x-kubernetes-validations[${i}]`)));
    const extra = additional(schema);
    const below = [
      ...Object.entries(schema.properties ?? {}).map(([k, v]) => this.compile(v, `${path}.properties[${k}]`)),
      schema.items ? this.compile(schema.items, `${path}.items`) : false,
      extra ? this.compile(extra, `${path}.additionalProperties`) : false,
    ];
    const any = rules.length > 0 || below.includes(true);
    if (any) this.withRules.add(schema);
    return any;
  }

  /** Every failing rule over `value`; `old` is the stored object on an update. */
  evaluate(value: unknown, old?: unknown): RuleViolation[] {
    const out: RuleViolation[] = [];
    const correlation = old === undefined ? { old: undefined, unchanged: false } : { old, unchanged: isDeepStrictEqual(old, value) };
    this.walk(this.root, value, correlation, '', out);
    return out;
  }

  private walk(schema: RuleSchema, value: unknown, correlation: Correlation, path: string, out: RuleViolation[]): void {
    if (value === null || value === undefined || !this.withRules.has(schema)) return;
    for (const rule of this.rules.get(schema) ?? []) {
      const violation = this.run(rule, schema, value, correlation, path);
      if (violation) out.push(violation);
    }
    if (Array.isArray(value)) {
      const keys = schema['x-kubernetes-list-type'] === 'map' ? schema['x-kubernetes-list-map-keys'] ?? [] : undefined;
      const oldItems = Array.isArray(correlation.old) ? correlation.old : [];
      value.forEach((item, i) => {
        // Only list-type=map items correlate with old ones, by their keys; others inherit the
        // ratcheting verdict of the list.
        const old = keys && isMapping(item)
          ? oldItems.find((o) => isMapping(o) && keys.every((k) => isDeepStrictEqual(o[k], item[k])))
          : undefined;
        const next = keys ? { old, unchanged: old !== undefined && isDeepStrictEqual(old, item) } : inherit(correlation);
        if (schema.items) this.walk(schema.items, item, next, `${path}[${i}]`, out);
      });
    } else if (isMapping(value)) {
      const correlatable = schema['x-kubernetes-map-type'] !== 'atomic' && isMapping(correlation.old);
      for (const [k, v] of Object.entries(value)) {
        const sub = schema.properties?.[k] ?? additional(schema);
        if (!sub) continue;
        const old = correlatable ? (correlation.old as Record<string, unknown>)[k] : undefined;
        const next = correlatable ? { old, unchanged: old !== undefined && isDeepStrictEqual(old, v) } : inherit(correlation);
        this.walk(sub, v, next, childPath(path, k), out);
      }
    }
  }

  private run(rule: CompiledRule, schema: RuleSchema, value: unknown, correlation: Correlation, path: string): RuleViolation | undefined {
    // A transition rule needs an old value to compare with (optionalOldSelf rules run without).
    if (rule.usesOldSelf && correlation.old === undefined && !rule.source.optionalOldSelf) return undefined;
    const bindings: Record<string, unknown> = { self: toCelValue(value, schema) };
    if (rule.usesOldSelf) bindings.oldSelf = toCelValue(correlation.old, schema);
    const type = schema.type ?? 'object';
    const field = withFieldPath(path, rule.source.fieldPath);
    const result = rule.program(bindings);
    if (result === true) return undefined;
    const ratcheted = !rule.usesOldSelf && correlation.unchanged;
    if (isCelError(result)) {
      const detail = `${result.message} evaluating rule: ${ruleText(rule.source)}`;
      return { field: path, reason: 'FieldValueInvalid', type, detail, ratcheted };
    }
    return { field, reason: rule.source.reason ?? 'FieldValueInvalid', type, detail: this.message(rule, bindings), ratcheted };
  }

  private message(rule: CompiledRule, bindings: Record<string, unknown>): string {
    if (rule.message) {
      const text = rule.message(bindings);
      if (typeof text === 'string' && text.trim() && !/\n/.test(text.trim())) return text.trim();
    }
    return rule.source.message?.trim() || `failed rule: ${ruleText(rule.source)}`;
  }
}

function ruleText(rule: ValidationRule): string {
  return rule.message?.trim() || rule.rule.trim();
}
