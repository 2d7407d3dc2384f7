// The patch types a real server accepts: JSON merge patch (RFC 7396), JSON patch (RFC 6902, via
// fast-json-patch, which implements `test` and reports bad paths), and strategic merge for
// built-in kinds: lists with a merge key (a Service's ports by port) merge item by item, lists
// with the merge strategy (finalizers) are unions, and the $-directives kubectl sends
// ($patch, $setElementOrder, $deleteFromPrimitiveList, $retainKeys) are honoured; every other
// list is replaced, as the Go types' patch tags say.
import jsonpatch from 'fast-json-patch';
import { ApiError, badRequest } from './errors.ts';

export const MERGE_PATCH = 'application/merge-patch+json';
export const JSON_PATCH = 'application/json-patch+json';
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';
export const APPLY_PATCH_YAML = 'application/apply-patch+yaml';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/**
 * Where a kind's lists merge: dotted path → merge key, or '' for a list of scalars merged as a
 * set (the Go types' patchMergeKey / patchStrategy tags).
 */
export type StrategicListKeys = Readonly<Record<string, string>>;

/** Every object's own: metadata.finalizers is a set, ownerReferences merge by uid. */
export const METADATA_LIST_KEYS: StrategicListKeys = { 'metadata.finalizers': '', 'metadata.ownerReferences': 'uid' };

const SET_ORDER = '$setElementOrder/';
const DELETE_FROM = '$deleteFromPrimitiveList/';

/** Applies a strategic merge patch to `target` (not changed). */
export function strategicMergePatch(target: unknown, patch: unknown, keys: StrategicListKeys, path = ''): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  if (patch.$patch === 'replace') return stripStrategicDirectives(patch);
  if (patch.$patch === 'delete') return undefined;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  const retain = Array.isArray(patch.$retainKeys) ? new Set(patch.$retainKeys as string[]) : undefined;
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) continue;
    const field = path ? `${path}.${k}` : k;
    if (v === null) delete out[k];
    else if (Array.isArray(v) && field in keys) out[k] = mergeList(out[k], v, keys[field]!, keys, field);
    else if (isObject(v)) {
      const merged = strategicMergePatch(out[k], v, keys, field);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    } else out[k] = stripStrategicDirectives(v);
  }
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith(DELETE_FROM) && Array.isArray(out[k.slice(DELETE_FROM.length)]) && Array.isArray(v)) {
      out[k.slice(DELETE_FROM.length)] = (out[k.slice(DELETE_FROM.length)] as unknown[]).filter((x) => !v.includes(x));
    }
    if (k.startsWith(SET_ORDER) && Array.isArray(v)) {
      const name = k.slice(SET_ORDER.length);
      const field = path ? `${path}.${name}` : name;
      if (Array.isArray(out[name])) out[name] = ordered(out[name] as unknown[], v, keys[field] ?? '');
    }
  }
  if (retain) for (const k of Object.keys(out)) if (!retain.has(k)) delete out[k];
  return out;
}

function mergeList(current: unknown, patch: unknown[], mergeKey: string, keys: StrategicListKeys, path: string): unknown[] {
  const items = Array.isArray(current) ? [...current] : [];
  if (mergeKey === '') {
    for (const item of patch) if (!items.includes(item)) items.push(item);
    return items;
  }
  if (patch.some((p) => isObject(p) && p.$patch === 'replace')) {
    return patch.filter((p) => !(isObject(p) && '$patch' in p)).map(stripStrategicDirectives);
  }
  for (const item of patch) {
    if (!isObject(item)) continue;
    const at = items.findIndex((x) => isObject(x) && x[mergeKey] === item[mergeKey]);
    if (item.$patch === 'delete') {
      if (at >= 0) items.splice(at, 1);
    } else if (at >= 0) items[at] = strategicMergePatch(items[at], item, keys, path);
    else items.push(stripStrategicDirectives(item));
  }
  return items;
}

/** $setElementOrder: the listed items in that order, any others after them as they were. */
function ordered(items: unknown[], order: unknown[], mergeKey: string): unknown[] {
  const keyOf = (x: unknown) => (mergeKey && isObject(x) ? x[mergeKey] : x);
  const position = (x: unknown) => {
    const i = order.findIndex((o) => keyOf(o) === keyOf(x));
    return i < 0 ? order.length : i;
  };
  return items.map((item, i) => ({ item, i })).sort((a, b) => position(a.item) - position(b.item) || a.i - b.i).map((x) => x.item);
}

/** Drops $setElementOrder/..., $retainKeys, $patch and $deleteFromPrimitiveList directives. */
export function stripStrategicDirectives(patch: unknown): unknown {
  if (Array.isArray(patch)) return patch.filter((x) => !(isObject(x) && '$patch' in x)).map(stripStrategicDirectives);
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$')) continue;
    out[k] = stripStrategicDirectives(v);
  }
  return out;
}

export function applyJsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  try {
    return jsonpatch.applyPatch(structuredClone(doc), ops as jsonpatch.Operation[], true, false).newDocument;
  } catch (err) {
    const e = err as { name?: string; message?: string };
    if (e.name === 'TEST_OPERATION_FAILED') {
      throw new ApiError(422, 'Invalid', 'the server rejected our request due to an error in our request', {
        causes: [{ reason: 'FieldValueInvalid', message: 'testing value failed' }],
      });
    }
    throw new ApiError(422, 'Invalid', `the server rejected our request due to an error in our request`, {
      causes: [{ reason: 'FieldValueInvalid', message: (e.message ?? String(err)).split('\n')[0]! }],
    });
  }
}
