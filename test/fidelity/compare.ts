// What a client reads from an answer, and where two servers' answers to the same request differ.
//
// "What a client reads": the status code; the Status reason, code, details and the fields its
// causes name; the message (kubectl prints it); the media type and the Warning headers (kubectl
// prints those too); objects as kubectl and client-node use them, with the values a server
// assigns (resourceVersion, uid, timestamps) reduced to whether they are there; Tables as kubectl
// prints them (column definitions, cells; ages aside); watch streams as their events (bookmarks
// aside: servers send them when they choose); discovery only for the resources the recorded
// clients used, with the fields kubectl maps by (kind, scope, verbs, short names, categories,
// subresources); OpenAPI by whether kubectl finds server-side field validation for those kinds.
import type { Answer } from '../kube-real/http.ts';
import { streamEvents } from './replay.ts';
import type { Exchange } from './record.ts';

export interface Divergence {
  seq: number;
  client: string;
  method: string;
  /** The path with names and namespaces as placeholders, and the query's parameter names. */
  route: string;
  /** Where they differ: "status", "reason", "message", "body <path>", "warning", "media type", "events". */
  aspect: string;
  emulator: string;
  real: string;
}

const ASSIGNED_TIMES = new Set(['creationTimestamp', 'deletionTimestamp', 'time']);

/** Group versions and resources the recorded clients asked for: discovery is compared for these. */
export function usedResources(exchanges: Exchange[]): Set<string> {
  const used = new Set<string>();
  for (const e of exchanges) {
    const m = new URL(e.path, 'http://x').pathname.match(/^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))(?:\/namespaces\/[^/]+)?\/([^/]+)/);
    if (!m) continue;
    const gv = m[1] ? 'v1' : `${m[2]}/${m[3]}`;
    if (m[4] !== 'namespaces' || /\/namespaces\/[^/]+$/.test(e.path)) used.add(`${gv} ${m[4]}`);
  }
  return used;
}

export function route(exchange: Exchange): string {
  const url = new URL(exchange.path, 'http://x');
  const parts = url.pathname.split('/');
  const out = parts.map((p, i) => {
    const before = parts[i - 1];
    if (before === 'namespaces') return '{ns}';
    // /api/v1/<resource>/<name>, /apis/<g>/<v>/<resource>/<name>, and the same under a namespace.
    const base = parts[1] === 'api' ? 3 : 4;
    const afterNamespace = parts[base] === 'namespaces' ? base + 2 : base;
    if (i === afterNamespace + 1 && p) return '{name}';
    return p;
  }).join('/');
  const params = [...new Set([...url.searchParams.keys()])].sort();
  return params.length ? `${out}?${params.join('&')}` : out;
}

/** An object or list reduced to what clients read. */
export function normalize(value: unknown, key = ''): unknown {
  // Entries made within one second are ordered by manager: which second each fell in is timing.
  if (key === 'managedFields' && Array.isArray(value)) {
    const id = (e: { operation?: string; manager?: string; subresource?: string }) => `${e.operation} ${e.manager} ${e.subresource ?? ''}`;
    return (value as Record<string, unknown>[]).map((v) => normalize(v)).sort((a, b) => id(a as never).localeCompare(id(b as never)));
  }
  if (Array.isArray(value)) {
    const items = value.map((v) => normalize(v));
    const named = value.every((v) => typeof (v as { metadata?: { name?: unknown } })?.metadata?.name === 'string');
    return named
      ? items.sort((a, b) =>
        JSON.stringify((a as { metadata: unknown }).metadata).localeCompare(JSON.stringify((b as { metadata: unknown }).metadata)))
      : items;
  }
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [field, v] of Object.entries(obj)) {
      // A managedFields key names a list item by its keys' values: an ownerReference's is the owner's uid.
      const k = field.startsWith('k:{') ? field.replace(/"uid":"[^"]+"/g, '"uid":"<assigned>"') : field;
      if (k === 'resourceVersion' || k === 'uid') out[k] = v === '' || v === undefined ? v : '<assigned>';
      else if (ASSIGNED_TIMES.has(k) && typeof v === 'string') out[k] = '<time>';
      else if (k === 'continue' && typeof v === 'string') out[k] = v ? '<token>' : '';
      else if (key === '' && k === 'data' && obj.kind === 'Secret' && v && typeof v === 'object') {
        out[k] = Object.fromEntries(Object.keys(v).map((d) => [d, '<data>']));
      } else out[k] = normalize(v, k);
    }
    if (obj.kind === 'Table') return normalizeTable(out);
    return out;
  }
  return value;
}

