// What the server knows about each resource: names for discovery, scope, verbs, the storage
// bucket it lives in, and the per-kind rules (built-in normalisation, field selectors, printers).
import { isDeepStrictEqual } from 'node:util';
import type { StatusCause } from './errors.ts';
import { checkSecretData } from './decoding.ts';
import { ApiError, causes } from './errors.ts';
import { specChanged } from './meta.ts';
import type { FieldSet } from './selectors.ts';
import type { StrategicListKeys } from './patch.ts';
import type { KubeObject } from './store.ts';
import type { CompiledSchema, Schema } from './structural.ts';
import { nodeHooks, nodeTable, serviceHooks, serviceTable, type ServicePort } from './services.ts';
import type { TableSpec } from './table.ts';
import { builtinTableSpec } from './table.ts';

export const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export interface ResourceDef {
  group: string;
  version: string;
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: string[];
  statusSubresource: boolean;
  /** Bucket in the store; events.k8s.io/v1 shares core/v1's. */
  storageKey: string;
  custom: boolean;
  allowUnconditionalUpdate: boolean;
  allowCreateOnUpdate: boolean;
  schema?: CompiledSchema;
  /** A CRD version marked deprecated: sent as a Warning header on every request to it. */
  deprecationWarning?: string;
  /** Built-ins: where strategic merge patches merge lists (beyond metadata's own). */
  strategicListKeys?: StrategicListKeys;
  /** Built-ins: top-level fields the strict decoder knows (besides apiVersion, kind, metadata). */
  knownFields?: string[];
  /** Built-ins: how their fields are owned in managedFields (atomic structs), where a CRD has its schema. */
  ownership?: Schema;
  selectableFields: string[];
  table: TableSpec;
  /** Fills server-side defaults and derived fields before validation; `stored` lists the
   *  resource's stored objects (for allocations such as node ports). May throw ApiError. */
  normalize?: (obj: KubeObject, old: KubeObject | undefined, stored: () => KubeObject[]) => void;
  /** The registry's own changes (allocations), made after managedFields are computed: they are
   *  nobody's fields. Same arguments as normalize. */
  allocate?: (obj: KubeObject, old: KubeObject | undefined, stored: () => KubeObject[]) => void;
  /** A built-in kind whose strategy keeps metadata.generation (1 on create): whether an update bumps it. */
  generationChanged?: (old: KubeObject, obj: KubeObject) => boolean;
  /** Built-in validation; throws ApiError for decode errors (400), returns causes for 422. */
  validate?: (obj: KubeObject, old: KubeObject | undefined) => StatusCause[];
  toStorage?: (obj: KubeObject) => KubeObject;
  fromStorage?: (obj: KubeObject) => KubeObject;
  fields: (obj: KubeObject) => FieldSet;
}

export function apiVersionOf(r: { group: string; version: string }): string {
  return r.group ? `${r.group}/${r.version}` : r.version;
}

function str(v: unknown): string {
  return v === undefined || v === null ? '' : String(v);
}

function metaFields(o: KubeObject): FieldSet {
  return { 'metadata.name': str(o.metadata.name), 'metadata.namespace': str(o.metadata.namespace) };
}

const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;

/** The 400 the real server sends when a MicroTime lacks exactly six fractional digits. */
function checkMicroTime(kind: string, version: string, value: unknown): void {
  if (value === undefined || value === null) return;
  if (typeof value !== 'string' || !MICRO_TIME.test(value)) {
    const s = String(value);
    const frac = /(\.\d*)?(Z|[+-]\d{2}:\d{2})?$/.exec(s.slice(19))?.[0] ?? s.slice(19);
    throw new ApiError(400, 'BadRequest',
      `${kind} in version "${version}" cannot be handled as a ${kind}: ` +
      `parsing time ${JSON.stringify(s)} as "2006-01-02T15:04:05.000000Z07:00": cannot parse ${JSON.stringify(frac)} as ".000000"`);
  }
}

function base(partial: Partial<ResourceDef> & Pick<ResourceDef, 'group' | 'version' | 'kind' | 'plural' | 'namespaced'>): ResourceDef {
  const def: ResourceDef = {
    listKind: `${partial.kind}List`,
    singular: partial.kind.toLowerCase(),
    shortNames: [],
    categories: [],
    verbs: ALL_VERBS,
    statusSubresource: false,
    storageKey: `${partial.group || 'core'}/${partial.plural}`,
    custom: false,
    allowUnconditionalUpdate: true,
    allowCreateOnUpdate: false,
    selectableFields: [],
    table: builtinTableSpec(partial.kind),
    fields: metaFields,
    ...partial,
  };
  return def;
}

