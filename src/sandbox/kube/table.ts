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
  description: 'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names',
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

const AGE_COLUMN = col('Age', 'string', 'CreationTimestamp is a timestamp representing the server time when this object was created.');

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
        columns: [NAME_COLUMN, col('Type'), col('Data', 'string'), AGE_COLUMN],
        cells: (o, now) => [o.metadata.name, o.type ?? 'Opaque', Object.keys((o.data as object | undefined) ?? {}).length, created(o, now)],
      };
    case 'ConfigMap':
      return {
        columns: [NAME_COLUMN, col('Data', 'string'), AGE_COLUMN],
        cells: (o, now) => [o.metadata.name, Object.keys((o.data as object | undefined) ?? {}).length + Object.keys((o.binaryData as object | undefined) ?? {}).length, created(o, now)],
      };
    case 'Lease':
      return {
        columns: [NAME_COLUMN, col('Holder'), AGE_COLUMN],
        cells: (o, now) => [o.metadata.name, (o.spec as { holderIdentity?: string } | undefined)?.holderIdentity ?? '', created(o, now)],
      };
    case 'Event':
      return {
        columns: [col('Last Seen'), col('Type'), col('Reason'), col('Object'), col('Message'), { ...NAME_COLUMN, priority: 1 }],
        cells: (o, now) => {
          const io = (o.involvedObject ?? {}) as { kind?: string; name?: string };
          const last = (o.lastTimestamp ?? o.eventTime ?? o.metadata.creationTimestamp) as string | undefined;
          return [age(last, now), o.type ?? '', o.reason ?? '', `${(io.kind ?? '').toLowerCase()}/${io.name ?? ''}`, o.message ?? '', o.metadata.name];
        },
      };
    default:
      return {
        columns: [NAME_COLUMN, col('Created At', 'date', 'CreationTimestamp is a timestamp representing the server time when this object was created.')],
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