function normalizeTable(table: Record<string, unknown>): Record<string, unknown> {
  const columns = (table.columnDefinitions as { name: string }[] | undefined) ?? [];
  const ages = new Set(columns.flatMap((c, i) => (['Age', 'Last Seen', 'First Seen'].includes(c.name) ? [i] : [])));
  const rows = (table.rows as { cells: unknown[] }[] | undefined)
    ?.map((r) => ({ ...r, cells: r.cells.map((c, i) => (ages.has(i) ? '<age>' : c)) }));
  return { ...table, ...(rows ? { rows } : {}) };
}

interface DiscoveryResource { resource?: string; name?: string; [k: string]: unknown }

/** Discovery documents, kept to the used resources and the fields kubectl and client-node map by. */
function normalizeDiscovery(doc: Record<string, unknown>, used: Set<string>, gv?: string): unknown {
  const pick = (r: DiscoveryResource, version: string) => {
    const name = r.resource ?? r.name ?? '';
    if (!used.has(`${version} ${name.split('/')[0]}`)) return undefined;
    const {
      verbs, shortNames, categories, kind, namespaced, scope, singularName, singularResource, responseKind, subresources,
    } = r as Record<string, unknown>;
    return {
      name, kind: kind ?? (responseKind as { kind?: string } | undefined)?.kind, scope: scope ?? (namespaced ? 'Namespaced' : 'Cluster'),
      singular: singularName ?? singularResource, verbs: [...(verbs as string[] ?? [])].sort(),
      shortNames: shortNames ?? [], categories: categories ?? [],
      ...(subresources ? {
        subresources: (subresources as { subresource: string; verbs: string[] }[])
          .map((s) => `${s.subresource}:${[...s.verbs].sort().join(',')}`).sort(),
      } : {}),
    };
  };
  if (doc.kind === 'APIResourceList') {
    return (doc.resources as DiscoveryResource[]).map((r) => pick(r, gv ?? String(doc.groupVersion))).filter(Boolean)
      .sort((a, b) => a!.name.localeCompare(b!.name));
  }
  if (doc.kind === 'APIGroupDiscoveryList') {
    const groups = doc.items as { metadata: { name?: string }; versions: { version: string; resources: DiscoveryResource[] }[] }[];
    return groups.flatMap((g) => g.versions.flatMap((v) => {
      const version = g.metadata.name ? `${g.metadata.name}/${v.version}` : v.version;
      return v.resources.map((r) => pick(r, version)).filter(Boolean).map((r) => ({ groupVersion: version, ...r }));
    })).sort((a, b) => `${a.groupVersion} ${a.name}`.localeCompare(`${b.groupVersion} ${b.name}`));
  }
  if (doc.kind === 'APIGroupList') {
    return (doc.groups as { name: string; versions: { groupVersion: string }[] }[]).flatMap((g) => g.versions.map((v) => v.groupVersion))
      .filter((gvName) => [...used].some((u) => u.startsWith(`${gvName} `))).sort();
  }
  return doc;
}

/** OpenAPI v3: kubectl asks whether each kind's patch takes fieldValidation (server-side validation). */
function normalizeOpenAPI(doc: Record<string, unknown>, used: Set<string>): unknown {
  if (doc.paths && !(doc as { openapi?: string }).openapi) {
    // The v3 root: which group versions have a document.
    return Object.keys(doc.paths as object)
      .filter((p) => [...used].some((u) => p === (u.startsWith('v1 ') ? 'api/v1' : `apis/${u.split(' ')[0]}`))).sort();
  }
  const paths = (doc.paths ?? {}) as
    Record<string, Record<string, { parameters?: { name: string }[]; 'x-kubernetes-group-version-kind'?: { kind: string } }>>;
  const kinds = new Set<string>();
  for (const [path, ops] of Object.entries(paths)) {
    const patch = ops.patch;
    if (!patch) continue;
    const resource = path.split('/').filter(Boolean).at(-2) === 'namespaces'
      ? ''
      : path.split('/').filter((p) => !p.startsWith('{')).at(-1) ?? '';
    if (![...used].some((u) => u.endsWith(` ${resource}`))) continue;
    const params = [...(patch.parameters ?? []), ...((ops as { parameters?: { name: string }[] }).parameters ?? [])].map((p) => p.name);
    kinds.add(`${patch['x-kubernetes-group-version-kind']?.kind ?? '?'} ${path.includes('/status') ? 'status ' : ''}` +
      `fieldValidation=${params.includes('fieldValidation')}`);
  }
  return [...kinds].sort();
}