const namespaces = base({
  group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false, shortNames: ['ns'],
  statusSubresource: true,
  knownFields: ['spec', 'status'],
  selectableFields: ['status.phase'],
  fields: (o) => ({ ...metaFields(o), 'status.phase': str((o.status as { phase?: string } | undefined)?.phase) }),
  normalize(o) {
    o.spec = { finalizers: ['kubernetes'], ...(o.spec as object | undefined) };
    const status = (o.status ?? {}) as { phase?: string };
    o.status = { ...status, phase: o.metadata.deletionTimestamp ? 'Terminating' : (status.phase ?? 'Active') };
    o.metadata.labels = { ...o.metadata.labels, 'kubernetes.io/metadata.name': o.metadata.name! };
  },
});

const secrets = base({
  group: '', version: 'v1', kind: 'Secret', plural: 'secrets', namespaced: true,
  knownFields: ['data', 'stringData', 'type', 'immutable'],
  selectableFields: ['type'],
  fields: (o) => ({ ...metaFields(o), type: str(o.type) }),
  normalize(o) {
    if (o.stringData && typeof o.stringData === 'object') {
      const data = { ...(o.data as Record<string, string> | undefined) };
      for (const [k, v] of Object.entries(o.stringData as Record<string, string>)) {
        data[k] = Buffer.from(String(v), 'utf8').toString('base64');
      }
      o.data = data;
    }
    delete o.stringData;
    if (!o.type) o.type = 'Opaque';
  },
  validate(o, old) {
    checkSecretData(o.data);
    const out: StatusCause[] = [];
    if (old && old.immutable === true) {
      if (JSON.stringify(old.data ?? {}) !== JSON.stringify(o.data ?? {})) {
        out.push(causes.forbidden('data', 'field is immutable when `immutable` is set'));
      }
      if (o.immutable !== true) out.push(causes.forbidden('immutable', 'field is immutable when `immutable` is set'));
    }
    if (old && old.type !== o.type) out.push(causes.invalid('type', o.type, 'field is immutable'));
    return out;
  },
});

const configmaps = base({
  group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true, shortNames: ['cm'],
  knownFields: ['data', 'binaryData', 'immutable'],
});

const EVENT_FIELDS = [
  'involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name', 'involvedObject.uid',
  'involvedObject.apiVersion', 'involvedObject.resourceVersion', 'involvedObject.fieldPath',
  'reason', 'reportingComponent', 'source', 'type',
];

function eventFields(o: KubeObject): FieldSet {
  const io = (o.involvedObject ?? {}) as Record<string, unknown>;
  const source = (o.source ?? {}) as { component?: string };
  const out: FieldSet = { ...metaFields(o) };
  for (const k of ['kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath']) {
    out[`involvedObject.${k}`] = str(io[k]);
  }
  out.reason = str(o.reason);
  out.reportingComponent = str(o.reportingComponent);
  out.source = str(source.component);
  out.type = str(o.type);
  return out;
}

