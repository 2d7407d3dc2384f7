// CustomResourceDefinitions: validation of the CRD itself, the status the apiextensions
// controllers would write (NamesAccepted, Established), and the resource definitions it serves.
import { RuleCompileError, type ValidationRule } from '../../api/cel.ts';
import type { StatusCause } from './errors.ts';
import { cause, causes } from './errors.ts';
import type { ResourceDef } from './resources.ts';
import { compareVersions } from './registry.ts';
import { ALL_VERBS } from './resources.ts';
import type { KubeObject } from './store.ts';
import type { Schema } from './structural.ts';
import { compileSchema } from './structural.ts';
import type { PrinterColumn } from './table.ts';
import { crdTableSpec, evalJsonPath } from './table.ts';

interface CRDNames { kind: string; listKind?: string; plural: string; singular?: string; shortNames?: string[]; categories?: string[] }
interface CRDVersion {
  name: string;
  served: boolean;
  storage: boolean;
  schema?: { openAPIV3Schema?: Schema };
  subresources?: { status?: object; scale?: object };
  additionalPrinterColumns?: PrinterColumn[];
  selectableFields?: Array<{ jsonPath: string }>;
  deprecated?: boolean;
  deprecationWarning?: string;
}
export interface CRDSpec { group: string; names: CRDNames; scope: 'Namespaced' | 'Cluster'; versions: CRDVersion[] }

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Go's %#v of a ValidationRule, as the API server prints the rule that did not compile. */
function goValidationRule(rule: ValidationRule): string {
  const pointer = (type: string, v: unknown) => (v === undefined ? `(*${type})(nil)` : `(*${type})(${JSON.stringify(v)})`);
  const reason = pointer('apiextensions.FieldValueErrorReason', rule.reason);
  return `apiextensions.ValidationRule{Rule:${JSON.stringify(rule.rule)}, Message:${JSON.stringify(rule.message ?? '')}, `
    + `MessageExpression:${JSON.stringify(rule.messageExpression ?? '')}, Reason:${reason}, `
    + `FieldPath:${JSON.stringify(rule.fieldPath ?? '')}, OptionalOldSelf:${pointer('bool', rule.optionalOldSelf)}}`;
}

function schemaCompileCauses(schema: Schema, base: string, version: number): StatusCause[] {
  try {
    compileSchema(schema);
    return [];
  } catch (err) {
    if (err instanceof RuleCompileError) {
      return [cause('FieldValueInvalid', `${base}.${err.path}`, `Invalid value: ${goValidationRule(err.rule)}: ${err.detail}`)];
    }
    return [causes.invalid(`spec.versions[${version}].schema.openAPIV3Schema`, '', (err as Error).message)];
  }
}

/** kube-apiserver: a CRD schema's metadata may constrain name and generateName, and carry nothing else. */
function metadataCauses(schema: Schema, path: string): StatusCause[] {
  const metadata = schema.properties?.metadata;
  if (!metadata) return [];
  const { type: _type, properties, ...rest } = metadata;
  const others = Object.keys(properties ?? {}).filter((k) => k !== 'name' && k !== 'generateName');
  if (!Object.keys(rest).length && !others.length) return [];
  const detail = 'must not specify anything other than name and generateName, but metadata is implicitly specified';
  return [causes.forbidden(`${path}.properties[metadata]`, detail)];
}

export function validateCRD(crd: KubeObject): StatusCause[] {
  const out: StatusCause[] = [];
  const spec = crd.spec as Partial<CRDSpec> | undefined;
  if (!spec || typeof spec !== 'object') return [causes.required('spec')];
  if (!spec.group) out.push(causes.required('spec.group'));
  const names = spec.names;
  if (!names?.plural) {
    out.push(causes.required('spec.names.plural'));
  } else if (!DNS_LABEL.test(names.plural)) {
    out.push(causes.invalid('spec.names.plural', names.plural,
      'a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \'-\''));
  }
  if (!names?.kind) out.push(causes.required('spec.names.kind'));
  if (names?.plural && spec.group && crd.metadata.name !== `${names.plural}.${spec.group}`) {
    out.push(causes.invalid('metadata.name', crd.metadata.name, 'must be spec.names.plural+"."+spec.group'));
  }
  if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') {
    out.push(causes.notSupported('spec.scope', spec.scope ?? '', ['Cluster', 'Namespaced']));
  }
  if (!Array.isArray(spec.versions) || spec.versions.length === 0) out.push(causes.required('spec.versions'));
  else {
    if (spec.versions.filter((v) => v.storage).length !== 1) {
      out.push(causes.invalid('spec.versions', spec.versions, 'must have exactly one version marked as storage version'));
    }
    spec.versions.forEach((v, i) => {
      if (!v.name) out.push(causes.required(`spec.versions[${i}].name`));
      const s = v.schema?.openAPIV3Schema;
      if (!s) out.push(causes.required(`spec.versions[${i}].schema.openAPIV3Schema`));
      else {
        // One version's schema is reported where the API server keeps it then: spec.validation.
        const base = spec.versions!.length === 1 ? 'spec.validation' : `spec.versions[${i}].schema`;
        const structural = metadataCauses(s, `${base}.openAPIV3Schema`);
        out.push(...structural);
        // Like the API server, rules are compiled only in a structurally valid schema.
        if (!structural.length) out.push(...schemaCompileCauses(s, base, i));
      }
    });
  }
  return out;
}

