// Structural-schema admission for custom resources, in the real server's order: prune unknown
// fields, apply defaults, validate. ajv validates the openAPIV3Schema; pruning, defaulting and the
// x-kubernetes-* extensions are hand-written because ajv's removeAdditional/useDefaults do not
// follow Kubernetes' rules (maps from additionalProperties, defaults only inside existing parents).
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { CompiledRules, type RuleSchema, type RuleViolation } from '../../api/cel.ts';
import type { StatusCause } from './errors.ts';
import { causes, cause } from './errors.ts';

// ajv-formats is CommonJS with a default export; under nodenext it arrives wrapped.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (a: Ajv) => Ajv;

export interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  default?: unknown;
  nullable?: boolean;
  enum?: unknown[];
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  [k: string]: unknown;
}

const OBJECT_META_KEYS = new Set([
  'name', 'generateName', 'namespace', 'selfLink', 'uid', 'resourceVersion', 'generation', 'creationTimestamp',
  'deletionTimestamp', 'deletionGracePeriodSeconds', 'labels', 'annotations', 'ownerReferences', 'finalizers',
  'managedFields',
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function childPath(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/**
 * Removes fields the schema does not declare; returns the pruned paths ("spec.foo") for
 * fieldValidation Strict/Warn. Mutates `value`.
 */
export function prune(value: unknown, schema: Schema, path = '', isRoot = true): string[] {
  const pruned: string[] = [];
  walkPrune(value, schema, path, isRoot, pruned);
  return pruned;
}

function pruneMeta(meta: unknown, path: string, pruned: string[]): void {
  if (!isObject(meta)) return;
  for (const k of Object.keys(meta)) {
    if (!OBJECT_META_KEYS.has(k)) {
      delete meta[k];
      pruned.push(childPath(path, k));
    }
  }
}

function walkPrune(value: unknown, schema: Schema | undefined, path: string, root: boolean, pruned: string[]): void {
  if (!schema) return;
  if (isObject(value)) {
    const embedded = root || schema['x-kubernetes-embedded-resource'] === true;
    if (embedded) pruneMeta(value.metadata, childPath(path, 'metadata'), pruned);
    if (schema['x-kubernetes-preserve-unknown-fields'] === true && !schema.properties && !isObject(schema.additionalProperties)) return;
    for (const k of Object.keys(value)) {
      if (embedded && (k === 'apiVersion' || k === 'kind' || k === 'metadata')) continue;
      const propSchema = schema.properties?.[k] ??
        (isObject(schema.additionalProperties) ? schema.additionalProperties as Schema : undefined);
      if (propSchema) walkPrune(value[k], propSchema, childPath(path, k), false, pruned);
      else if (schema['x-kubernetes-preserve-unknown-fields'] !== true && schema.additionalProperties !== true) {
        delete value[k];
        pruned.push(childPath(path, k));
      }
    }
  } else if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) => walkPrune(item, schema.items, `${path}[${i}]`, false, pruned));
  }
}

/** Applies `default`s where the parent exists, as apiextensions' structural defaulting does. */
export function applyDefaults(value: unknown, schema: Schema | undefined): void {
  if (!schema) return;
  if (isObject(value)) {
    for (const [k, prop] of Object.entries(schema.properties ?? {})) {
      const cur = value[k];
      if (cur === null && prop.nullable !== true) delete value[k];
      if (!(k in value) && prop.default !== undefined) value[k] = structuredClone(prop.default);
    }
    for (const [k, v] of Object.entries(value)) {
      const prop = schema.properties?.[k] ?? (isObject(schema.additionalProperties) ? schema.additionalProperties as Schema : undefined);
      applyDefaults(v, prop);
    }
  } else if (Array.isArray(value)) {
    for (const item of value) applyDefaults(item, schema.items);
  }
}

function ajvFieldPath(instancePath: string, root: unknown): string {
  if (!instancePath) return '';
  let out = '';
  let cur: unknown = root;
  for (const raw of instancePath.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      out += `[${seg}]`;
      cur = cur[Number(seg)];
    } else {
      out = childPath(out, seg);
      cur = isObject(cur) ? cur[seg] : undefined;
    }
  }
  return out;
}

function jsonTypeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function errorToCause(e: ErrorObject, root: unknown): StatusCause | undefined {
  const field = ajvFieldPath(e.instancePath, root);
  const p = e.params as Record<string, unknown>;
  const v = e.data;
  switch (e.keyword) {
    case 'required': return causes.required(childPath(field, String(p.missingProperty)));
    case 'type': {
      const expected = Array.isArray(p.type) ? p.type.join(',') : String(p.type);
      return causes.typeInvalid(field, jsonTypeName(v), `${field} in body must be of type ${expected}: ${JSON.stringify(jsonTypeName(v))}`);
    }
    case 'enum': return causes.notSupported(field, v, p.allowedValues as unknown[]);
    case 'minimum': return causes.invalid(field, v, `${field} in body should be greater than or equal to ${String(p.limit)}`);
    case 'maximum': return causes.invalid(field, v, `${field} in body should be less than or equal to ${String(p.limit)}`);
    case 'exclusiveMinimum': return causes.invalid(field, v, `${field} in body should be greater than ${String(p.limit)}`);
    case 'exclusiveMaximum': return causes.invalid(field, v, `${field} in body should be less than ${String(p.limit)}`);
    case 'multipleOf': return causes.invalid(field, v, `${field} in body should be a multiple of ${String(p.multipleOf)}`);
    case 'minLength': return causes.invalid(field, v, `${field} in body should be at least ${String(p.limit)} chars long`);
    case 'maxLength': return cause('FieldValueTooLong', field, `Too long: may not be more than ${String(p.limit)} bytes`);
    case 'pattern': return causes.invalid(field, v, `${field} in body should match '${String(p.pattern)}'`);
    case 'minItems':
      return causes.invalid(field, Array.isArray(v) ? v.length : v, `${field} in body should have at least ${String(p.limit)} items`);
    case 'maxItems':
      return cause('FieldValueTooMany', field, `Too many: ${Array.isArray(v) ? v.length : 0}: must have at most ${String(p.limit)} items`);
    case 'minProperties': return causes.invalid(field, v, `${field} in body should have at least ${String(p.limit)} properties`);
    case 'maxProperties': return cause('FieldValueTooMany', field, `Too many: must have at most ${String(p.limit)} items`);
    case 'format': return causes.invalid(field, v, `${field} in body must be of type ${String(p.format)}: ${JSON.stringify(v)}`);
    case 'uniqueItems': return causes.duplicate(`${field}[${String(p.j)}]`, Array.isArray(v) ? v[Number(p.j)] : v);
    case 'anyOf': case 'oneOf': case 'allOf': case 'not': case 'if': return undefined;
    default: return causes.invalid(field, v, e.message ?? 'invalid');
  }
}

/** Uniqueness rules of x-kubernetes-list-type set and map, which JSON Schema cannot express. */
function listTypeCauses(value: unknown, schema: Schema | undefined, path: string, out: StatusCause[]): void {
  if (!schema) return;
  if (Array.isArray(value)) {
    const lt = schema['x-kubernetes-list-type'];
    if (lt === 'set' || lt === 'map') {
      const seen = new Set<string>();
      value.forEach((item, i) => {
        const keyObj = lt === 'map' && isObject(item)
          ? Object.fromEntries((schema['x-kubernetes-list-map-keys'] ?? []).map((k) => [k, item[k]]))
          : item;
        const key = JSON.stringify(keyObj);
        if (seen.has(key)) out.push(causes.duplicate(`${path}[${i}]`, keyObj));
        seen.add(key);
      });
    }
    value.forEach((item, i) => listTypeCauses(item, schema.items, `${path}[${i}]`, out));
  } else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      const prop = schema.properties?.[k] ?? (isObject(schema.additionalProperties) ? schema.additionalProperties as Schema : undefined);
      listTypeCauses(v, prop, childPath(path, k), out);
    }
  }
}

export interface CompiledSchema {
  schema: Schema;
  validate: (obj: unknown) => StatusCause[];
  /**
   * The x-kubernetes-validations (CEL) rules, after the schema's own checks, as the API server
   * runs them: skipped when those found an error that blocks CEL; `old` on an update, for
   * transition rules and ratcheting (a ratcheted failure is a warning).
   */
  validateRules: (obj: unknown, old: unknown, schemaCauses: StatusCause[]) => { causes: StatusCause[]; warnings: string[] };
}

