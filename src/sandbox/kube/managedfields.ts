// A simplified server-side apply: field ownership per manager as FieldsV1 sets, conflicts when
// another manager owns a field the applier wants to change, removal of fields an applier stops
// applying, and list merging by x-kubernetes-list-type (atomic, set, map). Not a port of
// structured-merge-diff: enough for kubectl apply --server-side, csaupgrade and operator tests.
import { isDeepStrictEqual } from 'node:util';
import { ApiError } from './errors.ts';
import type { ManagedFieldsEntry } from './store.ts';
import type { Schema } from './structural.ts';

type Json = unknown;
function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const META_SCHEMA: Schema = {
  type: 'object',
  properties: {
    finalizers: { type: 'array', 'x-kubernetes-list-type': 'set', items: { type: 'string' } },
    // OwnerReference is an atomic struct (+structType=atomic): its item is owned whole, as k:{"uid":...} alone.
    ownerReferences: {
      type: 'array', 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['uid'],
      items: { type: 'object', 'x-kubernetes-map-type': 'atomic' },
    },
  },
};

/** Server-owned metadata that never appears in managedFields. */
const IGNORED_META = new Set([
  'name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'deletionTimestamp',
  'deletionGracePeriodSeconds', 'selfLink', 'generateName',
]);

function childSchema(schema: Schema | undefined, key: string): Schema | undefined {
  if (!schema) return undefined;
  return schema.properties?.[key] ?? (isObject(schema.additionalProperties) ? schema.additionalProperties as Schema : undefined);
}

function elementKey(item: unknown, schema: Schema | undefined, index: number): string {
  const lt = schema?.['x-kubernetes-list-type'];
  if (lt === 'map' && isObject(item)) {
    const keys = schema?.['x-kubernetes-list-map-keys'] ?? [];
    return `k:${JSON.stringify(Object.fromEntries(keys.map((k) => [k, item[k]])))}`;
  }
  if (lt === 'set') return `v:${JSON.stringify(item)}`;
  return `i:${index}`;
}

const SEP = '\u0000';
/** A built-in kind's fields that are Go maps (nil until set), under which an update creates structure (keyed lists always do). */
const TYPED_MAPS = new Set(['f:metadata', 'f:data', 'f:binaryData', 'f:stringData']);
const MARK = Symbol('element');

/**
 * Flattens an object to its owned leaves: path (FieldsV1 keys joined) → value. A null is no
 * value. With `nodes`, maps and keyed lists are paths too (marked), as an update owns the
 * structures it creates: FieldsV1 writes them as ".".
 */
export function flatten(
  obj: Json, schema: Schema | undefined, top: 'all' | 'status' | 'nostatus' = 'all', nodes: boolean | 'typed' = false,
): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const walk = (v: unknown, s: Schema | undefined, path: string[]): void => {
    if (v === null) return;
    if (isObject(v) && s?.['x-kubernetes-map-type'] !== 'atomic' && Object.keys(v).length > 0) {
      if (nodes === true || (nodes === 'typed' && TYPED_MAPS.has(path[0]!))) out.set(path.join(SEP), MARK);
      for (const [k, child] of Object.entries(v)) walk(child, childSchema(s, k), [...path, `f:${k}`]);
      return;
    }
    const lt = s?.['x-kubernetes-list-type'];
    if (Array.isArray(v) && (lt === 'map' || lt === 'set')) {
      // A keyed list of a built-in kind is a Go slice, nil until set: an update creates it too.
      if (nodes) out.set(path.join(SEP), MARK);
      v.forEach((item, i) => {
        const p = [...path, elementKey(item, s, i)];
        if (lt === 'set' || s?.items?.['x-kubernetes-map-type'] === 'atomic') out.set(p.join(SEP), item);
        else {
          out.set(p.join(SEP), MARK);
          if (isObject(item)) for (const [k, child] of Object.entries(item)) walk(child, childSchema(s?.items, k), [...p, `f:${k}`]);
        }
      });
      return;
    }
    out.set(path.join(SEP), v);
  };
  if (!isObject(obj)) return out;
  for (const [k, v] of Object.entries(obj)) {
    if (k === 'apiVersion' || k === 'kind') continue;
    if (top === 'status' && k !== 'status') continue;
    if (top === 'nostatus' && k === 'status') continue;
    if (k === 'metadata' && isObject(v)) {
      // ObjectMeta leaves an empty list or map out (omitempty): it owns nothing.
      const empty = (x: unknown) => (Array.isArray(x) && x.length === 0) || (isObject(x) && Object.keys(x).length === 0);
      for (const [mk, mv] of Object.entries(v)) {
        if (!IGNORED_META.has(mk) && !empty(mv)) walk(mv, childSchema(META_SCHEMA, mk), ['f:metadata', `f:${mk}`]);
      }
      continue;
    }
    walk(v, childSchema(schema, k), [`f:${k}`]);
  }
  return out;
}