function condition(type: string, reason: string, message: string, now: string): Record<string, unknown> {
  return { type, status: 'True', lastTransitionTime: now, reason, message };
}

/** The status apiextensions' naming and establishing controllers converge to. */
export function crdStatus(crd: KubeObject, previous: Record<string, unknown> | undefined, now: string): Record<string, unknown> {
  const spec = crd.spec as CRDSpec;
  const prevConds = (previous?.conditions ?? []) as Array<{ type: string; lastTransitionTime?: string }>;
  const keepTime = (c: Record<string, unknown>): Record<string, unknown> => {
    const p = prevConds.find((x) => x.type === c.type);
    return p?.lastTransitionTime ? { ...c, lastTransitionTime: p.lastTransitionTime } : c;
  };
  const names = spec.names;
  return {
    conditions: [
      keepTime(condition('NamesAccepted', 'NoConflicts', 'no conflicts found', now)),
      keepTime(condition('Established', 'InitialNamesAccepted', 'the initial names have been accepted', now)),
    ],
    acceptedNames: {
      plural: names.plural, singular: names.singular ?? names.kind.toLowerCase(), kind: names.kind,
      listKind: names.listKind ?? `${names.kind}List`,
      ...(names.shortNames ? { shortNames: names.shortNames } : {}),
      ...(names.categories ? { categories: names.categories } : {}),
    },
    storedVersions: [...new Set([
      ...((previous?.storedVersions as string[] | undefined) ?? []), ...spec.versions.filter((v) => v.storage).map((v) => v.name),
    ])],
  };
}

/** CRD defaulting the real server does (v1 defaults). */
export function normalizeCRD(crd: KubeObject): void {
  const spec = crd.spec as CRDSpec;
  if (spec.names && !spec.names.singular && spec.names.kind) spec.names.singular = spec.names.kind.toLowerCase();
  if (spec.names && !spec.names.listKind && spec.names.kind) spec.names.listKind = `${spec.names.kind}List`;
  (spec as unknown as Record<string, unknown>).conversion ??= { strategy: 'None' };
}

/** apiextensions' default warning for a deprecated version, pointing at the newest served one. */
export function deprecationWarning(spec: CRDSpec, v: CRDVersion): string | undefined {
  if (!v.deprecated) return undefined;
  if (v.deprecationWarning) return v.deprecationWarning;
  const msg = `${spec.group}/${v.name} ${spec.names.kind} is deprecated`;
  const newer = spec.versions
    .filter((o) => o.served && !o.deprecated && compareVersions(o.name, v.name) < 0)
    .map((o) => o.name)
    .sort(compareVersions);
  return newer.length > 0 ? `${msg}; use ${spec.group}/${newer[0]} ${spec.names.kind}` : msg;
}

export function crdResources(crd: KubeObject): ResourceDef[] {
  const spec = crd.spec as CRDSpec;
  const names = spec.names;
  return spec.versions.filter((v) => v.served).map((v) => {
    const schema = v.schema?.openAPIV3Schema ? compileSchema(v.schema.openAPIV3Schema) : undefined;
    const selectable = (v.selectableFields ?? []).map((f) => f.jsonPath.replace(/^\./, ''));
    const def: ResourceDef = {
      group: spec.group, version: v.name, kind: names.kind, listKind: names.listKind ?? `${names.kind}List`,
      plural: names.plural, singular: names.singular ?? names.kind.toLowerCase(),
      namespaced: spec.scope === 'Namespaced', shortNames: names.shortNames ?? [], categories: names.categories ?? [],
      verbs: ALL_VERBS, statusSubresource: v.subresources?.status !== undefined,
      // All versions share one bucket; this emulator serves each version with the same object shape.
      storageKey: `${spec.group}/${names.plural}`,
      custom: true, allowUnconditionalUpdate: false, allowCreateOnUpdate: false,
      schema, selectableFields: selectable, deprecationWarning: deprecationWarning(spec, v),
      table: crdTableSpec(v.additionalPrinterColumns ?? []),
      fields(o) {
        const out: Record<string, string> = { 'metadata.name': o.metadata.name ?? '', 'metadata.namespace': o.metadata.namespace ?? '' };
        for (const f of selectable) {
          const r = evalJsonPath(o, `.${f}`);
          out[f] = r.length > 0 ? String(r[0]) : '';
        }
        return out;
      },
    };
    return def;
  });
}