export interface ClientView {
  status: number;
  mediaType: string;
  warnings: string[];
  body: unknown;
}

export function view(exchange: Exchange, answer: Answer, used: Set<string>): ClientView {
  const pathname = new URL(exchange.path, 'http://x').pathname;
  const mediaType = String(answer.headers['content-type'] ?? '').replace(/\s+/g, '');
  const warnings = ([] as string[]).concat(answer.headers.warning ?? [])
    .flatMap((w) => w.split(/,(?=\s*\d{3} )/)).map((w) => w.trim()).sort();
  let body: unknown;
  if (exchange.watch) {
    body = streamEvents(answer.text).filter((e) => e.type !== 'BOOKMARK').map((e) => ({ type: e.type, object: normalize(e.object) }));
  } else if (answer.json && typeof answer.json === 'object') {
    const doc = answer.json as Record<string, unknown>;
    if (pathname.startsWith('/openapi/')) body = normalizeOpenAPI(doc, used);
    else if (['APIResourceList', 'APIGroupDiscoveryList', 'APIGroupList'].includes(String(doc.kind))) {
      body = normalizeDiscovery(doc, used, pathname.startsWith('/api/') ? 'v1' : undefined);
    } else if (pathname === '/api' && doc.kind === 'APIVersions') body = { versions: doc.versions };
    else if (pathname === '/version') body = Object.keys(doc).sort();
    else body = normalize(doc);
  } else {
    body = answer.text ? `<${answer.text.length} bytes, not JSON>` : '';
  }
  return { status: answer.status, mediaType, warnings, body };
}

/** Leaf paths where two values differ (at most `limit`), with both values. */
function leafDifferences(a: unknown, b: unknown, path: string, out: { path: string; a: unknown; b: unknown }[], limit = 8): void {
  if (out.length >= limit || JSON.stringify(a) === JSON.stringify(b)) return;
  const isObject = (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    a.forEach((x, i) => leafDifferences(x, b[i], `${path}[${i}]`, out, limit));
    return;
  }
  if (isObject(a) && isObject(b)) {
    for (const k of new Set([...Object.keys(a as object), ...Object.keys(b as object)])) {
      leafDifferences((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k, out, limit);
    }
    return;
  }
  out.push({ path: path || '(whole)', a, b });
}

const show = (v: unknown) => (v === undefined ? '(absent)' : JSON.stringify(v).slice(0, 300));

export function divergences(exchange: Exchange, emulator: ClientView, real: ClientView): Divergence[] {
  const base = { seq: exchange.seq, client: exchange.client, method: exchange.method, route: route(exchange) };
  const out: Divergence[] = [];
  if (emulator.status !== real.status) {
    out.push({ ...base, aspect: 'status', emulator: String(emulator.status), real: String(real.status) });
  }
  const mediaOf = (t: string) => t.split(';')[0];
  if (mediaOf(emulator.mediaType) !== mediaOf(real.mediaType)) {
    out.push({ ...base, aspect: 'media type', emulator: emulator.mediaType, real: real.mediaType });
  }
  if (JSON.stringify(emulator.warnings) !== JSON.stringify(real.warnings)) {
    out.push({ ...base, aspect: 'warning', emulator: show(emulator.warnings), real: show(real.warnings) });
  }
  const differing: { path: string; a: unknown; b: unknown }[] = [];
  leafDifferences(emulator.body, real.body, '', differing);
  for (const d of differing) {
    const aspect = exchange.watch ? `events ${d.path}`
      : /^(reason|code|message|details)/.test(d.path) && (real.body as { kind?: string })?.kind === 'Status' ? d.path.split('.')[0]!
      : `body ${d.path}`;
    out.push({ ...base, aspect, emulator: show(d.a), real: show(d.b) });
  }
  return out;
}