export function toFieldsV1(paths: Iterable<string>): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  const owned: Record<string, unknown>[] = [];
  for (const p of [...paths].sort()) {
    let node = root;
    for (const part of p.split(SEP)) {
      node[part] ??= {};
      node = node[part] as Record<string, unknown>;
    }
    owned.push(node);
  }
  // A path owned itself and through its children is written with "." (a keyed list item always is).
  for (const node of owned) if (Object.keys(node).some((k) => k !== '.')) node['.'] = {};
  return root;
}

/** managedFields in the real server's order: Apply before Update, then by time, manager, subresource. */
export function sortManagedFields(entries: ManagedFieldsEntry[]): ManagedFieldsEntry[] {
  const seconds = (e: ManagedFieldsEntry) => (e.time ? Math.floor(Date.parse(e.time) / 1000) : 0);
  return [...entries].sort((p, q) => (p.operation !== q.operation ? (p.operation < q.operation ? -1 : 1)
    : seconds(p) !== seconds(q) ? seconds(p) - seconds(q)
      : p.manager !== q.manager ? (p.manager < q.manager ? -1 : 1)
        : (p.subresource ?? '') < (q.subresource ?? '') ? -1 : (p.subresource ?? '') > (q.subresource ?? '') ? 1 : 0));
}

export function fromFieldsV1(f: unknown, prefix: string[] = [], out = new Set<string>()): Set<string> {
  if (!isObject(f)) return out;
  const keys = Object.keys(f).filter((k) => k !== '.');
  if (prefix.length > 0 && (keys.length === 0 || '.' in f)) out.add(prefix.join(SEP));
  for (const k of keys) fromFieldsV1(f[k], [...prefix, k], out);
  return out;
}

/** Human path for conflict messages: ".spec.frontends[name=\"www\"].port". */
export function displayPath(p: string): string {
  return p.split(SEP).map((part) => {
    if (part.startsWith('f:')) return `.${part.slice(2)}`;
    if (part.startsWith('k:')) {
      const o = JSON.parse(part.slice(2)) as Record<string, unknown>;
      return `[${Object.entries(o).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}]`;
    }
    if (part.startsWith('v:')) return `[${part.slice(2)}]`;
    return `[${part.slice(2)}]`;
  }).join('');
}

function findElement(list: unknown[], part: string): number {
  if (part.startsWith('i:')) return Number(part.slice(2));
  const want = JSON.parse(part.slice(2)) as unknown;
  if (part.startsWith('v:')) return list.findIndex((x) => isDeepStrictEqual(x, want));
  return list.findIndex((x) => isObject(x) && Object.entries(want as object).every(([k, v]) => isDeepStrictEqual(x[k], v)));
}

function removeAt(obj: unknown, parts: string[]): void {
  let node: unknown = obj;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const last = i === parts.length - 1;
    if (part.startsWith('f:')) {
      if (!isObject(node)) return;
      if (last) delete node[part.slice(2)];
      else node = node[part.slice(2)];
    } else {
      if (!Array.isArray(node)) return;
      const idx = findElement(node, part);
      if (idx < 0) return;
      if (last) node.splice(idx, 1);
      else node = node[idx];
    }
  }
}

/** Merges an applied configuration into the live object by list type. */
export function applyMerge(cur: unknown, applied: unknown, schema: Schema | undefined): unknown {
  if (isObject(applied) && isObject(cur) && schema?.['x-kubernetes-map-type'] !== 'atomic') {
    const out: Record<string, unknown> = { ...cur };
    for (const [k, v] of Object.entries(applied)) {
      const s = k === 'metadata' && schema === undefined ? META_SCHEMA : childSchema(schema, k);
      if (v === null) delete out[k];
      else out[k] = applyMerge(cur[k], v, s);
    }
    return out;
  }
  const lt = schema?.['x-kubernetes-list-type'];
  if (Array.isArray(applied) && Array.isArray(cur) && (lt === 'map' || lt === 'set')) {
    const out = [...cur];
    applied.forEach((item, i) => {
      const idx = findElement(out, elementKey(item, schema, i));
      if (idx < 0) out.push(structuredClone(item));
      else if (lt === 'map') out[idx] = applyMerge(out[idx], item, schema?.items);
    });
    return out;
  }
  return structuredClone(applied);
}

