// The API operations (get, list, create, update, patch, delete) with the real server's semantics:
// admission, status subresource, generation, finalizers, optimistic concurrency, dry run.
import { randomUUID } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { checkObjectMetaTypes } from './decoding.ts';
import { crdResources, crdStatus, normalizeCRD, validateCRD } from './crds.ts';
import type { StatusCause } from './errors.ts';

import {
  ApiError, alreadyExists, badRequest, causes, conflict, invalid, namespaceNotFound, notFound, unsupportedMediaType,
} from './errors.ts';
import { serverSideApply, updateManagedFields } from './managedfields.ts';
import { generateNameSuffix, nowTime, sameObject, specChanged, validateLabelsAndAnnotations, validateName } from './meta.ts';
import {
  APPLY_PATCH_YAML, JSON_PATCH, MERGE_PATCH, METADATA_LIST_KEYS, STRATEGIC_MERGE_PATCH, applyJsonPatch, mergePatch, strategicMergePatch,
} from './patch.ts';
import { Registry } from './registry.ts';
import type { ResourceDef } from './resources.ts';
import { CRD_RESOURCE, apiVersionOf } from './resources.ts';
import type { FieldRequirement, LabelRequirement } from './selectors.ts';
import { checkFieldsSupported, matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.ts';
import type { KubeObject, ManagedFieldsEntry } from './store.ts';
import { Store } from './store.ts';
import { applyDefaults, prune } from './structural.ts';

const NAME_REQUIRED: StatusCause = {
  reason: 'FieldValueRequired', field: 'metadata.name', message: 'Required value: name or generateName is required',
};

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** JSON with every object's keys sorted, as Go encodes an unstructured object. */
function sortedJSON(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(sortedJSON).join(',')}]`;
  if (isObject(value)) return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${sortedJSON(value[k])}`).join(',')}}`;
  return JSON.stringify(value);
}

/**
 * The real server's lastAppliedUpdater: a server-side apply by kubectl's own field manager keeps
 * an existing client-side apply annotation in step with what was applied, so a later
 * `kubectl apply` (client-side) starts from it.
 */
function syncLastApplied(obj: KubeObject, applied: Record<string, unknown>, manager: string): void {
  if (manager !== 'kubectl' || !obj.metadata.annotations?.[LAST_APPLIED]) return;
  const config = structuredClone(applied) as KubeObject;
  const annotations = { ...((config.metadata as KubeObject['metadata'] | undefined)?.annotations ?? {}) };
  delete annotations[LAST_APPLIED];
  if (isObject(config.metadata)) {
    if (Object.keys(annotations).length) config.metadata.annotations = annotations;
    else delete config.metadata.annotations;
  }
  obj.metadata.annotations = { ...obj.metadata.annotations, [LAST_APPLIED]: `${sortedJSON(config)}\n` };
}

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

export interface WriteOptions {
  dryRun: boolean;
  fieldValidation: FieldValidation;
  fieldManager: string;
  /** For SSA. */
  force?: boolean;
}

export interface WriteResult {
  code: number;
  body: unknown;
  warnings: string[];
}

export interface Selectors { labels: LabelRequirement[]; fields: FieldRequirement[] }

function isNamespace(def: ResourceDef): boolean {
  return def.kind === 'Namespace' && def.group === '';
}

/** The first address of the real server's default service range, 10.96.0.0/12. */
const KUBERNETES_SERVICE_IP = '10.96.0.1';

function tracksGeneration(def: ResourceDef): boolean {
  return def.custom || def === CRD_RESOURCE || def.generationChanged !== undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export class KubeApi {
  readonly store: Store;
  readonly registry = new Registry();
  /** Called when resources appear or disappear (open watches on removed resources are ended). */
  onResourcesRemoved: (defs: ResourceDef[]) => void = () => {};

  constructor(store: Store) {
    this.store = store;
  }

  /** Restores CRD registrations from loaded objects and makes sure `default` exists. */
  bootstrap(): void {
    for (const crd of this.store.list(CRD_RESOURCE.storageKey)) {
      try {
        this.registry.setCRD(crd.metadata.name!, crdResources(crd));
      } catch {
        // A CRD whose schema no longer compiles stays stored but unserved, as on a real server.
      }
    }
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      if (!this.store.get('core/namespaces', undefined, ns)) {
        this.create(this.registry.lookup('', 'v1', 'namespaces')!, undefined,
          { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } },
          { dryRun: false, fieldValidation: 'Ignore', fieldManager: 'kube-apiserver' });
      }
    }
  }

  /**
   * The `kubernetes` Service in `default`, as the real server's controller keeps it: the first
   * address of the service range, 443 (https) to the port the server listens on.
   */
  ensureKubernetesService(port: number): void {
    const def = this.registry.lookup('', 'v1', 'services')!;
    const ports = [{ name: 'https', protocol: 'TCP', port: 443, targetPort: port }];
    const opts: WriteOptions = { dryRun: false, fieldValidation: 'Ignore', fieldManager: 'kube-apiserver' };
    const existing = this.store.get(def.storageKey, 'default', 'kubernetes');
    if (!existing) {
      this.create(def, 'default', {
        apiVersion: 'v1', kind: 'Service',
        metadata: { name: 'kubernetes', namespace: 'default', labels: { component: 'apiserver', provider: 'kubernetes' } },
        spec: { type: 'ClusterIP', clusterIP: KUBERNETES_SERVICE_IP, ipFamilyPolicy: 'SingleStack', sessionAffinity: 'None', ports },
      }, opts);
    } else if (!isDeepStrictEqual((existing.spec as { ports?: unknown }).ports, ports)) {
      this.patch(def, 'default', 'kubernetes', MERGE_PATCH, JSON.stringify({ spec: { ports } }), opts, undefined);
    }
  }

  /** See KubeEmulator.seed. */
  seed(objects: Array<Record<string, unknown>>): string[] {
    const out: string[] = [];
    for (const obj of objects) {
      const def = this.registry.all().find((r) => apiVersionOf(r) === obj.apiVersion && r.kind === obj.kind);
      const meta = (isObject(obj.metadata) ? obj.metadata : {}) as { name?: string; namespace?: string };
      const what = `${String(obj.kind)}/${meta.name ?? ''}`;
      if (!def) throw new Error(`seed ${what}: no resource serves ${String(obj.apiVersion)} ${String(obj.kind)}`);
      const ns = def.namespaced ? (meta.namespace ?? 'default') : undefined;
      if (meta.name && this.store.get(def.storageKey, ns, meta.name)) {
        out.push(`${what} exists`);
        continue;
      }
      try {
        this.create(def, ns, obj, { dryRun: false, fieldValidation: 'Strict', fieldManager: 'halb-sandbox' });
      } catch (err) {
        throw new Error(`seed ${what}: ${(err as Error).message}`, { cause: err });
      }
      out.push(`${what} created`);
    }
    return out;
  }

  // ----- reading -----

  present(def: ResourceDef, stored: KubeObject): KubeObject {
    let view = def.fromStorage ? def.fromStorage(stored) : stored;
    if (def.schema) {
      // Defaults apply on reads too, so a default added to a CRD later shows on old objects.
      view = structuredClone(view);
      applyDefaults(view, def.schema.schema);
    }
    const { apiVersion: _a, kind: _k, ...rest } = view;
    return { apiVersion: apiVersionOf(def), kind: def.kind, ...rest } as KubeObject;
  }

  parseSelectors(def: ResourceDef, labelSelector: string | null, fieldSelector: string | null): Selectors {
    const fields = parseFieldSelector(fieldSelector);
    const supported = ['metadata.name', 'metadata.namespace', ...def.selectableFields];
    checkFieldsSupported(fields, supported);
    return { labels: parseLabelSelector(labelSelector), fields };
  }

  matches(def: ResourceDef, stored: KubeObject, sel: Selectors): boolean {
    return matchesLabels(sel.labels, stored.metadata.labels) && matchesFields(sel.fields, def.fields(stored));
  }

  get(def: ResourceDef, ns: string | undefined, name: string): KubeObject {
    const o = this.store.get(def.storageKey, ns, name);
    if (!o) throw notFound(def, name);
    return this.present(def, o);
  }

  /**
   * A list, as of now. With resourceVersion=0 ("any") the real server answers from its watch cache
   * for the resource, whose resourceVersion is that resource's latest event; otherwise (a consistent
   * read) the store-wide one.
   */
  list(
    def: ResourceDef, ns: string | undefined, sel: Selectors, requestedRV?: string | null,
  ): { items: KubeObject[]; resourceVersion: string } {
    const items = this.store.list(def.storageKey, ns).filter((o) => this.matches(def, o, sel)).map((o) => this.present(def, o));
    const rv = requestedRV === '0' ? this.store.resourceRV(def.storageKey) : this.store.currentRV();
    return { items, resourceVersion: String(rv) };
  }

  // ----- admission -----

  private checkNamespace(def: ResourceDef, ns: string | undefined, obj: KubeObject): void {
    if (def.namespaced) {
      if (obj.metadata.namespace && obj.metadata.namespace !== ns) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      obj.metadata.namespace = ns;
    } else {
      delete obj.metadata.namespace;
    }
  }

  private checkKind(def: ResourceDef, obj: Record<string, unknown>): void {
    const gv = apiVersionOf(def);
    if (obj.apiVersion !== undefined && obj.apiVersion !== gv) {
      // The real server converts between served versions of a CRD; same group, other version is fine.
      const sameGroup = def.group !== '' && typeof obj.apiVersion === 'string' && obj.apiVersion.startsWith(`${def.group}/`);
      if (!sameGroup) {
        throw badRequest(`the API version in the data (${String(obj.apiVersion)}) does not match the expected API version (${gv})`);
      }
    }
    if (obj.kind !== undefined && obj.kind !== def.kind) {
      throw badRequest(`${String(obj.kind)} in version "${def.version}" cannot be handled as a ${def.kind}: ` +
        'the kind in the data does not match');
    }
  }

  /** Prune, default, validate: the structural pipeline for custom resources; unknown-field checks for built-ins. */
  /** Built-ins: the strict decoder's unknown-field check on top-level and metadata keys. */
  private dropUnknownBuiltinFields(def: ResourceDef, obj: KubeObject, fv: FieldValidation, warnings: string[]): void {
    if (!def.knownFields) return;
    const known = new Set(['apiVersion', 'kind', 'metadata', ...def.knownFields]);
    const unknown = Object.keys(obj).filter((k) => !known.has(k));
    for (const k of unknown) delete obj[k];
    const metaUnknown = prune({ metadata: obj.metadata }, { type: 'object', properties: {} }, '', true);
    const all = [...unknown, ...metaUnknown];
    if (all.length > 0 && fv === 'Strict') {
      throw badRequest(`${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: ` +
        `strict decoding error: ${all.map((p) => `unknown field "${p}"`).join(', ')}`);
    }
    if (fv === 'Warn') for (const p of all) warnings.push(`unknown field "${p}"`);
  }

  private admitFields(def: ResourceDef, obj: KubeObject, old: KubeObject | undefined, fv: FieldValidation,
    warnings: string[], metadataCauses: StatusCause[] = []): StatusCause[] {
    if (!def.schema) {
      this.dropUnknownBuiltinFields(def, obj, fv, warnings);
      return [];
    }
    const pruned = prune(obj, def.schema.schema);
    if (pruned.length > 0 && fv === 'Strict') {
      throw badRequest(`${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: ` +
        `strict decoding error: ${pruned.map((p) => `unknown field "${p}"`).join(', ')}`);
    }
    if (fv === 'Warn') for (const p of pruned) warnings.push(`unknown field "${p}"`);
    applyDefaults(obj, def.schema.schema);
    const schemaCauses = def.schema.validate(obj);
    // A metadata error blocks the CEL rules as a schema error does: the real server validates
    // metadata first, in the same list (customResourceValidator, then hasBlockingErr).
    const rules = def.schema.validateRules(obj, old, [...metadataCauses, ...schemaCauses]);
    warnings.push(...rules.warnings);
    return [...schemaCauses, ...rules.causes];
  }

  /** Defaults, then `owning` (where the writer's managedFields are computed), then the registry's allocations and validation. */
  private admit(
    def: ResourceDef, obj: KubeObject, old: KubeObject | undefined, opts: WriteOptions, warnings: string[], owning: () => void,
  ): void {
    const errs: StatusCause[] = [];
    const name = obj.metadata.name ?? '';
    // A custom resource's metadata is validated before its schema and rules, in one list (the
    // real server's customResourceValidator); a built-in kind's after.
    const metadataCauses = () => [
      ...(name ? [] : [NAME_REQUIRED]),
      ...(!old && name ? validateName(name, def.kind === 'Namespace' ? 'label' : def.custom ? 'path' : 'subdomain') : []),
      ...validateLabelsAndAnnotations(obj),
    ];
    if (def.custom) checkObjectMetaTypes(def.kind, def.version, obj.metadata as Record<string, unknown>);
    const leading = def.custom ? metadataCauses() : [];
    errs.push(...leading);
    // Unknown fields first (strict decoding), then defaults and normalisation, then validation:
    // the real server's order. Views (events.k8s.io) validate before conversion to storage.
    errs.push(...this.admitFields(def, obj, old, opts.fieldValidation, warnings, leading));
    def.normalize?.(obj, old, () => this.store.list(def.storageKey));
    owning();
    def.allocate?.(obj, old, () => this.store.list(def.storageKey));
    if (def === CRD_RESOURCE) {
      normalizeCRD(obj);
      errs.push(...validateCRD(obj));
    }
    if (def.validate) errs.push(...def.validate(obj, old));
    if (!def.custom) errs.push(...metadataCauses());
    if (old?.metadata.deletionTimestamp) {
      const added = (obj.metadata.finalizers ?? []).filter((f) => !(old.metadata.finalizers ?? []).includes(f));
      if (added.length > 0) {
        errs.push(causes.forbidden('metadata.finalizers', 'no new finalizers can be added if the object is being deleted, ' +
          `found new finalizers []string{${added.map((f) => JSON.stringify(f)).join(', ')}}`));
      }
    }
    if (errs.length > 0) throw invalid(def, name, errs);
  }

  // ----- writing -----

  private crdHook(def: ResourceDef, obj: KubeObject, old: KubeObject | undefined): void {
    if (def !== CRD_RESOURCE) return;
    obj.status = crdStatus(obj, old?.status as Record<string, unknown> | undefined, nowTime());
  }

  private registerCRD(def: ResourceDef, stored: KubeObject): void {
    if (def !== CRD_RESOURCE) return;
    const before = this.registry.removeCRD(stored.metadata.name!);
    const after = crdResources(stored);
    this.registry.setCRD(stored.metadata.name!, after);
    const gone = before.filter((b) => !after.some((a) => a.version === b.version));
    if (gone.length) this.onResourcesRemoved(gone);
  }

  create(def: ResourceDef, ns: string | undefined, body: unknown, opts: WriteOptions, subresource?: string,
    presetManagedFields?: ManagedFieldsEntry[]): WriteResult {
    if (subresource) throw new ApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
    if (!isObject(body)) throw badRequest(`Object 'Kind' is missing in '${JSON.stringify(body)}'`);
    this.checkKind(def, body);
    const obj = structuredClone(body) as KubeObject;
    if (!isObject(obj.metadata)) obj.metadata = {};
    this.checkNamespace(def, ns, obj);
    if (def.namespaced) {
      const nsObj = this.store.get('core/namespaces', undefined, ns!);
      if (!nsObj) throw namespaceNotFound(ns!);
      if (nsObj.metadata.deletionTimestamp) {
        const resource = def.group ? `${def.plural}.${def.group}` : def.plural;
        throw new ApiError(403, 'Forbidden', `${resource} "${obj.metadata.name ?? ''}" is forbidden: ` +
          `unable to create new content in namespace ${ns!} because it is being terminated`, {
          name: obj.metadata.name, group: def.group, kind: def.plural,
          causes: [{ reason: 'NamespaceTerminating', message: `namespace ${ns!} is being terminated`, field: 'metadata.namespace' }],
        });
      }
    }
    if (!obj.metadata.name) {
      if (obj.metadata.generateName) obj.metadata.name = `${obj.metadata.generateName}${generateNameSuffix()}`;
      // A custom resource goes on to its schema and rules, as on the real server (admit).
      else if (!def.custom) throw invalid(def, '', [NAME_REQUIRED]);
    }
    const warnings: string[] = [];
    if (def.statusSubresource && def.custom) delete obj.status;
    const now = nowTime();
    this.admit(def, obj, undefined, opts, warnings, () => {
      obj.metadata.managedFields = presetManagedFields ?? updateManagedFields(undefined, obj, [], def.schema?.schema ?? def.ownership,
        { manager: opts.fieldManager, apiVersion: apiVersionOf(def), now, statusSubresource: def.statusSubresource }, !def.custom);
    });
    if (def === CRD_RESOURCE) delete obj.status;
    // admit refused a missing name.
    const name = obj.metadata.name!;
    if (this.store.get(def.storageKey, obj.metadata.namespace, name)) throw alreadyExists(def, name);
    obj.metadata.uid = randomUUID();
    obj.metadata.creationTimestamp = now;
    // Only kinds whose strategy tracks spec changes carry a generation (not Secrets, Leases, ...).
    if (tracksGeneration(def)) obj.metadata.generation = 1;
    else delete obj.metadata.generation;
    delete obj.metadata.resourceVersion;
    delete obj.metadata.deletionTimestamp;
    delete obj.metadata.deletionGracePeriodSeconds;
    delete obj.metadata.selfLink;
    obj.apiVersion = apiVersionOf(def);
    obj.kind = def.kind;
    if (obj.metadata.managedFields!.length === 0) delete obj.metadata.managedFields;
    this.crdHook(def, obj, undefined);
    return this.commit(def, obj, 201, opts, warnings);
  }

  private commit(def: ResourceDef, obj: KubeObject, code: number, opts: WriteOptions, warnings: string[]): WriteResult {
    const stored = def.toStorage ? def.toStorage(obj) : obj;
    if (opts.dryRun) return { code, body: this.present(def, stored), warnings };
    this.store.put(def.storageKey, stored);
    this.registerCRD(def, stored);
    return { code, body: this.present(def, stored), warnings };
  }

  /**
   * The shared update path (PUT, PATCH, apply). `incoming` is the full desired object in the
   * request's view; `rvFromClient` says whether its resourceVersion is a precondition.
   */
  update(def: ResourceDef, ns: string | undefined, name: string, incoming: unknown, opts: WriteOptions,
    subresource: string | undefined, mode: { put: boolean; presetManagedFields?: ManagedFieldsEntry[]; created?: boolean }): WriteResult {
    if (!isObject(incoming)) throw badRequest(`Object 'Kind' is missing in '${JSON.stringify(incoming)}'`);
    this.checkKind(def, incoming);
    const storedOld = this.store.get(def.storageKey, ns, name);
    if (!storedOld) {
      if (mode.put && def.allowCreateOnUpdate && !subresource) return this.create(def, ns, incoming, opts);
      throw notFound(def, name);
    }
    const old = this.present(def, storedOld);
    let obj = structuredClone(incoming) as KubeObject;
    if (!isObject(obj.metadata)) obj.metadata = {};
    if (obj.metadata.name !== undefined && obj.metadata.name !== name) {
      throw badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
    }
    obj.metadata.name = name;
    this.checkNamespace(def, ns, obj);
    const rv = obj.metadata.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== old.metadata.resourceVersion) throw conflict(def, name);
    if ((rv === undefined || rv === '') && mode.put && !def.allowUnconditionalUpdate) {
      // Go prints the empty uint64 resourceVersion as 0x0, unquoted.
      throw invalid(def, name, [{
        reason: 'FieldValueInvalid', field: 'metadata.resourceVersion', message: 'Invalid value: 0x0: must be specified for an update',
      }], `${def.plural}.${def.group}`);
    }
    if (subresource === 'status') {
      // status_strategy: everything but status comes from the stored object.
      obj = { ...structuredClone(old), status: obj.status } as KubeObject;
      if (obj.status === undefined) delete obj.status;
    } else if (def.statusSubresource) {
      if (old.status === undefined) delete obj.status;
      else obj.status = structuredClone(old.status);
    }
    const warnings: string[] = [];
    const now = nowTime();
    const clientManaged = obj.metadata.managedFields;
    let managedChanged = false;
    this.admit(def, obj, old, opts, warnings, () => {
      if (mode.presetManagedFields) {
        obj.metadata.managedFields = mode.presetManagedFields;
        managedChanged = !isDeepStrictEqual(
          mode.presetManagedFields.map((e) => ({ ...e, time: '' })), (old.metadata.managedFields ?? []).map((e) => ({ ...e, time: '' })));
      } else if (clientManaged !== undefined && !isDeepStrictEqual(clientManaged, old.metadata.managedFields)) {
        managedChanged = true;
        // A client rewrote managedFields (kubectl's csaupgrade does): take them as sent.
        if (!Array.isArray(clientManaged)) {
          throw invalid(def, name, [causes.typeInvalid('metadata.managedFields', clientManaged, 'must be a list')]);
        }
      } else {
        obj.metadata.managedFields = updateManagedFields(old, obj, old.metadata.managedFields ?? [], def.schema?.schema ?? def.ownership,
          { manager: opts.fieldManager, apiVersion: apiVersionOf(def), subresource, now, statusSubresource: def.statusSubresource },
          !def.custom);
      }
    });
    // Server-owned metadata.
    for (const k of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation'] as const) {
      if (old.metadata[k] === undefined) delete obj.metadata[k];
      else (obj.metadata as Record<string, unknown>)[k] = old.metadata[k];
    }
    obj.apiVersion = apiVersionOf(def);
    obj.kind = def.kind;
    if (def === CRD_RESOURCE) this.crdHook(def, obj, old);
    const bumps = def.generationChanged ? def.generationChanged(old, obj) : specChanged(old, obj, def.statusSubresource);
    if (tracksGeneration(def) && bumps) obj.metadata.generation = (old.metadata.generation ?? 0) + 1;
    if (!obj.metadata.managedFields?.length) delete obj.metadata.managedFields;
    obj.metadata.resourceVersion = old.metadata.resourceVersion;
    if (sameObject(old, obj) && !managedChanged) return { code: 200, body: old, warnings };
    if (old.metadata.deletionTimestamp && (obj.metadata.finalizers ?? []).length === 0) {
      // The last finalizer is gone: the object goes away now.
      if (opts.dryRun) return { code: 200, body: obj, warnings };
      const gone = this.store.remove(def.storageKey, ns, name)!;
      this.afterRemove(def, gone);
      // The answer is the object as this write left it (no finalizers), as the real server's.
      const last: KubeObject = { ...gone, ...obj, metadata: { ...obj.metadata, resourceVersion: gone.metadata.resourceVersion } };
      delete last.metadata.finalizers;
      return { code: 200, body: this.present(def, last), warnings };
    }
    return this.commit(def, obj, mode.created ? 201 : 200, opts, warnings);
  }

  patch(def: ResourceDef, ns: string | undefined, name: string, contentType: string, rawBody: string, opts: WriteOptions,
    subresource: string | undefined): WriteResult {
    const type = contentType.split(';')[0]!.trim().toLowerCase();
    const accepted = def.custom
      ? [JSON_PATCH, MERGE_PATCH, APPLY_PATCH_YAML]
      : [JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH_YAML];
    if (!accepted.includes(type)) throw unsupportedMediaType(accepted);
    if (type !== APPLY_PATCH_YAML && opts.force !== undefined) {
      throw invalid({ group: 'meta.k8s.io', plural: 'patchoptions', kind: 'PatchOptions' }, '',
        [causes.forbidden('force', 'may not be specified for non-apply patch')]);
    }
    if (type === APPLY_PATCH_YAML) return this.apply(def, ns, name, rawBody, opts, subresource);
    let body: unknown;
    try {
      body = JSON.parse(rawBody);
    } catch (err) {
      throw badRequest(`error decoding patch: ${(err as Error).message}`);
    }
    const stored = this.store.get(def.storageKey, ns, name);
    if (!stored) throw notFound(def, name);
    const old = this.present(def, stored);
    let patched: unknown;
    if (type === JSON_PATCH) patched = applyJsonPatch(old, body);
    else if (type === MERGE_PATCH) {
      if (!isObject(body)) throw badRequest('json: cannot unmarshal into Go value of type map[string]interface {}');
      patched = mergePatch(old, body);
    } else {
      if (!isObject(body)) throw badRequest('json: cannot unmarshal into Go value of type map[string]interface {}');
      patched = strategicMergePatch(old, body, { ...METADATA_LIST_KEYS, ...def.strategicListKeys });
    }
    return this.update(def, ns, name, patched, opts, subresource, { put: false });
  }

  private apply(
    def: ResourceDef, ns: string | undefined, name: string, rawBody: string, opts: WriteOptions, subresource: string | undefined,
  ): WriteResult {
    if (!opts.fieldManager) {
      throw invalid({ group: 'meta.k8s.io', plural: 'patchoptions', kind: 'PatchOptions' }, '',
        [causes.required('fieldManager')].map((c) => ({ ...c, message: 'Required value: is required for apply patch' })));
    }
    let applied: unknown;
    try {
      applied = parseYaml(rawBody);
    } catch (err) {
      throw badRequest(`error decoding YAML: ${(err as Error).message}`);
    }
    if (!isObject(applied)) throw badRequest('apply patch must be an object');
    const meta = (isObject(applied.metadata) ? applied.metadata : {}) as Record<string, unknown>;
    if (meta.name !== undefined && meta.name !== name) {
      throw badRequest(`the name of the object (${String(meta.name)}) does not match the name on the URL (${name})`);
    }
    if (applied.apiVersion === undefined || applied.kind === undefined) throw badRequest('apply patches must specify apiVersion and kind');
    this.checkKind(def, applied);
    const stored = this.store.get(def.storageKey, ns, name);
    const live = stored ? this.present(def, stored) : undefined;
    const ctx = {
      manager: opts.fieldManager, apiVersion: apiVersionOf(def), subresource, now: nowTime(), statusSubresource: def.statusSubresource,
    };
    const result = serverSideApply(live, applied, def.schema?.schema ?? def.ownership, ctx, opts.force === true, apiVersionOf(def));
    const obj = result.object as KubeObject;
    obj.metadata = { ...(obj.metadata ?? {}), name };
    syncLastApplied(obj, applied, opts.fieldManager);
    if (!live) {
      if (subresource) throw notFound(def, name);
      return this.create(def, ns, obj, opts, undefined, result.managedFields);
    }
    const rvPrecondition = meta.resourceVersion;
    obj.metadata.resourceVersion = typeof rvPrecondition === 'string' ? rvPrecondition : live.metadata.resourceVersion;
    return this.update(def, ns, name, obj, opts, subresource, { put: false, presetManagedFields: result.managedFields });
  }

  delete(def: ResourceDef, ns: string | undefined, name: string, options: unknown, dryRun: boolean): WriteResult {
    const stored = this.store.get(def.storageKey, ns, name);
    if (!stored) throw notFound(def, name);
    if (def.kind === 'Namespace' && ['default', 'kube-system', 'kube-public'].includes(name)) {
      throw new ApiError(403, 'Forbidden', `namespaces "${name}" is forbidden: this namespace may not be deleted`, {
        name, kind: 'namespaces',
      });
    }
    const pre = (isObject(options) && isObject(options.preconditions) ? options.preconditions : {}) as
      { uid?: string; resourceVersion?: string };
    if (pre.uid && pre.uid !== stored.metadata.uid) {
      const resource = def.group ? `${def.plural}.${def.group}` : def.plural;
      throw new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${resource} "${name}": Precondition failed: ` +
        `UID in precondition: ${pre.uid}, UID in object meta: ${stored.metadata.uid}`, { name, group: def.group, kind: def.plural });
    }
    if (pre.resourceVersion && pre.resourceVersion !== stored.metadata.resourceVersion) throw conflict(def, name);
    const success = {
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success',
      details: { name, group: def.group, kind: def.plural, uid: stored.metadata.uid },
    };
    if (isNamespace(def)) return this.terminateNamespace(def, stored, dryRun);
    if ((stored.metadata.finalizers ?? []).length > 0) {
      if (stored.metadata.deletionTimestamp) return { code: 200, body: this.present(def, stored), warnings: [] };
      const obj = structuredClone(stored);
      obj.metadata.deletionTimestamp = nowTime();
      obj.metadata.deletionGracePeriodSeconds = 0;
      if (tracksGeneration(def)) obj.metadata.generation = (obj.metadata.generation ?? 0) + 1;
      if (def.kind === 'Namespace') (obj.status as Record<string, unknown>).phase = 'Terminating';
      if (dryRun) return { code: 200, body: this.present(def, obj), warnings: [] };
      this.store.put(def.storageKey, obj);
      return { code: 200, body: this.present(def, obj), warnings: [] };
    }
    if (dryRun) return { code: 200, body: success, warnings: [] };
    const opts = (isObject(options) ? options : {}) as { propagationPolicy?: string; orphanDependents?: boolean };
    const gone = this.store.remove(def.storageKey, ns, name)!;
    this.afterRemove(def, gone, opts.propagationPolicy === 'Orphan' || opts.orphanDependents === true);
    // Like the real registries (ReturnDeletedObject=false): a Status, except the Namespace object.
    return { code: 200, body: def.kind === 'Namespace' && def.group === '' ? this.present(def, gone) : success, warnings: [] };
  }

  /** Cascades: a CRD takes its custom resources along, a namespace its contents. */
  /**
   * Namespace deletion as the namespace controller does it: the namespace turns Terminating, its
   * contents are deleted (objects with finalizers wait for them), and it goes once empty.
   */
  private terminateNamespace(def: ResourceDef, stored: KubeObject, dryRun: boolean): WriteResult {
    const name = stored.metadata.name!;
    if (stored.metadata.deletionTimestamp) return { code: 200, body: this.present(def, stored), warnings: [] };
    const obj = structuredClone(stored);
    obj.metadata.deletionTimestamp = nowTime();
    obj.metadata.deletionGracePeriodSeconds = 0;
    obj.status = { ...(obj.status as object | undefined), phase: 'Terminating' };
    if (dryRun) return { code: 200, body: this.present(def, obj), warnings: [] };
    this.store.put(def.storageKey, obj);
    for (const [key, d] of this.namespacedBuckets()) {
      for (const o of this.store.list(key, name)) {
        if (!o.metadata.deletionTimestamp) this.delete(d, name, o.metadata.name!, undefined, false);
      }
    }
    this.finishNamespaceIfEmpty(name);
    return { code: 200, body: this.present(def, obj), warnings: [] };
  }

  private namespacedBuckets(): Map<string, ResourceDef> {
    const out = new Map<string, ResourceDef>();
    for (const d of this.registry.all()) if (d.namespaced && !out.has(d.storageKey)) out.set(d.storageKey, d);
    return out;
  }

  private finishNamespaceIfEmpty(ns: string): void {
    const nsObj = this.store.get('core/namespaces', undefined, ns);
    if (!nsObj?.metadata.deletionTimestamp || (nsObj.metadata.finalizers ?? []).length > 0) return;
    for (const key of this.namespacedBuckets().keys()) if (this.store.list(key, ns).length > 0) return;
    this.store.remove('core/namespaces', undefined, ns);
  }

  private afterRemove(def: ResourceDef, gone: KubeObject, orphan = false): void {
    this.collectGarbage(gone, orphan);
    if (def.namespaced && gone.metadata.namespace) this.finishNamespaceIfEmpty(gone.metadata.namespace);
    if (def === CRD_RESOURCE) {
      const defs = this.registry.removeCRD(gone.metadata.name!);
      const key = defs[0]?.storageKey;
      if (key) for (const o of this.store.list(key)) this.store.remove(key, o.metadata.namespace, o.metadata.name!);
      this.onResourcesRemoved(defs);
    } else if (def.kind === 'Namespace' && def.group === '') {
      const keys = new Set(this.registry.all().filter((r) => r.namespaced).map((r) => r.storageKey));
      for (const key of keys) {
        for (const o of this.store.list(key, gone.metadata.name)) this.store.remove(key, o.metadata.namespace, o.metadata.name!);
      }
    }
  }

  /**
   * The garbage collector, synchronously: dependents whose only owner is gone are deleted
   * (Background), or keep living without the reference (Orphan, or other owners remain).
   */
  private collectGarbage(gone: KubeObject, orphan: boolean): void {
    const uid = gone.metadata.uid;
    if (!uid) return;
    const buckets = new Map<string, ResourceDef>();
    for (const d of this.registry.all()) if (!buckets.has(d.storageKey)) buckets.set(d.storageKey, d);
    for (const [key, d] of buckets) {
      for (const o of this.store.list(key)) {
        const refs = (o.metadata.ownerReferences ?? []) as Array<{ uid?: string }>;
        if (!refs.some((r) => r.uid === uid)) continue;
        const rest = refs.filter((r) => r.uid !== uid);
        if (orphan || rest.length > 0) {
          const copy = structuredClone(o);
          if (rest.length > 0) copy.metadata.ownerReferences = rest;
          else delete copy.metadata.ownerReferences;
          this.store.put(key, copy);
        } else if (this.store.get(key, o.metadata.namespace, o.metadata.name!)) {
          this.delete(d, o.metadata.namespace, o.metadata.name!, undefined, false);
        }
      }
    }
  }

  deleteCollection(def: ResourceDef, ns: string | undefined, sel: Selectors, dryRun: boolean): WriteResult {
    const items: KubeObject[] = [];
    for (const o of this.store.list(def.storageKey, ns)) {
      if (!this.matches(def, o, sel)) continue;
      this.delete(def, o.metadata.namespace, o.metadata.name!, undefined, dryRun);
      items.push(this.present(def, o));
    }
    return {
      code: 200,
      body: { apiVersion: apiVersionOf(def), kind: def.listKind, metadata: { resourceVersion: String(this.store.currentRV()) }, items },
      warnings: [],
    };
  }
}
