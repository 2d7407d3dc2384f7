// meta.k8s.io/v1 Table conversion, as apiextensions' tableconvertor does it: JSONPath columns,
// typed cells, date cells rendered as human durations, PartialObjectMetadata rows.
import { JSONPath } from 'jsonpath-plus';
import type { KubeObject } from './store.ts';

export interface PrinterColumn {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  jsonPath: string;
}

export interface ColumnDefinition { name: string; type: string; format: string; description: string; priority: number }

export interface TableSpec {
  columns: ColumnDefinition[];
  cells: (obj: KubeObject, now: number) => unknown[];
}

/** Go's duration.HumanDuration (k8s.io/apimachinery/pkg/util/duration). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    const y = Math.floor(hours / 24 / 365);
    return dy === 0 ? `${y}y` : `${y}y${dy}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

export function age(ts: unknown, now: number): string | null {
  if (typeof ts !== 'string') return null;
  const t = Date.parse(ts);
  return Number.isNaN(t) ? null : humanDuration(now - t);
}

/** Kubernetes JSONPath (".spec.x", "{.spec.x}") to jsonpath-plus ("$.spec.x"). */
export function toJsonPathPlus(path: string): string {
  let p = path.trim();
  if (p.startsWith('{') && p.endsWith('}')) p = p.slice(1, -1);
  if (p.startsWith('$')) return p;
  return `$${p.startsWith('.') || p.startsWith('[') ? '' : '.'}${p}`;
}

export function evalJsonPath(obj: unknown, path: string): unknown[] {
  try {
    return JSONPath({ path: toJsonPathPlus(path), json: obj as object, wrap: true }) as unknown[];
  } catch {
    return [];
  }
}

function printValue(v: unknown): string {
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

const NAME_COLUMN: ColumnDefinition = {
  name: 'Name', type: 'string', format: 'name', priority: 0,
  description: 'Name must be unique within a namespace. Is required when creating resources, ' +
    'although some resources may allow a client to request the generation of an appropriate name automatically. ' +
    'Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. ' +
    'More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names',
};

export function crdTableSpec(columns: PrinterColumn[]): TableSpec {
  const cols = columns.length > 0 ? columns : [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }];
  return {
    columns: [NAME_COLUMN, ...cols.map((c) => ({
      name: c.name, type: c.type, format: c.format ?? '', priority: c.priority ?? 0,
      description: c.description ?? `Custom resource definition column (in JSONPath format): ${c.jsonPath}`,
    }))],
    cells(obj, now) {
      return [obj.metadata.name, ...cols.map((c) => {
        const results = evalJsonPath(obj, c.jsonPath);
        if (results.length === 0) return null;
        if (c.type === 'date') return age(results[0], now);
        if (c.type === 'integer' || c.type === 'number' || c.type === 'boolean') {
          return results.length === 1 ? results[0] : results.map(printValue).join(' ');
        }
        return results.map(printValue).join(' ');
      })];
    },
  };
}

function col(name: string, type = 'string', description = '', priority = 0, format = ''): ColumnDefinition {
  return { name, type, format, description, priority };
}

// The descriptions are the real server's (its printers take them from the API's field docs).
const AGE_COLUMN = col('Age', 'string', 'CreationTimestamp is a timestamp representing the server time when this object was created. ' +
  'It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. ' +
  'It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. ' +
  'More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata');
const SECRET_COLUMNS = [
  col('Type', 'string', 'Used to facilitate programmatic handling of secret data. ' +
    'More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types'),
  col('Data', 'string', 'Data contains the secret data. Each key must consist of alphanumeric characters, \'-\', \'_\' or \'.\'. ' +
    'The serialized form of the secret data is a base64 encoded string, ' +
    'representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4'),
];
const EVENT_COLUMNS = [
  col('Last Seen', 'string', 'The time at which the most recent occurrence of this event was recorded.'),
  col('Type', 'string', 'Type of this event (Normal, Warning), new types could be added in the future'),
  col('Reason', 'string',
    'This should be a short, machine understandable string that gives the reason for the transition into the object\'s current status.'),
  col('Object', 'string', 'The object that this event is about.'),
  col('Subobject', 'string', 'If referring to a piece of an object instead of an entire object, ' +
    'this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. ' +
    'For example, if the object reference is to a container within a pod, this would take on a value like: "spec.containers{name}" ' +
    '(where "name" refers to the name of the container that triggered the event) ' +
    'or if no container name is specified "spec.containers[2]" (container with index 2 in this pod). ' +
    'This syntax is chosen only to have some well-defined way of referencing a part of an object.', 1),
  col('Source', 'string', 'The component reporting this event. Should be a short machine understandable string.', 1),
  col('Message', 'string', 'A human-readable description of the status of this operation.'),
  col('First Seen', 'string', 'The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)', 1),
  col('Count', 'string', 'The number of times this event has occurred.', 1),
  { ...NAME_COLUMN, priority: 1 },
];