function entryMatches(e: ManagedFieldsEntry, manager: string, operation: string, subresource: string | undefined): boolean {
  return e.manager === manager && e.operation === operation && (e.subresource ?? '') === (subresource ?? '');
}

export interface ApplyResult { object: Record<string, unknown>; managedFields: ManagedFieldsEntry[] }

export interface ManagerContext {
  manager: string; apiVersion: string; subresource?: string; now: string | undefined; statusSubresource: boolean;
}

function scope(ctx: ManagerContext): 'all' | 'status' | 'nostatus' {
  if (ctx.subresource === 'status') return 'status';
  return ctx.statusSubresource ? 'nostatus' : 'all';
}

function setEntry(
  entries: ManagedFieldsEntry[], ctx: ManagerContext, operation: 'Apply' | 'Update', paths: Set<string>,
): ManagedFieldsEntry[] {
  const rest = entries.filter((e) => !entryMatches(e, ctx.manager, operation, ctx.subresource));
  if (paths.size === 0) return rest;
  const entry: ManagedFieldsEntry = {
    manager: ctx.manager, operation, apiVersion: ctx.apiVersion, ...(ctx.now ? { time: ctx.now } : {}),
    fieldsType: 'FieldsV1', fieldsV1: toFieldsV1(paths),
  };
  if (ctx.subresource) entry.subresource = ctx.subresource;
  const idx = entries.findIndex((e) => entryMatches(e, ctx.manager, operation, ctx.subresource));
  if (idx >= 0) {
    rest.splice(idx, 0, entry);
    return rest;
  }
  return [...rest, entry];
}

function withoutPaths(entries: ManagedFieldsEntry[], drop: Set<string>, except?: (e: ManagedFieldsEntry) => boolean): ManagedFieldsEntry[] {
  const out: ManagedFieldsEntry[] = [];
  for (const e of entries) {
    if (except?.(e)) {
      out.push(e);
      continue;
    }
    const owned = fromFieldsV1(e.fieldsV1);
    let changed = false;
    for (const p of drop) if (owned.delete(p)) changed = true;
    if (!changed) out.push(e);
    else if (owned.size > 0) out.push({ ...e, fieldsV1: toFieldsV1(owned) });
  }
  return out;
}

/**
 * Ownership after a non-apply write (create, update, merge/JSON patch): the writer takes what it
 * changed, and the structures it created. A built-in kind's structs always exist (Go zero
 * values), so there only metadata's maps and lists are created: `typed` says which.
 */
export function updateManagedFields(
  oldObj: Record<string, unknown> | undefined, newObj: Record<string, unknown>, entries: ManagedFieldsEntry[], schema: Schema | undefined,
  ctx: ManagerContext, typed = false,
): ManagedFieldsEntry[] {
  const sc = scope(ctx);
  const nodes = typed ? 'typed' : true;
  const before = oldObj ? flatten(oldObj, schema, sc, nodes) : new Map<string, unknown>();
  const after = flatten(newObj, schema, sc, nodes);
  const changed = new Set<string>();
  for (const [p, v] of after) if (!before.has(p) || !isDeepStrictEqual(before.get(p), v)) changed.add(p);
  const removed = new Set([...before.keys()].filter((p) => !after.has(p)));
  if (changed.size === 0 && removed.size === 0) return entries;
  let out = withoutPaths(entries, new Set([...changed, ...removed]), (e) => entryMatches(e, ctx.manager, 'Update', ctx.subresource));
  const mine = entries.find((e) => entryMatches(e, ctx.manager, 'Update', ctx.subresource));
  const owned = mine ? fromFieldsV1(mine.fieldsV1) : new Set<string>();
  for (const p of removed) owned.delete(p);
  for (const p of changed) owned.add(p);
  out = setEntry(out, ctx, 'Update', owned);
  return sortManagedFields(out);
}