const coreEvents = base({
  group: '', version: 'v1', kind: 'Event', plural: 'events', namespaced: true, shortNames: ['ev'],
  // ObjectReference is an atomic struct: its owner owns it whole.
  ownership: {
    type: 'object',
    properties: {
      involvedObject: { type: 'object', 'x-kubernetes-map-type': 'atomic' }, related: { type: 'object', 'x-kubernetes-map-type': 'atomic' },
    },
  },
  allowCreateOnUpdate: true,
  knownFields: [
    'involvedObject', 'reason', 'message', 'source', 'firstTimestamp', 'lastTimestamp', 'count', 'type', 'eventTime', 'series', 'action',
    'related', 'reportingComponent', 'reportingInstance',
  ],
  selectableFields: EVENT_FIELDS,
  fields: eventFields,
  // firstTimestamp and lastTimestamp are metav1.Time: stored and served to the second, in UTC;
  // eventTime is a MicroTime the real server always writes, null when unset.
  normalize(o) {
    o.eventTime ??= null;
    for (const k of ['firstTimestamp', 'lastTimestamp']) {
      const t = typeof o[k] === 'string' ? Date.parse(o[k]) : Number.NaN;
      if (!Number.isNaN(t)) o[k] = new Date(Math.floor(t / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    }
  },
  validate(o) {
    checkMicroTime('Event', 'v1', o.eventTime);
    const out: StatusCause[] = [];
    const io = (o.involvedObject ?? {}) as { namespace?: string };
    if (io.namespace && o.metadata.namespace && io.namespace !== o.metadata.namespace) {
      out.push(causes.invalid('involvedObject.namespace', io.namespace, 'does not match event.namespace'));
    }
    return out;
  },
});

/** events.k8s.io/v1 ⇄ core/v1, as pkg/apis/events does it: one store, two views. */
function eventsV1ToCore(o: KubeObject): KubeObject {
  const out: KubeObject = { apiVersion: 'v1', kind: 'Event', metadata: o.metadata };
  const set = (k: string, v: unknown): void => {
    if (v !== undefined) out[k] = v;
  };
  set('involvedObject', o.regarding ?? {});
  set('related', o.related);
  set('message', o.note);
  set('reason', o.reason);
  set('type', o.type);
  set('action', o.action);
  set('eventTime', o.eventTime);
  set('series', o.series);
  set('reportingComponent', o.reportingController);
  set('reportingInstance', o.reportingInstance);
  set('source', o.deprecatedSource);
  set('firstTimestamp', o.deprecatedFirstTimestamp);
  set('lastTimestamp', o.deprecatedLastTimestamp);
  set('count', o.deprecatedCount);
  return out;
}

function coreToEventsV1(o: KubeObject): KubeObject {
  const out: KubeObject = { apiVersion: 'events.k8s.io/v1', kind: 'Event', metadata: o.metadata };
  const set = (k: string, v: unknown): void => {
    if (v !== undefined && v !== null && v !== '') out[k] = v;
  };
  out.eventTime = o.eventTime ?? null;
  set('series', o.series);
  set('reportingController', o.reportingComponent);
  set('reportingInstance', o.reportingInstance);
  set('action', o.action);
  set('reason', o.reason);
  set('regarding', o.involvedObject);
  set('related', o.related);
  set('note', o.message);
  set('type', o.type);
  set('deprecatedSource', o.source);
  set('deprecatedFirstTimestamp', o.firstTimestamp);
  set('deprecatedLastTimestamp', o.lastTimestamp);
  set('deprecatedCount', o.count);
  return out;
}

const eventsV1 = base({
  group: 'events.k8s.io', version: 'v1', kind: 'Event', plural: 'events', namespaced: true, shortNames: ['ev'],
  storageKey: 'core/events',
  allowCreateOnUpdate: true,
  knownFields: [
    'eventTime', 'series', 'reportingController', 'reportingInstance', 'action', 'reason', 'regarding', 'related', 'note', 'type',
    'deprecatedSource', 'deprecatedFirstTimestamp', 'deprecatedLastTimestamp', 'deprecatedCount',
  ],
  selectableFields: EVENT_FIELDS,
  fields: eventFields,
  toStorage: eventsV1ToCore,
  fromStorage: coreToEventsV1,
  validate(o) {
    // Runs on the events.k8s.io view, before conversion.
    checkMicroTime('Event', 'v1', o.eventTime);
    const out: StatusCause[] = [];
    if (!o.eventTime) out.push(causes.required('eventTime'));
    for (const f of ['reportingController', 'reportingInstance', 'action', 'reason']) if (!o[f]) out.push(causes.required(f));
    if (o.type !== 'Normal' && o.type !== 'Warning') out.push(causes.notSupported('type', o.type ?? '', ['Normal', 'Warning']));
    return out;
  },
});

const leases = base({
  group: 'coordination.k8s.io', version: 'v1', kind: 'Lease', plural: 'leases', namespaced: true,
  knownFields: ['spec'],
  validate(o) {
    const spec = (o.spec ?? {}) as Record<string, unknown>;
    checkMicroTime('Lease', 'v1', spec.acquireTime);
    checkMicroTime('Lease', 'v1', spec.renewTime);
    const out: StatusCause[] = [];
    for (const f of ['leaseDurationSeconds', 'leaseTransitions']) {
      const v = spec[f];
      if (v !== undefined && v !== null && (typeof v !== 'number' || v < 0)) {
        out.push(causes.invalid(`spec.${f}`, v, 'must be greater than or equal to 0'));
      }
    }
    return out;
  },
});

// Services (src/sandbox/kube/services.ts): ClusterIP, headless (the operator keeps one per
// HALoadBalancer for its nodes' metrics), NodePort and LoadBalancer, with port allocation.
const services = base({
  group: '', version: 'v1', kind: 'Service', plural: 'services', namespaced: true, shortNames: ['svc'], categories: ['all'],
  statusSubresource: true,
  allowCreateOnUpdate: true,
  knownFields: ['spec', 'status'],
  selectableFields: ['spec.clusterIP', 'spec.type'],
  strategicListKeys: { 'spec.ports': 'port', 'status.conditions': 'type' },
  // ServiceSpec.ports is a list map keyed by port and protocol; the other lists are atomic.
  ownership: {
    type: 'object',
    properties: {
      spec: {
        type: 'object',
        properties: {
          ports: {
            type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['port', 'protocol'], items: { type: 'object' },
          },
        },
      },
      status: {
        type: 'object',
        properties: {
          conditions: { type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'], items: { type: 'object' } },
        },
      },
    },
  },
  table: serviceTable,
  normalize: serviceHooks.normalize,
  allocate: serviceHooks.allocate,
  validate: serviceHooks.validate,
  fields: (o) => ({ ...metaFields(o), ...serviceHooks.fields(o) }),
});

// Nodes, cluster-scoped, written by the kubelet (in the sandbox: by `halb sandbox up`).
const nodes = base({
  group: '', version: 'v1', kind: 'Node', plural: 'nodes', namespaced: false, shortNames: ['no'],
  statusSubresource: true,
  knownFields: ['spec', 'status'],
  selectableFields: ['spec.unschedulable'],
  strategicListKeys: { 'spec.podCIDRs': '', 'status.addresses': 'type', 'status.conditions': 'type' },
  table: nodeTable,
  fields: (o) => ({ ...metaFields(o), ...nodeHooks.fields(o) }),
});

// discovery.k8s.io/v1 EndpointSlices, stored as sent after the real server's defaults and checks.
const endpointSlices = base({
  group: 'discovery.k8s.io', version: 'v1', kind: 'EndpointSlice', plural: 'endpointslices', namespaced: true,
  knownFields: ['addressType', 'endpoints', 'ports'],
  // The strategy starts generation at 1 and bumps it when anything but metadata, or the labels, change.
  generationChanged: (old, obj) => specChanged(old, obj, false) || !isDeepStrictEqual(old.metadata.labels, obj.metadata.labels),
  normalize(o) {
    if (Array.isArray(o.ports)) o.ports = (o.ports as ServicePort[]).map((p) => ({ ...p, protocol: p.protocol ?? 'TCP' }));
  },
  // endpoints has no omitempty, and storage keeps no empty list: none comes back as null (after
  // managedFields, which own the [] the writer sent).
  allocate(o) {
    if (Array.isArray(o.endpoints) && o.endpoints.length === 0) o.endpoints = null;
    o.endpoints ??= null;
  },
  validate(o, old) {
    const out: StatusCause[] = [];
    if (!['IPv4', 'IPv6', 'FQDN'].includes(String(o.addressType ?? ''))) {
      out.push(causes.notSupported('addressType', o.addressType ?? '', ['FQDN', 'IPv4', 'IPv6']));
    }
    if (old && old.addressType !== o.addressType) out.push(causes.invalid('addressType', o.addressType, 'field is immutable'));
    const endpoints = (o.endpoints ?? []) as Array<{ addresses?: unknown[] }>;
    if (!Array.isArray(endpoints)) throw new ApiError(400, 'BadRequest', 'endpoints must be a list');
    endpoints.forEach((e, i) => {
      if (!Array.isArray(e.addresses) || e.addresses.length !== 1) {
        out.push(causes.invalid(`endpoints[${i}].addresses`, e.addresses, 'must contain exactly 1 address'));
      }
    });
    const ports = (o.ports ?? []) as ServicePort[];
    if (!Array.isArray(ports)) throw new ApiError(400, 'BadRequest', 'ports must be a list');
    ports.forEach((p, i) => {
      if (typeof p.port !== 'number' || p.port < 1 || p.port > 65535) {
        out.push(causes.invalid(`ports[${i}].port`, p.port, 'must be between 1 and 65535, inclusive'));
      }
    });
    return out;
  },
});

export const CRD_RESOURCE = base({
  group: 'apiextensions.k8s.io', version: 'v1', kind: 'CustomResourceDefinition', plural: 'customresourcedefinitions',
  singular: 'customresourcedefinition', namespaced: false, shortNames: ['crd', 'crds'], categories: ['api-extensions'],
  statusSubresource: true,
  table: builtinTableSpec('CustomResourceDefinition'),
});

export function builtinResources(): ResourceDef[] {
  return [namespaces, secrets, configmaps, services, nodes, endpointSlices, coreEvents, eventsV1, leases, CRD_RESOURCE];
}