/** The real server's event printer (printEvent): ages, the target, the source, the count. */
function eventCells(o: KubeObject, now: number): unknown[] {
  const io = (o.involvedObject ?? {}) as { kind?: string; name?: string; fieldPath?: string };
  const source = (o.source ?? {}) as { component?: string; host?: string };
  const series = o.series as { count?: number; lastObservedTime?: string } | undefined;
  const since = (ts: unknown) => age(ts, now) ?? '<unknown>';
  const first = o.firstTimestamp ? since(o.firstTimestamp) : since(o.eventTime);
  let last = o.lastTimestamp ? since(o.lastTimestamp) : first;
  let count = typeof o.count === 'number' && o.count > 0 ? o.count : 1;
  if (series) {
    last = since(series.lastObservedTime);
    count = series.count ?? 0;
  }
  const component = source.component || (o.reportingComponent as string | undefined) || '';
  const instance = source.host || (o.reportingInstance as string | undefined) || '';
  const kind = (io.kind ?? '').toLowerCase();
  return [last, o.type ?? '', o.reason ?? '', io.name ? `${kind}/${io.name}` : kind, io.fieldPath ?? '',
    instance ? `${component}, ${instance}` : component, String(o.message ?? '').trim(), first, count, o.metadata.name];
}

/** Built-in kinds' server-side printers (pkg/printers/internalversion), the columns kubectl shows. */
export function builtinTableSpec(kind: string): TableSpec {
  const created = (o: KubeObject, now: number): string | null => age(o.metadata.creationTimestamp, now);
  switch (kind) {
    case 'Namespace':
      return {
        columns: [NAME_COLUMN, col('Status', 'string', 'The status of the namespace'), AGE_COLUMN],
        cells: (o, now) => [o.metadata.name, (o.status as { phase?: string } | undefined)?.phase ?? 'Active', created(o, now)],
      };
    case 'Secret':
      return {
        columns: [NAME_COLUMN, ...SECRET_COLUMNS, AGE_COLUMN],
        cells: (o, now) => [o.metadata.name, o.type ?? 'Opaque', Object.keys((o.data as object | undefined) ?? {}).length, created(o, now)],
      };
    case 'ConfigMap':
      return {
        columns: [NAME_COLUMN, col('Data', 'string'), AGE_COLUMN],
        cells: (o, now) => [
          o.metadata.name,
          Object.keys((o.data as object | undefined) ?? {}).length + Object.keys((o.binaryData as object | undefined) ?? {}).length,
          created(o, now),
        ],
      };
    case 'Lease':
      return {
        columns: [NAME_COLUMN, col('Holder', 'string', 'holderIdentity contains the identity of the holder of a current lease. ' +
          'If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.'),
        AGE_COLUMN],
        cells: (o, now) => [o.metadata.name, (o.spec as { holderIdentity?: string } | undefined)?.holderIdentity ?? '', created(o, now)],
      };
    case 'Event':
      return { columns: EVENT_COLUMNS, cells: eventCells };
    default:
      return {
        columns: [NAME_COLUMN, col('Created At', 'date',
          'CreationTimestamp is a timestamp representing the server time when this object was created.')],
        cells: (o) => [o.metadata.name, o.metadata.creationTimestamp ?? null],
      };
  }
}

export function partialObjectMetadata(obj: KubeObject): Record<string, unknown> {
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

export interface TableOptions { includeObject?: string | null; noHeaders?: boolean; resourceVersion?: string }

export function buildTable(spec: TableSpec, objects: KubeObject[], opts: TableOptions, now = Date.now()): Record<string, unknown> {
  const table: Record<string, unknown> = {
    kind: 'Table', apiVersion: 'meta.k8s.io/v1',
    metadata: opts.resourceVersion !== undefined ? { resourceVersion: opts.resourceVersion } : {},
  };
  if (!opts.noHeaders) table.columnDefinitions = spec.columns;
  table.rows = objects.map((o) => {
    const row: Record<string, unknown> = { cells: spec.cells(o, now) };
    if (opts.includeObject === 'Object') row.object = o;
    else if (opts.includeObject !== 'None') row.object = partialObjectMetadata(o);
    return row;
  });
  return table;
}