/** Server-side apply of `applied` onto `live` (undefined: create). Throws 409 on conflicts unless forced. */
export function serverSideApply(
  live: Record<string, unknown> | undefined, applied: Record<string, unknown>, schema: Schema | undefined, ctx: ManagerContext,
  force: boolean, gvForMessage: string,
): ApplyResult {
  const sc = scope(ctx);
  const entries = ((live?.metadata as { managedFields?: ManagedFieldsEntry[] } | undefined)?.managedFields ?? []);
  const appliedFields = flatten(applied, schema, sc);
  const liveFields = live ? flatten(live, schema, sc) : new Map<string, unknown>();
  const isMine = (e: ManagedFieldsEntry): boolean => entryMatches(e, ctx.manager, 'Apply', ctx.subresource);

  const conflicts: Array<{ manager: string; operation: string; path: string }> = [];
  for (const e of entries) {
    if (isMine(e) || (e.subresource ?? '') !== (ctx.subresource ?? '')) continue;
    for (const p of fromFieldsV1(e.fieldsV1)) {
      if (!appliedFields.has(p)) continue;
      const a = appliedFields.get(p);
      if (a === MARK) continue;
      // A field another manager owns but the object no longer holds (it set it to null or an empty
      // list, stored as null) is added by this apply: that is a conflict too.
      if (liveFields.has(p) && isDeepStrictEqual(a, liveFields.get(p))) continue;
      conflicts.push({ manager: e.manager, operation: e.operation, path: p });
    }
  }
  let newEntries = entries;
  if (conflicts.length > 0) {
    if (!force) throw conflictError(conflicts, gvForMessage);
    newEntries = withoutPaths(entries, new Set(conflicts.map((c) => c.path)), isMine);
  }

  const mine = entries.find(isMine);
  const previouslyApplied = mine ? fromFieldsV1(mine.fieldsV1) : new Set<string>();
  const ownedByOthers = new Set<string>();
  for (const e of newEntries) if (!isMine(e)) for (const p of fromFieldsV1(e.fieldsV1)) ownedByOthers.add(p);
  const result = structuredClone(live ?? {}) as Record<string, unknown>;
  const toRemove = [...previouslyApplied]
    .filter((p) => !appliedFields.has(p) && ![...ownedByOthers].some((o) => o === p || o.startsWith(p + SEP)));
  // Shallowest first: a dropped list element goes whole, before its fields would make it unfindable.
  toRemove.sort((a, b) => a.split(SEP).length - b.split(SEP).length);
  for (const p of toRemove) removeAt(result, p.split(SEP));

  const merged = applyMerge(result, applied, schema) as Record<string, unknown>;
  newEntries = withoutPaths(newEntries, new Set(), undefined);
  // An apply that changes nothing leaves the applier's time as it was (none, for a first apply).
  const content = (o: Record<string, unknown> | undefined) =>
    ({ ...o, metadata: { ...(o?.metadata as object), managedFields: undefined, resourceVersion: undefined } });
  // Compared as values: an atomic item applied anew may list its fields in another order.
  const unchanged = live !== undefined && isDeepStrictEqual(content(live), content(merged));
  newEntries = setEntry(newEntries, unchanged ? { ...ctx, now: mine?.time } : ctx, 'Apply', new Set(appliedFields.keys()));
  return { object: merged, managedFields: sortManagedFields(newEntries) };
}

function conflictError(conflicts: Array<{ manager: string; operation: string; path: string }>, gv: string): ApiError {
  const who = (c: { manager: string; operation: string }): string =>
    (c.operation === 'Apply' ? `"${c.manager}"` : `"${c.manager}" using ${gv}`);
  const causes = conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: `conflict with ${who(c)}`, field: displayPath(c.path) }));
  let message: string;
  if (conflicts.length === 1) {
    message = `Apply failed with 1 conflict: conflict with ${who(conflicts[0]!)}: ${displayPath(conflicts[0]!.path)}`;
  }
  else {
    const byManager = new Map<string, string[]>();
    for (const c of conflicts) byManager.set(who(c), [...(byManager.get(who(c)) ?? []), displayPath(c.path)]);
    const groups = [...byManager].map(([m, ps]) => `conflicts with ${m}:\n${ps.map((p) => `- ${p}`).join('\n')}`);
    message = `Apply failed with ${conflicts.length} conflicts: ${groups.join('\n')}`;
  }
  return new ApiError(409, 'Conflict', message, { causes });
}