// Schema errors after which the API server does not run CEL rules (apiextensions' hasBlockingErr).
const BLOCKING_REASONS = new Set([
  'FieldValueNotSupported', 'FieldValueRequired', 'FieldValueTooLong', 'FieldValueTooMany', 'FieldValueTypeInvalid',
]);
const NOT_CHECKED = cause('FieldValueInvalid', '<nil>', 'Invalid value: "null": some validation rules were not checked because'
  + ' the object was invalid; correct the existing errors to complete validation');

/** A failed CEL rule as the API server reports it (fieldErrorForReason). */
function ruleCause(v: RuleViolation): StatusCause {
  switch (v.reason) {
    case 'FieldValueForbidden': return causes.forbidden(v.field, v.detail);
    case 'FieldValueRequired': return cause('FieldValueRequired', v.field, `Required value: ${v.detail}`);
    case 'FieldValueDuplicate': return causes.duplicate(v.field, v.type);
    default: return causes.invalid(v.field, v.type, v.detail);
  }
}

let sharedAjv: Ajv | undefined;
function ajv(): Ajv {
  if (!sharedAjv) {
    sharedAjv = new Ajv({ strict: false, allErrors: true, verbose: true, logger: false, validateSchema: false });
    addFormats(sharedAjv);
  }
  return sharedAjv;
}

/**
 * OpenAPI 3.0 → what ajv validates: boolean exclusiveMinimum/Maximum become numeric bounds, and
 * int-or-string becomes a union type, so errors read "must be of type integer,string" as in k8s.
 */
export function toAjvSchema(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(toAjvSchema);
  if (!isObject(schema)) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) {
    if (k === 'default' || k === 'enum' || k === 'example') out[k] = v;
    else if (k === 'properties' && isObject(v)) out[k] = Object.fromEntries(Object.entries(v).map(([pk, pv]) => [pk, toAjvSchema(pv)]));
    else out[k] = toAjvSchema(v);
  }
  for (const [flag, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (typeof out[flag] === 'boolean') {
      if (out[flag] === true && typeof out[bound] === 'number') {
        out[flag] = out[bound];
        delete out[bound];
      } else delete out[flag];
    }
  }
  if (out['x-kubernetes-int-or-string'] === true) {
    delete out.anyOf;
    delete out.allOf;
    out.type = ['integer', 'string'];
  }
  return out;
}

export function compileSchema(schema: Schema): CompiledSchema {
  const forAjv = toAjvSchema(schema) as Schema;
  let fn: ValidateFunction;
  try {
    fn = ajv().compile(forAjv);
  } catch (err) {
    throw new Error(`openAPIV3Schema does not compile: ${(err as Error).message}`, { cause: err });
  }
  const rules = new CompiledRules(schema as RuleSchema); // throws RuleCompileError, naming the rule
  return {
    schema,
    validateRules(obj, old, schemaCauses) {
      if (rules.empty) return { causes: [], warnings: [] };
      if (schemaCauses.some((c) => BLOCKING_REASONS.has(c.reason))) return { causes: [NOT_CHECKED], warnings: [] };
      const found = rules.evaluate(obj, old).map((v) => ({ cause: ruleCause(v), ratcheted: v.ratcheted }));
      return {
        causes: found.filter((f) => !f.ratcheted).map((f) => f.cause),
        warnings: found.filter((f) => f.ratcheted).map((f) => `${f.cause.field}: ${f.cause.message}`),
      };
    },
    validate(obj: unknown): StatusCause[] {
      const out: StatusCause[] = [];
      if (!fn(obj)) {
        const seen = new Set<string>();
        for (const e of fn.errors ?? []) {
          const c = errorToCause(e, obj);
          if (!c) continue;
          const key = `${c.field}|${c.message}`;
          if (!seen.has(key)) out.push(c);
          seen.add(key);
        }
      }
      listTypeCauses(obj, schema, '', out);
      return out;
    },
  };
}
